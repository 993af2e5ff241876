"""The window's case-archive export replaces an existing archive only after its save dialog asked.

The save dialog confirms overwriting a file (Qt's default), so a path chosen there replaces the archive;
a path given without that dialog is refused like ``sketchface case export`` without ``--overwrite``, and
the earlier archive stays byte-identical.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QFileDialog

from engine.fsutil import sha256_file
from tests.desktop.conftest import wait_job
from tests.desktop.test_examiner_flow import CASE


def test_export_replaces_only_after_the_save_dialog(qtbot: Any, window: Any, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    w = window
    wait_job(qtbot, w.hub, w.flow.new_case(dict(CASE, case_number="2026-0811")))
    target = tmp_path / "case.zip"
    wait_job(qtbot, w.hub, w.dialogs.export_archive(str(target)))
    first = target.read_bytes()
    digest = sha256_file(target)

    wait_job(qtbot, w.hub, w.dialogs.export_archive(str(target)))  # no dialog asked: refused
    qtbot.waitUntil(lambda: bool(w.errors.shown), timeout=30_000)
    assert str(target) in w.errors.shown[-1] and digest in w.errors.shown[-1], w.errors.shown
    assert target.read_bytes() == first

    # Control: chosen in the save dialog (which confirmed replacing it), the archive is replaced.
    shown = len(w.errors.shown)
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a, **k: (str(target), "Case archive (*.zip)")))
    wait_job(qtbot, w.hub, w.dialogs.export_archive())
    assert len(w.errors.shown) == shown, w.errors.shown
    assert target.read_bytes() != first
