"""What an index file must prove before hnswlib or usearch may read it: who wrote it, which bytes, what shape.

Why: both libraries trust the file they load. A crafted file (a neighbour id past the end, an entry
point on a level its node lacks, a vector size other than the gallery's) makes them read out of bounds
and the process dies with SIGSEGV; a rewritten vectors section loads and answers wrongly. The SQLite
store is as writable as the index file, so a SHA-256 recorded there only catches accidents: whoever
changes the file can rewrite the digest too. So the workstation signs the digest at every save
(:func:`seal`, with the key of :mod:`engine.workstation_key`, which never lives in the data folder),
and a load goes through :func:`checked_file`, which opens the file once, hashes and checks the very
bytes that are then loaded (through ``/proc/self/fd`` or the mapped buffer, never by re-opening the
name), and refuses it when it changed while the library read it. A file that fails any of this is
never loaded: the gallery rebuilds its index from the stored embeddings, which are the truth.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import mmap
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from engine import workstation_key
from engine.errors import EngineError, IndexCorrupt

log = logging.getLogger(__name__)

SEAL_PURPOSE = "gallery-index"
_HASH_CHUNK = 1 << 24


class IndexFileRefused(IndexCorrupt):
    """An index file failed a check made before loading; it was not handed to the index library."""


@dataclass(frozen=True)
class CheckedFile:
    """An index file opened once: a name that reaches this very open file, its mapped bytes and digest."""

    path: Path
    load_path: str  # /proc/self/fd/N on Linux: the library opens the checked file, whatever the name now holds
    data: mmap.mmap | bytes
    sha256: str


def _payload(gallery_id: str, kind: str, file_name: str, sha256: str) -> dict[str, str]:
    return {"gallery": gallery_id, "kind": kind, "file": file_name, "sha256": sha256}


def seal(gallery_id: str, kind: str, file_name: str, sha256: str) -> str | None:
    """This workstation's signature over an index file's digest; None (logged) when the key cannot be used.

    Without a signature the next load rebuilds the index from the stored embeddings: slower, never unsafe.
    """

    try:
        return workstation_key.sign(SEAL_PURPOSE, _payload(gallery_id, kind, file_name, sha256))
    except (EngineError, OSError, ValueError) as exc:
        log.warning("The index of gallery %s could not be signed (%s); it will be rebuilt when next opened.",
                    gallery_id, exc)
        return None


def seal_problem(gallery_id: str, kind: str, file_name: str, sha256: str | None, signature: str | None) -> str | None:
    """Why the recorded digest of an index file cannot be trusted, or None when this workstation signed it."""

    if sha256 is None:
        return "the index file has no recorded SHA-256 (saved by an older version)"
    if not signature:
        return ("the index file's recorded SHA-256 is not signed by this workstation (saved by an older version, "
                "or the record was changed outside SketchFace)")
    try:
        ok = workstation_key.verify(SEAL_PURPOSE, _payload(gallery_id, kind, file_name, sha256), signature)
    except (EngineError, OSError) as exc:
        return f"the index file's signature cannot be checked ({exc})"
    if not ok:
        return ("the index file's recorded SHA-256 does not carry this workstation's signature (the file or its "
                "record was changed outside SketchFace)")
    return None


def _identity(st: os.stat_result) -> tuple[int, int, int, int, int]:
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def _digest(data: mmap.mmap | bytes) -> str:
    h = hashlib.sha256()
    view = memoryview(data)
    try:
        for start in range(0, len(view), _HASH_CHUNK):
            h.update(view[start:start + _HASH_CHUNK])
    finally:
        view.release()
    return h.hexdigest()


@contextlib.contextmanager
def checked_file(path: Path, check: Callable[[mmap.mmap | bytes], None],
                 expected_sha256: str | None) -> Iterator[CheckedFile]:
    """Open ``path`` once; hash its bytes against ``expected_sha256`` and run ``check`` over them; yield.

    Raises:
        IndexFileRefused: not a regular file, empty, digest differs, ``check`` refused it, or the file
            changed while the caller loaded it (checked when the ``with`` block ends).
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise IndexFileRefused(f"The vector index {path} cannot be opened ({exc.strerror or exc}).") from exc
    data: mmap.mmap | bytes = b""
    try:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode):
            raise IndexFileRefused(f"The vector index {path} is not a regular file.")
        if before.st_size:
            data = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        digest = _digest(data)
        if expected_sha256 is not None and digest != expected_sha256:
            raise IndexFileRefused(f"The vector index {path} does not match the SHA-256 recorded when it was saved "
                                   "(changed or damaged outside SketchFace).")
        check(data)
        proc = f"/proc/self/fd/{fd}"
        load_path = proc if os.path.exists(proc) else str(path)
        yield CheckedFile(Path(path), load_path, data, digest)
        if _identity(os.fstat(fd)) != _identity(before):
            raise IndexFileRefused(f"The vector index {path} changed while it was being loaded.")
    finally:
        if isinstance(data, mmap.mmap):
            with contextlib.suppress(BufferError):  # a view still held by a traceback: freed with it
                data.close()
        os.close(fd)
