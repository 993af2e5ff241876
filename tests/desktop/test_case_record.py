"""The record in the window: re-run of a stored search with both lists side by side, case archives, blind review."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QMessageBox

from sketchface_desktop.workers import JobState
from tests.desktop.conftest import wait_idle, wait_job
from tests.desktop.test_examiner_flow import CASE, build_gallery, draw_face

pytestmark = pytest.mark.gui


def searched_case(qtbot: Any, w: Any, photos: Path, number: str, blind: bool = False) -> int:
    wait_job(qtbot, w.hub, w.flow.new_case(dict(CASE, case_number=number)))
    build_gallery(qtbot, w, photos)
    draw_face(w.sketch.canvas)
    (w.results.blind if blind else w.results.ranked).click()
    w.flow.search_sketch()
    wait_idle(qtbot, w.hub, timeout=120_000)
    qtbot.waitUntil(lambda: w.flow.shown_search_id is not None and w.results_model.rowCount() > 0, timeout=60_000)
    return int(w.flow.shown_search_id)


def test_rerun_shows_identical_lists_then_what_changed(qtbot: Any, window: Any, installed_models: Path,
                                                      make_photos: Any) -> None:
    w = window
    sid = searched_case(qtbot, w, make_photos(5), "2026-0801")
    dialog = w.dialogs.rerun_search(sid)
    wait_idle(qtbot, w.hub, timeout=120_000)
    qtbot.waitUntil(lambda: dialog.report is not None and dialog.right.rowCount() > 0, timeout=60_000)
    assert dialog.report.identical and dialog.report.manifest_identical, dialog.verdict.text()
    assert dialog.left.rowCount() == dialog.right.rowCount() == w.results_model.rowCount()
    assert "identical result list" in dialog.verdict.text()
    assert dialog.report.new_search_id in [s.id for s in w.cases.searches], "the re-run is stored in the case"
    dialog.accept()
    # The gallery grows: the same manifest now meets a different gallery, and the dialog says so.
    job = w.gallery.add_folder(str(make_photos(3, seed=50)))
    wait_idle(qtbot, w.hub, timeout=120_000)
    assert job.state is JobState.DONE
    again = w.dialogs.rerun_search(sid)
    wait_idle(qtbot, w.hub, timeout=120_000)
    qtbot.waitUntil(lambda: again.report is not None, timeout=60_000)
    assert not again.report.manifest_identical and "galleries, models or parameters changed" in again.verdict.text()
    assert again.changes.count() >= 1 and again.changes.item(0).text() != "No differences."
    assert w.errors.shown == []


def test_case_archive_export_then_import_refuses_a_wrong_digest(qtbot: Any, window: Any, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    w = window
    wait_job(qtbot, w.hub, w.flow.new_case(dict(CASE, case_number="2026-0802")))
    target = tmp_path / "case.zip"
    wait_job(qtbot, w.hub, w.dialogs.export_archive(str(target)))
    box = w.findChild(QMessageBox, "ArchiveWritten")
    assert target.is_file() and box is not None
    import hashlib

    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    assert digest in box.text(), "the receiver is given the archive's SHA-256"
    box.accept()
    wait_job(qtbot, w.hub, w.flow.close_case())
    job = w.dialogs.import_archive(str(target), "0" * 64)
    wait_job(qtbot, w.hub, job)
    assert job.state is JobState.FAILED and not w.cases.is_open
    assert w.errors.shown and "SHA-256" in str(w.errors.shown[-1])


def test_blind_review_hides_scores_until_every_candidate_is_decided(qtbot: Any, window: Any, installed_models: Path,
                                                                   make_photos: Any) -> None:
    w = window
    searched_case(qtbot, w, make_photos(3), "2026-0803", blind=True)
    model, banner = w.results_model, w.results.blind_banner
    assert banner.isVisible() and "BLIND REVIEW — 0 of" in banner.text()
    assert all(r.score is None and r.rank is None for r in model.rows)
    n = model.rowCount()
    for i in range(n):
        w.results.view.setCurrentIndex(model.index(i))
        w.results.view.setFocus()
        QTest.keyClick(w.results.view, Qt.Key.Key_2)
        wait_idle(qtbot, w.hub)
    qtbot.waitUntil(lambda: all(r.decision == "excluded" for r in model.rows))
    assert not banner.isVisible(), "every candidate decided: the engine revealed the scores"
    assert all(r.score is not None for r in model.rows)


def test_try_with_demo_data_prepares_the_demo_home_and_starts_a_workstation_there(
        qtbot: Any, window: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The guide's button runs the engine's demo preparation (stubbed here: the real one takes most of a minute)
    in the engine lane, then starts a second workstation on the demo home — never this one's data."""
    import engine.demo as demo
    from sketchface_desktop.ops import models as model_ops
    from sketchface_desktop.views.window_dialogs import WindowDialogs

    calls: list[Any] = []
    info = demo.DemoInfo(tmp_path / "demo", "case-id", "DEMO-0001", "g", "DEMO sample photos", 3, 1)

    def fake_prepare(home: Any = None, progress: Any = None, cancel: Any = None) -> Any:
        calls.append(home)
        return info

    started: list[Any] = []
    built: list[Any] = []
    monkeypatch.setattr(demo, "prepare_demo", fake_prepare)
    monkeypatch.setattr(model_ops, "build_demo_in_subprocess", lambda progress, cancel: built.append(1))
    monkeypatch.setattr(WindowDialogs, "start_demo_workstation", lambda self, i: started.append(i) or True)
    guide = window.dialogs.show_guide()
    guide.demo_button.click()
    wait_job(qtbot, window.hub, window.dialogs.demo_job)
    assert built == [1], "the demo is built in a child process, never in the workstation holding real cases"
    assert calls == [None] and started == [info]
    assert info.env() == {"SKETCHFACE_HOME": str(tmp_path / "demo")}
    assert not guide.isVisible()


def test_case_and_user_text_is_shown_as_typed_never_as_markup(qtbot: Any, window: Any) -> None:
    """A title or note that looks like HTML (e.g. from an imported archive) is displayed literally."""
    from sketchface_desktop.views.ui import plain_tip

    w = window
    title = "<b>Bold</b><img src='x' onerror='alert(1)'><a href='http://example.org'>link</a>"
    wait_job(qtbot, w.hub, w.flow.new_case(dict(CASE, case_number="<i>2026-0804</i>", title=title)))
    for lab in (w.navigator.case_title, w.navigator.case_details, w.status.case_label, w.audit.status):
        assert lab.textFormat() == Qt.TextFormat.PlainText, lab.objectName()
    assert title in w.navigator.case_title.text() and "<i>2026-0804</i>" in w.status.case_label.text()
    tip = plain_tip("note <b>x</b>")
    assert "&lt;b&gt;x&lt;/b&gt;" in tip and "<b>x</b>" not in tip
