#!/usr/bin/env python
"""Validation benchmark: seconds per validated sketch against the plain search of the same sketches.

    python bench/validate.py --json                      # 100k faces, 200 sketches
    python bench/validate.py --faces 20000 --sketches 50 --json

Both sides run in the same process on the same gallery and the same sketch images, through the
product code:

- **plain search**: ``Searcher.search`` per sketch (sketch decoding + sketch encoder + HNSW top-k with
  exact re-rank and match records), the product defaults (k = settings.search_top_k, ef = settings.hnsw_ef);
- **validation**: ``engine.validate.validate`` over a cases folder holding the same sketches (reading
  the cases, the same decoding and encoder, the exact grouped rank of each true subject over the
  whole gallery, the summary), divided by the number of sketches.

The gallery holds synthetic face-like unit vectors written straight into a gallery store (embedding
100k photos would measure ArcFace, not validation): identity codes in a low-dimensional space mapped
to 512-D plus per-photo variation, ``--photos-per-subject`` photos per subject id. Its HNSW index is
built by the product's ``Gallery.rebuild``. The sketch encoder is the tiny test encoder (tests/fixtures):
its cost per sketch is far below the real ViT-B/16's, so the measured ratio is the pessimistic one;
``ratio`` counts everything a validation does, including reading every stored embedding of the
gallery once (``gallery_read_seconds``, amortised over the sketches; the plain search's one-off index
load is a warm-up outside its timing, so ``ratio_without_gallery_read`` is the like-for-like figure).
``estimated_ratio_with_product_encoder`` adds the encoder time given by ``--encoder-seconds``
(default 0.23 s, REFERENCE.md's CPU figure for ViT-B/16) to both sides and is labelled an estimate.
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

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def log(msg: str) -> None:
    print(f"[validate-bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def face_like(n_subjects: int, per: int, seed: int) -> np.ndarray:
    """Unit vectors near a 48-D identity manifold (as bench/search.py's photo-like data)."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(48, 512)).astype(np.float32)
    b = rng.normal(size=(16, 512)).astype(np.float32)
    ident = rng.normal(size=(n_subjects, 48)).astype(np.float32) @ a
    ident /= np.linalg.norm(ident, axis=1, keepdims=True)
    out = np.repeat(ident, per, axis=0)
    var = rng.normal(size=(len(out), 16)).astype(np.float32) @ b
    var /= np.linalg.norm(var, axis=1, keepdims=True)
    x = 0.8 * out + 0.45 * var + 0.3 * rng.normal(size=out.shape).astype(np.float32) / np.sqrt(512)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def sketch_image(seed: int) -> np.ndarray:
    """A line drawing on white paper (strokes at random places): what the encoder reads."""
    rng = np.random.default_rng(seed)
    page = np.full((320, 256, 3), 255, np.uint8)
    for _ in range(40):
        y, x = int(rng.integers(30, 270)), int(rng.integers(30, 210))
        page[y:y + 2, x:x + int(rng.integers(8, 40))] = 0
        page[y:y + int(rng.integers(8, 40)), x:x + 2] = 0
    return page


def setup_models(home: Path) -> None:
    """Install the tiny detector/recognizer and the tiny sketch encoder (trained against that recognizer)."""
    from engine import paths
    from tests.fixtures import tiny_models, tiny_sketch

    build = home / "built"
    tiny_models.build(build, extras=False)
    tiny_sketch.build(build)
    shutil.copytree(build, paths.models_dir(), dirs_exist_ok=True)


def run(args: argparse.Namespace) -> dict[str, Any]:
    import cv2

    from engine.faces import FacePipeline
    from engine.gallery.modelhash import recognizer_sha256
    from engine.search import Query, Searcher, load_embedder
    from engine.settings import load as load_settings
    from engine.validate import GalleryMatrix, validate
    from tests.engine.test_validate_support import synthetic_gallery

    work = Path(tempfile.mkdtemp(prefix="sf-validate-bench-"))
    os.environ["SKETCHFACE_HOME"] = str(work / "home")
    try:
        setup_models(work)
        pipeline = FacePipeline.from_models("cpu")
        embedder = load_embedder(pipeline, "cpu")
        n_subjects = args.faces // args.photos_per_subject
        log(f"writing {n_subjects * args.photos_per_subject:,} synthetic faces")
        t0 = time.perf_counter()
        vecs = face_like(n_subjects, args.photos_per_subject, args.seed)
        subjects = [f"P{i:07d}" for i in range(n_subjects) for _ in range(args.photos_per_subject)]
        sexes = ("F", "M")
        meta = [{"sex": sexes[(i // args.photos_per_subject) % 2], "birth_year": 1950 + i % 50} for i in range(len(vecs))]
        g = synthetic_gallery("Bench", vecs, subjects, meta, model_sha256=recognizer_sha256(pipeline))
        write_s = time.perf_counter() - t0
        log("building the HNSW index (product rebuild)")
        t0 = time.perf_counter()
        g.rebuild()
        build_s = time.perf_counter() - t0
        cases = work / "cases"
        (cases / "sketches").mkdir(parents=True)
        rng = np.random.default_rng(args.seed + 1)
        truth = rng.integers(0, n_subjects, args.sketches)
        for i in range(args.sketches):
            cv2.imwrite(str(cases / "sketches" / f"case{i:04d}.png"), sketch_image(i))
        (cases / "truth.csv").write_text("case,subject_id\n" + "".join(f"case{i:04d},{subjects[t * args.photos_per_subject]}\n"
                                                                    for i, t in enumerate(truth)))
        settings = load_settings()
        searcher = Searcher(pipeline, embedder, settings)
        sketches = sorted((cases / "sketches").iterdir())
        searcher.search([Query.from_path(sketches[0], "sketch")], [g])  # warm up: index load, sessions
        rounds: dict[str, list[float]] = {"search": [], "validate": [], "gallery_read": []}
        for r in range(args.rounds):  # alternate, so machine noise hits both sides alike
            log(f"round {r + 1}: plain search of {len(sketches)} sketches")
            t0 = time.perf_counter()
            for p in sketches:
                searcher.search([Query.from_path(p, "sketch")], [g])
            rounds["search"].append((time.perf_counter() - t0) / len(sketches))
            log(f"round {r + 1}: validation of the same sketches")
            t0 = time.perf_counter()
            result = validate(cases, g, embedders={"trained": embedder}, group_keys=["sex", "age_band"])
            rounds["validate"].append((time.perf_counter() - t0) / len(sketches))
            t0 = time.perf_counter()
            GalleryMatrix(g)  # the one-off part of a validation: reading the gallery's stored embeddings
            rounds["gallery_read"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        from engine.faces.decode import load_image

        for p in sketches:
            embedder.embed(load_image(p.read_bytes()))
        embed_s = (time.perf_counter() - t0) / len(sketches)
        search_s, validate_s = min(rounds["search"]), min(rounds["validate"])
        read_s = min(rounds["gallery_read"])
        marginal = validate_s - read_s / len(sketches)
        extra = args.encoder_seconds - embed_s
        doc = result.to_dict()
        g.close()
        return {
            "benchmark": "validate", "faces": len(vecs), "subjects": n_subjects, "sketches": len(sketches),
            "k": settings.search_top_k, "ef": settings.hnsw_ef, "rounds": rounds,
            "seconds_per_sketch": {"plain_search": search_s, "validation": validate_s,
                                   "validation_without_gallery_read": marginal, "encoder_only": embed_s},
            "ratio": validate_s / search_s, "goal_ratio": 1.2,
            "gallery_read_seconds": read_s,
            "ratio_without_gallery_read": marginal / search_s,
            "estimated_ratio_with_product_encoder": (validate_s + extra) / (search_s + extra),
            "assumed_product_encoder_seconds": args.encoder_seconds,
            "setup_seconds": {"write_gallery": write_s, "build_index": build_s},
            "validated_cases": doc["cases"]["validated"],
            "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=100_000)
    parser.add_argument("--photos-per-subject", type=int, default=2)
    parser.add_argument("--sketches", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--encoder-seconds", type=float, default=0.23)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        s = result["seconds_per_sketch"]
        print(f"{result['faces']:,} faces, {result['sketches']} sketches: plain search {1000 * s['plain_search']:.1f} ms,"
              f" validation {1000 * s['validation']:.1f} ms per sketch; ratio {result['ratio']:.2f} (goal <= 1.2)")


if __name__ == "__main__":
    main()
