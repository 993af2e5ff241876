"""The agency's search policy through the window's real wiring: pressing Search asks for the authorization
fields first (prefilled from the case's last search, never the approval), refuses with the engine's reason
when they are missing and submits nothing, records them with the search (printed in the report), caps the
candidate list at the policy's longest with a visible note, and under a policy that requires intake asks
for the probe's intake instead of searching. Without a policy file the window is unchanged (the existing
window tests, and the control below)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QPushButton

from engine import paths
from engine.cases import list_searches, open_case
from engine.cases.authorization import authorization
from sketchface_desktop.ops import policy as policy_ops
from tests.desktop.conftest import wait_idle
from tests.desktop.test_case_workflow import export_pdf, pdf_text
from tests.desktop.test_examiner_flow import CASE, build_gallery, draw_face

pytestmark = pytest.mark.gui
SHOTS = Path(os.environ.get("SKETCHFACE_SHOTS", "/tmp/shots"))

POLICY = """required = ["purpose", "legal_basis", "requesting_officer", "supervisor_approval"]
max_candidates = 3
"""
INTAKE_POLICY = "require_intake = true\n"
GIVEN = {"purpose": "Identify the street robbery suspect", "legal_basis": "Robbery",
         "requesting_officer": "DC Example 4411"}


def _write_policy(text: str) -> None:
    paths.config_dir().mkdir(parents=True, exist_ok=True)
    (paths.config_dir() / "search_policy.toml").write_text(text, encoding="utf-8")


def _press_search(qtbot: Any, w: Any) -> None:
    QTest.mouseClick(w.results.search_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, w.hub)


def _searches(case_number: str) -> list[Any]:
    with open_case(case_number) as case:
        return list(list_searches(case))


def _prepare(qtbot: Any, w: Any, make_photos: Any, installed_models: Path, case_number: str) -> None:
    shutil.rmtree(installed_models / "sketch_encoder", ignore_errors=True)  # the labelled ArcFace baseline
    w.flow.new_case(dict(CASE, case_number=case_number))
    wait_idle(qtbot, w.hub)
    build_gallery(qtbot, w, make_photos(6))
    draw_face(w.sketch.canvas)


def test_policy_asks_refuses_records_and_caps(qtbot: Any, window: Any, installed_models: Path, make_photos: Any,
                                              tmp_path: Path) -> None:
    w = window
    _write_policy(POLICY)
    _prepare(qtbot, w, make_photos, installed_models, "2026-2210")
    w.results.k.setValue(50)

    _press_search(qtbot, w)
    dialog = w.authorization.dialog
    assert dialog is not None and dialog.isVisible(), "the form comes before any search"
    assert list(dialog.edits) == ["purpose", "legal_basis", "requesting_officer", "supervisor_approval"]
    assert all(e.text() == "" for e in dialog.edits.values()), "a first search of the case: nothing to prefill"
    assert "at most 3 candidates" in dialog.note.text() and dialog.note.isVisible(), "the cap, in the form"
    assert "at most 3 candidates" in w.status.currentMessage(), "and in the status bar"
    assert w.searches.job is None and _searches("2026-2210") == [], "nothing submitted while the form is open"

    # (b) Left empty: the engine's reason, the form stays open, nothing is submitted.
    ok = dialog.findChild(QPushButton, "AuthorizationOk")
    ok.click()
    assert dialog.isVisible()
    assert dialog.error.text().startswith("The agency's search policy requires purpose, offence or legal basis, "
                                          "requesting officer, supervisor approval"), dialog.error.text()
    for key, value in GIVEN.items():
        dialog.edits[key].setText(value)
    ok.click()  # all but the supervisor's approval
    assert dialog.isVisible() and "requires supervisor approval" in dialog.error.text(), dialog.error.text()
    SHOTS.mkdir(parents=True, exist_ok=True)
    dialog.grab().save(str(SHOTS / "policy_authorization_form.png"))
    wait_idle(qtbot, w.hub)
    assert w.searches.job is None and _searches("2026-2210") == []

    # (c), (d) Given: the search runs, capped, and the fields are recorded with it.
    dialog.edits["supervisor_approval"].setText("Insp. Approver, ref 77")
    ok.click()
    assert not dialog.isVisible()
    wait_idle(qtbot, w.hub, timeout=120_000)
    qtbot.waitUntil(lambda: w.flow.shown_search_id is not None, timeout=60_000)
    wait_idle(qtbot, w.hub)
    assert 1 <= w.results_model.rowCount() <= 3, "capped at the policy's longest list"
    [record] = _searches("2026-2210")
    assert "policy's longest list" in record.label, "the cap is visible in the search's title"
    with open_case("2026-2210") as case:
        auth = authorization(case, record.id)
    assert auth is not None
    assert auth["fields"] == dict(GIVEN, supervisor_approval="Insp. Approver, ref 77")
    assert auth["policy_sha256"] == policy_ops.current().sha256  # type: ignore[union-attr]
    assert w.errors.shown == []

    # (a) The next search of the case: prefilled from the last one, never with the approval; cancel runs nothing.
    _press_search(qtbot, w)
    again = w.authorization.dialog
    assert again is not dialog and again.isVisible()
    assert {k: e.text() for k, e in again.edits.items()} == dict(GIVEN, supervisor_approval="")
    again.reject()
    wait_idle(qtbot, w.hub)
    assert len(_searches("2026-2210")) == 1, "cancelled: nothing submitted"

    text = pdf_text(export_pdf(qtbot, w, tmp_path / "policy.pdf"))
    assert ("Authorization: legal basis: Robbery; purpose: Identify the street robbery suspect; requesting "
            "officer: DC Example 4411; supervisor approval: Insp. Approver, ref 77") in text, \
        text[text.find("Search 1 —"):][:600]


def test_policy_without_a_case_refuses_and_reading_it_is_quick(qtbot: Any, window: Any, installed_models: Path,
                                                               make_photos: Any) -> None:
    """Fields are kept in a case: with none open the search is refused, said above the results, no form."""
    w = window
    _write_policy(POLICY)
    shutil.rmtree(installed_models / "sketch_encoder", ignore_errors=True)
    build_gallery(qtbot, w, make_photos(3))
    draw_face(w.sketch.canvas)
    _press_search(qtbot, w)
    assert w.authorization.dialog is None and w.searches.job is None
    assert "Search not run: The agency's search policy requires" in w.results.summary.text()
    assert "Create or open a case first." in w.results.summary.text()

    # Reading the policy happens on the GUI thread: it must stay far below a frame budget.
    start = time.perf_counter()
    for _ in range(20):
        policy_ops.current()
    per_read_ms = (time.perf_counter() - start) / 20 * 1000
    print(f"policy read: {per_read_ms:.3f} ms per read")
    assert per_read_ms < 50


def test_policy_requiring_intake_asks_for_the_intake_first(qtbot: Any, window: Any, installed_models: Path,
                                                           make_photos: Any) -> None:
    w = window
    _write_policy(INTAKE_POLICY)
    _prepare(qtbot, w, make_photos, installed_models, "2026-2211")
    _press_search(qtbot, w)
    intake = w.intake.dialog
    assert intake is not None and intake.isVisible(), "the intake form instead of a search"
    assert w.searches.job is None and _searches("2026-2211") == []
    assert "requires an intake of each probe" in w.results.exam_notice.text()
    assert w.authorization.dialog is None, "this policy asks for no fields"

    intake.source.setCurrentText("artist-sketch")
    intake.suitability.setCurrentText("suitable")
    intake.findChild(QPushButton, "IntakeOk").click()
    wait_idle(qtbot, w.hub)
    qtbot.waitUntil(lambda: w.exam.sheet_has_intake() is True)

    _press_search(qtbot, w)
    wait_idle(qtbot, w.hub, timeout=120_000)
    qtbot.waitUntil(lambda: w.flow.shown_search_id is not None, timeout=60_000)
    wait_idle(qtbot, w.hub)
    [record] = _searches("2026-2211")
    qtbot.waitUntil(lambda: record.id in w.exam.status.searches)
    assert w.exam.status.searches[record.id]["before_intake"] is False
    with open_case("2026-2211") as case:
        auth = authorization(case, record.id)
    assert auth is not None and auth["fields"] == {}, "recorded under the policy, no fields required"
    assert w.errors.shown == []


def test_without_a_policy_file_search_runs_at_once(qtbot: Any, window: Any, installed_models: Path,
                                                   make_photos: Any) -> None:
    """Control: no policy file, no form, no cap, no authorization recorded."""
    w = window
    assert not (paths.config_dir() / "search_policy.toml").exists()
    _prepare(qtbot, w, make_photos, installed_models, "2026-2212")
    w.results.k.setValue(50)
    QTest.mouseClick(w.results.search_button, Qt.MouseButton.LeftButton)
    assert w.searches.job is not None, "submitted on the press, nothing asked"
    wait_idle(qtbot, w.hub, timeout=120_000)
    qtbot.waitUntil(lambda: w.flow.shown_search_id is not None, timeout=60_000)
    wait_idle(qtbot, w.hub)
    assert w.authorization.dialog is None and w.results_model.rowCount() > 3
    [record] = _searches("2026-2212")
    with open_case("2026-2212") as case:
        assert authorization(case, record.id) is None


def test_fields_given_for_one_case_are_not_used_in_another(qtbot: Any, window: Any, installed_models: Path,
                                                           make_photos: Any) -> None:
    """The form answers for the case open when Search was pressed: closed meanwhile, nothing is submitted."""
    w = window
    _write_policy(POLICY)
    _prepare(qtbot, w, make_photos, installed_models, "2026-2213")
    _press_search(qtbot, w)
    dialog = w.authorization.dialog
    assert dialog is not None and dialog.isVisible()
    for key, value in dict(GIVEN, supervisor_approval="Insp. Approver, ref 78").items():
        dialog.edits[key].setText(value)
    w.flow.close_case()
    wait_idle(qtbot, w.hub)
    assert not w.cases.is_open
    dialog.findChild(QPushButton, "AuthorizationOk").click()
    assert "The case changed while the authorization form was open" in dialog.error.text(), dialog.error.text()
    wait_idle(qtbot, w.hub)
    assert w.searches.job is None and _searches("2026-2213") == []
