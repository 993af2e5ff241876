"""Two examiners at one workstation, through the window's real wiring: A searches and decides; B is added
and chosen in the status bar's switcher, reviews the search blind (A's decisions hidden until B's are
recorded), disagrees once and signs off; the case PDF names both, with their identifiers and key
fingerprints, and the disagreement."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QPushButton

from engine import examiners
from tests.conftest import TEST_EXAMINER, TEST_PASSPHRASE
from tests.desktop.conftest import wait_idle
from tests.desktop.test_case_workflow import export_pdf, pdf_text
from tests.desktop.test_examiner_flow import CASE, build_gallery, draw_face

pytestmark = pytest.mark.gui
B = ("B. Reviewer", "B-2002")


def _decide_by_keys(qtbot: Any, w: Any, keys: list[Qt.Key]) -> None:
    """Decide row i with keys[i] from the keyboard (1 = possible, 2 = excluded), as the examiner does."""
    model = w.results_model
    for row, key in enumerate(keys):
        w.results.view.setCurrentIndex(model.index(row))
        w.results.view.setFocus()
        QTest.keyClick(w.results.view, key)
        wait_idle(qtbot, w.hub)


def _decisions(w: Any) -> list[str]:
    model = w.results_model
    return [model.row(i).decision for i in range(model.rowCount())]


def _add_b_in_the_status_bar(qtbot: Any, w: Any) -> None:
    """B is added from the switcher's "Add examiner…" item and becomes the acting examiner."""
    box = w.status.examiner_box
    box.activated.emit(box.findText(w.status.ADD_ITEM))
    dialog = w.wiring.examiner_setup
    assert dialog is not None and dialog.isVisible()
    dialog.name.setText(B[0])
    dialog.identifier.setText(B[1])
    dialog.passphrase.setText(TEST_PASSPHRASE)
    dialog.repeat.setText(TEST_PASSPHRASE)
    dialog.findChild(QPushButton, "ExaminerSetupOk").click()
    assert not dialog.isVisible(), dialog.error.text()
    assert w.status.acting_text() == f"Examiner: {B[0]} ({B[1]})"
    w.activateWindow()  # the closed dialog leaves the window to be activated again for its shortcuts
    qtbot.waitUntil(w.isActiveWindow)


def test_two_profiles_search_decide_blind_review_disagree_sign_off_and_pdf(
        qtbot: Any, window: Any, installed_models: Path, make_photos: Any, tmp_path: Path) -> None:
    w = window
    a = examiners.require_current()
    assert w.status.acting_text() == f"Examiner: {TEST_EXAMINER[0]} ({TEST_EXAMINER[1]})"

    # A: case, gallery, sketch search, a decision on every candidate.
    w.flow.new_case(dict(CASE, case_number="2026-0921", examiner=TEST_EXAMINER[0]))
    wait_idle(qtbot, w.hub)
    build_gallery(qtbot, w, make_photos(6))
    draw_face(w.sketch.canvas)
    QTest.mouseClick(w.results.search_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, w.hub, timeout=120_000)
    qtbot.waitUntil(lambda: w.results_model.rowCount() >= 2 and w.flow.shown_search_id is not None, timeout=60_000)
    search_id, n = w.flow.shown_search_id, w.results_model.rowCount()
    _decide_by_keys(qtbot, w, [Qt.Key.Key_1] + [Qt.Key.Key_2] * (n - 1))
    qtbot.waitUntil(lambda: _decisions(w) == ["possible"] + ["excluded"] * (n - 1))
    first = [(w.results_model.row(i).case_gallery_id, w.results_model.row(i).face_id) for i in range(n)]

    # B: added and chosen in the status bar; reviews blind.
    _add_b_in_the_status_bar(qtbot, w)
    b = examiners.require_current()
    assert b.identifier == B[1] and b.fingerprint != a.fingerprint
    w.act_blind_review.trigger()
    wait_idle(qtbot, w.hub)
    qtbot.waitUntil(lambda: w.flow.blind_search_id == search_id and w.results_model.rowCount() == n)
    assert _decisions(w) == ["not_reviewed"] * n, "A's decisions are hidden while B decides blind"
    assert "BLIND REVIEW" in w.results.summary.text()
    # B agrees on A's two exclusions and excludes A's "possible": one disagreement.
    _decide_by_keys(qtbot, w, [Qt.Key.Key_2] * n)
    wait_idle(qtbot, w.hub)
    qtbot.waitUntil(lambda: w.flow.blind_search_id is None and _decisions(w).count("possible") == 1)
    assert w.errors.shown == []
    by_key = {(w.results_model.row(i).case_gallery_id, w.results_model.row(i).face_id):
              w.results_model.row(i).decision for i in range(n)}
    assert by_key[first[0]] == "possible", "after B's blind decisions, A's decisions are shown again"
    told: list[str] = []
    w.prompter.tell = lambda title, text: told.append(text)  # the window's message, read instead of shown
    w.act_blind_review.trigger()  # a second blind review of the same search would not be blind
    wait_idle(qtbot, w.hub)
    qtbot.waitUntil(lambda: bool(told) and w.flow.blind_search_id is None)
    assert "already recorded" in told[0], told
    qtbot.waitUntil(lambda: _decisions(w).count("possible") == 1)

    # B signs off the whole case; the dialog names B's key and the disagreement first.
    dialog = w.dialogs.sign_off()
    wait_idle(qtbot, w.hub)
    assert b.fingerprint in dialog.acting.text() and dialog.examiner.text() == B[0]
    qtbot.waitUntil(lambda: "differ on 1 candidate" in dialog.disagreements.text())
    dialog.statement.setPlaceholderText("")
    dialog.statement.setPlainText("Reviewed blind; I exclude the candidate A found possible.")
    dialog.findChild(QPushButton, "SignOffButton").click()
    qtbot.waitUntil(lambda: bool(dialog.signoffs), timeout=30_000)
    assert w.errors.shown == []

    text = pdf_text(export_pdf(qtbot, w, tmp_path / "report.pdf"))
    compact = re.sub(r"\s+", "", text)
    assert f"{a.name} ({a.identifier})" in text and a.fingerprint in compact, "A, the deciding examiner"
    assert f"{b.name} ({b.identifier})" in text and b.fingerprint in compact, "B, the reviewer"
    g, f = first[0]
    assert f"face {g}:{f}: first examiner possible, reviewer excluded" in text, "the disagreement"
    assert "Blind verification" in text


def test_the_case_examiner_cannot_review_their_own_search_blind(qtbot: Any, window: Any, installed_models: Path,
                                                               make_photos: Any) -> None:
    """Negative control: blind review by the key that decided is refused, and A's decisions stay shown."""
    w = window
    w.flow.new_case(dict(CASE, case_number="2026-0922", examiner=TEST_EXAMINER[0]))
    wait_idle(qtbot, w.hub)
    build_gallery(qtbot, w, make_photos(6))
    draw_face(w.sketch.canvas)
    QTest.mouseClick(w.results.search_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, w.hub, timeout=120_000)
    qtbot.waitUntil(lambda: w.results_model.rowCount() >= 2 and w.flow.shown_search_id is not None, timeout=60_000)
    _decide_by_keys(qtbot, w, [Qt.Key.Key_1])
    told: list[str] = []
    w.prompter.tell = lambda title, text: told.append(text)  # the window's message box, read instead of shown
    w.act_blind_review.trigger()
    wait_idle(qtbot, w.hub)
    qtbot.waitUntil(lambda: bool(told))
    assert "refused" in told[0] and "another examiner's key" in told[0], told
    assert w.errors.shown == [], "the refusal is said once, not also as an error"
    assert w.flow.blind_search_id is None
    qtbot.waitUntil(lambda: _decisions(w)[0] == "possible")
