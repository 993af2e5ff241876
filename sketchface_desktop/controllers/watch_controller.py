"""WatchController: the Watch action on a shown search, the background check (at start and on a timer) and
acknowledging hits.

It starts the watch ops (:mod:`sketchface_desktop.ops.watches`) through the one worker mechanism and keeps the
list of unacknowledged hits the badge counts; an acknowledged hit is an ordinary search of its case, so the
case controller is told when it is the open case's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from sketchface_desktop.ops import watches as watch_ops
from sketchface_desktop.ops.base import Runner
from sketchface_desktop.ops.watches import WatchCheck, WatchHitShown
from sketchface_desktop.workers import Job

CHECK_INTERVAL_MS = 30 * 60 * 1000  # a check every half hour while the window is open


class WatchController(QObject):
    """Keeps the unacknowledged watch hits and runs the checks.

    Signals:
        hits_changed(object): the list of WatchHitShown waiting for an examiner (the badge counts it).
        message(str): what a check or an action did, or why it was refused.
    """

    hits_changed = Signal(object)
    message = Signal(str)

    def __init__(self, runner: Runner, session: Any, cases: Any, search_id: Callable[[], int | None],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.session = session
        self.cases = cases
        self.search_id = search_id
        self.hits: list[WatchHitShown] = []
        self.checking: Job | None = None
        self.timer = QTimer(self)
        self.timer.setInterval(CHECK_INTERVAL_MS)
        self.timer.timeout.connect(self.check)

    def start(self) -> None:
        """Check now (in the background) and then on the timer."""
        self.check()
        self.timer.start()

    def _error(self, exc: BaseException) -> None:
        self.message.emit(str(getattr(exc, "message", "") or exc))

    def _checked(self, result: WatchCheck) -> None:
        self.hits = list(result.pending)
        self.hits_changed.emit(self.hits)
        parts = [f"{result.new_hits} new watch hit(s)" if result.new_hits else "", *result.refused]
        if any(parts):
            self.message.emit("; ".join(p for p in parts if p))

    def check(self) -> Job | None:
        """Run the watches of the open cases over the faces added since (one check at a time)."""
        if self.checking is not None and self.checking.active:
            return None
        op = watch_ops.check(self.session).success(self._checked).failure(self._error)
        self.checking = op.run(self.runner)
        return self.checking

    def watch_shown(self) -> Job | None:
        """Watch the search on show (it must be a recorded search of the open case)."""
        sid = self.search_id()
        if not self.cases.is_open or sid is None:
            self.message.emit("Open a case and show one of its recorded searches to watch it.")
            return None
        op = watch_ops.watch_search(self.cases.slot, self.session, sid)
        return op.success(self.message.emit).failure(self._error).run(self.runner)

    def acknowledge(self, hit: WatchHitShown) -> Job:
        """Acknowledge ``hit``: it becomes an ordinary search of its case, to examine and decide."""
        def done(result: tuple[int, list[Any] | None]) -> None:
            search_id, searches = result
            self.hits = [h for h in self.hits if (h.case_id, h.hit_id) != (hit.case_id, hit.hit_id)]
            self.hits_changed.emit(self.hits)
            if searches is not None:
                self.cases.searches = searches
                self.cases.searches_changed.emit(searches)
            self.message.emit(f"Watch hit acknowledged: it is search {search_id} of case {hit.case_number}.")

        return watch_ops.acknowledge(self.cases.slot, hit).success(done).failure(self._error).run(self.runner)
