"""Honest evaluation: three disjoint identity splits, the test split scored once for the chosen checkpoint,
beside a linear probe and ArcFace-on-sketch, with Wilson intervals; the probe exports as an encoder."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tests.trainer import synthetic
from tests.trainer.conftest import tiny_model_cfg
from trainer.data import split_by_identity, split_identities
from trainer.evaluate import wilson_interval
from trainer.loop import Trainer
from trainer.probe import fit_ridge


def test_three_splits_are_disjoint_deterministic_stable_and_keep_the_two_way_val() -> None:
    ids = [f"p{i:04d}" for i in range(1000)]
    train, val, test = split_identities(ids, 0.1, 0.1, seed=3)
    assert not (set(train) & set(val)) and not (set(train) & set(test)) and not (set(val) & set(test))
    assert sorted(train + val + test) == ids and 60 < len(val) < 140 and 60 < len(test) < 140
    assert split_identities(ids, 0.1, 0.1, seed=3) == (train, val, test)
    assert val == split_by_identity(ids, 0.1, seed=3)[1]  # the validation identities did not move
    grown = split_identities(ids + [f"q{i}" for i in range(500)], 0.1, 0.1, seed=3)
    assert set(val) <= set(grown[1]) and set(test) <= set(grown[2])  # nobody moves as the dataset grows
    small = split_identities([f"s{i}" for i in range(8)], 0.1, 0.1, seed=0, min_val=2, min_test=2)
    assert [len(x) for x in small] == [4, 2, 2]
    assert split_identities(ids, 0.1, 0.0, seed=3)[2] == []


def test_wilson_interval_matches_the_closed_form() -> None:
    lo, hi = wilson_interval(20, 100)
    assert (round(lo, 3), round(hi, 3)) == (0.133, 0.289)  # the 13-29 % for 20/100
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == pytest.approx(1.0)


def test_ridge_probe_recovers_a_linear_map_and_picks_its_strength_on_val() -> None:
    rng = np.random.default_rng(0)
    w = rng.normal(size=(16, 8))
    x = rng.normal(size=(300, 16))
    y = x @ w
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    probe = fit_ridge(x[:200], y[:200], x[200:], y[200:])
    assert probe.val_recall1[probe.alpha] == max(probe.val_recall1.values()) >= 0.95
    assert float(np.mean(np.sum(probe.embed(x[200:]) * y[200:], axis=1))) > 0.95


def _pretrained_file(path: Path) -> Path:
    """A (random) tiny open_clip checkpoint standing in for pretrained weights: enough to fit a probe."""
    import open_clip
    from safetensors.torch import save_file

    torch.manual_seed(0)
    mc = tiny_model_cfg()
    clip = open_clip.CLIP(embed_dim=mc["embed_dim"], vision_cfg=mc["vision_cfg"],
                          text_cfg={"context_length": 8, "vocab_size": 32, "width": 32, "heads": 2, "layers": 1})
    save_file({k: v.contiguous() for k, v in clip.state_dict().items()}, str(path))
    return path


@pytest.mark.slow
def test_test_split_never_meets_training_and_is_scored_once_for_the_chosen_checkpoint(
        tmp_path: Path, make_config: Any, installed_models: Path) -> None:
    root = tmp_path / "ds"
    synthetic.write_dataset(root, 48, seed=11)
    weights = _pretrained_file(tmp_path / "clip.safetensors")
    run = tmp_path / "run"
    cfg = make_config(root, run, "optim.batch_size=8", "optim.epochs=3", f"model.pretrained='{weights}'",
                      "data.test_fraction=0.2")
    trainer = Trainer(cfg, stream=io.StringIO())
    summary = trainer.fit()
    s = trainer.s
    assert s is not None
    train, val, test = set(s.train_ids), set(s.val_ids), set(s.test_ids)
    assert len(test) >= 2 and not (train & test) and not (val & test) and not (train & val)
    assert set(s.all_ids) == train | val | test
    # Selection used val only: every evaluation scored exactly the validation queries.
    evals = [e for e in trainer.reporter.history if e["event"] == "eval"]
    assert evals and all(e["queries"] == len(val) for e in evals)
    # The test split was scored once, at the end, for best.pt.
    tests = [e for e in trainer.reporter.history if e["event"] == "test"]
    assert len(tests) == 1 and trainer.test_evaluations == 1 and tests[0]["checkpoint"] == "best.pt"
    assert trainer.final_test(run / "best.pt") is trainer.test_report and trainer.test_evaluations == 1
    rep = tests[0]
    for key in ("trained", "linear_probe", "arcface_on_sketch"):
        assert rep[key]["queries"] == len(test)
        lo, hi = rep[key]["recall@1_ci95"]
        assert 0.0 <= lo <= rep[key]["recall@1"] <= hi <= 1.0
        assert {"recall@10", "recall@1_full", "tpr@fpr=0.01_ci95"} <= set(rep[key])
    assert rep["summary"].startswith("trained encoder R@1 ") and " vs linear probe R@1 " in rep["summary"]
    assert isinstance(rep["beats_probe"], bool) and rep["verdict"]
    if not rep["beats_probe"]:
        assert "does NOT beat the linear probe" in rep["verdict"]
    assert json.loads((run / "report.json").read_text("utf-8"))["test"]["summary"] == rep["summary"]
    exported = json.loads((Path(summary["export"]) / "config.json").read_text("utf-8"))
    assert exported["metrics"]["test"]["trained"]["recall@1"] == rep["trained"]["recall@1"]
    assert exported["training"]["test_ids"] == len(test)
    # The probe is a sketch encoder of the same family: it installs and reproduces its own test R@1.
    from engine.sketch.checkpoint import load_encoder

    model, pcfg = load_encoder(rep["probe_export"])
    assert pcfg.head_hidden == 0 and pcfg.weights == "linear_probe"
    assert s.test_inputs is not None
    with torch.no_grad():
        emb = model(s.test_inputs).numpy()
    pos = {i: k for k, i in enumerate(s.all_ids)}
    gallery = s.all_protos[[pos[i] for i in s.test_ids]]
    recall = float(np.mean((emb @ gallery.T).argmax(axis=1) == np.arange(len(test))))
    assert recall == pytest.approx(rep["linear_probe"]["recall@1"])
