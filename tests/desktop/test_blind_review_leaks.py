"""A blind review in the window is blind everywhere: while the second examiner decides, no widget of the
window (the Audit dock's entries and tooltips, the results grid's badges and tooltips, a compare view left
open, the sign-off and report dialogs) shows the first examiner's decisions or notes, and no report that
would show them is written; they all come back once the reviewer's blind decisions are recorded.

Each check walks every visible widget's text, tooltip and item-model data, so a panel added later is
covered without naming it; the walk is shown to find the first examiner's decisions before and after the
blind review (the controls), so a walk that looked nowhere could not pass.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QAbstractItemModel, QAbstractListModel, QAbstractTableModel, QModelIndex, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QApplication,
    QComboBox,
    QGroupBox,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QTextEdit,
    QWidget,
)

from engine import examiners
from tests.conftest import TEST_EXAMINER, TEST_PASSPHRASE
from tests.desktop.conftest import wait_idle
from tests.desktop.test_examiner_flow import CASE, build_gallery, draw_face
from tests.examiner_helpers import REVIEWER, ensure_profile

pytestmark = pytest.mark.gui

A_NOTE = "A-NOTE-7Q same ear shape"  # the first examiner's note: it must not be readable while B decides blind
# A decision in words next to what it is: '"decision": "possible"' (an audit entry's details),
# "Decision: Possible" (a compare view), "decision='excluded'" (a grid row), "first examiner possible".
DECISION = re.compile(r"\b(?:decision|first examiner)\b[\s\"':=]{0,6}(?:possible|excluded)\b", re.IGNORECASE)
CONCLUSION = re.compile(r"\bconclusion: [^\n]*\(by ", re.IGNORECASE)  # a comparison sheet's recorded conclusion
ROLES = (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.StatusTipRole,
         Qt.ItemDataRole.WhatsThisRole, Qt.ItemDataRole.UserRole, Qt.ItemDataRole.UserRole + 10)


def _columns(model: QAbstractItemModel, parent: QModelIndex) -> int:
    if isinstance(model, QAbstractListModel):  # a list model's columnCount is private in Qt
        return 1
    return max(1, model.columnCount(parent))


def _tree(model: QAbstractItemModel) -> bool:
    """Whether rows may have children (flat models keep hasChildren private in Qt)."""
    return not isinstance(model, (QAbstractListModel, QAbstractTableModel))


def _model_texts(model: QAbstractItemModel, parent: QModelIndex, out: list[str]) -> None:
    for row in range(model.rowCount(parent)):
        for col in range(_columns(model, parent)):
            index = model.index(row, col, parent)
            for role in ROLES:
                value = model.data(index, role)
                if value is not None and not hasattr(value, "isNull"):  # text and row objects, not images
                    out.append(str(value))
            if col == 0 and _tree(model) and model.hasChildren(index):
                _model_texts(model, index, out)


def _widget_texts(widget: QWidget) -> list[str]:
    out = [widget.toolTip(), widget.windowTitle() if widget.isWindow() else ""]
    if isinstance(widget, (QLabel, QAbstractButton, QLineEdit)):
        out.append(widget.text())
    if isinstance(widget, (QTextEdit, QPlainTextEdit)):
        out.append(widget.toPlainText())
    if isinstance(widget, QGroupBox):
        out.append(widget.title())
    if isinstance(widget, QComboBox):
        out += [widget.itemText(i) for i in range(widget.count())]
    if isinstance(widget, QMessageBox):
        out += [widget.text(), widget.informativeText(), widget.detailedText()]
    return out


def shown_texts() -> list[tuple[str, str]]:
    """(widget, text) for every visible widget of every open window: texts, tooltips, item-model data
    (rich-text tooltips unescaped, so '"decision": "excluded"' reads as written)."""
    out: list[tuple[str, str]] = []
    seen_widgets: set[int] = set()
    seen_models: set[int] = set()
    for top in QApplication.topLevelWidgets():
        if not top.isVisible():
            continue
        for widget in [top, *top.findChildren(QWidget)]:
            if id(widget) in seen_widgets or not widget.isVisible():
                continue
            seen_widgets.add(id(widget))
            where = f"{type(widget).__name__}:{widget.objectName()}"
            out += [(where, html.unescape(t)) for t in _widget_texts(widget) if t]
            if isinstance(widget, QAbstractItemView) and widget.model() is not None \
                    and id(widget.model()) not in seen_models:
                seen_models.add(id(widget.model()))
                texts: list[str] = []
                _model_texts(widget.model(), QModelIndex(), texts)
                out += [(where, html.unescape(t)) for t in texts]
    return out


def first_examiner_shown() -> list[str]:
    """Every visible text that gives away a decision or the first examiner's note (B has decided nothing),
    as "widget: text"."""
    return [f"{where}: {text}" for where, text in shown_texts()
            if A_NOTE in text or DECISION.search(text) or CONCLUSION.search(text)]


def assert_blind(when: str) -> None:
    leaks = first_examiner_shown()
    assert not leaks, f"A's decisions are shown {when}:\n" + "\n".join(text[:200] for text in leaks)


def _decisions(w: Any) -> list[str]:
    return [w.results_model.row(i).decision for i in range(w.results_model.rowCount())]


def _search(qtbot: Any, w: Any, shown_before: int | None) -> int:
    """Press Search (the sketch on the sheet) and wait until the new recorded search is on show."""
    QTest.mouseClick(w.results.search_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, w.hub, timeout=120_000)
    qtbot.waitUntil(lambda: w.flow.shown_search_id not in (None, shown_before) and w.results_model.rowCount() >= 2,
                    timeout=60_000)
    return int(w.flow.shown_search_id)


def _a_decides(qtbot: Any, w: Any) -> Any:
    """A: the candidates after the first excluded by key, then the first "possible" with a note in the
    compare view (opened as a double-click opens it, with the candidate's comparison sheet), where A also
    assesses a component and concludes; the view is left open (it is window-modal, so it comes last)."""
    for row in range(1, w.results_model.rowCount()):
        w.results.view.setCurrentIndex(w.results_model.index(row))
        w.results.view.setFocus()
        QTest.keyClick(w.results.view, Qt.Key.Key_2)
        wait_idle(qtbot, w.hub)
    w.results.compare_requested.emit(w.results_model.row(0))  # what a double-click on the card sends
    wait_idle(qtbot, w.hub)
    dialog = w.dialogs.compare
    dialog.note.setText(A_NOTE)
    dialog.findChild(QPushButton, "Decide:possible").click()
    wait_idle(qtbot, w.hub)
    w.exam.save_sheet([("eyes", "similar", "")], {"eyes": A_NOTE})  # what the sheet's buttons ask for
    wait_idle(qtbot, w.hub)
    w.exam.conclude(w.exam.shown.levels[0][0], A_NOTE)
    wait_idle(qtbot, w.hub)
    assert w.errors.shown == []
    n = w.results_model.rowCount()
    qtbot.waitUntil(lambda: _decisions(w) == ["possible"] + ["excluded"] * (n - 1))
    return dialog


def _show_audit_dock(qtbot: Any, w: Any) -> None:
    """Case > Audit, as the examiner opens it (the dock starts hidden, tabbed with Jobs)."""
    if not w.audit_dock.isVisible():
        w.audit_dock.toggleViewAction().trigger()
    w.audit_dock.raise_()
    qtbot.waitUntil(lambda: w.audit.table.isVisible())
    wait_idle(qtbot, w.hub)


def _b_acts(w: Any) -> examiners.Profile:
    """B is chosen in the status bar's examiner switcher (B's key file unlocked with its passphrase)."""
    b = ensure_profile(*REVIEWER)
    w.profiles.refresh()
    assert w.status.switch_examiner(b.fingerprint, passphrase=TEST_PASSPHRASE), w.status.examiner_error
    assert examiners.require_current().fingerprint == b.fingerprint
    return b


def test_blind_review_hides_the_first_examiners_decisions_everywhere_until_recorded(
        qtbot: Any, window: Any, installed_models: Path, make_photos: Any, tmp_path: Path) -> None:
    w = window
    w.flow.new_case(dict(CASE, case_number="2026-0931", examiner=TEST_EXAMINER[0]))
    wait_idle(qtbot, w.hub)
    build_gallery(qtbot, w, make_photos(6))
    draw_face(w.sketch.canvas)
    first = _search(qtbot, w, None)
    n = w.results_model.rowCount()
    compare = _a_decides(qtbot, w)
    _show_audit_dock(qtbot, w)
    qtbot.waitUntil(lambda: w.audit.table.rowCount() > 0)
    shown = first_examiner_shown()
    # Control: the walk reads the Audit dock, the grid and the compare view, and sees A's decisions there.
    assert any(s.startswith("QTableWidget:AuditEntries") and A_NOTE in s for s in shown), shown
    assert any(s.startswith("QLabel") and "Decision: possible" in s for s in shown), shown
    assert any(s.startswith("QLineEdit") and A_NOTE in s for s in shown), shown
    assert any(CONCLUSION.search(s) and TEST_EXAMINER[0] in s for s in shown), "the sheet shows A's conclusion"

    # B reviews the search blind (the compare view A left open is still on screen).
    _b_acts(w)
    w.act_blind_review.trigger()
    wait_idle(qtbot, w.hub)
    qtbot.waitUntil(lambda: w.flow.blind_search_id == first and "BLIND REVIEW" in w.results.summary.text())
    assert _decisions(w) == ["not_reviewed"] * n
    assert_blind("during B's blind review")
    assert w.audit.table.rowCount() == 0 and "blind review" in w.audit.status.text(), w.audit.status.text()
    assert "INTACT" in w.audit.status.text(), "the record is still verified while its entries are withheld"

    # A compare view B opens from the grid (with whatever the window puts beside it), the sign-off and the
    # report dialogs give nothing away either; a report (which lists A's decisions) is not written until
    # B's blind decisions are recorded.
    w.results.compare_requested.emit(w.results_model.row(0))  # what a double-click on the card sends
    wait_idle(qtbot, w.hub)
    assert w.dialogs.compare is not compare and w.dialogs.compare.isVisible()
    assert_blind("in the compare view B opened")
    compare = w.dialogs.compare
    signoff = w.dialogs.sign_off()
    wait_idle(qtbot, w.hub)
    report = w.dialogs.export_report()
    assert_blind("with the sign-off and report dialogs open")
    report.set_format("pdf")
    report.target.setText(str(tmp_path / "during-blind.pdf"))
    report.findChild(QPushButton, "ExportReport").click()
    qtbot.waitUntil(lambda: "Not exported" in report.outcome.text(), timeout=30_000)
    assert "blind" in report.outcome.text() and not (tmp_path / "during-blind.pdf").exists()
    for dialog in (report, signoff, compare):
        dialog.close()

    # B looks at another search and comes back: the blind review is still under way, nothing is shown.
    second = _search(qtbot, w, first)
    assert second != first and w.flow.blind_search_id == first
    assert_blind("with another search on show")
    record = next(s for s in w.cases.searches if s.id == first)
    w.navigator.search_activated.emit(record)
    wait_idle(qtbot, w.hub)
    qtbot.waitUntil(lambda: w.flow.shown_search_id == first and "BLIND REVIEW" in w.results.summary.text())
    assert _decisions(w) == ["not_reviewed"] * n
    assert_blind("back on the search under blind review")

    # B decides every candidate blind: recorded, and from then on A's decisions are shown again (control).
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow)
    for row in range(n):
        w.results.view.setCurrentIndex(w.results_model.index(row))
        w.results.view.setFocus()
        QTest.keyClick(w.results.view, Qt.Key.Key_2)
        wait_idle(qtbot, w.hub)
    qtbot.waitUntil(lambda: w.flow.blind_search_id is None and _decisions(w).count("possible") == 1)
    wait_idle(qtbot, w.hub)
    qtbot.waitUntil(lambda: w.audit.table.rowCount() > 0)
    assert w.errors.shown == []
    shown = first_examiner_shown()
    assert any(s.startswith("QTableWidget:AuditEntries") and A_NOTE in s for s in shown), shown
    assert "blind review" not in w.audit.status.text()


def test_a_blind_review_that_cannot_be_recorded_stays_blind(
        qtbot: Any, window: Any, installed_models: Path, make_photos: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """B's key is locked when the blind decisions are recorded: the review stays blind (B's decisions kept),
    instead of falling back to the list with A's decisions before B's are recorded."""
    w = window
    w.flow.new_case(dict(CASE, case_number="2026-0932", examiner=TEST_EXAMINER[0]))
    wait_idle(qtbot, w.hub)
    build_gallery(qtbot, w, make_photos(6))
    draw_face(w.sketch.canvas)
    first = _search(qtbot, w, None)
    n = w.results_model.rowCount()
    _a_decides(qtbot, w).close()
    _show_audit_dock(qtbot, w)
    b = _b_acts(w)
    w.act_blind_review.trigger()
    wait_idle(qtbot, w.hub)
    qtbot.waitUntil(lambda: w.flow.blind_search_id == first and "BLIND REVIEW" in w.results.summary.text())
    told: list[str] = []
    w.prompter.tell = lambda title, text: told.append(text)  # the window's message, read instead of shown
    examiners._unlocked.pop(b.fingerprint, None)  # B's key is locked again (e.g. another window's switch)
    monkeypatch.delenv(examiners.PASSPHRASE_ENV)  # and no passphrase in the environment unlocks it
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow)
    for row in range(n):
        w.results.view.setCurrentIndex(w.results_model.index(row))
        w.results.view.setFocus()
        QTest.keyClick(w.results.view, Qt.Key.Key_2)
        wait_idle(qtbot, w.hub)
    qtbot.waitUntil(lambda: bool(told))
    wait_idle(qtbot, w.hub)
    assert "not recorded" in told[0] and "locked" in told[0], told
    qtbot.waitUntil(lambda: w.flow.blind_search_id == first and "BLIND REVIEW" in w.results.summary.text())
    assert _decisions(w) == ["excluded"] * n, "B's own blind decisions are kept, A's are not shown"
    assert A_NOTE not in "\n".join(t for _w, t in shown_texts())
    assert w.audit.table.rowCount() == 0


def test_a_blind_review_is_its_reviewers_own_when_the_examiner_changes(
        qtbot: Any, window: Any, installed_models: Path, make_photos: Any) -> None:
    """B's blind decisions so far are not recorded under C when C takes over in the switcher: they are
    dropped (C is told) and C's review starts blind; re-reading the profiles with B still acting keeps them."""
    w = window
    w.flow.new_case(dict(CASE, case_number="2026-0933", examiner=TEST_EXAMINER[0]))
    wait_idle(qtbot, w.hub)
    build_gallery(qtbot, w, make_photos(6))
    draw_face(w.sketch.canvas)
    first = _search(qtbot, w, None)
    n = w.results_model.rowCount()
    _a_decides(qtbot, w).close()
    _b_acts(w)
    w.act_blind_review.trigger()
    wait_idle(qtbot, w.hub)
    qtbot.waitUntil(lambda: w.flow.blind_search_id == first and "BLIND REVIEW" in w.results.summary.text())
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow)
    for row in range(n - 1):  # all but one: nothing is recorded yet
        w.results.view.setCurrentIndex(w.results_model.index(row))
        w.results.view.setFocus()
        QTest.keyClick(w.results.view, Qt.Key.Key_2)
        wait_idle(qtbot, w.hub)
    assert _decisions(w) == ["excluded"] * (n - 1) + ["not_reviewed"]
    told: list[str] = []
    w.prompter.tell = lambda title, text: told.append(text)  # the window's message, read instead of shown
    w.profiles.refresh()  # control: the same examiner, read again, keeps the blind decisions
    wait_idle(qtbot, w.hub)
    assert told == [] and _decisions(w) == ["excluded"] * (n - 1) + ["not_reviewed"]
    c = ensure_profile("C. Third", "C-3003")
    w.profiles.refresh()
    assert w.status.switch_examiner(c.fingerprint, passphrase=TEST_PASSPHRASE), w.status.examiner_error
    wait_idle(qtbot, w.hub)
    qtbot.waitUntil(lambda: bool(told) and w.flow.blind_search_id == first
                    and _decisions(w) == ["not_reviewed"] * n)
    assert "C. Third (C-3003)" in told[0] and f"{n - 1} blind decision(s)" in told[0] and "not recorded" in told[0]
    assert first_examiner_shown() == [] and w.audit.table.rowCount() == 0



def _show_search(qtbot: Any, w: Any, search_id: int) -> None:
    """Double-click a recorded search under Searches in the navigator, and wait until it is on show."""
    record = next(s for s in w.cases.searches if s.id == search_id)
    w.navigator.search_activated.emit(record)
    wait_idle(qtbot, w.hub)
    qtbot.waitUntil(lambda: w.flow.shown_search_id == search_id and w.results_model.rowCount() >= 2)


def _decide_by_key(qtbot: Any, w: Any, rows: range) -> None:
    """Exclude the candidates in ``rows`` from the keyboard, as the examiner does in the grid."""
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow)
    for row in rows:
        w.results.view.setCurrentIndex(w.results_model.index(row))
        w.results.view.setFocus()
        QTest.keyClick(w.results.view, Qt.Key.Key_2)
        wait_idle(qtbot, w.hub)


def test_the_case_archive_is_not_exported_during_a_blind_review(
        qtbot: Any, window: Any, installed_models: Path, make_photos: Any, tmp_path: Path) -> None:
    """The archive holds the first examiner's decisions: Case > Export case archive is refused with a clear
    message while B's blind review is not recorded, and writes the archive once it is (control)."""
    w = window
    w.flow.new_case(dict(CASE, case_number="2026-0934", examiner=TEST_EXAMINER[0]))
    wait_idle(qtbot, w.hub)
    build_gallery(qtbot, w, make_photos(6))
    draw_face(w.sketch.canvas)
    first = _search(qtbot, w, None)
    n = w.results_model.rowCount()
    _a_decides(qtbot, w).close()
    _b_acts(w)
    w.act_blind_review.trigger()
    wait_idle(qtbot, w.hub)
    qtbot.waitUntil(lambda: w.flow.blind_search_id == first and "BLIND REVIEW" in w.results.summary.text())

    during = tmp_path / "during-blind.zip"
    w.dialogs.export_archive(str(during))  # what Case > Export case archive does once the file is chosen
    wait_idle(qtbot, w.hub)
    qtbot.waitUntil(lambda: bool(w.errors.shown), timeout=30_000)
    said = str(w.errors.shown[-1])
    assert "archive" in said and f"blind review of search {first}" in said, said
    assert not during.exists()
    assert_blind("after the refused archive export")

    # B's blind decisions are recorded: the archive is written again (control).
    _decide_by_key(qtbot, w, range(n))
    qtbot.waitUntil(lambda: w.flow.blind_search_id is None and _decisions(w).count("possible") == 1)
    wait_idle(qtbot, w.hub)
    after = tmp_path / "after-blind.zip"
    w.dialogs.export_archive(str(after))
    wait_idle(qtbot, w.hub, timeout=60_000)
    qtbot.waitUntil(after.exists, timeout=60_000)
    assert len(w.errors.shown) == 1, w.errors.shown


def _confirm_box(qtbot: Any, w: Any) -> QMessageBox:
    found: list[QMessageBox] = []

    def shown() -> bool:
        box = w.findChild(QMessageBox, "ReplaceBlindReview")
        if box is not None and box.isVisible():
            found[:] = [box]
        return bool(found)

    qtbot.waitUntil(shown, timeout=10_000)
    return found[0]


def test_starting_a_second_blind_review_asks_before_dropping_the_first(
        qtbot: Any, window: Any, installed_models: Path, make_photos: Any) -> None:
    """B's blind decisions on one search are not dropped without a word when B starts a blind review of
    another search: B is asked first; declining keeps the first review and its decisions, accepting
    starts the second."""
    w = window
    w.flow.new_case(dict(CASE, case_number="2026-0935", examiner=TEST_EXAMINER[0]))
    wait_idle(qtbot, w.hub)
    build_gallery(qtbot, w, make_photos(6))
    draw_face(w.sketch.canvas)
    first = _search(qtbot, w, None)
    n = w.results_model.rowCount()
    _a_decides(qtbot, w).close()
    second = _search(qtbot, w, first)  # A's second search
    _b_acts(w)
    _show_search(qtbot, w, first)
    w.act_blind_review.trigger()
    wait_idle(qtbot, w.hub)
    qtbot.waitUntil(lambda: w.flow.blind_search_id == first and "BLIND REVIEW" in w.results.summary.text())
    _decide_by_key(qtbot, w, range(n - 1))  # all but one: nothing is recorded yet
    kept = ["excluded"] * (n - 1) + ["not_reviewed"]
    assert _decisions(w) == kept

    # B shows the second search and starts a blind review of it: asked, B declines.
    _show_search(qtbot, w, second)
    w.act_blind_review.trigger()
    box = _confirm_box(qtbot, w)
    assert f"search {first}" in box.text() and f"{n - 1} blind decision(s)" in box.text(), box.text()
    assert w.flow.blind_search_id == first, "nothing is dropped before B answers"
    cancel = box.button(QMessageBox.StandardButton.Cancel)
    assert cancel is not None
    cancel.click()
    wait_idle(qtbot, w.hub)
    assert w.flow.blind_search_id == first and len(w.flow.blind_pending) == n - 1
    _show_search(qtbot, w, first)
    qtbot.waitUntil(lambda: "BLIND REVIEW" in w.results.summary.text())
    assert _decisions(w) == kept, "declining keeps the first blind review and B's decisions on it"

    # Asked again, B accepts: the blind review of the second search starts.
    _show_search(qtbot, w, second)
    w.act_blind_review.trigger()
    box = _confirm_box(qtbot, w)
    accept = box.findChild(QAbstractButton, "StartBlindReview")
    assert accept is not None
    accept.click()
    wait_idle(qtbot, w.hub)
    qtbot.waitUntil(lambda: w.flow.blind_search_id == second and f"BLIND REVIEW of search {second}"
                    in w.results.summary.text())
    assert w.flow.blind_pending == {} and set(_decisions(w)) == {"not_reviewed"}
    assert w.errors.shown == []
