"""The examiner's whole case in the window: draw, search, decide on two candidates, second-examiner sign-off,
PDF report — the report's own text must carry the decisions and the sign-off."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QPushButton

from tests.desktop.conftest import wait_idle
from tests.desktop.test_examiner_flow import CASE, build_gallery, draw_face
from tests.examiner_helpers import acting_as

pytestmark = pytest.mark.gui


def pdf_text(path: Path) -> str:
    from pypdf import PdfReader

    return re.sub(r"\s+", " ", " ".join(page.extract_text() or "" for page in PdfReader(str(path)).pages))


def export_pdf(qtbot: Any, w: Any, target: Path) -> Path:
    """Export through the report dialog the way the examiner does: PDF, a file name, Export."""
    dialog = w.dialogs.export_report()
    dialog.set_format("pdf")
    dialog.target.setText(str(target))
    dialog.findChild(QPushButton, "ExportReport").click()
    qtbot.waitUntil(lambda: dialog.path is not None or "Not exported" in dialog.outcome.text(), timeout=60_000)
    assert dialog.path == target and dialog.show_button.isEnabled(), dialog.outcome.text()
    dialog.accept()
    return target


def test_draw_search_decide_sign_off_and_export_pdf(qtbot: Any, window: Any, installed_models: Path,
                                                   make_photos: Any, tmp_path: Path) -> None:
    w = window
    w.flow.new_case(dict(CASE, case_number="2026-0777"))
    wait_idle(qtbot, w.hub)
    build_gallery(qtbot, w, make_photos(6))
    draw_face(w.sketch.canvas)
    w.sketch.canvas.set_guide_visible(True)
    QTest.mouseClick(w.results.search_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, w.hub, timeout=120_000)
    model = w.results_model
    qtbot.waitUntil(lambda: model.rowCount() >= 2 and w.flow.shown_search_id is not None, timeout=60_000)
    search_id = w.flow.shown_search_id
    manifest = w.cases.searches[-1].manifest
    assert manifest["query"][0]["face_box"] is not None, "the guide box travels to the engine and the record"

    # Decide on two candidates from the keyboard: 1 = possible, 2 = excluded.
    for row, key in ((0, Qt.Key.Key_1), (1, Qt.Key.Key_2)):
        w.results.view.setCurrentIndex(model.index(row))
        w.results.view.setFocus()
        QTest.keyClick(w.results.view, key)
        wait_idle(qtbot, w.hub)
    qtbot.waitUntil(lambda: [model.row(0).decision, model.row(1).decision] == ["possible", "excluded"])

    before = pdf_text(export_pdf(qtbot, w, tmp_path / "before_signoff.pdf"))
    assert "No second-examiner sign-off is recorded" in before and "Second Reviewer" not in before

    # The second examiner signs the search in the sign-off dialog.
    dialog = w.dialogs.sign_off()
    assert dialog.statement.toPlainText() == "", "no agreement text is pre-filled"
    reviewer = acting_as("Second Reviewer", "S-2002")  # peer review needs the reviewer's own profile and key
    reviewer.__enter__()
    dialog.examiner.setText("Second Reviewer")
    dialog.scope.setText("reviewed the 2 decided candidates only")
    dialog.role.setCurrentText("supervisor")
    dialog.statement.setPlainText("Agreed with both decisions on the candidate list.")
    item = next(dialog.searches.item(i) for i in range(dialog.searches.count())
                if dialog.searches.item(i).data(Qt.ItemDataRole.UserRole) == search_id)
    item.setCheckState(Qt.CheckState.Checked)
    assert dialog.search_ids() == [search_id]
    dialog.findChild(QPushButton, "SignOffButton").click()
    qtbot.waitUntil(lambda: bool(dialog.signoffs), timeout=30_000)
    reviewer.__exit__(None, None, None)
    assert w.errors.shown == []

    text = pdf_text(export_pdf(qtbot, w, tmp_path / "report.pdf"))
    assert "possible: 1" in text and "excluded: 1" in text, "the decisions are in the report"
    assert f"Second Reviewer (supervisor) signed off search {search_id}" in text
    assert "Agreed with both decisions on the candidate list." in text
    assert "No second-examiner sign-off is recorded" not in text

    # The audit panel shows the record intact, with the report exports and the sign-off in it.
    w.audit_dock.show()
    job = w.audit.refresh()
    wait_idle(qtbot, w.hub)
    assert job is not None and w.audit.view is not None and w.audit.view.report.ok
    actions = [e.action for e in w.audit.view.entries]
    assert actions.count("report.export") == 2 and actions.count("signoff.record") == 1
    assert w.audit.status.text().startswith("INTACT")


def test_sign_off_by_the_case_examiner_is_refused_in_the_dialog(qtbot: Any, window: Any) -> None:
    w = window
    w.flow.new_case(dict(CASE, case_number="2026-0778"))
    wait_idle(qtbot, w.hub)
    dialog = w.dialogs.sign_off()
    dialog.examiner.setText(CASE["examiner"])
    dialog.findChild(QPushButton, "SignOffButton").click()
    wait_idle(qtbot, w.hub)
    assert dialog.isVisible() and "Not signed" in dialog.error.text() and not dialog.signoffs
    assert w.errors.shown == [], "a refusal is shown in the dialog, not as an error"
    dialog.reject()


def test_audit_panel_checks_a_printed_head(qtbot: Any, window: Any) -> None:
    w = window
    w.flow.new_case(dict(CASE, case_number="2026-0779"))
    wait_idle(qtbot, w.hub)
    w.audit_dock.show()
    w.audit.refresh()
    wait_idle(qtbot, w.hub)
    rep = w.audit.view.report
    w.audit.expected.setText(f"{rep.count}:{rep.head}")
    w.audit.verify_button.click()
    wait_idle(qtbot, w.hub)
    assert w.audit.status.text().startswith("INTACT") and "matches the printed head" in w.audit.status.text()
    w.audit.expected.setText(f"{rep.count}:{'0' * 64}")  # a head that was never this record's
    w.audit.verify_button.click()
    wait_idle(qtbot, w.hub)
    assert w.audit.status.text().startswith("NOT INTACT")
    w.audit.expected.setText("12:not-a-hash")
    w.audit.verify_button.click()
    assert "COUNT:HASH" in w.audit.status.text()
