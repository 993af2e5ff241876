"""The window tells the examiner what the case registry reported, and pins the sender's key on archive import."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QMessageBox

from sketchface_desktop.controllers.case_controller import CaseController
from sketchface_desktop.views.case_dialogs import ArchiveImportDialog
from sketchface_desktop.workers import JobState
from tests.desktop.conftest import wait_job
from tests.desktop.fakes import InlineRunner

pytestmark = pytest.mark.gui


def plant_garbled_registry() -> Path:
    """A registry file that is not JSON (a torn write, a disk fault) where the workstation keeps it."""
    from engine.cases import registry

    path = registry.registry_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"cases": {"c1": {"folder": ', "utf-8")
    return path


def test_the_case_list_reports_a_garbled_registry_once(qtbot: Any) -> None:
    cases = CaseController(InlineRunner())
    notices: list[str] = []
    cases.notice.connect(notices.append)
    listed: list[Any] = []
    cases.list_cases(listed.append)
    assert notices == [] and listed == [[]], "negative control: no registry, nothing to report"
    path = plant_garbled_registry()
    cases.list_cases(listed.append)
    assert len(notices) == 1 and "could not be read" in notices[0] and "moved aside" in notices[0]
    assert not path.exists() and list(path.parent.glob(path.name + ".unreadable-*"))
    cases.list_cases(listed.append)
    assert len(notices) == 1, "a notice is shown once"


def test_the_window_shows_the_registry_notice(qtbot: Any, window: Any) -> None:
    w = window
    plant_garbled_registry()
    wait_job(qtbot, w.hub, w.cases.list_cases(lambda _cases: None))
    box = w.findChild(QMessageBox, "CaseNotice")
    assert box is not None and box.isVisible() and not box.isModal()
    assert "moved aside" in box.text() and "moved aside" in w.status.currentMessage()


@pytest.fixture
def sender_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sketchface_home: Path) -> dict[str, Any]:
    """A case exported by a second workstation (its own home and key); the receiver's home is restored."""
    from engine import examiners
    from engine.cases import anchor, create_case, export_case

    monkeypatch.setenv("SKETCHFACE_HOME", str(tmp_path / "sender_home"))
    examiners.add("Det. Sender", "S-0911")  # the sender's own examiner profile on their workstation
    with create_case("2026-0911", "Handed over", examiner="Det. Sender") as case:
        res = export_case(case, tmp_path / "handed_over.zip")
    fingerprint = anchor.key_fingerprint(anchor.public_key_hex())
    monkeypatch.setenv("SKETCHFACE_HOME", str(sketchface_home))
    assert anchor.key_fingerprint(anchor.public_key_hex()) != fingerprint, "the receiver has another key"
    return {"path": str(res.path), "sha256": res.sha256, "fingerprint": fingerprint,
            "receiver": anchor.key_fingerprint(anchor.public_key_hex())}


def test_archive_import_pins_the_senders_key_and_shows_the_signer(qtbot: Any, sender_archive: dict[str, Any],
                                                                   window: Any) -> None:
    w, a = window, sender_archive
    job = w.dialogs.import_archive(a["path"], a["sha256"], a["receiver"])  # a real key, but not the sender's
    wait_job(qtbot, w.hub, job)
    assert job.state is JobState.FAILED and not w.cases.is_open
    assert w.errors.shown and "not the" in w.errors.shown[-1] and a["fingerprint"] in w.errors.shown[-1]
    assert w.findChild(QMessageBox, "ArchiveImported") is None
    pasted = a["fingerprint"][:32].upper()  # as copied from the sender: upper case, a 32-digit prefix
    job = w.dialogs.import_archive(a["path"], a["sha256"], " ".join(pasted[i:i + 4] for i in range(0, 32, 4)))
    wait_job(qtbot, w.hub, job)
    assert job.state is JobState.DONE and w.cases.is_open and w.cases.info.case_number == "2026-0911"
    box = w.findChild(QMessageBox, "ArchiveImported")
    assert box is not None and not box.isModal()
    assert a["fingerprint"] in box.text() and "another workstation" in box.text() and "matches" in box.text()


def test_the_import_dialog_normalises_and_checks_what_the_sender_gave(qtbot: Any) -> None:
    dialog = ArchiveImportDialog("/tmp/case.zip")
    qtbot.addWidget(dialog)
    dialog.sha256.setText("AB" * 32)
    dialog.key.setText("12:34 56")  # too short to pin anything
    dialog._check()
    assert dialog.result() != ArchiveImportDialog.DialogCode.Accepted and not dialog.problem.isHidden()
    dialog.key.setText("ABCD:EF01 2345 6789")
    dialog._check()
    assert dialog.result() == ArchiveImportDialog.DialogCode.Accepted
    assert dialog.values() == ("ab" * 32, "abcdef0123456789")
