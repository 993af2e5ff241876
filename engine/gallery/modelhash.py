"""SHA-256 of the ArcFace file that embedded a gallery or a query, cached by file identity.

Why: embeddings from two different ArcFace files live in different spaces; comparing them gives
confident nonsense. Galleries record the digest of the file that embedded them and search refuses a
mismatch. Hashing a 170 MB file costs ~0.5 s, so digests are cached by (path, size, mtime, inode).
The models engineer's ``engine.models.store.file_sha256`` (cached, lock-file aware) is used for the
installed recognizer when it exists; any other file (benchmarks, tests) goes through the local cache.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from engine.fsutil import sha256_file

if TYPE_CHECKING:
    from engine.faces import FacePipeline

_cache: dict[str, tuple[tuple[int, int, int], str]] = {}
_mutex = threading.Lock()


def _local_sha256(path: Path) -> str:
    key = str(path.resolve())
    st = path.stat()
    ident = (st.st_size, st.st_mtime_ns, st.st_ino)
    with _mutex:
        hit = _cache.get(key)
        if hit and hit[0] == ident:
            return hit[1]
    digest = sha256_file(path)
    with _mutex:
        _cache[key] = (ident, digest)
    return digest


def model_file_sha256(path: Path, model_id: str | None = None) -> str:
    """Digest of a model file; through ``engine.models.store.file_sha256(model_id)`` when it applies."""
    path = Path(path)
    if model_id is not None:
        try:
            from engine import models
            from engine.models.store import file_sha256  # written by the models area; optional here
        except ImportError:
            return _local_sha256(path)
        try:
            installed = models.model_path(model_id).resolve() == path.resolve()
        except Exception:  # not installed at all: this file is something else
            installed = False
        if installed:
            return str(file_sha256(model_id))
    return _local_sha256(path)


def recognizer_sha256(pipeline: FacePipeline) -> str:
    """Digest of the ArcFace file a :class:`engine.faces.FacePipeline` runs."""
    from engine.faces import RECOGNIZER_ID

    return model_file_sha256(pipeline.recognizer_path, RECOGNIZER_ID)
