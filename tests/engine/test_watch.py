"""Watches: new faces of a planted person flagged exactly once, nothing new gives nothing, a killed run loses and
duplicates nothing, a changed sketch encoder is refused with the reason, a closed case's watches stop."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cases import create_case, open_case, record_decision, update_case, watch_records
from engine.cases.report import build_report
from engine.search import Query
from engine.workstation import Workstation
from engine.workstation import watch as watch_mod
from tests.fixtures.photos import small_photo_folder

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def setup(installed_models: Path, tmp_path: Path) -> tuple[Workstation, str, Path]:
    """A local gallery of 6 photos, a case with one recorded photo search of a person not yet in it."""
    small_photo_folder(tmp_path / "gallery", 6, seed=1)
    planted = small_photo_folder(tmp_path / "planted", 1, seed=9)[0]
    ws = Workstation()
    gid = ws.create_gallery("Bookings").id
    ws.add_photos(gid, [tmp_path / "gallery"])
    case = create_case("2026-0100", "Cold case")
    ws.record(case, ws.search([Query.from_path(planted, "photo")], [gid], k=5), label="witness photo")
    case.close()
    return ws, gid, planted


def _plant(ws: Workstation, gid: str, planted: Path, folder: Path, extra_seed: int = 3) -> None:
    """The person is booked: their photo enters the gallery with some unrelated new photos."""
    small_photo_folder(folder, 3, seed=extra_seed)
    shutil.copy(planted, folder / "booked_person.jpg")
    ws.add_photos(gid, [folder])


def test_a_planted_person_is_flagged_exactly_once_with_the_right_thumbnail(setup: tuple[Workstation, str, Path],
                                                                          tmp_path: Path) -> None:
    ws, gid, planted = setup
    with open_case("2026-0100") as case:
        watch = watch_mod.add_watch(ws, case, 1, bar="rank<=1")
    assert watch.bar["kind"] == "uncalibrated"
    nothing = watch_mod.run_watches(ws)
    assert nothing.hits == 0 and nothing.rows[0]["outcome"] == "nothing new"  # nothing new: no hit
    before = ws.gallery(gid).store.face_count()
    _plant(ws, gid, planted, tmp_path / "new")
    report = watch_mod.run_watches(ws)
    added = ws.gallery(gid).store.face_count() - before
    assert report.hits == 1 and report.rows[0]["faces_searched"] == added > 1
    with open_case("2026-0100") as case:
        [hit] = watch_records.list_hits(case)
        g = ws.gallery(gid)
        face = g.store.face_infos([hit.face_id])[hit.face_id]
        assert Path(face.path).name == "booked_person.jpg" and hit.gallery_id == gid
        assert hit.thumbnail_path is not None
        assert case.read_file(hit.thumbnail_path, hit.thumbnail_sha256) == g.thumbnail(hit.face_id)
        assert hit.content_version == g.content_version
        assert case.verify().ok
    again = watch_mod.run_watches(ws)  # the same faces are never searched or flagged twice
    assert again.hits == 0 and again.rows[0]["faces_searched"] == 0
    with open_case("2026-0100") as case:
        assert len(watch_records.list_hits(case)) == 1
        hit = watch_records.acknowledge(case, watch_records.list_hits(case)[0].id)  # an ordinary candidate now
        assert hit.search_id is not None
        record_decision(case, hit.search_id, hit.face_id, "possible", gallery_id=gid)
        assert case.verify().ok
        page = build_report(case, "html").decode()
        assert "Watch list: runs and hits" in page and f"face {gid}:{hit.face_id}" in page
        assert f"acknowledged by {hit.acknowledged_by}" in page
        assert [r["outcome"] for r in watch_records.list_runs(case)] == ["searched"]  # unchanged runs: unrecorded
        assert build_report(case, "pdf").startswith(b"%PDF")
    ws.close()


def test_a_case_made_before_watches_still_verifies_and_gets_the_tables_on_first_watch(
        setup: tuple[Workstation, str, Path]) -> None:
    ws, _, _ = setup
    with open_case("2026-0100") as case:
        for table in ("watch_hits", "watch_runs", "watch_state", "watches"):
            case.conn.execute(f"DROP TABLE {table}")  # as a case made by an earlier version
        assert case.verify().ok and watch_records.list_watches(case) == []
        watch_mod.add_watch(ws, case, 1, bar="rank<=1")
        assert case.verify().ok and len(watch_records.list_watches(case)) == 1
    ws.close()


def test_a_negative_control_unrelated_new_photos_raise_no_hit(setup: tuple[Workstation, str, Path],
                                                              tmp_path: Path) -> None:
    ws, gid, _ = setup
    with open_case("2026-0100") as case:
        watch_mod.add_watch(ws, case, 1, bar="rank<=1")
    small_photo_folder(tmp_path / "others", 3, seed=5)
    before = ws.gallery(gid).store.face_count()
    ws.add_photos(gid, [tmp_path / "others"])
    report = watch_mod.run_watches(ws)
    assert report.rows[0]["faces_searched"] == ws.gallery(gid).store.face_count() - before > 0 and report.hits == 0
    ws.close()


CHILD = """
import sys, time
from engine.cases import watch_records
from engine.workstation import Workstation, watch
calls = []
real = watch_records._write_state
def slow(conn, wid, state):
    real(conn, wid, state)
    calls.append(wid)
    if len(calls) == 2:  # the 2nd watch's run: hits written, its transaction not yet committed
        print("inside", flush=True)
        time.sleep(60)
watch_records._write_state = slow
ws = Workstation()
watch.run_watches(ws)
print("done", flush=True)
"""


def test_a_run_killed_mid_way_and_run_again_loses_and_duplicates_nothing(setup: tuple[Workstation, str, Path],
                                                                        tmp_path: Path) -> None:
    ws, gid, planted = setup
    with open_case("2026-0100") as case:
        ws.record(case, ws.search([Query.from_path(planted, "photo")], [gid], k=5), label="again")
        watches = watch_mod.watch_all(ws, case, bar="rank<=1")
    assert len(watches) == 2
    _plant(ws, gid, planted, tmp_path / "new")
    ws.close()
    child = subprocess.Popen([sys.executable, "-c", CHILD], cwd=REPO, stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
    assert child.stdout is not None
    line = child.stdout.readline()
    assert line.strip() == "inside", line
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    with open_case("2026-0100") as case:
        assert len(watch_records.list_hits(case)) == 1  # the first watch's run committed, the second did not
    ws = Workstation()
    report = watch_mod.run_watches(ws)
    with open_case("2026-0100") as case:
        hits = watch_records.list_hits(case)
        assert sorted(h.watch_id for h in hits) == [w.id for w in watches]  # one hit each: none lost, none twice
        assert len({(h.watch_id, h.gallery_id, h.face_id) for h in hits}) == len(hits)
        assert case.verify().ok
    assert report.rows[0]["faces_searched"] == 0 and report.rows[1]["faces_searched"] > 0
    ws.close()


def test_a_closed_case_stops_its_watches(setup: tuple[Workstation, str, Path], tmp_path: Path) -> None:
    ws, gid, planted = setup
    with open_case("2026-0100") as case:
        watch_mod.add_watch(ws, case, 1, bar="rank<=1")
        update_case(case, status="closed")
        [w] = watch_records.list_watches(case)
        assert w.status == "ended" and w.ended_reason == "case closed"
        assert any(e.action == "watch.end" for e in case.audit_entries())
    _plant(ws, gid, planted, tmp_path / "new")
    assert watch_mod.run_watches(ws).rows == []
    with open_case("2026-0100") as case:
        assert watch_records.list_hits(case) == []
    ws.close()


def test_a_changed_sketch_encoder_file_refuses_the_watch_with_the_reason(
        setup: tuple[Workstation, str, Path], installed_models: Path, tmp_path: Path) -> None:
    weights = installed_models / "sketch_encoder" / "model.safetensors"
    if not weights.exists():
        pytest.skip("the tiny model set has no sketch encoder")
    ws, gid, planted = setup
    with open_case("2026-0100") as case:
        ws.record(case, ws.search([Query.from_path(planted, "sketch")], [gid], k=5), label="sketch")
        watch_mod.add_watch(ws, case, 2, bar="rank<=1")
    ws.close()
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # the encoder's file is changed on disk
    weights.write_bytes(bytes(data))
    _plant(ws := Workstation(), gid, planted, tmp_path / "new")
    report = watch_mod.run_watches(ws)
    [row] = report.rows
    assert row["outcome"] == "refused" and "models" in row["reason"] and "watch rerun" in row["reason"]
    assert "sketch" in row["reason"].lower()
    with open_case("2026-0100") as case:
        assert watch_records.list_hits(case) == []
        assert [r["outcome"] for r in watch_records.list_runs(case)] == ["refused"]
    ws.close()


def test_a_forged_or_deleted_watch_record_fails_verification(setup: tuple[Workstation, str, Path]) -> None:
    ws, gid, _ = setup
    with open_case("2026-0100") as case:
        watch_mod.add_watch(ws, case, 1, bar="rank<=1")
        assert case.verify().ok
        case.conn.execute("INSERT INTO watch_runs (watch_id, outcome, galleries, faces_searched, n_hits, reason, "
                          "ran_at, ran_by) VALUES (1, 'searched', '[]', 1, 1, '', '2026-01-01T00:00:00Z', 'x')")
        case.conn.execute("INSERT INTO watch_hits (watch_id, run_id, gallery_id, face_id, score, content_version, "
                          "row) VALUES (1, 1, ?, 1, 0.99, 1, '{}')", (gid,))  # a hit nobody's run found
        assert not case.verify().ok
        case.conn.execute("DELETE FROM watch_hits")
        case.conn.execute("DELETE FROM watch_runs")
        assert case.verify().ok  # negative control: the record is whole again
        for table in ("watch_hits", "watch_runs", "watch_state", "watches"):
            case.conn.execute(f"DROP TABLE {table}")  # the watch the log recorded is gone
        assert not case.verify().ok
    ws.close()
