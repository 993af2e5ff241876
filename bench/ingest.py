#!/usr/bin/env python
"""Ingest benchmark: the gallery import pipeline against the raw detector + recognizer throughput.

    python bench/ingest.py --photos 200 --json
    python bench/ingest.py --photos 2000 --batch 256 --workers 8 --json   # on a GPU workstation

The JSON says which onnxruntime provider the sessions really use (``provider``, ``*_session_providers``)
and, when it is the CPU, why (``onnx_reason``), so a GPU run that silently fell back is visible.

The recognizer is the R50-cost stand-in (IResNet-50 layout, random weights) that
``python -m tests.fixtures.tiny_models OUT --realistic`` writes; the detector is the tiny SCRFD-signature
model. "raw" runs the same two onnxruntime sessions back to back on images decoded and crops aligned
beforehand (detection timed per image, recognition in batches): the ceiling. "pipeline" is
``Gallery.add`` on the same files: reading, hashing, decoding, detection, alignment, batched embedding,
thumbnails, one SQLite transaction per photo, index inserts and the final atomic index save.
The goal is ``ratio`` = pipeline / raw >= 0.8: everything but inference hidden behind inference.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def log(msg: str) -> None:
    print(f"[ingest-bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def models(dest: Path) -> tuple[Path, Path]:
    """Tiny detector + realistic recognizer (built once into ``dest``; reused when present)."""
    from tests.fixtures import tiny_models

    det, rec = dest / "det_10g.onnx", dest / "w600k_r50_realistic.onnx"
    if not det.exists():
        tiny_models.build_detector(det)
    if not rec.exists():
        log("building the R50-cost recognizer (random weights)")
        tiny_models.build_realistic_recognizer(rec)
    return det, rec


def raw_throughput(pipeline: Any, files: list[Path], batch: int) -> dict[str, float]:
    """Detector and recognizer sessions only, on pre-decoded images and pre-aligned crops."""
    from engine.faces import load_image

    images = [load_image(f) for f in files]
    t0 = time.perf_counter()
    boxes = [pipeline.detect(img) for img in images]
    det_s = time.perf_counter() - t0
    crops = [pipeline.align(img, b) for img, bs in zip(images, boxes, strict=True) for b in bs]
    t0 = time.perf_counter()
    for start in range(0, len(crops), batch):
        pipeline.embed(crops[start:start + batch], batch_size=batch)
    emb_s = time.perf_counter() - t0
    return {"faces": len(crops), "detect_s": det_s, "embed_s": emb_s,
            "faces_per_s": len(crops) / (det_s + emb_s)}


def pipeline_throughput(pipeline: Any, folder: Path, name: str, workers: int, batch: int) -> dict[str, float]:
    from engine.gallery import create_gallery

    g = create_gallery(name)
    t0 = time.perf_counter()
    report = g.add([folder], pipeline=pipeline, workers=workers, batch=batch)
    seconds = time.perf_counter() - t0
    ok = g.verify().ok
    g.close()
    return {"faces": report.faces, "photos": report.added, "seconds": seconds,
            "faces_per_s": report.faces / seconds, "verify_ok": ok}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--photos", type=int, default=200)
    p.add_argument("--json", action="store_true")
    p.add_argument("--batch", type=int, default=32, help="faces per recognizer batch (both sides)")
    p.add_argument("--workers", type=int, default=2, help="ingest decode/detect threads")
    p.add_argument("--device", default="auto")
    p.add_argument("--repeats", type=int, default=2, help="alternating raw/pipeline runs, totalled")
    p.add_argument("--models", type=Path, default=Path(tempfile.gettempdir()) / "sketchface_bench_models")
    args = p.parse_args()

    work = Path(tempfile.mkdtemp(prefix="sketchface_bench_ingest_"))
    os.environ["SKETCHFACE_HOME"] = str(work / "home")
    try:
        from engine.faces import FacePipeline
        from tests.fixtures.photos import small_photo_folder

        det, rec = models(args.models)
        log(f"writing {args.photos} photos")
        files = small_photo_folder(work / "photos", args.photos)
        pipeline = FacePipeline(det, rec, device=args.device)
        pipeline.embed([pipeline.align(*_first_face(pipeline, files[0]))] * 2)  # warm-up
        raws, pipes = [], []
        for i in range(args.repeats):
            log(f"run {i + 1}/{args.repeats}: raw sessions")
            raws.append(raw_throughput(pipeline, files, args.batch))
            log(f"run {i + 1}/{args.repeats}: import pipeline")
            pipes.append(pipeline_throughput(pipeline, work / "photos", f"bench{i}", args.workers, args.batch))

        # Totals over all runs (sum of faces / sum of seconds on each side): with alternating runs, load
        # from other processes hits both sides alike; a single pair can be off by +-20 % on a busy machine.
        raw = sum(r["faces"] for r in raws) / sum(r["detect_s"] + r["embed_s"] for r in raws)
        pipe = sum(q["faces"] for q in pipes) / sum(q["seconds"] for q in pipes)
        out = {
            "photos": args.photos, "faces": pipes[0]["faces"],
            "pipeline_faces_per_s": round(pipe, 2), "raw_model_faces_per_s": round(raw, 2),
            "ratio": round(pipe / raw, 3),
            "ratio_per_run": [round(q["faces_per_s"] / r["faces_per_s"], 3) for r, q in zip(raws, pipes, strict=True)],
            "runs": [{"raw_faces_per_s": round(r["faces_per_s"], 2), "raw_detect_s": round(r["detect_s"], 2),
                      "raw_embed_s": round(r["embed_s"], 2), "pipeline_faces_per_s": round(q["faces_per_s"], 2),
                      "pipeline_s": round(q["seconds"], 2), "verify_ok": q["verify_ok"]}
                     for r, q in zip(raws, pipes, strict=True)],
            "batch": args.batch, "workers": args.workers, "providers_requested": pipeline.providers,
            **used_providers(pipeline, args.device),
            "recognizer": "IResNet-50 layout, random weights (tests.fixtures.tiny_models --realistic)",
            "detector": "tiny SCRFD-signature (tests.fixtures.tiny_models)",
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"pipeline {out['pipeline_faces_per_s']} faces/s, raw {out['raw_model_faces_per_s']} faces/s, "
              f"ratio {out['ratio']}")


def used_providers(pipeline: Any, device: str) -> dict[str, Any]:
    """The providers the detector and recognizer sessions really run on (not those they asked for)."""
    from engine import runtime

    status = runtime.onnx_status(device)
    out: dict[str, Any] = {"onnx_device": status.label, "onnx_reason": status.reason}
    for name in ("det", "rec"):
        session = getattr(getattr(pipeline, name, None), "session", None)
        if session is not None:
            out[f"{name}_session_providers"] = runtime.session_providers(session)
    rec = out.get("rec_session_providers", [])
    out["provider"] = rec[0] if rec else status.providers[0]
    if status.on_gpu and out["provider"] != runtime.CUDA_EP:
        log("WARNING: the CUDA provider loaded in the probe but the recognizer session runs on the CPU")
    log(f"face models run on {out['provider']} ({status.label}{': ' + status.reason if status.reason else ''})")
    return out


def _first_face(pipeline: Any, path: Path) -> tuple[Any, Any]:
    from engine.faces import load_image

    img = load_image(path)
    return img, pipeline.detect(img)[0]


if __name__ == "__main__":
    main()
