"""The window's Line-up action: build from a shown candidate with the description of a witness record the
options dialog lists, review and swap a filler with a reason, save the administration PDF, record the
witness's response — all through the real wiring (results panel → controller → ops → engine)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pypdf
import pytest
from PySide6.QtWidgets import QDialog, QFileDialog, QInputDialog

from engine.cases import open_case
from engine.cases import witness as witness_records
from engine.cases.lineup import list_lineups
from sketchface_desktop.ops.lineups import LineupOptions
from sketchface_desktop.views.lineup_dialog import LineupOptionsDialog, WitnessResponseDialog
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
    w1 = witness_records.record_witness(case, "W-01", {"sex": "M", "age_band": "30-39", "hair": "short"})
    witness_records.record_witness(case, "W-02", {"sex": "F", "age_band": "20-29"})
    case.close()
    w.cases.open(case_id)
    qtbot.waitUntil(lambda: w.cases.is_open and bool(w.cases.searches), timeout=30_000)
    w.flow.show_search(w.cases.searches[0])
    qtbot.waitUntil(lambda: w.flow.shown_search_id == sid and w.results_model.rowCount() == 3, timeout=30_000)
    row = next(i for i in range(3) if w.results_model.row(i).face_id == fid)
    w.results.view.setCurrentIndex(w.results_model.index(row))
    w.results.set_can_decide(True)
    asked: list[Any] = []

    filled: list[tuple[str, str]] = []

    def answer(dialog: Any) -> int:  # the examiner first cancels, then picks witness W-01 and accepts
        assert [dialog.witness.itemText(i) for i in range(dialog.witness.count())][1:] == [
            f"{w1.id} · W-01 (taken {w1.taken_on})", f"{w1.id + 1} · W-02 (taken {w1.taken_on})"]
        for i in (2, 1):  # the values follow the chosen record (W-02 then W-01)
            dialog.witness.setCurrentIndex(i)
            filled.append((dialog.sex_value.text(), dialog.age_value.text()))
        asked.append(dialog.options())
        return int(QDialog.DialogCode.Rejected if len(asked) == 1 else QDialog.DialogCode.Accepted)

    monkeypatch.setattr(LineupOptionsDialog, "exec", answer)
    w.lineups.build_for(w.results.current_row())  # cancelled: nothing built
    qtbot.waitUntil(lambda: len(asked) == 1, timeout=30_000)
    wait_idle(qtbot, w.hub)
    assert w.lineups.dialog is None
    w.results.act_lineup.trigger()
    qtbot.waitUntil(lambda: w.lineups.dialog is not None, timeout=30_000)
    dialog: Any = w.lineups.dialog
    assert filled[:2] == [("F", "20-29"), ("M", "30-39")]
    assert asked[-1] == LineupOptions(5, ("sex", "age_band"), w1.id, {})
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
    # the witness's response: a statement left empty records nothing; then position 2 and the words
    said = {"confidence": "", "pick": 2}

    def respond(d: Any) -> int:
        d.choice.setCurrentIndex(said["pick"])
        d.confidence.setText(str(said["confidence"]))
        d.administrator.setText("PC Jones")
        return int(QDialog.DialogCode.Accepted)

    monkeypatch.setattr(WitnessResponseDialog, "exec", respond)
    dialog.respond.click()
    assert "Nothing recorded" in dialog.message.text()
    said["confidence"] = "I am fairly sure it is number two"
    dialog.respond.click()
    qtbot.waitUntil(lambda: bool(dialog.shown.responses), timeout=30_000)
    wait_idle(qtbot, w.hub)
    assert "Recorded the witness's response: position 2" in dialog.message.text()
    assert "I am fairly sure it is number two" in dialog.info.text()
    assert not any(b.isEnabled() for b in dialog.swap_buttons.values())  # shown to a witness: no more swaps
    check = open_case(case_id)
    try:
        stored = list_lineups(check)
        assert len(stored) == 1 and stored[0].swaps[0].reason == "looks like the victim's cousin"
        assert stored[0].params["witness"]["id"] == w1.id
        assert set(stored[0].params["description_sources"].values()) == {f"witness record {w1.id}"}
        [r] = stored[0].responses
        assert (r.choice, r.confidence, r.administrator) == (2, "I am fairly sure it is number two", "PC Jones")
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
