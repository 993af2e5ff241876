"""Progress reporting and cooperative cancellation, free of any GUI toolkit.

Long engine calls take ``progress=None, cancel=None``. The CLI adapts the callback to a progress bar,
the desktop app to Qt signals; both cancel through the same token.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from engine.errors import Cancelled


@dataclass(frozen=True)
class ProgressEvent:
    """One progress report: ``done`` of ``total`` steps (total 0 when unknown) and a short message."""

    done: int
    total: int
    message: str = ""

    @property
    def fraction(self) -> float | None:
        return self.done / self.total if self.total else None


ProgressCallback = Callable[[ProgressEvent], None]


class CancelToken:
    """Thread-safe cancellation flag checked by engine loops between units of work."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled()


def check(cancel: CancelToken | None) -> None:
    """Raise :class:`Cancelled` if ``cancel`` is set (no-op when None)."""
    if cancel is not None:
        cancel.raise_if_cancelled()


class Reporter:
    """Rate-limited adapter that turns counts into :class:`ProgressEvent` calls.

    Engine loops call ``step()`` per item; the callback fires at most every ``interval`` seconds
    (and always on the last item), so a GUI is never flooded with signals.
    """

    def __init__(self, callback: ProgressCallback | None, total: int, interval: float = 0.1) -> None:
        self.callback = callback
        self.total = total
        self.done = 0
        self.interval = interval
        self._last = 0.0

    def step(self, n: int = 1, message: str = "") -> None:
        self.done += n
        self.emit(message)

    def emit(self, message: str = "", force: bool = False) -> None:
        if self.callback is None:
            return
        now = time.monotonic()
        if force or self.done >= self.total or now - self._last >= self.interval:
            self._last = now
            self.callback(ProgressEvent(self.done, self.total, message))
