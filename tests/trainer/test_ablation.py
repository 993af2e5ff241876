"""Ablation through ``python -m trainer train --ablate``: the part is really off, and the report has both rows."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.trainer import synthetic
from tests.trainer.conftest import tiny_cli_args
from trainer.__main__ import main as trainer_main
from trainer.ablation import AblationStudy
from trainer.loop import Trainer


def _steps(events: list[dict[str, Any]], recipe: str) -> dict[int, dict[str, Any]]:
    return {e["step"]: e for e in events if e["event"] == "step" and e["recipe"] == recipe}


def test_ablation_runs_switch_their_part_off_and_are_reported_beside_the_full_recipe(
        tmp_path: Path, tiny_models_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, run = tmp_path / "ds", tmp_path / "run"
    synthetic.write_dataset(root, 28, seed=21)
    args = tiny_cli_args(root, tiny_models_dir, run, "data.test_fraction=0.2", "optim.batch_size=8",
                         "optim.epochs=2", "run.log_every=1", "loss.lambda_coral=0.05")
    capsys.readouterr()
    assert trainer_main(["train", *args, "--ablate", "coral", "--ablate", "ema"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    kinds = [e["event"] for e in events]
    # One process, three runs; only the study's last event ends it for the desktop app.
    assert kinds[-1] == "done" and kinds.count("done") == 1 and kinds.count("run_done") == 3
    progress = [e["progress"] for e in events if e["event"] == "step"]
    assert progress == sorted(progress) and progress[0] > 0 and progress[-1] <= 1.0

    full, no_coral, no_ema = (_steps(events, r) for r in ("full recipe", "without coral", "without ema"))
    assert set(full) == set(no_coral) == set(no_ema) and 1 in full
    # Negative control: same weights, same first batch, same CORAL value; only its weight differs, so the
    # total loss differs by exactly lambda_coral * CORAL. A run that left CORAL on would match the full one.
    first, ablated = full[1], no_coral[1]
    assert ablated["coral"] == pytest.approx(first["coral"], rel=1e-5) and first["coral"] > 0
    assert first["loss"] - ablated["loss"] == pytest.approx(0.05 * first["coral"], rel=1e-3, abs=1e-6)
    assert first["loss"] != ablated["loss"]
    last = max(full)
    assert full[last]["ema_decay"] > 0.0 and all(e["ema_decay"] == 0.0 for e in no_ema.values())

    table = next(e for e in events if e["event"] == "ablation")
    recipes = [r["recipe"] for r in table["rows"]]
    assert recipes[:3] == ["full recipe", "without coral", "without ema"]
    assert "ArcFace-on-sketch baseline" in recipes
    for row in table["rows"][:3]:
        lo, hi = row["recall@1_ci95"]
        assert 0.0 <= lo <= row["recall@1"] <= hi <= 1.0 and row["queries"] >= 2
    assert table["rows"][2]["weights"] == "student"  # without the EMA the student is what is scored
    assert set(table["effects"]) == {"coral", "ema"}
    assert table["summary"].startswith("full recipe R@1 ") and "without coral R@1 " in table["summary"]
    # The training report and the exported config.json carry the same table.
    assert json.loads((run / "report.json").read_text("utf-8"))["ablation"]["summary"] == table["summary"]
    exported = json.loads((run / "export" / "config.json").read_text("utf-8"))
    assert exported["metrics"]["ablation"]["summary"] == table["summary"]
    assert exported["metrics"]["test"]["trained"]["recall@1"] == table["rows"][0]["recall@1"]
    sub = json.loads((run / "ablation" / "coral" / "config.json").read_text("utf-8"))
    assert sub["loss"]["lambda_coral"] == 0.0 and sub["run"]["ablated"] == "coral"
    assert (run / "ablation" / "ema" / "report.json").is_file()


def test_an_unknown_part_is_refused_with_the_list(tmp_path: Path, tiny_models_dir: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    args = tiny_cli_args(tmp_path / "ds", tiny_models_dir, tmp_path / "run")
    assert trainer_main(["train", *args, "--ablate", "dropout"]) == 1
    err = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert err["event"] == "error" and "dropout" in err["message"] and "coral" in err["message"]


def test_a_stopped_study_ends_cancelled_and_continues_where_it_stopped(
        tmp_path: Path, make_config: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    root, run = tmp_path / "ds", tmp_path / "run"
    synthetic.write_dataset(root, 28, seed=22)
    args = ("data.test_fraction=0.2", "optim.batch_size=8", "optim.epochs=2", "run.log_every=1")
    cfg = make_config(root, run, *args)
    cfg.run.ablate = ["coral"]
    study = AblationStudy(cfg, stream=io.StringIO())
    original = Trainer._optimizer_step

    def stop_in_the_ablation(self: Trainer, micro: list[Any]) -> dict[str, float]:
        out = original(self, micro)
        if self.cfg.run.ablated == "coral" and self.step == 1:  # Stop pressed during the second run
            study.request_stop()
        return out

    monkeypatch.setattr(Trainer, "_optimizer_step", stop_in_the_ablation)
    summary = study.fit()
    assert summary["cancelled"] and summary["recipe"] == "without coral" and study.table is None
    events = [json.loads(line) for line in (run / "events.jsonl").read_text("utf-8").splitlines()]
    assert events[-1]["event"] == "cancelled" and "done" not in [e["event"] for e in events]
    assert (run / "ablation" / "coral" / "last.pt").is_file()
    monkeypatch.setattr(Trainer, "_optimizer_step", original)
    again = AblationStudy(make_config(root, run, *args, "run.ablate=['coral']"), stream=io.StringIO())
    done = again.fit()
    assert not done.get("cancelled") and again.table is not None
    sub = again.trainers["coral"].reporter.history
    assert next(e for e in sub if e["event"] == "resume")["step"] == 2  # the step it stopped after
    assert [r["recipe"] for r in again.table["rows"][:2]] == ["full recipe", "without coral"]
