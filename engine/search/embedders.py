"""How search gets its sketch embedder: the trained encoder, or ArcFace itself as a labelled baseline.

The embedders themselves (protocol, trained encoder, ArcFace baseline, and :func:`embed_sketch`, the
one crop-and-embed path) live in :mod:`engine.sketch.embedder`; this module only picks one for the
ArcFace space of an already loaded face pipeline. The baseline is weak on drawings, so every match it
produces is flagged ``baseline=True`` and front-ends say so.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from engine import models
from engine.arcface import recognizer_sha256
from engine.sketch.embedder import (
    MODEL_ID,
    ArcFaceBaselineEmbedder,
    SketchEmbedder,
    embed_sketch,
    load_sketch_embedder,
)

if TYPE_CHECKING:
    from engine.faces import FacePipeline

log = logging.getLogger(__name__)

__all__ = ["ArcFaceBaselineEmbedder", "SketchEmbedder", "embed_sketch", "load_embedder"]


def load_embedder(pipeline: FacePipeline, device: str = "auto") -> SketchEmbedder:
    """The sketch embedder to use with ``pipeline``'s ArcFace space.

    The trained encoder when installed (refused with ``ModelInvalid`` when trained for another ArcFace
    file), else the ArcFace baseline run on the already loaded ``pipeline`` rather than a second copy.
    """
    arcface = recognizer_sha256(pipeline)
    if not models.installed(MODEL_ID):
        log.info("no trained sketch encoder installed: using the ArcFace-on-sketch baseline")
        return ArcFaceBaselineEmbedder(pipeline, arcface_sha256=arcface)
    return load_sketch_embedder(device, expected_arcface_sha256=arcface, against="ArcFace model in use")
