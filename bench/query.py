#!/usr/bin/env python
"""Sketch-query latency benchmark: sketch image -> top-50 over N faces (exact by default), against the encoder alone.

    python bench/query.py --json                          # 100,000 faces, exact scan, onnxruntime backend
    python bench/query.py --mode hnsw --json              # the same through an HNSW index
    python bench/query.py --gallery-size 20000 --backend torch --json

The query path is the app's: ``TrainedSketchEmbedder.embed`` on a scanned-page-sized sketch (decode
excluded: grayscale, ink orientation, speck-robust ink box, crop/pad, resize, normalise, the network,
L2 normalisation) followed by the top-50 of N random unit vectors (timing only; recall is
bench/search.py's job): with ``--mode exact`` (a local gallery's default) the engine's own exact scan
(:class:`engine.gallery.exact.ExactScan`, float32, on the CPU here), with ``--mode hnsw`` ``knn_query``
on an hnswlib index (inner product, M=16, ef_construction=200, ef=200).
The encoder is the realistic ViT-B-16 SketchEncoder with random weights, saved in the product's
checkpoint format and, for ``--backend onnx``, exported with the parity check the installer uses.

``encoder_p50_ms`` is the network alone on an already preprocessed input (the baseline in the same run);
``ratio`` = query_p50_ms / encoder_p50_ms, goal <= 1.3: everything around the network must cost less
than a third of it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def log(msg: str) -> None:
    print(f"[query-bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def build_index(n: int, m: int, ef_construction: int, ef: int, threads: int, seed: int) -> tuple[Any, float]:
    import hnswlib

    rng = np.random.default_rng(seed)
    index = hnswlib.Index(space="ip", dim=512)
    index.init_index(max_elements=n, M=m, ef_construction=ef_construction, random_seed=seed)
    t0 = time.perf_counter()
    for start in range(0, n, 50_000):
        x = rng.standard_normal((min(50_000, n - start), 512)).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        index.add_items(x, np.arange(start, start + len(x)), num_threads=threads)
        log(f"index: {start + len(x)}/{n}")
    index.set_ef(ef)
    return index, time.perf_counter() - t0


def exact_scan(n: int, seed: int) -> tuple[Any, float]:
    """The engine's exact scan over ``n`` random unit vectors (what a local gallery holds for its default mode)."""
    from engine.gallery.exact import ExactScan

    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    x = np.empty((n, 512), np.float32)
    for start in range(0, n, 50_000):
        part = rng.standard_normal((min(50_000, n - start), 512)).astype(np.float32)
        x[start:start + len(part)] = part / np.linalg.norm(part, axis=1, keepdims=True)
    return ExactScan(np.arange(n, dtype=np.int64), x, 0, "cpu"), time.perf_counter() - t0


def make_embedder(arch: str, backend: str, work: Path) -> Any:
    import torch

    from engine.sketch.checkpoint import save_encoder
    from engine.sketch.config import EncoderConfig, PreprocessConfig
    from engine.sketch.embedder import TrainedSketchEmbedder
    from engine.sketch.model import build_encoder, resolve_model_cfg

    model_cfg = resolve_model_cfg(arch)
    size = int(model_cfg["vision_cfg"].get("image_size", 224))
    cfg = EncoderConfig(architecture=arch, model_cfg=model_cfg, preprocess=PreprocessConfig(input_size=size),
                        arcface_sha256="0" * 64)
    torch.manual_seed(0)
    model = build_encoder(cfg).eval()
    ckpt = save_encoder(work / "sketch_encoder", model.state_dict(), cfg)
    parity = None
    if backend == "onnx":
        from engine.sketch.onnx_export import export_onnx

        log("exporting to ONNX (parity-checked)")
        parity = export_onnx(model, cfg, ckpt / "model.onnx").to_dict()
    del model
    return TrainedSketchEmbedder(ckpt, device="cpu", backend=backend), parity


def scanned_page(seed: int = 0) -> np.ndarray:
    """A 1200x900 'scan': the synthetic face sketch enlarged on a page with dust specks (BGR)."""
    import cv2

    from tests.trainer import synthetic

    rng = np.random.default_rng(seed)
    gray = synthetic.sketch(synthetic.random_identity(rng), rng)
    gray = cv2.resize(gray, (gray.shape[1] * 2, gray.shape[0] * 2), interpolation=cv2.INTER_CUBIC)
    page = np.full((1200, 900), 250, np.uint8)
    page[100:100 + gray.shape[0], 50:50 + gray.shape[1]] = gray[:1100, :850]
    page[rng.random(page.shape) < 2e-4] = 0
    return np.repeat(page[:, :, None], 3, axis=2)


def p50(xs: list[float]) -> float:
    return statistics.median(xs) * 1000.0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gallery-size", type=int, default=100_000)
    p.add_argument("--queries", type=int, default=20)
    p.add_argument("--k", type=int, default=50)
    p.add_argument("--m", type=int, default=16)
    p.add_argument("--ef-construction", type=int, default=200)
    p.add_argument("--ef", type=int, default=200)
    p.add_argument("--mode", choices=("exact", "hnsw"), default="exact", help="how the top-k is found")
    p.add_argument("--backend", choices=("onnx", "torch"), default="onnx",
                   help="onnx: what the app runs once 'sketchface sketch install' exported model.onnx")
    p.add_argument("--arch", default="ViT-B-16")
    p.add_argument("--build-threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    if args.mode == "hnsw":
        index, build_s = build_index(args.gallery_size, args.m, args.ef_construction, args.ef, args.build_threads,
                                     args.seed)
        top = lambda vec: index.knn_query(vec, k=args.k, num_threads=1)[0]  # noqa: E731
    else:
        scan, build_s = exact_scan(args.gallery_size, args.seed)
        top = lambda vec: np.asarray([[f for f, _ in scan.top(vec, args.k)]])  # noqa: E731
    page = scanned_page(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        embedder, parity = make_embedder(args.arch, args.backend, Path(tmp))
        from engine.sketch.preprocess import preprocess

        pre = embedder.config.preprocess
        x = preprocess(page, None, pre)[None]
        for _ in range(2):  # warm-up: session/allocator set-up is not a query
            embedder.forward(x)
            top(embedder.embed(page))
        enc, prep, knn, full = [], [], [], []
        for i in range(args.queries):
            t0 = time.perf_counter()
            embedder.forward(x)
            enc.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            preprocess(page, None, pre)
            prep.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            vec = embedder.embed(page)
            labels = top(vec)
            full.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            top(vec)
            knn.append(time.perf_counter() - t0)
            assert labels.shape == (1, args.k)
            log(f"query {i + 1}/{args.queries}: {full[-1] * 1000:.0f} ms")
        backend = embedder.backend
    result = {
        "benchmark": "query",
        "architecture": args.arch,
        "backend": backend,
        "device": "cpu",
        "threads": torch.get_num_threads(),
        "gallery_size": args.gallery_size,
        "k": args.k,
        "mode": args.mode,
        "index": ({"space": "ip", "M": args.m, "ef_construction": args.ef_construction, "ef": args.ef,
                   "build_s": build_s, "build_threads": args.build_threads} if args.mode == "hnsw" else
                  {"exact_scan": "float32, CPU", "load_s": build_s}),
        "page_pixels": [int(page.shape[1]), int(page.shape[0])],
        "queries": args.queries,
        "query_p50_ms": p50(full),
        "encoder_p50_ms": p50(enc),
        "preprocess_p50_ms": p50(prep),
        "top_k_p50_ms": p50(knn),
        "ratio": p50(full) / p50(enc),
        "goal_ratio": 1.3,
        "onnx_parity": parity,
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
        "elapsed_s": time.perf_counter() - started,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")


if __name__ == "__main__":
    main()
