"""Who is working, in the window: the first-run question, Settings > Examiners, the status bar's switcher;
and the smaller truths: a new case's incident date starts unknown, the demo says DEMO in the title and the
status bar, and its stand-in models never show as a green "ready"."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QPushButton

from engine import examiners
from engine.demo import MARKER
from tests.conftest import TEST_EXAMINER, TEST_PASSPHRASE
from tests.desktop.conftest import wait_idle
from tests.examiner_helpers import REVIEWER, ensure_profile

pytestmark = pytest.mark.gui


def _window(qtbot: Any, show_guide: bool = False) -> Any:
    from sketchface_desktop.app import create_application
    from sketchface_desktop.views.main_window import MainWindow

    create_application([])
    w = MainWindow(show_guide=show_guide)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    qtbot.waitUntil(lambda: w.started)
    wait_idle(qtbot, w.hub)
    return w


def _close(w: Any) -> None:
    w.setProperty("confirm_close", False)
    w.close()
    w.hub.shutdown()


@pytest.fixture
def demo_window(qtbot: Any, sketchface_home: Path, installed_models: Path) -> Iterator[Any]:
    """A window started on a demo home (the marker 'sketchface demo' writes), with stand-in models installed."""
    (sketchface_home / MARKER).write_text(json.dumps({"note": "test demo home"}), "utf-8")
    w = _window(qtbot)
    yield w
    _close(w)


@pytest.mark.no_examiner
def test_first_run_without_a_profile_asks_who_is_working(qtbot: Any) -> None:
    w = _window(qtbot)
    try:
        dialog = w.wiring.examiner_setup
        assert dialog is not None and dialog.isVisible(), "the window asks before anything is recorded"
        assert w.status.acting_text() == "Examiner: nobody chosen"
        dialog.findChild(QPushButton, "ExaminerSetupOk").click()
        assert dialog.isVisible() and "display name" in dialog.error.text(), "empty fields are refused"
        dialog.name.setText("C. Newcomer")
        dialog.identifier.setText("C-3003")
        if dialog.asks_passphrase:  # no keyring here: the key file's passphrase
            dialog.passphrase.setText(TEST_PASSPHRASE)
            dialog.repeat.setText("something else")
            dialog.findChild(QPushButton, "ExaminerSetupOk").click()
            assert dialog.isVisible() and "differ" in dialog.error.text()
            dialog.repeat.setText(TEST_PASSPHRASE)
        dialog.findChild(QPushButton, "ExaminerSetupOk").click()
        assert not dialog.isVisible(), dialog.error.text()
        me = examiners.require_current()
        assert (me.name, me.identifier) == ("C. Newcomer", "C-3003")
        assert w.status.acting_text() == "Examiner: C. Newcomer (C-3003)"
    finally:
        _close(w)


@pytest.mark.no_examiner
def test_first_run_asks_who_is_working_before_the_model_guide(qtbot: Any) -> None:
    """With neither a profile nor models: the examiner question first, the model guide once it is answered."""
    w = _window(qtbot, show_guide=True)
    try:
        dialog = w.wiring.examiner_setup
        assert dialog is not None and dialog.isVisible() and w.dialogs.guide is None
        dialog.reject()  # "Later": nothing is recorded until a profile exists
        qtbot.waitUntil(lambda: w.dialogs.guide is not None and w.dialogs.guide.isVisible())
        assert examiners.current() is None
    finally:
        _close(w)


def test_a_window_with_a_profile_does_not_ask(qtbot: Any, window: Any) -> None:
    """Control: with a profile chosen, no question; the switcher names the acting examiner."""
    assert window.wiring.examiner_setup is None
    assert window.status.acting_text() == f"Examiner: {TEST_EXAMINER[0]} ({TEST_EXAMINER[1]})"


def test_status_bar_switcher_changes_the_acting_examiner_and_a_wrong_passphrase_changes_nothing(
        qtbot: Any, window: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    w = window
    bob = ensure_profile(*REVIEWER)
    w.profiles.refresh()
    box = w.status.examiner_box
    assert box.findData(bob.fingerprint) >= 0, "every profile is in the switcher"
    examiners._unlocked.pop(bob.fingerprint, None)  # B's key file is locked in this process
    monkeypatch.delenv("SKETCHFACE_EXAMINER_PASSPHRASE")
    assert not w.status.switch_examiner(bob.fingerprint, passphrase="not the passphrase")
    assert "passphrase" in w.status.examiner_error and examiners.require_current().identifier == TEST_EXAMINER[1]
    assert w.status.acting_text() == f"Examiner: {TEST_EXAMINER[0]} ({TEST_EXAMINER[1]})"
    assert w.status.switch_examiner(bob.fingerprint, passphrase=TEST_PASSPHRASE)
    assert examiners.require_current().fingerprint == bob.fingerprint
    assert w.status.acting_text() == f"Examiner: {REVIEWER[0]} ({REVIEWER[1]})"


def test_settings_examiners_page_adds_uses_exports_accepts_imports_and_revokes(
        qtbot: Any, window: Any, tmp_path: Path) -> None:
    w = window
    dialog = w.dialogs.open_settings("examiners")
    page = dialog.examiners_page
    assert dialog.tabs.currentWidget() is page and page.table.rowCount() == 1
    assert page.add_examiner("B. Reviewer", "B-2002", TEST_PASSPHRASE) == ""
    assert page.table.rowCount() == 2 and examiners.require_current().identifier == "B-2002"
    assert w.status.acting_text() == "Examiner: B. Reviewer (B-2002)", "the window's switcher follows the page"
    assert page.add_examiner("B. Other", "B-2002", TEST_PASSPHRASE) != "", "a second profile with one identifier"
    page.table.selectRow(0)
    assert page.use_selected() == "" and examiners.require_current().identifier == TEST_EXAMINER[1]
    out = page.export_key(str(tmp_path / "a.key.json"))
    assert out is not None and json.loads(out.read_text())["fingerprint"] == examiners.require_current().fingerprint
    # Another workstation's examiner: accepted one by one, then from an agency file, then revoked.
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    pubs = [Ed25519PrivateKey.generate().public_key().public_bytes_raw().hex() for _ in range(2)]
    (tmp_path / "d.key.json").write_text(json.dumps({"name": "D. Remote", "identifier": "D-4004",
                                                     "public_key": pubs[0]}))
    assert page.accept_key(str(tmp_path / "d.key.json")) == "" and page.trust.rowCount() == 1
    (tmp_path / "agency.json").write_text(json.dumps({"agency": "County", "examiners": [
        {"name": "E. Agency", "identifier": "E-5005", "public_key": pubs[1]}]}))
    assert page.import_agency(str(tmp_path / "agency.json")) == "" and page.trust.rowCount() == 2
    (tmp_path / "bad.json").write_text(json.dumps({"name": "X", "public_key": "zz"}))
    assert "32-byte" in page.accept_key(str(tmp_path / "bad.json")), "a malformed key is refused, said why"
    page.trust.selectRow(0)
    assert page.revoke_selected("left the unit") == ""
    assert page.trust.item(0, 3).text().startswith("REVOKED")
    dialog.reject()


def test_new_case_incident_date_starts_unknown_and_the_examiner_is_the_acting_profile(
        qtbot: Any, window: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from sketchface_desktop.views.case_dialogs import CaseDetailsDialog

    seen: list[Any] = []

    def accept_as_shown(dialog: Any) -> int:
        seen.append(dialog)
        dialog.number.setText("2026-0931")
        return int(CaseDetailsDialog.DialogCode.Accepted.value)

    monkeypatch.setattr(CaseDetailsDialog, "exec", accept_as_shown)
    window.act_new_case.trigger()
    wait_idle(qtbot, window.hub)
    dialog = seen[0]
    assert not dialog.date_known.isChecked() and not dialog.date.isEnabled()
    assert dialog.examiner.text() == TEST_EXAMINER[0]
    qtbot.waitUntil(lambda: window.cases.info is not None)
    assert window.cases.info.incident_date == "", "nobody ticked 'known': no date is recorded"
    # Control: a case whose date is known keeps it ticked when edited.
    known = CaseDetailsDialog(window, _with_date(window.cases.info, "2026-03-01"))
    assert known.date_known.isChecked() and known.values()["incident_date"] == "2026-03-01"


def _with_date(info: Any, date: str) -> Any:
    from dataclasses import replace

    return replace(info, incident_date=date)


def test_demo_says_demo_in_title_and_status_bar_and_its_models_are_never_ready(qtbot: Any, demo_window: Any) -> None:
    w = demo_window
    assert w.windowTitle().startswith("DEMO"), w.windowTitle()
    assert w.status.demo_label.isVisible() and w.status.demo_label.text() == "DEMO"
    qtbot.waitUntil(lambda: bool(w.status.model_state))
    assert w.status.models_label.text() == "DEMO models (random weights)"
    assert w.status.models_label.property("role") != "badge-ok", "stand-ins are never green"
    dialog = w.dialogs.open_settings("models")
    qtbot.waitUntil(lambda: dialog.models_page.table.rowCount() > 0)
    page = dialog.models_page
    assert page.demo_banner.isVisibleTo(page)
    installed = [page.table.item(r, 2).text() for r in range(page.table.rowCount())]
    assert "DEMO models (random weights)" in installed and "installed" not in installed
    dialog.reject()


def test_control_a_real_home_is_not_labelled_demo(qtbot: Any, window: Any, installed_models: Path) -> None:
    w = window
    assert "DEMO" not in w.windowTitle() and not w.status.demo_label.isVisible()
    w.status.refresh_models()
    wait_idle(qtbot, w.hub)
    qtbot.waitUntil(lambda: bool(w.status.model_state))
    assert w.status.models_label.text().startswith("Models: ready")
