"""The examiner's flow with the tiny models: draw, search, review, decide, close and reopen the case."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QPushButton

from sketchface_desktop.workers import JobState
from tests.desktop.conftest import wait_idle, wait_job

pytestmark = pytest.mark.gui

CASE = {"case_number": "2026-0042", "title": "Robbery, Main St", "examiner": "Examiner One",
        "witnesses": ["W1"], "incident_date": "2026-03-01", "notes": ""}


def draw_face(canvas) -> None:  # type: ignore[no-untyped-def]
    """A few programmatic strokes: head oval, eyes, nose, mouth (image pixels, with pressure)."""
    cx, cy = 320, 380
    canvas.draw_stroke([(cx + 150 * math.cos(t / 24 * math.pi), cy + 200 * math.sin(t / 24 * math.pi), 0.6)
                        for t in range(49)])
    for ex in (cx - 60, cx + 60):
        canvas.draw_stroke([(ex - 25, cy - 40), (ex, cy - 52), (ex + 25, cy - 40)], size=5)
    canvas.draw_stroke([(cx, cy - 20), (cx - 12, cy + 40), (cx + 8, cy + 45)])
    canvas.draw_stroke([(cx - 50, cy + 100), (cx, cy + 112), (cx + 50, cy + 100)], size=6)


def build_gallery(qtbot, w, folder: Path, name: str = "Mugshots") -> None:  # type: ignore[no-untyped-def]
    wait_job(qtbot, w.hub, w.gallery.create_gallery(name))
    wait_idle(qtbot, w.hub)
    job = w.gallery.add_folder(str(folder))
    wait_idle(qtbot, w.hub, timeout=120_000)
    assert job.state is JobState.DONE, w.errors.shown
    qtbot.waitUntil(lambda: bool(w.navigator.checked_galleries()))


def test_draw_search_decide_and_reopen_case(qtbot, window, installed_models, make_photos) -> None:
    w = window
    shutil.rmtree(installed_models / "sketch_encoder", ignore_errors=True)  # the labelled ArcFace baseline
    folder = make_photos(12)
    wait_job(qtbot, w.hub, w.flow.new_case(dict(CASE)))
    assert w.cases.is_open and "2026-0042" in w.navigator.case_title.text()
    build_gallery(qtbot, w, folder)

    draw_face(w.sketch.canvas)
    QTest.mouseClick(w.results.search_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, w.hub, timeout=120_000)
    model = w.results_model
    qtbot.waitUntil(lambda: model.rowCount() > 0 and w.flow.shown_search_id is not None)
    assert w.errors.shown == []
    first = model.row(0)
    assert first.rank == 1 and first.score is not None and first.gallery_name == "Mugshots"
    assert first.baseline and w.results.banner.isVisible(), "baseline results must be labelled"
    assert [r.rank for r in model.rows] == sorted(r.rank for r in model.rows)

    w.results.view.setCurrentIndex(model.index(0))
    w.results.view.setFocus()
    QTest.keyClick(w.results.view, Qt.Key.Key_1)  # "Mark possible"
    qtbot.waitUntil(lambda: model.row(0).decision == "possible", timeout=20_000)
    wait_idle(qtbot, w.hub)
    case_id, search_id = w.cases.info.case_id, w.flow.shown_search_id

    wait_job(qtbot, w.hub, w.flow.close_case())
    assert not w.cases.is_open and model.rowCount() == 0
    wait_job(qtbot, w.hub, w.flow.open_case(case_id))
    assert [s.id for s in w.cases.searches] == [search_id]
    assert len(w.cases.sketches) == 1, "the unsaved drawing was kept as a version when the case closed"
    w.flow.show_search(w.cases.searches[0])
    wait_idle(qtbot, w.hub)
    qtbot.waitUntil(lambda: model.rowCount() > 0)
    reopened = {(r.gallery_id, r.face_id): r.decision for r in model.rows}
    assert reopened[(first.gallery_id, first.face_id)] == "possible"
    assert sum(d == "possible" for d in reopened.values()) == 1


def test_compare_view_records_a_decision_with_a_note(qtbot, window, installed_models, make_photos) -> None:
    w = window
    wait_job(qtbot, w.hub, w.flow.new_case(dict(CASE, case_number="2026-0043")))
    build_gallery(qtbot, w, make_photos(6))
    draw_face(w.sketch.canvas)
    w.sketch.canvas.set_guide_visible(True)
    w.flow.search_sketch()
    wait_idle(qtbot, w.hub, timeout=120_000)
    qtbot.waitUntil(lambda: w.results_model.rowCount() > 0 and w.flow.shown_search_id is not None)
    row = w.results_model.row(1)
    dialog = w.dialogs.open_compare(row)
    wait_idle(qtbot, w.hub)
    assert not dialog.pane.candidate.isNull() and not dialog.pane.sketch.isNull()
    dialog.findChild(type(dialog.opacity), "OverlayOpacity").setValue(30)
    dialog.note.setText("ear shape differs")
    dialog.findChild(QPushButton, "Decide:excluded").click()
    qtbot.waitUntil(lambda: w.results_model.row(1).decision == "excluded", timeout=20_000)
    assert w.results_model.row(1).note == "ear shape differs"


def test_more_like_this_and_exclude_refine_the_query(qtbot, window, installed_models, make_photos) -> None:
    w = window
    build_gallery(qtbot, w, make_photos(8))
    draw_face(w.sketch.canvas)
    w.flow.search_sketch()
    wait_idle(qtbot, w.hub, timeout=120_000)
    qtbot.waitUntil(lambda: w.results_model.rowCount() > 0)
    assert "not recorded" in w.results.summary.text(), "without a case the list says it is not recorded"
    target = w.results_model.row(2)
    w.results.more_like_requested.emit(target)
    wait_idle(qtbot, w.hub, timeout=120_000)
    req = w.searches.last_request
    assert [q.kind for q in req.queries] == ["sketch", "photo"]
    assert w.results_model.row(0).photo_path == target.photo_path, "the fused photo itself ranks first"
    w.results.exclude_requested.emit(w.results_model.row(0))
    wait_idle(qtbot, w.hub, timeout=120_000)
    assert target.photo_sha256 in w.searches.last_request.excluded
    assert target.photo_path not in [r.photo_path for r in w.results_model.rows]
    assert w.errors.shown == []


def test_sketches_of_two_witnesses_are_fused_in_one_search(qtbot, window, installed_models, make_photos) -> None:
    w = window
    wait_job(qtbot, w.hub, w.flow.new_case(dict(CASE, case_number="2026-0044", witnesses=["W1", "W2"])))
    build_gallery(qtbot, w, make_photos(5))
    draw_face(w.sketch.canvas)
    wait_job(qtbot, w.hub, w.flow.save_sketch(witness="W1"))
    w.flow.new_sketch()
    assert w.sketch.canvas.is_blank()
    w.sketch.canvas.draw_stroke([(200, 200), (450, 260), (300, 600)], size=8)
    wait_job(qtbot, w.hub, w.flow.save_sketch(witness="W2"))
    assert sorted(v.witness for v in w.cases.sketches) == ["W1", "W2"]
    w.results.fuse.setChecked(True)
    w.flow.search_sketch()
    wait_idle(qtbot, w.hub, timeout=120_000)
    qtbot.waitUntil(lambda: w.flow.shown_search_id is not None)
    assert [q.kind for q in w.searches.last_request.queries] == ["sketch", "sketch"]
    assert len(w.cases.searches[-1].queries) == 2, "the case records both query sketches"
    assert w.errors.shown == []
