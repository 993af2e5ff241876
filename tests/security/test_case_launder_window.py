"""Finding 1 in the window: a write to a forged case is refused, and the window's error says why and what to do.

The desktop app writes only through its case controller, which calls the same engine write path as
the command line; the refusal reaches the window's error dialog as one titled message.
"""

from __future__ import annotations

from typing import Any

import pytest

from engine.cases.store import CaseReadOnly
from sketchface_desktop.controllers.case_controller import CaseController
from sketchface_desktop.controllers.errors import describe_error
from tests.desktop.fakes import InlineRunner
from tests.engine.test_cases_support import populated_case
from tests.security.case_forgery import forge_decision, stored_decision


class _Collect(InlineRunner):
    """Runs ops inline and keeps their failures instead of raising them."""

    def __init__(self) -> None:
        super().__init__()
        self.failures: list[BaseException] = []

    def submit(self, title: str, fn: Any, **kw: Any) -> Any:
        kw["on_error"] = self.failures.append
        return super().submit(title, fn, **kw)


@pytest.mark.usefixtures("qapp")
def test_window_write_to_a_forged_case_shows_the_read_only_message() -> None:
    case, _fs, _rec = populated_case(k=4)
    folder, case_id = case.folder, case.case_id
    case.close()
    forge_decision(folder)
    runner = _Collect()
    cases = CaseController(runner)  # type: ignore[arg-type]
    try:
        cases.open(str(folder))
        assert not runner.failures and cases.is_open  # a broken case still opens, to be read and exported
        cases.update(notes="x")
        assert len(runner.failures) == 1 and isinstance(runner.failures[0], CaseReadOnly)
        title, message, hint = describe_error(runner.failures[0])
        assert title == "Case is read-only" and case_id in message and "read-only" in message
        assert "--allow-broken" in hint
        assert stored_decision(folder)[0] == "possible"
    finally:
        cases.shutdown()
