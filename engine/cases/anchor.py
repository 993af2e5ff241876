"""The signed audit head: an Ed25519 signature over each case's head, with a key the case folder never holds.

The hash chain shows that the log is unaltered *given* its head; an attacker who can rewrite the
case folder can rebuild the whole chain. The head is therefore signed, in the same transaction as
each change, with the workstation key (:mod:`engine.workstation_key`, which says where it lives).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import asdict, dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from engine import workstation_key as wk
from engine.cases.db import canonical_json, get_meta, set_meta
from engine.workstation_key import (  # noqa: F401 - re-exported: the key's one home is engine.workstation_key
    KEY_FILE,
    KEYRING_SERVICE,
    key_file,
    key_fingerprint,
    public_key_hex,
    workstation_key,
)

log = logging.getLogger(__name__)

SIGNATURE_META_KEY = "audit_signature"
HEAD_PURPOSE = "sketchface-audit-head"


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


def head_message(case_id: str, count: int, head: str) -> bytes:
    """The exact bytes signed: purpose-tagged so the signature cannot be replayed for anything else."""
    return wk.message(HEAD_PURPOSE, {"case_id": case_id, "count": count, "head": head})


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
