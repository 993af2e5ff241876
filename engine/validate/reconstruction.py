"""Reconstruction identity check over a set of sketches: how much identity does a generated face keep?

For each sketch in a folder: its embedding (trained encoder or labelled baseline), N reconstructions
from that embedding (the engine's generation API), and the ArcFace cosine of each generated face to
(a) the sketch's embedding it was generated from and (b) the true person's photo where one is given
(``photos/<sketch stem>.<ext>`` beside the sketches, or a ``--photos`` folder). The photo side is the
honest measure: a generator can reproduce its input embedding and still not look like the person.
The sketch-to-photo cosine is reported beside it as the reference the reconstruction starts from.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import BadImage
from engine.faces.decode import load_image
from engine.generate import ReconstructionRequest, Reconstructor, RuntimeOptions
from engine.generate.identity import FaceTools, cosine
from engine.progress import CancelToken, ProgressCallback, ProgressEvent, check
from engine.sketch import load_sketch_embedder
from engine.validate.cases import ValidationError, image_files
from engine.validate.plots import distribution_png

PROMPT = "RAW photo, frontal portrait of a person, neutral expression, plain background, natural light"


def _summary(xs: list[float]) -> dict[str, float | int | None]:
    if not xs:
        return {"n": 0, "mean": None, "median": None, "p05": None, "p95": None}
    a = np.asarray(xs)
    return {"n": len(xs), "mean": float(a.mean()), "median": float(np.median(a)),
            "p05": float(np.percentile(a, 5)), "p95": float(np.percentile(a, 95))}


def identity_check(sketch_dir: Path | str, *, photos_dir: Path | str | None = None, reconstructor: Any = None,
                   embedder: Any = None, identity: Callable[[np.ndarray], np.ndarray | None] | None = None,
                   candidates: int = 4, steps: int = 30, size: int = 512, seed: int = 0, prompt: str = PROMPT,
                   device: str = "auto", progress: ProgressCallback | None = None,
                   cancel: CancelToken | None = None) -> dict[str, Any]:
    """Reconstruct every sketch of ``sketch_dir`` and measure identity (see the module docstring).

    Args:
        reconstructor: an :class:`engine.generate.Reconstructor` (default: one on the installed models).
        embedder: the sketch embedder (default: the trained encoder, else the labelled baseline).
        identity: ``BGR -> unit ArcFace embedding | None`` for true photos (default: the installed ArcFace).
    """
    root = Path(sketch_dir)
    if not root.is_dir():
        raise ValidationError(f"No sketch folder at {root}.")
    sketches = image_files(root / "sketches" if (root / "sketches").is_dir() else root)
    if not sketches:
        raise ValidationError(f"No sketch images in {root}.")
    pdir = Path(photos_dir) if photos_dir else root / "photos"
    photos = image_files(pdir) if pdir.is_dir() else {}
    if embedder is None:
        embedder = load_sketch_embedder(device)
    if identity is None:
        identity = FaceTools(device).embed
    if reconstructor is None:
        reconstructor = Reconstructor(runtime=RuntimeOptions(), identity=identity)

    rows: list[dict[str, Any]] = []
    to_sketch: list[float] = []
    to_photo: list[float] = []
    sketch_photo: list[float] = []
    total = len(sketches) * candidates * steps
    for i, (name, path) in enumerate(sketches.items()):
        check(cancel)
        try:
            vec = np.asarray(embedder.embed(load_image(path.read_bytes())), np.float32).reshape(-1)
        except (BadImage, OSError) as exc:
            rows.append({"sketch": name, "error": f"unreadable: {exc}"})
            continue
        photo_emb = None
        if name in photos:
            photo_emb = identity(load_image(photos[name].read_bytes()))
        base = i * candidates * steps

        def forward(e: ProgressEvent, base: int = base, name: str = name) -> None:
            if progress is not None:
                progress(ProgressEvent(base + e.done * steps * candidates // max(e.total, 1), total, f"{name}: {e.message}"))

        request = ReconstructionRequest(embedding=vec, prompt=prompt, num_candidates=candidates, seed=seed,
                                        steps=steps, width=size, height=size, mark=False,
                                        sources={"validation_sketch": name})
        result = reconstructor.reconstruct(request, progress=forward, cancel=cancel)
        row: dict[str, Any] = {"sketch": name, "baseline": bool(getattr(embedder, "is_baseline", False)),
                               "photo": photos[name].name if name in photos else None, "candidates": []}
        if photo_emb is not None:
            row["sketch_to_photo"] = cosine(vec, photo_emb)
            sketch_photo.append(row["sketch_to_photo"])
        for c in result.candidates:
            item: dict[str, Any] = {"seed": c.seed, "to_sketch_embedding": c.identity_score, "to_photo": None}
            if c.identity_score is not None:
                to_sketch.append(float(c.identity_score))
            if c.embedding is not None and photo_emb is not None:
                item["to_photo"] = cosine(c.embedding, photo_emb)
                to_photo.append(item["to_photo"])
            row["candidates"].append(item)
        rows.append(row)
    faceless = sum(1 for r in rows for c in r.get("candidates", []) if c["to_sketch_embedding"] is None)
    return {"sketches": len(sketches), "with_photo": sum(1 for r in rows if r.get("photo")),
            "candidates_per_sketch": candidates, "steps": steps, "size": size, "seed": seed, "prompt": prompt,
            "no_face_in_generated": faceless,
            "summary": {"generated_to_sketch_embedding": _summary(to_sketch),
                        "generated_to_true_photo": _summary(to_photo),
                        "sketch_embedding_to_true_photo": _summary(sketch_photo)},
            "rows": rows}


def identity_png(result: dict[str, Any]) -> bytes:
    """The distributions of the identity check as a PNG."""

    values = {"generated face → sketch embedding": [], "generated face → true photo": [],
              "sketch embedding → true photo": []}  # type: dict[str, list[float]]
    for r in result["rows"]:
        for c in r.get("candidates", []):
            if c["to_sketch_embedding"] is not None:
                values["generated face → sketch embedding"].append(c["to_sketch_embedding"])
            if c["to_photo"] is not None:
                values["generated face → true photo"].append(c["to_photo"])
        if r.get("sketch_to_photo") is not None:
            values["sketch embedding → true photo"].append(r["sketch_to_photo"])
    return distribution_png(values, f"Reconstruction identity over {result['sketches']} sketches "
                                    f"({result['candidates_per_sketch']} candidates each)", "ArcFace cosine")
