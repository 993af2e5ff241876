"""LineupController: the results panel's Line-up action, the review dialog's swaps, the material export, and
the witness's response.

It starts the line-up ops (:mod:`sketchface_desktop.ops.lineups`) in the case lane, shows their result in
the dialog the window's factory makes, and broadcasts each change of the case through the case
controller's change signal, as every case write does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from sketchface_desktop.ops import lineups as lineup_ops
from sketchface_desktop.ops.base import Runner
from sketchface_desktop.ops.lineups import LineupOptions, LineupShown, WitnessShown
from sketchface_desktop.workers import Job

LINEUPS = "lineups"


class LineupController(QObject):
    """Builds line-ups from a shown candidate and relays the dialog's requests.

    Signals:
        lineup_shown(object): a LineupShown after a build or a swap (the dialog redraws).
        material_written(object): the Path of a written administration PDF.
        response_recorded(str): what was recorded of the witness's response (the dialog says it).
        failed(str): a message to show (nothing was recorded).
    """

    lineup_shown = Signal(object)
    material_written = Signal(object)
    response_recorded = Signal(str)
    failed = Signal(str)

    def __init__(self, runner: Runner, session: Any, cases: Any, search_id: Callable[[], int | None],
                 ask_options: Callable[[list[WitnessShown]], LineupOptions | None],
                 open_dialog: Callable[[LineupController, LineupShown], Any], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.ask_options = ask_options
        self.runner = runner
        self.session = session
        self.cases = cases
        self.search_id = search_id
        self.open_dialog = open_dialog
        self.dialog: Any = None
        self.shown: LineupShown | None = None

    def _error(self, exc: BaseException) -> None:
        self.failed.emit(str(getattr(exc, "message", "") or exc))

    def _done(self, shown: LineupShown) -> None:
        self.shown = shown
        self.cases.changed.emit(frozenset({LINEUPS}))
        self.lineup_shown.emit(shown)

    def build_for(self, row: Any) -> Job | None:
        """Build a line-up around the candidate ``row`` of the shown, recorded search.

        The case's witness descriptions are read first (in the case lane, so the window never waits on the
        case), then the options dialog lists them and the build starts with the examiner's choice.
        """
        sid = self.search_id()
        if not self.cases.is_open or sid is None:
            self.failed.emit("Open a case and show one of its recorded searches to build a line-up from a candidate.")
            return None

        def ask(witnesses: list[WitnessShown]) -> None:
            options = self.ask_options(witnesses)
            if options is not None:
                self._build(sid, row, options)

        return lineup_ops.witnesses(self.cases.slot).success(ask).failure(self._error).run(self.runner)

    def _build(self, sid: int, row: Any, options: LineupOptions) -> Job | None:
        def built(shown: LineupShown) -> None:
            self._done(shown)
            self.dialog = self.open_dialog(self, shown)

        op = lineup_ops.build(self.cases.slot, self.session, sid, row.case_gallery_id, row.face_id,
                              fillers=options.fillers, match=options.match, witness=options.witness,
                              typed=options.typed)
        return op.success(built).failure(self._error).run(self.runner)

    def swap(self, position: int, reason: str) -> Job | None:
        """Swap the filler at ``position`` of the shown line-up, recording ``reason``."""
        if self.shown is None:
            return None
        op = lineup_ops.swap(self.cases.slot, self.session, self.shown.lineup_id, position, reason)
        return op.success(self._done).failure(self._error).run(self.runner)

    def write_material(self, mode: str, out: str) -> Job | None:
        """Write the administration PDF of the shown line-up to ``out``."""
        if self.shown is None:
            return None
        op = lineup_ops.material(self.cases.slot, self.session, self.shown.lineup_id, mode, out)
        return op.success(self.material_written.emit).failure(self._error).run(self.runner)

    def record_response(self, choice: object, confidence: str, administrator: str) -> Job | None:
        """Record the witness's response to the shown line-up: ``choice`` a position or None (nobody chosen)."""
        if self.shown is None:
            return None
        position = choice if isinstance(choice, int) else None

        def recorded(shown: LineupShown) -> None:
            self._done(shown)
            said = "nobody chosen" if position is None else f"position {position}"
            self.response_recorded.emit(f"Recorded the witness's response: {said}; “{confidence.strip()}”.")

        op = lineup_ops.respond(self.cases.slot, self.session, self.shown.lineup_id, position, confidence,
                                administrator)
        return op.success(recorded).failure(self._error).run(self.runner)
