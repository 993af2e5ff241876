"""Model file digests: the signed pin file, expected digests, reading a file once, and a stat-keyed hash cache.

Why: every search record and case report names the model files it used by SHA-256, so digests are
asked for often; rehashing a 170 MB file each time would cost seconds. Digests are therefore cached
by the file's identity on disk (size, mtime, ctime, inode: a replaced or rewritten file misses the
cache). Where the manifest knows no digest, the first import or download pins one, so that later
tampering or silent replacement is detected by ``verify`` and refused at load.

Why the pins live in the config folder, signed: whoever can write the models folder could otherwise
replace a model file and edit its pin beside it. The pins are kept in ``model_pins.json`` in the
config folder, one section per models folder, signed with this workstation's key
(:mod:`engine.workstation_key`, purpose ``model-pins``). A pin file whose signature does not verify is
reported by ``models verify`` and ``models status``, refused at load, and never re-signed. A
``models.lock.json`` left in the models folder by an older version is trusted once, as found, moved
into the signed file and renamed (the log says so); after that, a lock file in the models folder is
ignored.

Why :func:`read_once`: a model must be loaded from the very bytes whose digest was checked. Hashing a
path and then letting a loader reopen it leaves a window in which the file (or a symlink to it) can
be swapped; reading the file once into memory, hashing those bytes and handing the bytes to the loader
closes it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import stat
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import paths, workstation_key
from engine.errors import ModelInvalid, ModelTampered
from engine.fsutil import atomic_write_text, sha256_file
from engine.models import get_spec
from engine.progress import CancelToken, check
from engine.timestamps import utc_now_iso

log = logging.getLogger(__name__)

PINS_NAME = "model_pins.json"
LEGACY_LOCK_NAME = "models.lock.json"
LOCK_NAME = LEGACY_LOCK_NAME  # the name of the old, unsigned lock file in the models folder
PINS_PURPOSE = "model-pins"
UNTRUSTED = "untrusted"  # expected_digest's origin when the pin file's signature does not verify
# The source recorded for a pin taken when a file placed by hand was first loaded (trust on first use).
FIRST_LOAD_SOURCE = "first load (trust on first use)"
_CACHE_NAME = "model_hashes.json"
_PINS_FORMAT = 2
_CHUNK = 1 << 20
# The largest model file loaded into memory (the sketch encoder's ViT-L weights are ~1.2 GB).
MAX_LOAD_BYTES = 4 << 30

_mutex = threading.RLock()
# In-memory digest cache: resolved path -> (stat identity, sha256).
_memory: dict[str, tuple[tuple[int, ...], str]] = {}


class PinsNotAuthentic(ModelTampered):
    """The pin file was changed without this workstation's key: pinned digests cannot be trusted."""

    title = "Model pins changed without this workstation's key"


@dataclass(frozen=True)
class Pin:
    """One pin to record: the digest a model file had when it was installed."""

    model_id: str
    path: str
    sha256: str
    size: int
    source: str


@dataclass(frozen=True)
class PinBook:
    """The pins of the current models folder and whether the pin file is authentic.

    Attributes:
        files: entries keyed ``"<model id>/<relative path>"`` (as found, even when not authentic).
        authentic: the pin file's signature verifies with this workstation's key (or there is no file yet).
        problem: what is wrong when not authentic, in words.
        path: the pin file.
    """

    files: dict[str, dict[str, Any]]
    authentic: bool
    problem: str
    path: Path

    def refuse(self) -> PinsNotAuthentic:
        """The error that refuses a load relying on these pins."""
        return PinsNotAuthentic(
            f"The model pins in {self.path} are not authentic ({self.problem}): a model file could have "
            "been replaced together with its pin, so no file relying on these pins is loaded.",
            hint="Run 'sketchface models verify' to see which models rely on them; then move the pin file "
                 "away and re-import those models from a trusted copy ('sketchface models import PATH') to "
                 "pin them again.")


def lock_path() -> Path:
    """Where the pins live: the config folder, never the models folder they guard."""
    return paths.config_dir() / PINS_NAME


def legacy_lock_path() -> Path:
    """Where versions before signed pins kept them (beside the models): read once, to migrate."""
    return paths.models_dir() / LEGACY_LOCK_NAME


def _folder_key() -> str:
    return str(paths.models_dir().resolve())


def _lock_key(model_id: str, rel: str) -> str:
    return f"{model_id}/{rel}"


def _read_json(path: Path, what: str) -> dict[str, Any] | None:
    """A JSON object from ``path``; None when absent; ModelInvalid when unreadable."""
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ModelInvalid(f"The {what} {path} cannot be read ({exc.strerror or exc}).",
                           hint="Check the file's owner and rights.") from exc
    try:
        doc = json.loads(text)
    except ValueError:
        return {"_unparsable": True}
    return doc if isinstance(doc, dict) else {"_unparsable": True}


def _signed_part(doc: dict[str, Any]) -> dict[str, Any]:
    return {"folders": doc.get("folders")}


def _authenticate(doc: dict[str, Any]) -> str:
    """Empty when the pin document is well formed and signed by this workstation's key, else the problem."""
    if doc.get("_unparsable") or not isinstance(doc.get("folders"), dict):
        return "the file is not a pin file this workstation wrote"
    if not all(isinstance(v, dict) and isinstance(v.get("files"), dict) for v in doc["folders"].values()):
        return "the file is not a pin file this workstation wrote"
    signature = doc.get("signature")
    if not isinstance(signature, str) or not signature:
        return "it carries no signature"
    if not workstation_key.verify(PINS_PURPOSE, _signed_part(doc), signature):
        return "its signature does not verify with this workstation's key: it was changed without the key"
    return ""


def _write_doc(folders: dict[str, Any]) -> None:
    doc: dict[str, Any] = {"format": _PINS_FORMAT, "folders": folders}
    doc["public_key"] = workstation_key.public_key_hex()
    doc["signature"] = workstation_key.sign(PINS_PURPOSE, _signed_part(doc))
    atomic_write_text(lock_path(), json.dumps(doc, indent=2, sort_keys=False) + "\n")


def _migrate(folders: dict[str, Any], key: str) -> dict[str, Any] | None:
    """Move a legacy in-folder lock into the signed pin file (trusted once, as found); its section or None."""
    legacy = legacy_lock_path()
    old = _read_json(legacy, "old model lock file")
    if old is None:
        return None
    files = old.get("files")
    if not isinstance(files, dict):
        log.warning("The old model lock file %s is unreadable; it was not migrated (models without a published "
                    "digest will be pinned again when next imported or loaded).", legacy)
        return None
    now = utc_now_iso()
    section = {"files": dict(sorted(files.items())), "migrated_from": str(legacy), "migrated_at": now}
    folders = {**folders, key: section}
    try:
        _write_doc(folders)
    except OSError as exc:  # a read-only config folder: keep working with the old pins, as before
        log.warning("Could not move the model pins from %s to %s (%s); they are used as found, unauthenticated, "
                    "until the config folder is writable.", legacy, lock_path(), exc.strerror or exc)
        return section
    moved = legacy.with_name(LEGACY_LOCK_NAME + ".migrated")
    try:
        os.replace(legacy, moved)
    except OSError as exc:
        log.warning("Could not rename %s after migrating it (%s); it is ignored from now on.", legacy, exc)
    log.warning("Model pins moved from %s to %s: its %d pins were trusted once, as found (that file was not "
                "authenticated); from now on they are signed with this workstation's key and a lock file in "
                "the models folder is ignored.", legacy, lock_path(), len(files))
    return section


def load_pins() -> PinBook:
    """The pins of the current models folder, checked against the workstation key (migrating an old lock once)."""
    path = lock_path()
    key = _folder_key()
    with _mutex:
        doc = _read_json(path, "model pin file")
        if doc is not None:
            problem = _authenticate(doc)
            if problem:
                section = (doc.get("folders") or {}).get(key) if isinstance(doc.get("folders"), dict) else None
                files = section.get("files") if isinstance(section, dict) else None
                return PinBook(dict(files) if isinstance(files, dict) else {}, False, problem, path)
            section = doc["folders"].get(key)
            if section is not None:
                return PinBook(dict(section["files"]), True, "", path)
        section = _migrate(dict(doc["folders"]) if doc else {}, key)
        return PinBook(dict(section["files"]) if section else {}, True, "", path)


def read_lock() -> dict[str, dict[str, Any]]:
    """All pinned entries of the current models folder, keyed ``"<model id>/<relative path>"``.

    Raises :class:`PinsNotAuthentic` when the pin file was changed without the workstation key.
    """
    book = load_pins()
    if not book.authentic:
        raise book.refuse()
    return book.files


def pinned_digest(model_id: str, rel: str) -> str | None:
    """The digest pinned for one model file, or None (:class:`PinsNotAuthentic` if the pins were changed)."""
    entry = read_lock().get(_lock_key(model_id, rel))
    return str(entry["sha256"]) if entry and entry.get("sha256") else None


def pinned_files(model_id: str) -> list[str]:
    """Relative paths of every file pinned for a model (as found, even when the pin file is not authentic)."""
    prefix = f"{model_id}/"
    return sorted(key[len(prefix):] for key in load_pins().files if key.startswith(prefix))


def imported_files(model_id: str) -> list[str]:
    """Relative paths of a model's files pinned by an import or an install (not by a first load), sorted.

    Why: a model whose files came through an import has a known origin; a file that appears beside
    them later without a pin was put there by hand (or by someone who can write the models folder),
    so it must not be pinned on first use the way a model placed wholly by hand is
    (:meth:`engine.models.identity.ModelLocator.check` refuses it instead).
    """
    prefix = f"{model_id}/"
    return sorted(key[len(prefix):] for key, entry in read_lock().items()
                  if key.startswith(prefix) and not (isinstance(entry, dict)
                                                     and entry.get("source") == FIRST_LOAD_SOURCE))


def write_pins(pins: Iterable[Pin]) -> None:
    """Record digests in the signed pin file, atomically; a changed digest keeps the old one in ``history``.

    A pin file that is not authentic is never re-signed (that would launder whatever was changed in
    it): :class:`PinsNotAuthentic` says how to start again.
    """
    pins = list(pins)
    if not pins:
        return
    now = utc_now_iso()
    key = _folder_key()
    with _mutex:
        book = load_pins()
        if not book.authentic:
            raise book.refuse()
        doc = _read_json(lock_path(), "model pin file") or {"folders": {}}
        folders: dict[str, Any] = dict(doc.get("folders") or {})
        section: dict[str, Any] = dict(folders.get(key) or {"files": {}})
        files: dict[str, Any] = dict(section["files"])
        for pin in pins:
            lkey = _lock_key(pin.model_id, pin.path)
            old = files.get(lkey)
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
            files[lkey] = entry
        section["files"] = dict(sorted(files.items()))
        folders[key] = section
        _write_doc(folders)


def expected_digest(model_id: str, rel: str) -> tuple[str | None, str | None]:
    """The digest a model file must have and where it comes from.

    ("…", "manifest") for a published digest, ("…", "lock") for an authentic pin, (None, None) when
    none is known, and (pin or None, :data:`UNTRUSTED`) when the pin file is not authentic: then even
    a missing pin proves nothing (the attacker may have removed it), and the caller must refuse or
    report. The manifest wins over the pins: a digest published with the product is the stronger claim.
    """
    spec = get_spec(model_id)
    for f in spec.files:
        if f.path == rel and f.sha256:
            return f.sha256.lower(), "manifest"
    book = load_pins()
    entry = book.files.get(_lock_key(model_id, rel))
    pinned = str(entry["sha256"]).lower() if isinstance(entry, dict) and entry.get("sha256") else None
    if not book.authentic:
        return pinned, UNTRUSTED
    return (pinned, "lock") if pinned else (None, None)


def hash_file(path: Path, on_bytes: Callable[[int], None] | None = None,
              cancel: CancelToken | None = None) -> str:
    """SHA-256 of a file in chunks (:func:`engine.fsutil.sha256_file`), reporting bytes read and honouring
    cancellation."""
    def step(size: int) -> None:
        check(cancel)
        if on_bytes is not None:
            on_bytes(size)

    return sha256_file(path, step)


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


def read_once(path: Path, limit: int = MAX_LOAD_BYTES) -> tuple[bytes, Path, tuple[int, ...]]:
    """Read a model file into memory once: (its bytes, the resolved path they came from, its stat identity).

    Symlinks are resolved first and the resolved file is opened without following links (a link put
    in its place meanwhile fails instead of being followed), so the path returned is where the bytes
    came from. Only regular files are read, up to ``limit`` bytes.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(3):  # a link re-pointed between resolving and opening: resolve again
        resolved = Path(os.path.realpath(path))
        try:
            fd = os.open(resolved, flags)
        except OSError as exc:
            if exc.errno == errno.ELOOP or os.path.islink(resolved):  # became a link meanwhile
                continue
            raise ModelInvalid(f"{path} cannot be read ({exc.strerror or exc}).",
                               hint="Check the file, or import the model again in Settings > Models.") from exc
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise ModelInvalid(f"{path} is not a regular file; it was not loaded.",
                                   hint="Import the model again in Settings > Models.")
            if st.st_size > limit:
                raise ModelInvalid(f"{path} is {st.st_size} bytes, more than a model file loaded into memory "
                                   f"may be ({limit}); it was not loaded.")
            chunks = []
            size = 0
            while chunk := f.read(_CHUNK * 16):
                size += len(chunk)
                if size > limit:
                    raise ModelInvalid(f"{path} grew past {limit} bytes while it was read; it was not loaded.")
                chunks.append(chunk)
        return b"".join(chunks), resolved, (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    raise ModelTampered(f"{path} kept changing into a different link while it was being opened; it was not loaded.",
                        hint="Something is replacing files in the models folder: check who can write it.")
