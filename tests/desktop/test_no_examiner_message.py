"""A case write with no examiner profile tells the window's examiner how to choose one in the window (the
status bar's examiner switcher, Settings > Examiners), not a command to type; the command line keeps its
own wording (the control: the engine's hint is unchanged, only the window words it differently)."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtWidgets import QMessageBox

from engine import examiners
from engine.cli import main
from tests.desktop.conftest import wait_idle
from tests.desktop.test_examiner_flow import CASE

pytestmark = pytest.mark.gui


@pytest.mark.no_examiner
def test_a_case_write_without_an_examiner_points_to_the_switcher_and_settings(qtbot: Any, window: Any) -> None:
    w = window
    setup = w.wiring.examiner_setup
    assert setup is not None and setup.isVisible(), "the first run asks who is working"
    setup.reject()  # "Later": the examiner goes on without a profile
    assert examiners.current() is None
    w.flow.new_case(dict(CASE, case_number="2026-0941"))
    wait_idle(qtbot, w.hub)
    qtbot.waitUntil(lambda: bool(w.errors.shown))
    box = w.findChild(QMessageBox, "EngineErrorDialog")
    assert box is not None and box.isVisible()
    said = f"{box.windowTitle()}\n{box.text()}\n{box.informativeText()}"
    assert "No examiner profile is chosen" in box.text(), said
    assert "examiner switcher" in said and "status bar" in said and "Settings > Examiners" in said, said
    assert "sketchface examiner" not in said and "--identifier" not in said, "no command line in the window"
    assert not w.cases.is_open, "nothing was written"


@pytest.mark.no_examiner
def test_the_command_line_still_names_its_command(capsys: pytest.CaptureFixture[str]) -> None:
    """Control: the same refusal on the command line names 'sketchface examiner add'."""
    assert main(["case", "new", "2026-0942", "--title", "Burglary", "--examiner", "Nobody Yet"]) != 0
    out = capsys.readouterr()
    assert "sketchface examiner add" in out.out + out.err
