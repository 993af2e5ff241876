"""The rotating log file handler every front-end uses: it fails quietly, once, with one line.

Why: when the log folder's disk is full or read-only, the standard handler prints "--- Logging error
---" and a traceback to the terminal for every record, burying the one message that matters (and a
disk-full import would print dozens). This handler says once, in one line, that the log file cannot
be written and why (ENOSPC, EROFS, EACCES), then stops writing to it for the rest of the process;
nothing else changes.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import logging.handlers
import os
import sys
import threading
from pathlib import Path


class QuietRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A ``RotatingFileHandler`` that opens its file lazily and, on the first failure, says so once and goes quiet."""

    def __init__(self, path: str | os.PathLike[str], max_bytes: int, backup_count: int) -> None:
        super().__init__(path, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8", delay=True)
        self.failed = False
        self._said = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        if self.failed:
            return
        super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:
        """Called by ``emit`` when writing or rotating failed: one line on stderr, then no more writes."""
        exc = sys.exc_info()[1]
        with self._said:
            if self.failed:
                return
            self.failed = True
        name = errno.errorcode.get(getattr(exc, "errno", None) or 0, "")
        why = f"{getattr(exc, 'strerror', None) or exc}" + (f", {name}" if name else "")
        with contextlib.suppress(Exception):
            sys.stderr.write(f"warning: the log file {self.baseFilename} cannot be written ({why}); "
                             "logging to it is off until SketchFace is restarted.\n")
        with contextlib.suppress(Exception):
            if self.stream is not None:
                self.stream.close()
        self.stream = None  # type: ignore[assignment]


def rotating_log(path: Path, max_bytes: int = 2_000_000, backup_count: int = 3) -> QuietRotatingFileHandler:
    """A quiet rotating handler for ``path`` (its folder created if possible; failures surface on first write)."""
    with contextlib.suppress(OSError):  # reported, once, by the handler when it first tries to write
        path.parent.mkdir(parents=True, exist_ok=True)
    return QuietRotatingFileHandler(path, max_bytes, backup_count)
