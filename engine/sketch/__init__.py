"""Sketch encoder: preprocessing shared with the trainer, model definition, checkpoints, embedders.

Importing this package is cheap (numpy and OpenCV only). The torch-backed parts (``SketchEncoder``,
``build_encoder``, ``load_encoder``, ``export_onnx``, the torch transforms) load on first attribute
access, so the desktop app starts without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from engine.sketch.config import (
    CLIP_MEAN,
    CLIP_STD,
    EMBED_DIM,
    EncoderConfig,
    PreprocessConfig,
    check_arcface_compatible,
)
from engine.sketch.embedder import (
    MODEL_ID,
    ArcFaceBaselineEmbedder,
    SketchEmbedder,
    TrainedSketchEmbedder,
    installed_arcface_sha256,
    load_sketch_embedder,
)
from engine.sketch.preprocess import ink_box, normalize, prepare_gray, preprocess

_LAZY = {
    "SketchEncoder": "engine.sketch.model",
    "build_encoder": "engine.sketch.model",
    "resolve_model_cfg": "engine.sketch.model",
    "load_pretrained_visual": "engine.sketch.model",
    "load_encoder": "engine.sketch.checkpoint",
    "save_encoder": "engine.sketch.checkpoint",
    "export_train_state": "engine.sketch.checkpoint",
    "export_onnx": "engine.sketch.onnx_export",
    "ParityReport": "engine.sketch.onnx_export",
    "install_checkpoint": "engine.sketch.install",
    "export_installed_onnx": "engine.sketch.install",
    "AugmentConfig": "engine.sketch.transforms",
    "SketchAugment": "engine.sketch.transforms",
    "eval_tensor": "engine.sketch.transforms",
    "normalize_tensor": "engine.sketch.transforms",
}

__all__ = [
    "CLIP_MEAN", "CLIP_STD", "EMBED_DIM", "MODEL_ID", "ArcFaceBaselineEmbedder", "EncoderConfig",
    "PreprocessConfig", "SketchEmbedder", "TrainedSketchEmbedder", "check_arcface_compatible",
    "ink_box", "installed_arcface_sha256", "load_sketch_embedder", "normalize", "prepare_gray",
    "preprocess", *sorted(_LAZY),
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'engine.sketch' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
