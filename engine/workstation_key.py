"""This workstation's Ed25519 key: one home for the key that authenticates what the data folder cannot.

Anything an attacker who can write the data folder could rewrite (a case's audit head, the case
registry's anchor, a gallery index's digest, the model pins) is authenticated with a private key that
never lives in the data folder: in the OS keyring when a usable backend exists, otherwise in
``workstation_key.ed25519`` in the config dir (owner-only rights). ``SKETCHFACE_KEY_STORE=file|keyring``
chooses explicitly; with ``SKETCHFACE_HOME`` set (portable installs, tests) the key file beside that home
is the default. Every signed message is purpose-tagged (:func:`sign`), so a signature made for one kind
of record can never be replayed as another.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from filelock import FileLock, Timeout

from engine import paths
from engine.errors import CaseError
from engine.fsutil import atomic_write_text
from engine.timestamps import utc_now_iso

log = logging.getLogger(__name__)

KEY_FILE = "workstation_key.ed25519"
HISTORY_FILE = "workstation_key.history.json"
LOCK_FILE = "workstation_key.lock"
KEYRING_SERVICE = "SketchFace workstation key"
_cache: dict[str, Ed25519PrivateKey] = {}
_cache_lock = threading.Lock()


def canonical_json(obj: Any) -> str:
    """One fixed text for a JSON value (sorted keys, no spaces), so its hash never depends on formatting."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def key_fingerprint(public_key_hex: str) -> str:
    """SHA-256 (hex) of a raw public key given in hex."""
    try:
        raw = bytes.fromhex(public_key_hex)
    except ValueError:
        raw = public_key_hex.encode("utf-8")
    return hashlib.sha256(raw).hexdigest()


def store_kind() -> str:
    """Where private keys of this workstation are kept: ``keyring`` or ``file`` (see the module docstring)."""
    return _store_kind()


def _store_kind() -> str:
    explicit = os.environ.get("SKETCHFACE_KEY_STORE", "").strip().lower()
    if explicit in ("file", "keyring"):
        return explicit
    if os.environ.get("SKETCHFACE_HOME") or os.environ.get("SKETCHFACE_CONFIG_DIR"):
        return "file"
    return "keyring" if _keyring_usable() else "file"


def _keyring_usable() -> bool:
    try:
        import keyring
        from keyring.backends import fail

        kr = keyring.get_keyring()
        return not isinstance(kr, fail.Keyring) and float(getattr(kr, "priority", 0)) > 0
    except Exception:  # any backend failure means "not usable": fall back to the key file
        return False


def key_file() -> Path:
    """Where the key file lives when no keyring is used (config dir, never a case folder)."""
    return paths.config_dir() / KEY_FILE


def _load_file(path: Path) -> Ed25519PrivateKey | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise CaseError(f"The workstation key {path} cannot be read ({exc}).",
                        hint="Check the file's owner and rights; cases cannot be signed without it.") from exc
    mode = stat.S_IMODE(path.stat().st_mode)
    if os.name == "posix" and mode & 0o077:
        try:
            os.chmod(path, 0o600)
        except OSError as exc:  # say so: a key others can still read is not a key this workstation alone holds
            log.warning("Workstation key %s is readable by others (mode %o) and could not be restricted to its "
                        "owner (%s); fix its rights by hand.", path, mode, exc.strerror or exc)
        else:
            log.warning("Workstation key %s was readable by others (mode %o); restricted it to its owner (600).",
                        path, mode)
    try:
        return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(text))
    except ValueError as exc:
        raise CaseError(f"The workstation key {path} is damaged.",
                        hint="Restore it from a backup; cases it signed now show 'signed by another key'.") from exc


def _publish(tmp: Path, path: Path, raw: str) -> None:
    """Put the new key in place without ever replacing one: a hard link, or O_EXCL where links fail."""
    try:
        os.link(tmp, path)  # atomic and complete: a concurrent first use never reads half a key
    except FileExistsError:
        raise
    except OSError:  # file systems without hard links
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(raw + "\n")
            f.flush()
            os.fsync(f.fileno())


def _create_file(path: Path) -> Ed25519PrivateKey:
    """Write a new key (0600) without ever replacing one another process wrote first."""
    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes_raw().hex()
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(raw + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            _publish(tmp, path, raw)
        except FileExistsError:
            loaded = _load_file(path)
            if loaded is None:
                raise CaseError(f"The workstation key {path} vanished while it was being created.") from None
            return loaded
    finally:
        tmp.unlink(missing_ok=True)
    log.info("Created the workstation key %s (public key fingerprint %s).", path,
                key_fingerprint(key.public_key().public_bytes_raw().hex()))
    return key


def _from_keyring(account: str) -> Ed25519PrivateKey | None:
    """The key the OS keyring holds for this config dir, or None when it holds none."""
    import keyring

    stored = keyring.get_password(KEYRING_SERVICE, account)
    return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(stored)) if stored else None


def _create_in_keyring(account: str) -> Ed25519PrivateKey:
    import keyring

    key = Ed25519PrivateKey.generate()
    keyring.set_password(KEYRING_SERVICE, account, key.private_bytes_raw().hex())
    again = _from_keyring(account)  # another process may have set it first
    return again or key


def history_file() -> Path:
    """The record of every key this workstation made (public fingerprints only), beside the key file."""
    return paths.config_dir() / HISTORY_FILE


@contextlib.contextmanager
def _key_lock() -> Iterator[None]:
    """Serialise making a key and writing its history across processes (first use, ``--new``)."""
    with FileLock(str(paths.config_dir() / LOCK_FILE), timeout=60):
        yield


def key_history() -> list[dict[str, Any]]:
    """Every key this workstation made, oldest first: fingerprint, created_at, replaces, reason.

    Raises CaseError when the record exists but cannot be read: it is the evidence that decides
    whether a missing key may be replaced, so it is never guessed.
    """
    try:
        data = json.loads(history_file().read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise CaseError(f"The record of this workstation's keys {history_file()} cannot be read ({exc}).",
                        hint="Restore it from a backup; it shows which keys signed this workstation's cases.") from exc
    keys = data.get("keys") if isinstance(data, dict) else None
    return [k for k in keys if isinstance(k, dict)] if isinstance(keys, list) else []


def _note_key(key: Ed25519PrivateKey, *, replaces: list[str] | None = None, reason: str = "") -> None:
    """Add ``key`` to the history if it is not there (call under :func:`_key_lock`)."""
    fp = key_fingerprint(key.public_key().public_bytes_raw().hex())
    history = key_history()
    if any(h.get("fingerprint") == fp for h in history):
        return
    entry: dict[str, Any] = {"fingerprint": fp, "created_at": _now(), "store": _store_kind()}
    if replaces is not None:
        entry.update(replaces=replaces, reason=reason)
    atomic_write_text(history_file(), json.dumps({"keys": [*history, entry]}, indent=2))


def _now() -> str:
    return utc_now_iso()


def _refuse_replacing(where: str) -> None:
    """A missing key is not replaced silently once this workstation has signed with one.

    Everything the old key signed (case heads, registry and verified-head records, pins) would
    otherwise start to read as another workstation's without anyone having decided so; the
    examiner restores the key, or replaces it on purpose with ``sketchface case key --new``.
    """
    history = key_history()
    if not history:
        return
    last = history[-1]
    raise CaseError(f"The workstation key is missing ({where}), but this workstation has signed with key "
                    f"{last.get('fingerprint')} (made {last.get('created_at')}); a new key is not made silently, "
                    "because everything the old key signed would then read as another workstation's.",
                    hint=f"Restore {key_file()} from a backup. To start a new key on purpose, run "
                         f"'sketchface case key --new' (the change is recorded in {history_file()}).",
                    title="Workstation key missing")


def _load_existing() -> Ed25519PrivateKey | None:
    """The key from the keyring or the key file, whichever this workstation uses; None when absent."""
    if _store_kind() == "keyring":
        try:
            key = _from_keyring(str(paths.config_dir()))
        except Exception as exc:  # a locked or broken keyring must not stop casework: use the file
            log.warning("The OS keyring could not hold the workstation key (%s); using %s.", exc, key_file())
        else:
            if key is not None:
                return key
            if not key_file().exists():
                return None
    return _load_file(key_file())


def _make_new() -> Ed25519PrivateKey:
    """A new key in the store this workstation uses (keyring, else file)."""
    if _store_kind() == "keyring":
        try:
            return _create_in_keyring(str(paths.config_dir()))
        except Exception as exc:  # fall back to the key file, as loading does
            log.warning("The OS keyring could not hold the workstation key (%s); using %s.", exc, key_file())
    return _create_file(key_file())


def workstation_key() -> Ed25519PrivateKey:
    """This workstation's signing key, created on first use (keyring, else key file).

    A missing key is made anew only on a workstation that never had one (see :func:`_refuse_replacing`).
    """
    where = f"{_store_kind()}:{paths.config_dir()}"
    with _cache_lock:
        if where in _cache:
            return _cache[where]
        key = _load_existing()
        if key is None:
            with _key_lock():
                key = _load_existing()  # another process may have made it meanwhile
                if key is None:
                    _refuse_replacing(str(key_file()) if _store_kind() == "file" else "the OS keyring")
                    key = _make_new()
                _record(key)
        elif not _recorded(key):  # a key made before the history existed
            try:
                with _key_lock():
                    _record(key)
            except (OSError, Timeout) as exc:  # a read-only config folder: the key still signs
                log.warning("Could not record the workstation key in %s: %s", history_file(), exc)
        _cache[where] = key
        return key


def _recorded(key: Ed25519PrivateKey) -> bool:
    fp = key_fingerprint(key.public_key().public_bytes_raw().hex())
    try:
        return any(h.get("fingerprint") == fp for h in key_history())
    except CaseError:
        return False


def _record(key: Ed25519PrivateKey) -> None:
    try:
        _note_key(key)
    except (OSError, CaseError) as exc:
        log.warning("Could not record the workstation key in %s: %s", history_file(), exc)


def replace_key(reason: str = "") -> str:
    """Make a new key on purpose where the old one is lost; recorded in the history. Its public key (hex).

    Refused while a key is present: a working key is never replaced, since cases it signed would
    then read as another workstation's.
    """
    with _cache_lock:
        _cache.clear()
        with _key_lock():
            present = _load_existing()
            if present is not None:
                fp = key_fingerprint(present.public_key().public_bytes_raw().hex())
                raise CaseError(f"This workstation already has key {fp}; --new only replaces a key that is lost.",
                                hint="Nothing was changed.")
            previous = [str(h.get("fingerprint")) for h in key_history()]
            key = _make_new()
            _note_key(key, replaces=previous, reason=reason or "the previous key was lost")
    pub = key.public_key().public_bytes_raw().hex()
    log.warning("Made a new workstation key %s replacing %s; cases signed by the old key now read as another "
                "workstation's.", key_fingerprint(pub), ", ".join(previous) or "none")
    return pub


def public_key_hex() -> str:
    """This workstation's public key (hex of the raw 32 bytes), as printed in reports."""
    return workstation_key().public_key().public_bytes_raw().hex()


def message(purpose: str, payload: dict[str, Any]) -> bytes:
    """The exact bytes signed for ``payload``: tagged with its purpose so it cannot be replayed elsewhere."""
    return canonical_json({"purpose": purpose, "v": 1, **payload}).encode("utf-8")


def sign(purpose: str, payload: dict[str, Any]) -> str:
    """This workstation's signature (hex) over ``payload`` for ``purpose``."""
    return workstation_key().sign(message(purpose, payload)).hex()


def sign_with(key: Ed25519PrivateKey, purpose: str, payload: dict[str, Any]) -> str:
    """``key``'s signature (hex) over ``payload`` for ``purpose``: the same tagged message as :func:`sign`."""
    return key.sign(message(purpose, payload)).hex()


def verify(purpose: str, payload: dict[str, Any], signature_hex: str, public_key: str | None = None) -> bool:
    """True when ``signature_hex`` is ``public_key``'s (default: this workstation's) over ``payload``."""
    try:
        pub = (Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key)) if public_key
               else workstation_key().public_key())
        pub.verify(bytes.fromhex(signature_hex), message(purpose, payload))
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True
