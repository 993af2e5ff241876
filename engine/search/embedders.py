"""How a sketch becomes a point in ArcFace space: the ``SketchEmbedder`` interface and its ArcFace baseline.

The trained sketch encoder (``engine.sketch``) maps drawings into the ArcFace space the galleries were
embedded in. Until one is installed, sketches go through ArcFace itself (landmark alignment when the
detector finds the face, else a centred crop). That baseline is weak on drawings, so every match it
produces is flagged ``baseline=True`` and front-ends say so: an examiner must never mistake it for the
trained encoder.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from engine import models
from engine.gallery.modelhash import recognizer_sha256

if TYPE_CHECKING:
    from engine.faces import FacePipeline

log = logging.getLogger(__name__)


@runtime_checkable
class SketchEmbedder(Protocol):
    """Anything that embeds a sketch (BGR uint8) into the unit 512-D ArcFace space.

    ``engine.sketch`` defines the same protocol for its trained encoder; this copy keeps search
    usable (with the baseline below) where that package is absent.

    Attributes:
        is_baseline: True for ArcFace-on-sketch (no trained encoder).
        model_sha256: digest of the embedder's own weights (the ArcFace file for the baseline).
        arcface_sha256: digest of the ArcFace file whose space it targets; must match the galleries'.
    """

    is_baseline: bool
    model_sha256: str | None
    arcface_sha256: str | None

    def embed(self, image_bgr: np.ndarray, face_box: Sequence[float] | None = None) -> np.ndarray: ...


class ArcFaceBaselineEmbedder:
    """ArcFace applied to the sketch itself: the labelled fallback when ``engine.sketch`` is unavailable."""

    is_baseline = True
    backend = "arcface-baseline"

    def __init__(self, pipeline: FacePipeline) -> None:
        self.pipeline = pipeline
        self.arcface_sha256: str | None = recognizer_sha256(pipeline)
        self.model_sha256: str | None = self.arcface_sha256
        self.last_aligned_by_landmarks: bool | None = None

    def embed(self, image_bgr: np.ndarray, face_box: Sequence[float] | None = None) -> np.ndarray:
        """Unit embedding of the sketch (or of the ``face_box`` region, x1 y1 x2 y2, when given)."""
        if face_box is not None:
            x1, y1, x2, y2 = (int(round(v)) for v in face_box)
            h, w = image_bgr.shape[:2]
            region = image_bgr[max(0, y1):min(h, y2), max(0, x1):min(w, x2)]
            image_bgr = region if region.size else image_bgr
        vec, aligned = self.pipeline.embed_unaligned(image_bgr)
        self.last_aligned_by_landmarks = aligned
        return vec


def load_embedder(pipeline: FacePipeline, device: str = "auto") -> SketchEmbedder:
    """The sketch embedder to use with ``pipeline``'s ArcFace space.

    With ``engine.sketch`` present: its trained encoder when installed (refused with ``ModelInvalid``
    when trained for another ArcFace file), else its ArcFace baseline (its sketch preprocessing) run on
    the already loaded ``pipeline`` rather than a second copy of the models. Without it: the baseline here.
    """
    try:
        from engine.sketch import MODEL_ID, load_sketch_embedder
        from engine.sketch import ArcFaceBaselineEmbedder as SketchBaseline
    except ImportError:
        return ArcFaceBaselineEmbedder(pipeline)
    arcface = recognizer_sha256(pipeline)
    if not models.installed(MODEL_ID):
        log.info("no trained sketch encoder installed: using the ArcFace-on-sketch baseline")
        baseline: SketchEmbedder = SketchBaseline(pipeline, arcface_sha256=arcface)
        return baseline
    embedder: SketchEmbedder = load_sketch_embedder(device, expected_arcface_sha256=arcface,
                                                    against="ArcFace model in use")
    return embedder
