"""A long command's console: a progress bar on stderr and Ctrl-C as a clean cancel, for every command module.

Progress goes to stderr (tqdm, silent when stderr is not a terminal) so stdout keeps only the result.
The first Ctrl-C sets the engine's :class:`CancelToken` (what was recorded stays); a second interrupts.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tqdm import tqdm

from engine.progress import CancelToken, ProgressCallback, ProgressEvent


@contextlib.contextmanager
def progress_bar(desc: str, unit: str = "photo") -> Iterator[ProgressCallback]:
    """A tqdm bar on stderr fed by :class:`ProgressEvent` callbacks."""
    bar = tqdm(total=0, desc=desc, unit=unit, file=sys.stderr, disable=None, dynamic_ncols=True)

    def update(event: ProgressEvent) -> None:
        if event.total and bar.total != event.total:
            bar.total = event.total
        bar.n = event.done
        bar.set_postfix_str(Path(event.message).name[-40:] if event.message else "", refresh=False)
        bar.refresh()

    try:
        yield update
    finally:
        bar.close()


@contextlib.contextmanager
def sigint_cancels() -> Iterator[CancelToken]:
    """The first Ctrl-C sets a cancel token (clean stop); a second one interrupts at once."""
    token = CancelToken()
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        if token.cancelled:
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        token.cancel()
        print("\nCancelling after the current photos (Ctrl-C again to stop at once)...", file=sys.stderr)

    with contextlib.suppress(ValueError):  # not the main thread: no handler, plain KeyboardInterrupt
        signal.signal(signal.SIGINT, handler)
    try:
        yield token
    finally:
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGINT, previous)
