"""Validation on solved cases: every sketch searched against a gallery, where did the true person land?

``validate(cases_dir, gallery)`` reads the cases (see :mod:`engine.validate.cases`), embeds each sketch
with the trained encoder and/or the ArcFace baseline exactly as a search does (same image decoding,
same embedder), ranks the true subject exactly among every subject of the gallery
(:mod:`engine.validate.ranking`) and summarises: CMC, hit rates with 95 % intervals, per-group
breakdowns, score distributions. :func:`validate_vectors` is the same from ready query vectors.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

import engine
from engine import models
from engine.arcface import recognizer_sha256, require_same_arcface
from engine.errors import BadImage, ModelMissing
from engine.faces import FacePipeline
from engine.faces.decode import load_image
from engine.gallery import Gallery, open_gallery
from engine.progress import CancelToken, ProgressCallback, Reporter, check
from engine.sketch import MODEL_ID, ArcFaceBaselineEmbedder, load_sketch_embedder
from engine.timestamps import utc_now_iso
from engine.validate import stats
from engine.validate.cases import ResolvedCase, SolvedCase, ValidationError, read_cases, resolve
from engine.validate.ranking import HIST_BINS, GalleryMatrix, rank_queries

log = logging.getLogger(__name__)

SCHEMA = "sketchface.validation/1"
ENCODERS = ("trained", "baseline", "both")
DEFAULT_GROUP_KEYS = ("sex", "age_band")


@dataclass
class EncoderOutcome:
    """One encoder's results over the validated cases (arrays in case order)."""

    name: str
    embedder: dict[str, Any]
    ranks: np.ndarray
    true_scores: np.ndarray
    best_other: np.ndarray
    other_hist: np.ndarray


@dataclass
class ValidationRun:
    """A finished validation: the gallery, the cases, each encoder's outcome, and notes."""

    gallery: dict[str, Any]
    cases: list[ResolvedCase]
    unresolved: list[dict[str, str]]
    group_keys: list[str]
    group_values: dict[str, list[str]]
    encoders: dict[str, EncoderOutcome]
    created_at: str
    found: int
    notes: list[str] = field(default_factory=list)

    @property
    def ranks_reported(self) -> list[int]:
        """The report ranks a grouped search can reach in this gallery (1/10/50/100/200, up to its size)."""
        return [r for r in stats.REPORT_RANKS if r <= max(1, self.gallery["subjects"])]

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of the run (``--json`` and ``validation.json``)."""
        return {
            "schema": SCHEMA, "created_at": self.created_at, "engine_version": engine.__version__,
            "gallery": self.gallery,
            "cases": {"found": self.found, "validated": len(self.cases), "unresolved": self.unresolved},
            "ranks": self.ranks_reported, "group_keys": self.group_keys,
            "encoders": {name: self._encoder_dict(o) for name, o in self.encoders.items()},
            "notes": self.notes,
        }

    def _encoder_dict(self, o: EncoderOutcome) -> dict[str, Any]:
        at = self.ranks_reported
        finite = o.best_other[np.isfinite(o.best_other)]
        return {
            "embedder": o.embedder, "n": len(o.ranks),
            "hit_rates": {str(r): x.to_dict() for r, x in stats.hit_rates(o.ranks, at).items()},
            "cmc": stats.cmc_steps(o.ranks),
            "median_rank": float(np.median(o.ranks)) if len(o.ranks) else None,
            "groups": {k: stats.breakdown(o.ranks, self.group_values[k], at, stats.group_order(k))
                       for k in self.group_keys},
            "scores": {"true": _summary(o.true_scores), "best_other": _summary(finite),
                       "other_hist": {"start": -1.0, "width": 2.0 / HIST_BINS,
                                      "counts": [int(x) for x in o.other_hist]}},
            "cases": [{"case": c.case.name, "truth": c.truth, "subject": display_subject(c.target),
                       "rank": int(o.ranks[i]), "score": round(float(o.true_scores[i]), 6),
                       "best_other": round(float(o.best_other[i]), 6) if np.isfinite(o.best_other[i]) else None}
                      for i, c in enumerate(self.cases)],
        }


def _summary(x: np.ndarray) -> dict[str, float | int | None]:
    if not len(x):
        return {"n": 0, "mean": None, "median": None, "p05": None, "p95": None}
    return {"n": int(len(x)), "mean": float(np.mean(x)), "median": float(np.median(x)),
            "p05": float(np.percentile(x, 5)), "p95": float(np.percentile(x, 95))}


def display_subject(key: str) -> str:
    """A grouping key as people read it: the subject id, or "face N" for a face without one."""
    return key[2:] if key.startswith("s:") else f"face {key[2:]}"


def gallery_summary(g: Gallery, matrix: GalleryMatrix) -> dict[str, Any]:
    return {"id": g.id, "name": g.name, "content_version": g.content_version, "faces": matrix.n_faces,
            "subjects": matrix.n_subjects, "model_sha256": g.model_sha256}


def validate_vectors(matrix: GalleryMatrix, cases: Sequence[ResolvedCase],
                     vectors: Mapping[str, tuple[np.ndarray, dict[str, Any]]],
                     group_keys: Sequence[str] = DEFAULT_GROUP_KEYS, *, unresolved: Sequence[dict[str, str]] = (),
                     found: int | None = None, notes: Sequence[str] = (), progress: ProgressCallback | None = None,
                     cancel: CancelToken | None = None) -> ValidationRun:
    """Rank and summarise ready query vectors: ``vectors[encoder] = (N x 512, embedder description)``."""
    if not cases:
        raise ValidationError("No solved case could be matched to a subject of the gallery.",
                              hint="Check truth.csv's subject ids or the photos/ folder (see 'sketchface "
                                   "validate --help').")
    targets = [c.target for c in cases]
    year = datetime.now(UTC).year
    meta = {t: matrix.metadata_of(t) for t in dict.fromkeys(targets)}
    group_values = {k: [stats.group_value(meta[t], k, year) for t in targets] for k in group_keys}
    outcomes: dict[str, EncoderOutcome] = {}
    reporter = Reporter(progress, len(vectors) * len(cases))
    for name, (vecs, desc) in vectors.items():
        check(cancel)
        if len(vecs) != len(cases):
            raise ValueError(f"{name}: {len(vecs)} vectors for {len(cases)} cases")
        out = rank_queries(matrix, vecs, targets, cancel)
        reporter.step(len(cases), f"ranked {len(cases)} cases ({name})")
        outcomes[name] = EncoderOutcome(name, desc, out.ranks, out.true_scores, out.best_other, out.other_hist)
    return ValidationRun(gallery_summary(matrix.gallery, matrix), list(cases), list(unresolved), list(group_keys),
                         group_values, outcomes, utc_now_iso(),
                         len(cases) + len(unresolved) if found is None else found, list(notes))


def load_embedders(encoder: str, gallery: Gallery, device: str = "auto",
                   pipeline: Any = None) -> tuple[dict[str, Any], list[str]]:
    """The sketch embedders to validate, by name, and notes (e.g. no trained encoder installed)."""

    if encoder not in ENCODERS:
        raise ValidationError(f"Unknown encoder {encoder!r}: use trained, baseline or both.")
    out: dict[str, Any] = {}
    notes: list[str] = []
    expected = gallery.model_sha256
    if encoder in ("trained", "both"):
        if models.installed(MODEL_ID):
            out["trained"] = load_sketch_embedder(device, expected_arcface_sha256=expected,
                                                  against=f"gallery '{gallery.name}'")
        elif encoder == "trained":
            raise ModelMissing("No trained sketch encoder is installed.",
                               hint="Install one (sketchface sketch install) or validate --encoder baseline.")
        else:
            notes.append("No trained sketch encoder is installed: only the ArcFace baseline was validated.")
    if encoder in ("baseline", "both"):
        if pipeline is None:
            pipeline = FacePipeline.from_models(device=device)
        arcface = recognizer_sha256(pipeline)
        require_same_arcface(expected, arcface, what=f"gallery '{gallery.name}'", against="installed ArcFace model")
        out["baseline"] = ArcFaceBaselineEmbedder(pipeline, arcface_sha256=arcface)
    return out, notes


def _embed_all(cases: list[SolvedCase], embedders: Mapping[str, Any], reporter: Reporter,
               cancel: CancelToken | None) -> tuple[list[int], dict[str, list[np.ndarray]], list[dict[str, str]]]:
    """Embed every sketch with every embedder; a sketch that fails with any is left out of all."""
    kept: list[int] = []
    vecs: dict[str, list[np.ndarray]] = {n: [] for n in embedders}
    bad: list[dict[str, str]] = []
    for i, c in enumerate(cases):
        check(cancel)
        try:
            bgr = load_image(c.sketch.read_bytes())
            row = {n: np.asarray(e.embed(bgr), np.float32).reshape(-1) for n, e in embedders.items()}
        except (BadImage, OSError) as exc:
            bad.append({"case": c.name, "reason": f"sketch {c.sketch.name} unreadable: {exc}"})
        else:
            kept.append(i)
            for n, v in row.items():
                vecs[n].append(v / max(float(np.linalg.norm(v)), 1e-12))
        reporter.step(1, f"embedding sketch {i + 1} of {len(cases)}")
    return kept, vecs, bad


def describe(embedder: Any) -> dict[str, Any]:
    """An embedder's provenance (kind, digests) for the validation record and the calibration key."""
    desc = dict(embedder.describe()) if hasattr(embedder, "describe") else {}
    desc.setdefault("baseline", bool(embedder.is_baseline))
    desc.setdefault("model_sha256", embedder.model_sha256)
    desc.setdefault("arcface_sha256", embedder.arcface_sha256)
    return desc


def validate(cases_dir: Path | str, gallery: Gallery | str, *, encoder: str = "both",
             group_keys: Sequence[str] = DEFAULT_GROUP_KEYS, embedders: Mapping[str, Any] | None = None,
             device: str = "auto", pipeline: Any = None, progress: ProgressCallback | None = None,
             cancel: CancelToken | None = None) -> ValidationRun:
    """Validate on the solved cases of ``cases_dir`` against ``gallery`` (see the module docstring).

    Args:
        encoder: "trained", "baseline" or "both" (both: the trained encoder when installed, with a note if not).
        group_keys: metadata keys to break results down by ("age_band" is derived from birth year).
        embedders: name -> embedder, overriding ``encoder`` (tests, a specific checkpoint).
    """
    g = gallery if isinstance(gallery, Gallery) else open_gallery(gallery)
    try:
        solved = read_cases(cases_dir)
        notes: list[str] = []
        if embedders is None:
            embedders, notes = load_embedders(encoder, g, device, pipeline)
        matrix = GalleryMatrix(g, cancel)
        resolved, unresolved = resolve(solved, matrix)
        reporter = Reporter(progress, len(resolved))
        kept, vecs, bad = _embed_all([r.case for r in resolved], embedders, reporter, cancel)
        cases = [resolved[i] for i in kept]
        if not cases:
            raise ValidationError("No solved case could be used.", hint="; ".join(
                f"{u['case']}: {u['reason']}" for u in (unresolved + bad)[:3]))
        ready = {n: (np.stack(v), describe(embedders[n])) for n, v in vecs.items()}
        return validate_vectors(matrix, cases, ready, group_keys, unresolved=unresolved + bad, found=len(solved),
                                notes=notes, progress=progress, cancel=cancel)
    finally:
        if not isinstance(gallery, Gallery):
            g.close()
