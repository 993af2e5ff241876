"""Trainer test helpers: one CPU thread (the cores are shared), tiny configs on synthetic datasets."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from tests.fixtures.tiny_sketch import TINY_MODEL_CFG


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    # Two shared cores: OpenMP spinning with 2 threads under contention is 10-100x slower than 1 thread.
    torch.set_num_threads(1)


def tiny_overrides(root: Path, models: Path, out: Path) -> list[str]:
    """``--set`` overrides for a small CPU run of the full recipe on a synthetic dataset."""
    return [
        f"data.root='{root}'", "data.val_fraction=0.15", "data.num_workers=0", "data.min_val_ids=2",
        f"teacher.arcface_onnx='{models / 'buffalo_l.w600k_r50' / 'w600k_r50.onnx'}'",
        f"teacher.detector_onnx='{models / 'buffalo_l.det_10g' / 'det_10g.onnx'}'", "teacher.device='cpu'",
        "model.architecture='tiny-vit-test'", "model.head_hidden=256",
        "model.pretrained='none'",  # mechanics tests: no pretrained tower (the learnability test loads one)
        "optim.batch_size=32", "optim.warmup_steps=30", "optim.lr_head=1e-3", "optim.lr_backbone=1e-3",
        "optim.cosine_final_lr_mul=0.3", "optim.unfreeze_after_steps=0", "optim.unfreeze_last_blocks=2",
        "optim.backbone_warmup_steps=30",
        "loss.sampled_softmax_classes=64", "loss.coral_sample=64", "loss.margin_m=0.1", "loss.margin_ramp_steps=30",
        "loss.ema_decay_start=0.9", "loss.ema_decay_end=0.97", "loss.ema_ramp_epochs=20",
        "loss.consistency_decay_steps=300",
        # The sketches are already distorted by the generator; a lighter strong view learns faster on CPU.
        "augment_strong.rotate=5", "augment_strong.scale=0.06", "augment_strong.translate=0.04",
        "augment_strong.shear=0", "augment_strong.perspective_p=0", "augment_strong.erase_p=0",
        "augment_strong.noise_p=0", "augment_strong.invert_p=0", "augment_strong.gamma=0.1",
        "augment_strong.contrast=0.1",
        "eval.val_negatives_per_query=30", f"run.out_dir='{out}'", "run.tensorboard=false", "run.device='cpu'",
    ]


def tiny_model_cfg() -> dict:  # type: ignore[type-arg]
    """The tiny ViT for training tests: 2 blocks, 64 wide, average-pooled, 256-D CLIP embedding."""
    cfg = copy.deepcopy(TINY_MODEL_CFG)
    cfg["embed_dim"] = 256
    cfg["vision_cfg"]["pool_type"] = "avg"
    return cfg


@pytest.fixture
def make_config(tiny_models_dir: Path) -> Callable[..., object]:
    """Build a TrainConfig for a dataset root and run folder, plus extra overrides."""
    from trainer.config import load_config

    def make(root: Path, out: Path, *extra: str) -> object:
        cfg = load_config(None, [*tiny_overrides(root, tiny_models_dir, out), *extra])
        cfg.model.model_cfg = tiny_model_cfg()
        return cfg

    return make


def toml_inline(value: object) -> str:
    """A value as a TOML inline value (for ``--set key=value`` on the real command line)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={toml_inline(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_inline(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value + "'"
    return repr(value)


def tiny_cli_args(root: Path, models: Path, out: Path, *extra: str) -> list[str]:
    """``--set`` arguments of ``python -m trainer train`` for the tiny recipe (the tiny tower included)."""
    args: list[str] = []
    for item in (*tiny_overrides(root, models, out), f"model.model_cfg={toml_inline(tiny_model_cfg())}", *extra):
        args += ["--set", item]
    return args
