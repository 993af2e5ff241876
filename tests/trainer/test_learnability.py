"""The product's default recipe learns on ~600 pairs from a pretrained tower; shuffled prototypes do not.

What runs is ``python -m trainer train``'s defaults (batch 64, 30 epochs, learning rates, loss weights,
augmentations, schedules in epochs, EMA warm-up, student/EMA selection, the managed pretrained model
id as ``model.pretrained``, the installed ArcFace teacher). Reduced, and only these: the model's
width and image size (a 64-wide, 64-px ViT with ViT-B/16's 12 blocks and 16-px patches, pretrained
by :mod:`tests.trainer.pretrain` and installed where the LAION-2B checkpoint would be), the dataset
size (600 procedural pairs), and execution settings that change no number (no data-loader worker
processes, no TensorBoard, CPU). The installed ArcFace is the tiny stand-in given ArcFace's geometry
(:func:`tests.trainer.pretrain.arcface_like_recognizer`): with the plain stand-in's crowded
prototypes (nearest other identity at cosine ~0.9) the margin-0.3 softmax pushes every sketch
orthogonal to all prototypes, a failure of the stand-in, not of the recipe.

The negative control runs the same code on the same sketches with the ArcFace prototypes shuffled
between identities (a permuted prototype cache): nothing about a sketch then predicts its target,
so validation must stay near chance. It guards against metrics that rise for other reasons: the
mean cosine to the true prototype does rise under the control (CORAL and regression pull every
sketch towards the prototypes' mean), so it is not asserted; its excess over the impostors' is.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.trainer import synthetic
from tests.trainer.pretrain import TINY_B16_CFG, arcface_like_recognizer, pretrain_tiny_openclip
from trainer.config import PRETRAINED_MODEL_ID, load_config
from trainer.loop import Trainer

N_PAIRS = 600
# Threshold. With val_fraction 0.1 the validation gallery holds n_val = 56 held-out identities for
# this seed (chance Recall@1 1/56 ~0.018, i.e. one expected hit). 0.15 is >= 9 hits: under chance
# (binomial, ~Poisson(1)) that has probability ~1e-6, even taking the better of student and EMA;
# passing means the encoder maps unseen people's sketches onto their own photos' ArcFace vectors.
# Measured here: 0.25 (14 hits) at the end of the run. Ridge regression on the frozen pretrained
# features reaches ~0.25 too: the recipe gets out of them what is in them. On the 55 test identities
# (scored once, for best.pt) one run measured: trained encoder R@1 0.145 [0.076, 0.262] vs linear probe
# 0.200 [0.116, 0.324] vs ArcFace-on-sketch 0.018 [0.003, 0.096] (95 % Wilson): the recipe beat chance and
# the baseline, not the probe. Recorded, not asserted.
MIN_VAL_RECALL1 = 0.15
# The control's bound: 5 hits of 56; P(>= 6 | chance) ~6e-4 per weights scored.
MAX_CONTROL_RECALL1 = 0.1


@pytest.fixture(scope="module")
def pretrained_and_data(tmp_path_factory: pytest.TempPathFactory, tiny_models_dir: Path) -> dict[str, Path]:
    """The pretrained tiny OpenCLIP checkpoint, the 600-pair dataset and its prototype cache (+ a shuffled copy)."""
    import torch

    torch.set_num_threads(1)
    base = tmp_path_factory.mktemp("learn")
    ckpt = pretrain_tiny_openclip(base / "pretrained" / "open_clip_model.safetensors")
    arcface = arcface_like_recognizer(tiny_models_dir / "buffalo_l.w600k_r50" / "w600k_r50.onnx",
                                      base / "arcface" / "w600k_r50.onnx",
                                      tiny_models_dir / "buffalo_l.det_10g" / "det_10g.onnx")
    root = base / "ds"
    synthetic.write_dataset(root, N_PAIRS, seed=1)
    return {"ckpt": ckpt, "arcface": arcface, "root": root, "base": base}


def _install(data: dict[str, Path]) -> None:
    """Place the pretrained checkpoint and the ArcFace stand-in where `sketchface models import` puts them."""
    from engine import models

    for model_id, src in ((PRETRAINED_MODEL_ID, data["ckpt"]), ("buffalo_l.w600k_r50", data["arcface"])):
        dest = models.model_dir(model_id)
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dest / models.get_spec(model_id).primary.path)


def _run(data: dict[str, Path], out: Path, *extra: str) -> Trainer:
    cfg = load_config(None, [f"data.root='{data['root']}'", f"run.out_dir='{out}'",
                             "data.num_workers=0", "run.tensorboard=false", "run.device='cpu'", *extra])
    cfg.model.model_cfg = TINY_B16_CFG  # width and image size reduced (see the module doc)
    trainer = Trainer(cfg, stream=io.StringIO())
    trainer.fit()
    return trainer


def _events(trainer: Trainer, kind: str) -> list[dict[str, Any]]:
    return [e for e in trainer.reporter.history if e["event"] == kind]


def _shuffled_cache(data: dict[str, Path]) -> Path:
    """The dataset's prototype cache with the vectors permuted between identities (photo digests kept)."""
    src = data["root"] / "arcface_prototypes.npz"
    with np.load(src) as z:
        doc = {k: z[k] for k in z.files}
    perm = np.random.default_rng(0).permutation(len(doc["ids"]))
    doc["vectors"] = doc["vectors"][perm]
    out = data["base"] / "shuffled_prototypes.npz"
    np.savez(out, **doc)
    return out


@pytest.mark.slow
def test_default_recipe_learns_from_a_pretrained_tower_and_shuffled_prototypes_do_not(
        pretrained_and_data: dict[str, Path], installed_models: Path, tmp_path: Path,
        record_property: Any) -> None:
    _install(pretrained_and_data)
    real = _run(pretrained_and_data, tmp_path / "real")
    assert real.s is not None
    plan = real.s.plan
    pre = _events(real, "pretrained")[0]
    assert pre["kind"] == "managed" and pre["model_id"] == PRETRAINED_MODEL_ID and pre["quick_gelu"] is False
    steps = _events(real, "step")
    # The three phases of the recipe all happen: frozen backbone, unfreezing, the full margin.
    assert plan.unfreeze_step is not None
    assert steps[0]["lr_backbone"] == 0.0 and 0 < plan.unfreeze_step < plan.total_steps
    assert _events(real, "unfreeze")[0]["step"] == plan.unfreeze_step
    assert plan.margin_ramp < plan.total_steps and steps[-1]["m"] == pytest.approx(0.3)
    assert steps[-1]["lr_backbone"] > 0 and real.step == plan.total_steps
    last = real.metrics
    chance = last["chance@1_val"]
    assert chance == pytest.approx(1 / 56)
    assert last["recall@1_val"] >= MIN_VAL_RECALL1, last
    assert last["cos_true_minus_impostor"] > 0.03
    assert {"ema", "student"} <= set(last) and last["weights"] in ("ema", "student")
    # The held-out test split, scored once for best.pt, beside the linear probe and ArcFace-on-sketch.
    test = real.test_report
    assert test is not None and test["trained"]["queries"] == len(real.s.test_ids) >= 30
    assert test["trained"]["recall@1_ci95"][0] > test["trained"]["chance@1"], test["summary"]  # beats chance
    assert test["linear_probe"] is not None and test["arcface_on_sketch"] is not None
    # Whether the recipe beats the probe is recorded, not asserted: that is what the run is for.
    record_property("test_summary", test["summary"])
    record_property("beats_probe", test["beats_probe"])
    print(f"\nTEST SPLIT: {test['summary']} | beats probe: {test['beats_probe']} | {test['verdict']}")

    control = _run(pretrained_and_data, tmp_path / "control",
                   f"data.prototype_cache='{_shuffled_cache(pretrained_and_data)}'")
    assert _events(control, "prototypes")[0]["computed"] == 0  # the same photos, only their vectors permuted
    ctrl = control.metrics
    assert ctrl["recall@1_val"] <= MAX_CONTROL_RECALL1, ctrl
    assert ctrl["cos_true_minus_impostor"] < 0.015
    assert ctrl["mean_cos_true"] > 0  # why mean_cos_true is no evidence of learning: it rises here too
