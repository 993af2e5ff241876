"""Op: a typed unit of background work that knows its lane, and the runner protocol that executes it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, Literal, Protocol, TypeVar

from engine.progress import CancelToken, ProgressEvent
from sketchface_desktop.workers import Job

T = TypeVar("T")
Lane = Literal["engine", "case", "io"]
ProgressFn = Callable[[ProgressEvent], None]


class Runner(Protocol):
    """What runs an op: the :class:`~sketchface_desktop.workers.JobHub` (tests pass an inline fake)."""

    def submit(self, title: str, fn: Callable[[ProgressFn, CancelToken], Any], *, lane: str = "engine",
               visible: bool = True, cancellable: bool = True,
               on_result: Callable[[Any], None] | None = None,
               on_error: Callable[[BaseException], None] | None = None,
               on_finished: Callable[[Job], None] | None = None) -> Job: ...


class Op(Generic[T]):
    """One operation: title, work ``fn(progress, cancel) -> T``, the lane it must run in, and its handlers.

    The lane is fixed by the function that builds the op (engine: models, GPU and indexes, one at a
    time; case: the open case's records, one at a time; io: cheap reads in a pool). Handlers run in
    the GUI thread. Without a failure handler, a failure goes to the window's error dialog.
    """

    def __init__(self, title: str, work: Callable[[ProgressFn, CancelToken], T], *, lane: Lane,
                 visible: bool = True, cancellable: bool = True) -> None:
        self.title = title
        self.work = work
        self.lane: Lane = lane
        self.visible = visible
        self.cancellable = cancellable
        self._success: list[Callable[[T], None]] = []
        self._failure: Callable[[BaseException], None] | None = None
        self._finished: list[Callable[[Job], None]] = []

    def success(self, handler: Callable[[T], None] | None) -> Op[T]:
        """Call ``handler(value)`` in the GUI thread when the work returned (chainable)."""
        if handler is not None:
            self._success.append(handler)
        return self

    def failure(self, handler: Callable[[BaseException], None] | None) -> Op[T]:
        """Handle a failure here instead of the window's error dialog (cancellation is silent)."""
        self._failure = handler
        return self

    def finished(self, handler: Callable[[Job], None] | None) -> Op[T]:
        """Call ``handler(job)`` after any outcome (done, failed or cancelled)."""
        if handler is not None:
            self._finished.append(handler)
        return self

    def titled(self, title: str) -> Op[T]:
        """The same op under another title (what the jobs panel shows)."""
        self.title = title
        return self

    def run(self, runner: Runner) -> Job:
        """Queue the op on its lane and return the job (its signals are the one worker mechanism's)."""
        successes, finishes = list(self._success), list(self._finished)

        def succeeded(value: Any) -> None:
            for handler in successes:
                handler(value)

        def settled(job: Job) -> None:
            for handler in finishes:
                handler(job)

        return runner.submit(self.title, self.work, lane=self.lane, visible=self.visible,
                             cancellable=self.cancellable, on_result=succeeded if successes else None,
                             on_error=self._failure, on_finished=settled if finishes else None)


def query(title: str, fn: Callable[[], T], *, lane: Lane = "io", visible: bool = False) -> Op[T]:
    """A read that takes no progress or cancel (Anki's QueryOp): a thumbnail, a status, a list."""
    return Op(title, lambda _p, _c: fn(), lane=lane, visible=visible, cancellable=False)
