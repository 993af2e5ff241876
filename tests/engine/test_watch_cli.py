"""The watch commands as a scheduler and an examiner use them (``engine.cli.main``): add, run, list, ack, remove;
a replaced sketch encoder refuses the watch (exit 3) and ``watch rerun`` records the full re-run; bad input gets a
clear message; ``gallery retain`` from the command line."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from engine import policy
from engine.cases import create_case, open_case, watch_records
from engine.cli import main
from engine.search import Query
from engine.workstation import Workstation
from tests.fixtures.photos import small_photo_folder


@pytest.fixture
def recorded(installed_models: Path, tmp_path: Path) -> tuple[str, str, Path]:
    small_photo_folder(tmp_path / "gallery", 5, seed=1)
    planted = small_photo_folder(tmp_path / "planted", 1, seed=9)[0]
    with Workstation() as ws:
        gid = ws.create_gallery("Bookings").id
        ws.add_photos(gid, [tmp_path / "gallery"])
        with create_case("2026-0500", "Cold case") as case:
            ws.record(case, ws.search([Query.from_path(planted, "sketch")], [gid], k=5), label="sketch")
            ws.record(case, ws.search([Query.from_path(planted, "photo")], [gid], k=5), label="photo")
    return "2026-0500", gid, planted


def _json(capsys: pytest.CaptureFixture[str]) -> dict:  # type: ignore[type-arg]
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_watch_commands_from_add_to_ack(recorded: tuple[str, str, Path], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    case_ref, gid, planted = recorded
    assert main(["watch", "add", case_ref]) == 1  # neither --search nor --all
    assert "--search N, or --all" in capsys.readouterr().err
    assert main(["watch", "add", case_ref, "--search", "2", "--bar", "rank=>3"]) == 1
    assert "Cannot read the bar" in capsys.readouterr().err
    assert main(["watch", "add", case_ref, "--search", "2", "--bar", "calibrated"]) == 1
    assert "No score calibration" in capsys.readouterr().err
    assert main(["watch", "add", case_ref, "--search", "2", "--bar", "rank<=1", "--json"]) == 0
    assert _json(capsys)["watches"][0]["bar"]["kind"] == "uncalibrated"
    assert main(["watch", "run", "--json"]) == 0
    assert _json(capsys)["hits"] == 0
    (tmp_path / "new").mkdir()
    shutil.copy(planted, tmp_path / "new" / "booked_person.jpg")
    with Workstation() as ws:
        ws.add_photos(gid, [tmp_path / "new"])
    assert main(["watch", "run"]) == 0
    assert "1 new hit(s) in all" in capsys.readouterr().out
    assert main(["watch", "list", "--json"]) == 0
    [listed] = _json(capsys)["cases"]
    [hit] = listed["hits"]
    assert hit["photo_path"].endswith("booked_person.jpg") and hit["acknowledged_at"] is None
    assert main(["watch", "ack", case_ref, str(hit["id"])]) == 0
    assert "it is search 3 of the case" in capsys.readouterr().out
    assert main(["watch", "ack", case_ref, str(hit["id"])]) == 1  # once only
    assert main(["watch", "remove", case_ref, "1"]) == 0
    capsys.readouterr()
    assert main(["watch", "list", case_ref]) == 0
    assert "removed" in capsys.readouterr().out


def test_a_replaced_sketch_encoder_refuses_the_run_and_rerun_records_a_new_search(
        recorded: tuple[str, str, Path], installed_models: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    if not (installed_models / "sketch_encoder" / "model.safetensors").exists():
        pytest.skip("the tiny model set has no sketch encoder")
    from tests.fixtures import tiny_sketch

    case_ref, _, _ = recorded
    assert main(["watch", "add", case_ref, "--search", "1", "--bar", "rank<=1"]) == 0
    shutil.copytree(installed_models / "buffalo_l.w600k_r50", tmp_path / "bundle" / "buffalo_l.w600k_r50")
    tiny_sketch.build(tmp_path / "bundle", seed=1)  # a newly trained encoder (for the same ArcFace) is imported
    assert main(["models", "import", str(tmp_path / "bundle"), "--replace"]) == 0
    capsys.readouterr()
    assert main(["watch", "run", "--json"]) == 3
    [row] = _json(capsys)["watches"]
    assert row["outcome"] == "refused" and "Embedder changed: sketch_encoder" in row["reason"] and "watch rerun" in row["reason"]
    assert main(["watch", "rerun", case_ref, "1"]) == 0
    assert "Search 3 is the full re-run" in capsys.readouterr().out
    with open_case(case_ref) as case:
        old, new = watch_records.list_watches(case)
        assert old.status == "ended" and "search 3" in old.ended_reason and new.search_id == 3
        assert case.verify().ok
    assert main(["watch", "run", "--json"]) == 0  # the new watch runs with the new encoder


def test_gallery_retain_from_the_command_line(recorded: tuple[str, str, Path], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    _, gid, _ = recorded
    assert main(["gallery", "retain", gid, "--dry-run"]) == 1
    assert "No retention policy" in capsys.readouterr().err
    path = policy.retention_policy_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('[[rule]]\nname = "everything added before now"\nolder_than_days = 0\n', encoding="utf-8")
    time.sleep(1.1)  # photos are timed to the second: let "now" pass them
    assert main(["gallery", "retain", gid, "--dry-run", "--json"]) == 0
    dry = _json(capsys)
    assert dry["dry_run"] and dry["photos"] == 5
    assert main(["gallery", "retain", gid]) == 0
    out = capsys.readouterr().out
    assert "removed 5 photo(s)" in out and "retention_log.jsonl" in out
    with Workstation() as ws:
        assert ws.gallery(gid).store.face_count() == 0
