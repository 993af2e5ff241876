"""One writer per gallery, across threads and processes: a re-entrant thread lock plus an OS file lock.

Why: the index lives in each writer's memory and is saved whole; two processes importing into one
gallery would each save their own copy and the last one would drop the other's faces. The OS lock
(``filelock``: ``fcntl`` on POSIX, ``msvcrt`` on Windows) is released by the system if its holder
dies, so a killed import never blocks the gallery. A second writer waits, saying so in the log, up
to ``timeout`` seconds, then is refused with a clear message.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from filelock import FileLock, Timeout

from engine.errors import GalleryError

log = logging.getLogger(__name__)

LOCK_NAME = ".writer.lock"
DEFAULT_WAIT_S = 600.0


def writer_lock_path(gallery_dir: Path) -> Path:
    """The lock file of a gallery folder."""
    return Path(gallery_dir) / LOCK_NAME


class WriterLock:
    """Re-entrant within a thread; exclusive across threads and processes.

    Args:
        path: the lock file.
        name: the gallery's name, for messages.
        on_acquire: called when a writer first takes the lock (brings a loaded index up to date).
        timeout: seconds a second writer waits before it is refused.
    """

    def __init__(self, path: Path, name: str, on_acquire: Callable[[], None] | None = None,
                 timeout: float = DEFAULT_WAIT_S) -> None:
        self.path = Path(path)
        self.name = name
        self.timeout = timeout
        self._on_acquire = on_acquire
        self._thread = threading.RLock()
        self._file = FileLock(str(self.path), thread_local=False)
        self._depth = 0

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock, waiting (with a message) while another process writes; GalleryError after ``timeout``."""
        self._thread.acquire()
        try:
            if self._depth:
                self._depth += 1
                return
            self._take_file()
            self._depth = 1
            try:
                if self._on_acquire is not None:
                    self._on_acquire()
            except BaseException:
                self._depth = 0
                self._file.release()
                raise
        except BaseException:
            self._thread.release()
            raise

    def try_acquire(self) -> bool:
        """Take the lock only if nobody holds it (no waiting, no refresh); True when taken."""
        if not self._thread.acquire(blocking=False):
            return False
        if self._depth:
            self._depth += 1
            return True
        try:
            self._file.acquire(timeout=0)
        except (Timeout, OSError):  # held elsewhere, or a read-only gallery folder: nothing is written
            self._thread.release()
            return False
        self._depth = 1
        return True

    def release(self) -> None:
        self._depth -= 1
        if not self._depth:
            self._file.release()
        self._thread.release()

    def _take_file(self) -> None:
        try:
            self._file.acquire(timeout=0)
            return
        except Timeout:
            log.warning("Gallery '%s' is being changed by another process; waiting for it to finish "
                        "(up to %.0f s)...", self.name, self.timeout)
        try:
            self._file.acquire(timeout=self.timeout)
        except Timeout:
            raise GalleryError(
                f"Gallery '{self.name}' is being changed by another process (lock {self.path}); "
                "nothing was changed here.",
                hint="Try again when the other import or edit has finished.") from None
