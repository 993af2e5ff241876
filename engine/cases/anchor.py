"""The workstation key: an Ed25519 signature over each case's audit head, with a key the case folder never holds.

The hash chain shows that the log is unaltered *given* its head; an attacker who can rewrite the
case folder can rebuild the whole chain. The head is therefore signed, in the same transaction as
each change, with a private key that lives outside every case folder: in the OS keyring when a
usable backend exists, otherwise in ``workstation_key.ed25519`` in the config dir (owner-only
rights). ``SKETCHFACE_KEY_STORE=file|keyring`` chooses explicitly; with ``SKETCHFACE_HOME`` set
(portable installs, tests) the key file beside that home is the default.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import sqlite3
import stat
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from engine import paths
from engine.cases.db import canonical_json, get_meta, set_meta
from engine.errors import CaseError

log = logging.getLogger(__name__)

SIGNATURE_META_KEY = "audit_signature"
KEY_FILE = "workstation_key.ed25519"
KEYRING_SERVICE = "SketchFace workstation key"
_cache: dict[str, Ed25519PrivateKey] = {}
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class HeadSignature:
    """A workstation's Ed25519 signature over (case id, entry count, head hash), with its public key."""

    case_id: str
    count: int
    head: str
    signature: str  # hex
    public_key: str  # hex of the 32 raw bytes

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the raw public key: the short name a person compares."""
        return key_fingerprint(self.public_key)

    def valid(self) -> bool:
        """True when the signature is the public key's over this case id, count and head."""
        try:
            pub = Ed25519PublicKey.from_public_bytes(bytes.fromhex(self.public_key))
            pub.verify(bytes.fromhex(self.signature), head_message(self.case_id, self.count, self.head))
        except (ValueError, InvalidSignature):
            return False
        return True

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "fingerprint": self.fingerprint}

    @classmethod
    def from_dict(cls, d: Any) -> HeadSignature:
        """Parse a stored signature, or raise ValueError."""
        if not isinstance(d, dict):
            raise ValueError("not an object")
        try:
            return cls(str(d["case_id"]), int(d["count"]), str(d["head"]), str(d["signature"]), str(d["public_key"]))
        except (KeyError, TypeError) as exc:
            raise ValueError(str(exc)) from exc


def key_fingerprint(public_key_hex: str) -> str:
    """SHA-256 (hex) of a raw public key given in hex."""
    try:
        raw = bytes.fromhex(public_key_hex)
    except ValueError:
        raw = public_key_hex.encode("utf-8")
    return hashlib.sha256(raw).hexdigest()


def head_message(case_id: str, count: int, head: str) -> bytes:
    """The exact bytes signed: purpose-tagged so the signature cannot be replayed for anything else."""
    return canonical_json({"purpose": "sketchface-audit-head", "v": 1, "case_id": case_id, "count": count,
                           "head": head}).encode("utf-8")


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
        log.warning("Workstation key %s was readable by others (mode %o); restricting it to its owner.", path, mode)
        with contextlib.suppress(OSError):
            os.chmod(path, 0o600)
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


def _from_keyring(account: str) -> Ed25519PrivateKey:
    import keyring

    stored = keyring.get_password(KEYRING_SERVICE, account)
    if stored:
        return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(stored))
    key = Ed25519PrivateKey.generate()
    keyring.set_password(KEYRING_SERVICE, account, key.private_bytes_raw().hex())
    again = keyring.get_password(KEYRING_SERVICE, account)  # another process may have set it first
    return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(again)) if again else key


def workstation_key() -> Ed25519PrivateKey:
    """This workstation's signing key, created on first use (keyring, else key file)."""
    kind = _store_kind()
    where = f"{kind}:{paths.config_dir()}"
    with _cache_lock:
        if where in _cache:
            return _cache[where]
        key: Ed25519PrivateKey | None = None
        if kind == "keyring":
            try:
                key = _from_keyring(str(paths.config_dir()))
            except Exception as exc:  # a locked or broken keyring must not stop casework: use the file
                log.warning("The OS keyring could not hold the workstation key (%s); using %s.", exc, key_file())
        if key is None:
            key = _load_file(key_file()) or _create_file(key_file())
        _cache[where] = key
        return key


def public_key_hex() -> str:
    """This workstation's public key (hex of the raw 32 bytes), as printed in reports."""
    return workstation_key().public_key().public_bytes_raw().hex()


def sign_head(case_id: str, count: int, head: str) -> HeadSignature:
    """Sign a case's audit head with this workstation's key."""
    key = workstation_key()
    sig = key.sign(head_message(case_id, count, head)).hex()
    return HeadSignature(case_id, count, head, sig, key.public_key().public_bytes_raw().hex())


def read_signature(conn: sqlite3.Connection) -> HeadSignature | None:
    """The signature stored in the case (None if absent); ValueError if it is not readable."""
    raw = get_meta(conn, SIGNATURE_META_KEY)
    if raw is None:
        return None
    return HeadSignature.from_dict(json.loads(raw))


def write_signature(conn: sqlite3.Connection, sig: HeadSignature) -> None:
    """Store the signature; call inside the write transaction whose head it signs."""
    set_meta(conn, SIGNATURE_META_KEY, canonical_json(asdict(sig)))
