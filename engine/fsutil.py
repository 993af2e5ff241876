"""Atomic file writes and content hashing: every derived file is written whole or not at all."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from engine.errors import DiskFull, EngineError

_CHUNK = 1 << 20
PRIVATE_DIR_MODE = 0o700


def private_dir(path: str | os.PathLike[str], mode: int = PRIVATE_DIR_MODE) -> Path:
    """Create ``path`` and any missing parents with exactly ``mode`` (owner-only by default); return it.

    ``mkdir`` alone takes its rights from the process umask, so under ``umask 000`` every data folder
    would be world-writable (0777). Each folder this call creates is set to ``mode`` explicitly;
    folders that already exist (the user's home, a chosen volume) keep their rights.
    """
    path = Path(path)
    missing: list[Path] = []
    p = path
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=mode)
        except FileExistsError:  # made by a concurrent process meanwhile; its rights are its own
            continue
        if os.name == "posix":
            os.chmod(folder, mode)
    if not path.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "Not a folder", str(path))
    return path


def sha256_file(path: str | os.PathLike[str], on_chunk: Callable[[int], None] | None = None) -> str:
    """SHA-256 hex digest of a file's bytes, read in chunks (works on multi-GB models): the one file digest.

    ``on_chunk(bytes read)`` runs before each chunk is hashed (progress, cancellation: it may raise).
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            if on_chunk is not None:
                on_chunk(len(chunk))
            h.update(chunk)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fsync_dir(path: Path) -> None:
    """Persist a rename in ``path`` (no-op where directories cannot be opened, e.g. Windows)."""
    if os.name == "nt":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success fsync it and rename it over ``target``.

    For writers that want a file name (hnswlib ``save_index``, ``np.save``, PIL). On any error the
    temporary file is removed and ``target`` is untouched. ENOSPC becomes :class:`DiskFull`.
    """
    target = Path(target)
    private_dir(target.parent)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
        fsync_dir(target.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno == errno.ENOSPC:
            raise DiskFull(f"The disk holding {target.parent} is full; {target.name} was not changed.",
                           hint="Free some space and try again.") from exc
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_save_with_digest(target: str | os.PathLike[str], write: Callable[[str], None]) -> str:
    """Let ``write`` fill a temporary file, hash it, then rename it over ``target``; the SHA-256 written.

    For derived files whose digest is recorded at save and checked before the next load (index files):
    the digest is of exactly the bytes that were renamed into place.
    """
    with atomic_path(target) as tmp:
        write(str(tmp))
        return sha256_file(tmp)


@contextlib.contextmanager
def atomic_open(target: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO]:  # type: ignore[type-arg]
    """Open a temporary file for writing that replaces ``target`` atomically on success."""
    with atomic_path(target) as tmp, open(tmp, mode) as f:
        yield f
        f.flush()


def atomic_write_bytes(target: str | os.PathLike[str], data: bytes) -> None:
    with atomic_open(target, "wb") as f:
        f.write(data)


def atomic_write_text(target: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(target, text.encode("utf-8"))


# Errors of the disk rather than of the data: named as such, with advice that loses nothing.
DISK_ERRNOS = {errno.ENOSPC: "ENOSPC", errno.EDQUOT: "EDQUOT", errno.EROFS: "EROFS", errno.EACCES: "EACCES",
               errno.EPERM: "EPERM"}
LOW_SPACE_BYTES = 1 << 20


def folder_write_problem(folder: str | os.PathLike[str]) -> int | None:
    """Why nothing can be written in ``folder`` now: ``errno.EROFS``, ``errno.ENOSPC``, ``errno.EACCES``, or None.

    For errors that do not carry an errno (SQLite's "disk I/O error"): the folder is asked directly.
    """
    folder = Path(folder)
    try:
        st = os.statvfs(folder) if hasattr(os, "statvfs") else None
    except OSError:
        st = None
    if st is not None and st.f_flag & getattr(os, "ST_RDONLY", 1):
        return errno.EROFS
    if st is not None and st.f_bavail * st.f_frsize < LOW_SPACE_BYTES:
        return errno.ENOSPC
    if not os.access(folder, os.W_OK):
        return errno.EACCES
    return None


def disk_error(code: int | None, where: str | os.PathLike[str], what: str) -> EngineError | None:
    """The message for a write that failed with ``code`` (an errno) in folder ``where``, or None if not a disk error.

    ``what`` says what was being written ("the gallery database"); every message says that what was
    stored before is kept, and its advice never removes anything.
    """
    where = str(where)
    if code in (errno.ENOSPC, errno.EDQUOT):
        return DiskFull(f"The disk holding {where} is full (ENOSPC); {what} was not changed by the step that failed, "
                        "and everything stored before it is kept.",
                        hint="Free space on that disk (or raise the quota), then run the same command again: it "
                             "carries on where it stopped.")
    if code == errno.EROFS:
        return EngineError(f"The disk holding {where} is read-only (EROFS); {what} cannot be written, and nothing on "
                           "it was changed.", title="Disk is read-only",
                           hint="Mount it read-write (or copy the data folder to a writable disk and point "
                                "SKETCHFACE_DATA_DIR at it), then run the same command again.")
    if code in (errno.EACCES, errno.EPERM):
        return EngineError(f"This user may not write in {where} (EACCES); {what} cannot be written, and nothing was "
                           "changed.", title="No permission to write",
                           hint="Give your account write access to that folder (its owner or an administrator "
                                "can), then run the same command again.")
    return None
