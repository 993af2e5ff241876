"""The desktop's Train action: refuses without the managed pretrained tower, shows the dataset doctor first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.trainer import synthetic
from trainer.config import PRETRAINED_MODEL_ID, load_config


def test_the_train_action_needs_the_managed_pretrained_tower(sketchface_home: Path) -> None:
    from engine import models
    from sketchface_desktop.ops.training import pretrained_problem

    problem = pretrained_problem(load_config())
    assert problem is not None and "not installed" in problem and PRETRAINED_MODEL_ID in problem
    dest = models.model_dir(PRETRAINED_MODEL_ID)
    dest.mkdir(parents=True)
    (dest / models.get_spec(PRETRAINED_MODEL_ID).primary.path).write_bytes(b"weights")
    assert pretrained_problem(load_config()) is None
    assert pretrained_problem(load_config(None, ["model.pretrained='none'"])) is None


def test_the_doctor_report_is_shown_before_training_starts(tmp_path: Path, qtbot: Any,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from PySide6.QtWidgets import QMessageBox

    from sketchface_desktop.ops import training as training_ops
    from sketchface_desktop.views import training_run

    root = tmp_path / "ds"
    synthetic.write_dataset(root, 12, seed=0)
    config = tmp_path / "train.toml"
    config.write_text(f'[data]\nroot = "{root.as_posix()}"\n[model]\npretrained = "none"\n'
                      '[optim]\nbatch_size = 4\n', "utf-8")
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "question", lambda _p, _t, text, *_a: shown.append(text)
                        or QMessageBox.StandardButton.Yes)
    started: list[Any] = []

    class Hub:
        def submit(self, _title: str, fn: Any, **kw: Any) -> Any:
            kw["on_result"](fn(None, None))  # the doctor, run at once
            return "doctor-job"

        def start_process(self, job: Any, on_result: Any = None) -> Any:
            started.append(job)
            return job

    assert training_run.start_training(Hub(), None, str(config)) == "doctor-job"
    assert shown and "pairs                12" in shown[0] and "Start training?" in shown[0]
    assert len(started) == 1 and started[0].argv[-2:] == ["--set", started[0].argv[-1]]
    assert "--config" in started[0].argv
    text, ok = training_ops.doctor_summary({**_report(), "verdict": "unusable"})
    assert not ok and "would stop" in text


def _report() -> dict[str, Any]:
    return {"root": "x", "pairs": 0, "usable_pairs": 0, "skipped_share": 0.0, "max_skipped_fraction": 0.2,
            "unpaired": 0, "unpaired_real": [], "unpaired_sketch": [], "duplicate_stems": 0, "unreadable": 0,
            "unreadable_files": [], "no_face": 0, "no_face_ids": [], "tiny": 0, "min_side": 64,
            "near_duplicates": 0, "near_duplicate_pairs": [], "train_ids": 0, "val_ids": 0, "steps_per_epoch": 1,
            "epochs": 30, "steps_total": 30, "warmup_steps": 50, "unfreeze_step": 2, "margin_ramp_steps": 100,
            "warnings": []}
