"""Bad files, killed runs, longer runs: a corrupt photo is skipped and listed, the prototype cache resumes,
more epochs extend the schedule, and a resume that cannot be exact is refused unless forced."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from engine.errors import ConfigError
from tests.trainer import synthetic
from trainer.__main__ import main
from trainer.config import TeacherConfig
from trainer.data import pair_dataset
from trainer.loop import Trainer
from trainer.schedules import lr_factor
from trainer.teacher import compute_prototypes


def _events(trainer: Trainer, kind: str) -> list[dict[str, Any]]:
    return [e for e in trainer.reporter.history if e["event"] == kind]


def _break(root: Path) -> None:
    (root / "real" / "id_0003.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")  # a corrupt photo
    (root / "sketch" / "id_0005.png").write_bytes(b"")                                  # an empty sketch
    Image.fromarray(np.full((160, 160, 3), 200, np.uint8)).save(root / "real" / "id_0007.jpg")  # no face


def test_unusable_pairs_are_skipped_and_listed_and_too_many_stop_the_run(tmp_path: Path, make_config: Any) -> None:
    root = tmp_path / "ds"
    synthetic.write_dataset(root, 24, seed=2)
    _break(root)
    trainer = Trainer(make_config(root, tmp_path / "run", "optim.batch_size=8", "optim.epochs=1"),
                      stream=io.StringIO())
    trainer.fit()
    skipped = _events(trainer, "skipped")[0]
    assert skipped["count"] == 3 and {p["id"]: p["reason"] for p in skipped["pairs"]} == {
        "id_0003": "unreadable photo", "id_0005": "unreadable sketch", "id_0007": "no face in photo"}
    assert trainer.s is not None and len(trainer.s.all_ids) == 21 and "id_0003" not in trainer.s.all_ids
    with pytest.raises(Exception, match="more than data.max_skipped_fraction"):
        Trainer(make_config(root, tmp_path / "run2", "optim.batch_size=8", "data.max_skipped_fraction=0.1"),
                stream=io.StringIO()).setup()


def test_the_prototype_cache_is_written_as_it_goes_and_a_killed_run_resumes(tmp_path: Path,
                                                                            tiny_models_dir: Path) -> None:
    root = tmp_path / "ds"
    synthetic.write_dataset(root, 20, seed=3)
    cfg = TeacherConfig(arcface_onnx=str(tiny_models_dir / "buffalo_l.w600k_r50" / "w600k_r50.onnx"),
                        detector_onnx=str(tiny_models_dir / "buffalo_l.det_10g" / "det_10g.onnx"), device="cpu")
    pairs = pair_dataset(root).pairs
    cache = root / "arcface_prototypes.npz"

    class Killed(Exception):
        pass

    def kill_after_two_chunks(done: int, _total: int) -> None:
        if done >= 8:
            raise Killed

    with pytest.raises(Killed):
        compute_prototypes(pairs, cfg, cache, on_progress=kill_after_two_chunks, batch=4, save_every_s=0)
    with np.load(cache) as z:
        assert len(z["ids"]) == 4  # the first chunk was saved before the kill (the second is saved next time)
    resumed = compute_prototypes(pairs, cfg, cache, batch=4, save_every_s=0)
    assert (resumed.computed, resumed.reused) == (16, 4)
    fresh = compute_prototypes(pairs, cfg, tmp_path / "fresh.npz")
    assert np.allclose(resumed.vectors, fresh.vectors, atol=1e-6)


def test_more_epochs_extend_the_schedule_and_the_lr_leaves_its_floor(tmp_path: Path, make_config: Any) -> None:
    root = tmp_path / "ds"
    synthetic.write_dataset(root, 30, seed=4)
    args = ("optim.batch_size=8", "optim.warmup_steps=2", "optim.cosine_final_lr_mul=0.05", "run.log_every=1")
    short = Trainer(make_config(root, tmp_path / "run", *args, "optim.epochs=2"), stream=io.StringIO())
    short.fit()
    assert short.s is not None
    spe = short.s.plan.steps_per_epoch
    assert _events(short, "step")[-1]["lr_head"] == pytest.approx(1e-3 * lr_factor(2 * spe - 1, 2, 2 * spe, 0.05))
    longer = Trainer(make_config(root, tmp_path / "run", *args, "optim.epochs=6"), stream=io.StringIO())
    longer.fit()
    resume = _events(longer, "resume")[0]
    assert (resume["previous_total_steps"], resume["total_steps"]) == (2 * spe, 6 * spe)
    first = _events(longer, "step")[0]
    assert first["step"] == 2 * spe + 1
    assert first["lr_head"] == pytest.approx(1e-3 * lr_factor(2 * spe, 2, 6 * spe, 0.05))
    assert first["lr_head"] > 0.5 * 1e-3  # a third of the way into the longer cosine, far above the 5e-5 floor
    assert longer.step == 6 * spe


def test_a_resume_that_cannot_be_exact_is_refused_or_forced_and_logged(tmp_path: Path, make_config: Any) -> None:
    root = tmp_path / "ds"
    synthetic.write_dataset(root, 30, seed=5)
    Trainer(make_config(root, tmp_path / "run", "optim.batch_size=8", "optim.epochs=2", "run.max_steps=2"),
            stream=io.StringIO()).fit()
    with pytest.raises(ConfigError, match=r"optim.batch_size changed \(8 -> 6\)"):
        Trainer(make_config(root, tmp_path / "run", "optim.batch_size=6", "optim.epochs=2"),
                stream=io.StringIO()).setup()
    forced = Trainer(make_config(root, tmp_path / "run", "optim.batch_size=6", "optim.epochs=2",
                                 "run.force_resume=true"), stream=io.StringIO())
    forced.fit()
    note = [e for e in _events(forced, "warning") if e.get("resume_forced")][0]
    assert "batch_size changed" in note["message"] and _events(forced, "resume")[0]["step"] == 2


def test_check_reports_the_dataset_and_its_schedule(tmp_path: Path, tiny_models_dir: Path) -> None:
    root = tmp_path / "ds"
    synthetic.write_dataset(root, 40, seed=6, unpaired=2)
    _break(root)
    (root / "sketch" / "id_0009.jpg").write_bytes((root / "sketch" / "id_0009.png").read_bytes())  # duplicate stem
    Image.open(root / "real" / "id_0001.jpg").save(root / "real" / "id_0002.jpg", quality=80)  # same photo twice
    Image.open(root / "real" / "id_0011.jpg").resize((40, 40)).save(root / "real" / "id_0011.jpg")  # a thumbnail
    teacher = [f"teacher.detector_onnx='{tiny_models_dir / 'buffalo_l.det_10g' / 'det_10g.onnx'}'",
               f"teacher.arcface_onnx='{tiny_models_dir / 'buffalo_l.w600k_r50' / 'w600k_r50.onnx'}'",
               "teacher.device='cpu'", "optim.batch_size=8"]
    buf = io.StringIO()
    with redirect_stdout(buf):
        code = main(["check", str(root), "--json", *[a for s in teacher for a in ("--set", s)]])
    report = json.loads(buf.getvalue())
    assert code == 0
    assert (report["pairs"], report["unpaired"], report["unreadable"], report["no_face"]) == (40, 2, 2, 1)
    assert report["no_face_ids"] == ["id_0007"] and report["tiny_files"][0]["id"] == "id_0011"
    assert report["duplicate_stems"] == 1 and report["near_duplicates"] >= 1
    assert {"a": "id_0001", "b": "id_0002"} in [{"a": d["a"], "b": d["b"]} for d in report["near_duplicate_pairs"]]
    assert report["train_ids"] + report["val_ids"] + report["test_ids"] == 40 - 3 and report["usable_pairs"] == 37
    assert report["steps_total"] == report["steps_per_epoch"] * 30 and report["unfreeze_step"] == 2 * (
        report["steps_per_epoch"])
    with redirect_stdout(io.StringIO()) as text:
        assert main(["check", str(root), "--no-faces", "--set", "optim.batch_size=8"]) == 0
    assert "unreadable images    2" in text.getvalue() and "photos without face  not checked" in text.getvalue()
