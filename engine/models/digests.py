"""Model file digests: the trust-on-first-use lock file, expected digests, and a stat-keyed hash cache.

Why: every search record and case report names the model files it used by SHA-256, so digests are
asked for often; rehashing a 170 MB file each time would cost seconds. Digests are therefore cached
by the file's identity on disk (size, mtime, ctime, inode: a replaced or rewritten file misses the
cache). Where the manifest knows no digest, the first import or download pins one in
``models.lock.json`` so that later tampering or silent replacement is detected by ``verify``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine import paths
from engine.errors import ModelInvalid
from engine.fsutil import atomic_write_text
from engine.models import get_spec
from engine.progress import CancelToken, check

LOCK_NAME = "models.lock.json"
_CACHE_NAME = "model_hashes.json"
_LOCK_FORMAT = 1
_CHUNK = 1 << 20

_mutex = threading.RLock()
# In-memory digest cache: resolved path -> (stat identity, sha256).
_memory: dict[str, tuple[tuple[int, ...], str]] = {}


@dataclass(frozen=True)
class Pin:
    """One lock-file entry to write: the digest a model file had when it was installed."""

    model_id: str
    path: str
    sha256: str
    size: int
    source: str


def lock_path() -> Path:
    """Where the lock file lives (beside the models it pins)."""
    return paths.models_dir() / LOCK_NAME


def _lock_key(model_id: str, rel: str) -> str:
    return f"{model_id}/{rel}"


def _read_lock_doc() -> dict[str, Any]:
    path = lock_path()
    if not path.exists():
        return {"format": _LOCK_FORMAT, "files": {}}
    try:
        doc = json.loads(path.read_text("utf-8"))
        if not isinstance(doc, dict) or not isinstance(doc.get("files"), dict):
            raise ValueError("no 'files' table")
    except (OSError, ValueError) as exc:
        raise ModelInvalid(
            f"The model lock file {path} is unreadable ({exc}).",
            hint="Restore it from a backup, or move it away and re-import the models to pin them again.",
        ) from exc
    return doc


def read_lock() -> dict[str, dict[str, Any]]:
    """All pinned entries, keyed ``"<model id>/<relative path>"``."""
    with _mutex:
        return dict(_read_lock_doc()["files"])


def pinned_digest(model_id: str, rel: str) -> str | None:
    """The digest pinned for one model file, or None."""
    entry = read_lock().get(_lock_key(model_id, rel))
    return str(entry["sha256"]) if entry and entry.get("sha256") else None


def pinned_files(model_id: str) -> list[str]:
    """Relative paths of every file pinned for a model (including files the manifest does not list)."""
    prefix = f"{model_id}/"
    return sorted(key[len(prefix):] for key in read_lock() if key.startswith(prefix))


def write_pins(pins: Iterable[Pin]) -> None:
    """Record digests in the lock file, atomically; a changed digest keeps the old one in ``history``."""
    pins = list(pins)
    if not pins:
        return
    now = datetime.now(UTC).isoformat(timespec="seconds")
    with _mutex:
        doc = _read_lock_doc()
        files: dict[str, Any] = doc["files"]
        for pin in pins:
            key = _lock_key(pin.model_id, pin.path)
            old = files.get(key)
            entry: dict[str, Any] = {"sha256": pin.sha256, "size": pin.size, "pinned_at": now,
                                     "source": pin.source}
            if old and old.get("sha256") != pin.sha256:
                history = list(old.get("history", []))
                history.append({k: old.get(k) for k in ("sha256", "size", "pinned_at", "source")})
                entry["history"] = history
            elif old:
                entry["pinned_at"] = old.get("pinned_at", now)
                if "history" in old:
                    entry["history"] = old["history"]
            files[key] = entry
        doc["format"] = _LOCK_FORMAT
        doc["files"] = dict(sorted(files.items()))
        atomic_write_text(lock_path(), json.dumps(doc, indent=2, sort_keys=False) + "\n")


def expected_digest(model_id: str, rel: str) -> tuple[str | None, str | None]:
    """The digest a model file must have and where it comes from: ("…", "manifest"|"lock") or (None, None).

    The manifest wins over the lock file: a digest published with the product is the stronger claim.
    """
    spec = get_spec(model_id)
    for f in spec.files:
        if f.path == rel and f.sha256:
            return f.sha256.lower(), "manifest"
    pinned = pinned_digest(model_id, rel)
    return (pinned.lower(), "lock") if pinned else (None, None)


def hash_file(path: Path, on_bytes: Callable[[int], None] | None = None,
              cancel: CancelToken | None = None) -> str:
    """SHA-256 of a file in chunks, reporting bytes read and honouring cancellation."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            check(cancel)
            h.update(chunk)
            if on_bytes is not None:
                on_bytes(len(chunk))
    return h.hexdigest()


def _identity(path: Path) -> tuple[int, ...]:
    st = path.stat()
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def _cache_file() -> Path:
    return paths.cache_dir() / _CACHE_NAME


def _read_disk_cache() -> dict[str, Any]:
    try:
        doc = json.loads(_cache_file().read_text("utf-8"))
        return doc if isinstance(doc, dict) else {}
    except (OSError, ValueError):
        return {}  # a cache: unreadable means empty, never an error


def cached_digest(path: Path) -> str | None:
    """The cached digest of ``path`` if the file is unchanged since it was hashed, else None."""
    key = str(path.resolve())
    try:
        ident = _identity(path)
    except OSError:
        return None
    with _mutex:
        hit = _memory.get(key)
        if hit and hit[0] == ident:
            return hit[1]
        entry = _read_disk_cache().get(key)
        if isinstance(entry, dict) and tuple(entry.get("id", ())) == ident and entry.get("sha256"):
            _memory[key] = (ident, str(entry["sha256"]))
            return str(entry["sha256"])
    return None


def remember(path: Path, digest: str, ident: tuple[int, ...] | None = None) -> None:
    """Cache a digest just computed for ``path`` (memory and a small JSON file in the cache dir)."""
    key = str(path.resolve())
    try:
        ident = ident or _identity(path)
    except OSError:
        return
    with _mutex:
        _memory[key] = (ident, digest)
        doc = _read_disk_cache()
        doc[key] = {"id": list(ident), "sha256": digest}
        # Forget entries whose file is gone, so the cache does not grow without bound.
        doc = {k: v for k, v in doc.items() if k == key or os.path.exists(k)}
        with contextlib.suppress(OSError):  # the in-memory cache still serves this process
            atomic_write_text(_cache_file(), json.dumps(doc, indent=1, sort_keys=True))


def sha256_cached(path: Path, on_bytes: Callable[[int], None] | None = None,
                  cancel: CancelToken | None = None) -> str:
    """Digest of ``path``, from the cache when the file is unchanged, else hashed and cached."""
    hit = cached_digest(path)
    if hit is not None:
        return hit
    before = _identity(path)
    digest = hash_file(path, on_bytes, cancel)
    if _identity(path) == before:  # not modified while we read it
        remember(path, digest, before)
    return digest
