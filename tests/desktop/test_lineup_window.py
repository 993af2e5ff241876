"""The window's Line-up action: build from a shown candidate, review and swap a filler with a reason, save
the administration PDF — all through the real wiring (results panel → controller → ops → engine)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pypdf
import pytest
from PySide6.QtWidgets import QDialog, QFileDialog, QInputDialog

from engine.cases import open_case
from engine.cases.lineup import list_lineups
from sketchface_desktop.views.lineup_dialog import LineupOptionsDialog
from tests.desktop.conftest import wait_idle
from tests.engine.test_lineup_support import build_gallery, case_with_candidate

pytestmark = pytest.mark.gui
SHOTS = Path("/tmp/shots")


def test_lineup_action_builds_reviews_swaps_and_saves(qtbot: Any, window: Any, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    w = window
    g = build_gallery(w.session)
    case, sid, fid = case_with_candidate(g)
    case_id = case.case_id
    case.close()
    w.cases.open(case_id)
    qtbot.waitUntil(lambda: w.cases.is_open and bool(w.cases.searches), timeout=30_000)
    w.flow.show_search(w.cases.searches[0])
    qtbot.waitUntil(lambda: w.flow.shown_search_id == sid and w.results_model.rowCount() == 3, timeout=30_000)
    row = next(i for i in range(3) if w.results_model.row(i).face_id == fid)
    w.results.view.setCurrentIndex(w.results_model.index(row))
    w.results.set_can_decide(True)
    asked: list[Any] = []

    def answer(dialog: Any) -> int:  # the examiner first cancels, then accepts the defaults
        asked.append(dialog.options())
        return int(QDialog.DialogCode.Rejected if len(asked) == 1 else QDialog.DialogCode.Accepted)

    monkeypatch.setattr(LineupOptionsDialog, "exec", answer)
    assert w.lineups.build_for(w.results.current_row()) is None  # cancelled: nothing built
    w.results.act_lineup.trigger()
    qtbot.waitUntil(lambda: w.lineups.dialog is not None, timeout=30_000)
    dialog = w.lineups.dialog
    assert asked[-1] == (5, ("sex", "age_band"))
    assert dialog.shown.description == {"sex": "M", "age_band": "30-39"}
    shown = dialog.shown
    assert len(shown.members) == 6 and sum(m["role"] == "suspect" for m in shown.members) == 1
    assert "Similarity band [" in dialog.info.text() and "Distinctiveness R =" in dialog.info.text()
    assert not dialog.warning.isVisible()
    filler = next(m for m in shown.members if m["role"] == "filler")
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *a, **k: ("looks like the victim's cousin", True)))
    dialog.swap_buttons[filler["position"]].click()
    qtbot.waitUntil(lambda: bool(dialog.shown.swaps), timeout=30_000)
    assert "looks like the victim's cousin" in dialog.info.text()
    if SHOTS.is_dir():
        dialog.grab().save(str(SHOTS / "lineup_dialog.png"))
    new = next(m for m in dialog.shown.members if m["position"] == filler["position"])
    assert new["subject_id"] != filler["subject_id"]
    out = tmp_path / "lineup.pdf"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(out), "PDF (*.pdf)")))
    dialog.mode.setCurrentText("sequential")
    dialog.save.click()
    qtbot.waitUntil(out.exists, timeout=30_000)
    wait_idle(qtbot, w.hub)
    text = "".join(p.extract_text() or "" for p in pypdf.PdfReader(str(out)).pages)
    assert "Photograph 6 of 6" in text and "suspect" not in text.lower()
    assert "Saved the administration material" in dialog.message.text()
    check = open_case(case_id)
    try:
        stored = list_lineups(check)
        assert len(stored) == 1 and stored[0].swaps[0].reason == "looks like the victim's cousin"
        assert check.verify().ok
    finally:
        check.close()


def test_lineup_action_on_a_gallery_too_small_says_why_and_builds_nothing(qtbot: Any, window: Any,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    w = window
    g = build_gallery(w.session, per_group=3, groups=(("M", "30-39"), ("F", "20-29")))
    case, sid, fid = case_with_candidate(g, k=1)
    case_id = case.case_id
    case.close()
    w.cases.open(case_id)
    qtbot.waitUntil(lambda: w.cases.is_open and bool(w.cases.searches), timeout=30_000)
    w.flow.show_search(w.cases.searches[0])
    qtbot.waitUntil(lambda: w.flow.shown_search_id == sid and w.results_model.rowCount() == 1, timeout=30_000)
    w.results.view.setCurrentIndex(w.results_model.index(0))
    monkeypatch.setattr(LineupOptionsDialog, "exec", lambda _d: int(QDialog.DialogCode.Accepted))
    w.results.set_can_decide(True)
    w.results.act_lineup.trigger()
    qtbot.waitUntil(lambda: "at least 20 are needed" in w.results.summary.text(), timeout=30_000)
    wait_idle(qtbot, w.hub)
    assert w.lineups.dialog is None
    check = open_case(case_id)
    try:
        assert list_lineups(check) == []
    finally:
        check.close()
