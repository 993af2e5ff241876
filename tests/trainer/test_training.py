"""End-to-end training on synthetic faces: it learns, it resumes exactly, and the app uses what it exports."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from engine.faces import FacePipeline, load_image
from tests.trainer import synthetic
from tests.trainer.conftest import tiny_model_cfg, tiny_overrides
from trainer.config import load_config
from trainer.loop import Trainer, losses_of

# Learnability threshold. The validation gallery holds the n_val held-out identities (33 with this
# seed), so chance Recall@1 is 1/n_val (~0.03). Under chance, reaching 0.20 (>= 7 of 33 hits) has
# binomial probability below 1e-4, so passing means the encoder learned a sketch -> ArcFace mapping
# that generalises to unseen people. Here the run reaches 0.42 after 300 CPU steps (~45 s).
MIN_VAL_RECALL1 = 0.20


def _events(trainer: Trainer, kind: str) -> list[dict[str, Any]]:
    return [e for e in trainer.reporter.history if e["event"] == kind]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_models_dir: Path) -> dict[str, Any]:
    """One ~1-minute CPU training run shared by the learnability and the end-to-end tests."""
    torch.set_num_threads(1)
    base = tmp_path_factory.mktemp("learn")
    root = base / "ds"
    synthetic.write_dataset(root, 240, seed=1, unpaired=2)
    # The recipe's mechanics on a 2-block tower trained from scratch (the product defaults, from a
    # pretrained tower, are test_learnability's); loss values as before the reference defaults.
    cfg = load_config(None, [*tiny_overrides(root, tiny_models_dir, base / "run"), "optim.epochs=50",
                             "eval.eval_every_epochs=25", "eval.eval_at_start=true", "run.log_every=50",
                             "loss.scale_s=32", "loss.lambda_consistency=1.0", "loss.lambda_coral=1.0",
                             "loss.sampled_softmax_classes=64", "loss.arcface_both_views=false",
                             "loss.ema_warmup=false", "eval.model='ema'", "run.weights='ema'"])
    cfg.model.model_cfg = tiny_model_cfg()
    stream = io.StringIO()
    trainer = Trainer(cfg, stream=stream)
    summary = trainer.fit()
    return {"trainer": trainer, "summary": summary, "root": root, "run": base / "run", "stdout": stream.getvalue()}


@pytest.mark.slow
def test_training_lifts_val_recall_from_chance(trained: dict[str, Any]) -> None:
    trainer: Trainer = trained["trainer"]
    evals = _events(trainer, "eval")
    first, last = evals[0], evals[-1]
    assert first["step"] == 0 and last["step"] == trainer.step >= 250
    chance = last["chance@1_val"]
    assert first["recall@1_val"] <= 4 * chance          # an untrained encoder is at chance...
    assert last["recall@1_val"] >= MIN_VAL_RECALL1, last  # ...training lifts it well above
    assert last["recall@10_full"] >= 0.2  # also against all 240 identities (chance 10/240 = 0.04)
    cmc = last["cmc_full"]
    assert cmc == sorted(cmc) and len(cmc) == 50 and cmc[-1] > cmc[0]
    # Not mean_cos_true: it also rises with prototypes shuffled between identities (test_learnability).
    assert last["cos_true_minus_impostor"] > first["cos_true_minus_impostor"] + 0.1
    assert {"tpr@fpr=0.01", "tpr@fpr=0.001", "recall@5_full"} <= set(last)
    steps = _events(trainer, "step")
    assert steps[-1]["loss"] < steps[0]["loss"]
    assert steps[-1]["m"] == pytest.approx(0.1) and steps[-1]["lr_backbone"] > 0


@pytest.mark.slow
def test_run_reports_json_lines_and_writes_checkpoints(trained: dict[str, Any]) -> None:
    lines = [json.loads(line) for line in trained["stdout"].splitlines()]
    kinds = [e["event"] for e in lines]
    assert kinds[0] == "data" and kinds[-1] == "done"
    assert {"split", "prototypes", "start", "unfreeze", "step", "eval", "checkpoint", "epoch"} <= set(kinds)
    data = lines[0]
    assert data["pairs"] == 240 and data["unpaired_real"] == 2
    protos = next(e for e in lines if e["event"] == "prototypes")
    assert protos["computed"] == 240 and protos["fallback_centre_crop"] == 0
    run: Path = trained["run"]
    assert (run / "last.pt").is_file() and (run / "best.pt").is_file() and (run / "events.jsonl").is_file()
    from trainer.state import load_state

    state = load_state(run / "best.pt")
    assert {"model", "ema", "optimizer", "scheduler", "step", "best_metric", "class_ids", "val_ids", "rng",
            "encoder_config"} <= set(state)
    assert len(state["class_ids"]) + len(state["val_ids"]) + len(state["test_ids"]) == 240
    assert state["best_metric"] == trained["summary"]["best_metric"]


@pytest.mark.slow
def test_exported_encoder_installs_and_reproduces_the_trainers_metric_in_the_app(
        trained: dict[str, Any], installed_models: Path) -> None:
    from engine.sketch import TrainedSketchEmbedder, install_checkpoint, load_sketch_embedder

    trainer: Trainer = trained["trainer"]
    report = install_checkpoint(trained["run"])  # the run folder: its export/ is installed
    assert report.arcface_verified and report.onnx is not None and report.onnx["ok"]
    assert report.metrics["recall@1_val"] == trained["summary"]["best_metric"]
    emb = load_sketch_embedder(device="cpu")
    assert isinstance(emb, TrainedSketchEmbedder) and emb.backend == "onnxruntime"
    root: Path = trained["root"]
    assert trainer.s is not None
    val_ids = trainer.s.val_ids
    # The gallery side exactly as the app builds it: photos through the face pipeline.
    pipeline = FacePipeline.from_models(device="cpu")
    gallery = np.stack([pipeline.embed_primary(load_image(root / "real" / f"{i}.jpg")).embedding for i in val_ids])
    queries = np.stack([emb.embed(load_image(root / "sketch" / f"{i}.png")) for i in val_ids])
    # The trainer's view of the same sketches: best.pt's EMA weights on its own validation tensors.
    from engine.sketch.config import EncoderConfig
    from engine.sketch.model import build_encoder
    from trainer.state import load_state

    best = load_state(trained["run"] / "best.pt")
    model = build_encoder(EncoderConfig.from_dict(best["encoder_config"]))
    model.load_state_dict(best["ema"])
    with torch.no_grad():
        trainer_vecs = model.eval()(trainer.s.val_inputs).numpy()
    assert np.max(np.abs(queries - trainer_vecs)) < 1e-4  # same preprocessing, same weights
    recall = float(np.mean((queries @ gallery.T).argmax(axis=1) == np.arange(len(val_ids))))
    assert recall == pytest.approx(best["metrics"]["recall@1_val"])  # the app reproduces the trainer's number
    assert recall >= MIN_VAL_RECALL1


def test_resume_from_last_continues_with_identical_losses(tmp_path: Path, make_config: Any) -> None:
    root = tmp_path / "ds"
    synthetic.write_dataset(root, 40, seed=3)
    common = ("optim.batch_size=8", "optim.accum_steps=2", "optim.epochs=4", "optim.warmup_steps=2",
              "optim.unfreeze_after_steps=2", "optim.unfreeze_last_blocks=1", "loss.sampled_softmax_classes=16",
              "loss.coral_sample=16", "run.log_every=1", "eval.eval_every_epochs=1")
    whole = Trainer(make_config(root, tmp_path / "a", *common), stream=io.StringIO())
    whole.fit()
    first = Trainer(make_config(root, tmp_path / "b", *common, "run.max_steps=3"), stream=io.StringIO())
    first.fit()
    assert first.step == 3 and first.micro_done == 2  # stopped in the middle of epoch 2, after unfreezing
    resumed = Trainer(make_config(root, tmp_path / "b", *common), stream=io.StringIO())
    resumed.fit()
    assert _events(resumed, "resume")[0]["step"] == 3
    full, part = losses_of(whole.reporter.history), losses_of(resumed.reporter.history)
    assert len(full) == 8 and len(part) == 5
    assert np.array_equal(losses_of(first.reporter.history), full[:3])
    assert np.allclose(part, full[3:], rtol=0, atol=1e-6)
    assert _events(resumed, "eval")[-1]["mean_cos_true"] == pytest.approx(
        _events(whole, "eval")[-1]["mean_cos_true"], abs=1e-6)


def test_resume_refuses_a_different_dataset_split(tmp_path: Path, make_config: Any) -> None:
    from engine.errors import ConfigError

    root = tmp_path / "ds"
    synthetic.write_dataset(root, 30, seed=4)
    args = ("optim.batch_size=8", "optim.epochs=1", "run.max_steps=1")
    Trainer(make_config(root, tmp_path / "run", *args), stream=io.StringIO()).fit()
    with pytest.raises(ConfigError, match="other identities"):
        Trainer(make_config(root, tmp_path / "run", *args, "data.split_seed=9"), stream=io.StringIO()).setup()


@pytest.mark.slow
def test_two_process_ddp_run_under_torchrun(tmp_path: Path, tiny_models_dir: Path) -> None:
    """torchrun with 2 CPU processes (Gloo): DistributedSampler shards, rank 0 alone reports and saves."""
    import os
    import subprocess
    import sys

    root = tmp_path / "ds"
    synthetic.write_dataset(root, 40, seed=5)
    model_cfg = ("model.model_cfg={embed_dim=64, vision_cfg={image_size=64, layers=2, width=64, patch_size=16, "
                 "head_width=32}}")
    sets = [*tiny_overrides(root, tiny_models_dir, tmp_path / "run"), model_cfg, "model.head_hidden=64",
            "optim.batch_size=8", "optim.epochs=2", "optim.unfreeze_after_steps=1", "optim.unfreeze_last_blocks=1",
            "loss.sampled_softmax_classes=16", "loss.coral_sample=16", "run.log_every=1", "run.threads=1"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "trainer",
           "train"]
    for item in sets:
        cmd += ["--set", item]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env,
                          cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    start = next(e for e in events if e["event"] == "start")
    assert start["world_size"] == 2 and start["architecture"] == "tiny-vit-test"
    n_train = next(e for e in events if e["event"] == "split")["train_ids"]
    assert start["steps_per_epoch"] == (n_train // 2) // 8  # each rank sees its half of the identities
    assert [e["event"] for e in events].count("done") == 1  # only rank 0 reports
    assert any(e["event"] == "unfreeze" for e in events)
    from trainer.state import load_state

    assert load_state(tmp_path / "run" / "last.pt")["world_size"] == 2
    # Prototypes were sharded over the two ranks and all-gathered: all 40 in the cache, no partial files left.
    protos = next(e for e in events if e["event"] == "prototypes")
    assert protos["computed"] == 40 and protos["computed_by_rank0"] == 20
    assert not list(root.glob("arcface_prototypes.rank*.npz"))
    with np.load(root / "arcface_prototypes.npz") as z:
        assert len(z["ids"]) == 40


def test_a_stop_request_saves_last_and_the_run_resumes_from_it(tmp_path: Path, make_config: Any,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """What the desktop app's Stop button (SIGTERM to the subprocess) does: finish the step, save, exit."""
    root = tmp_path / "ds"
    synthetic.write_dataset(root, 30, seed=6)
    args = ("optim.batch_size=8", "optim.epochs=2", "run.log_every=1", "run.tensorboard=true")
    trainer = Trainer(make_config(root, tmp_path / "run", *args), stream=io.StringIO())
    original = Trainer._optimizer_step

    def step_then_stop(self: Trainer, micro: list[Any]) -> dict[str, float]:
        out = original(self, micro)
        if self.step == 1:  # the signal arrives during the second step
            self.request_stop()
        return out

    monkeypatch.setattr(Trainer, "_optimizer_step", step_then_stop)
    summary = trainer.fit()
    assert summary == {"step": 2, "epoch": 0, "cancelled": True}
    assert _events(trainer, "cancelled")[0]["step"] == 2
    assert not (tmp_path / "run" / "export").exists()
    assert list((tmp_path / "run" / "tb").glob("events.out.tfevents*"))  # TensorBoard scalars were written
    monkeypatch.setattr(Trainer, "_optimizer_step", original)
    resumed = Trainer(make_config(root, tmp_path / "run", *args), stream=io.StringIO())
    done = resumed.fit()
    assert _events(resumed, "resume")[0]["step"] == 2 and done["epoch"] == 2 and done["export"]


@pytest.mark.slow
def test_installed_encoder_drives_sketchface_search_end_to_end(
        trained: dict[str, Any], installed_models: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The trained checkpoint, installed into the app's models, answers `sketchface search --sketch`."""
    import shutil

    from engine.cli import main as cli

    trainer: Trainer = trained["trainer"]
    assert trainer.s is not None
    root: Path = trained["root"]
    val_ids = list(trainer.s.val_ids)
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in val_ids:
        shutil.copy(root / "real" / f"{i}.jpg", photos / f"{i}.jpg")
    assert cli(["sketch", "install", str(trained["run"])]) == 0
    assert cli(["gallery", "create", "solved"]) == 0
    assert cli(["gallery", "add", "solved", str(photos)]) == 0
    capsys.readouterr()
    hits = 0
    for i in val_ids:
        assert cli(["search", "--gallery", "solved", "--sketch", str(root / "sketch" / f"{i}.png"),
                    "--top", "5", "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        manifest = out["manifest"]
        assert manifest["embedder"]["kind"] == "sketch_encoder"   # not the ArcFace baseline
        assert not any(m["baseline"] for m in out["matches"])
        hits += Path(out["matches"][0]["photo_path"]).stem == str(i)
    best_recall = trained["summary"]["best_metric"]
    # Same encoder, same ArcFace, val-only gallery: the CLI's rank-1 rate is the trainer's val Recall@1.
    assert hits / len(val_ids) == pytest.approx(best_recall, abs=1.5 / len(val_ids))
    assert hits / len(val_ids) >= MIN_VAL_RECALL1
