"""Examiner profiles: who is working, each with an Ed25519 key of their own, and the trust list of examiner keys.

The workstation key (:mod:`engine.workstation_key`) proves which machine wrote a case; it cannot say
which person decided, because everyone at the machine uses it. Each examiner therefore has a profile
(display name, agency identifier such as a badge or staff number) and a private key held in the OS
keyring, or, where there is none, in a passphrase-protected key file (0600) in the config folder,
never in the data folder. The acting profile's key signs every audit entry its holder makes.

The trust list (``examiner_trust.json`` in the config folder, signed with the workstation key so an
edit in the config folder shows) records the examiner keys this workstation accepted: keys accepted one by one (who accepted it and when) and keys from an agency file; the keys of this workstation's own profiles count as known. Verification
labels each signature *known examiner*, *unknown key* or *revoked*; a revoked key's signatures made
after its revocation are findings, the ones before stay valid with a note.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from engine import paths, workstation_key
from engine.errors import CaseError
from engine.fsutil import atomic_write_text
from engine.timestamps import utc_now_iso

log = logging.getLogger(__name__)

PROFILES_FILE = "examiners.json"
TRUST_FILE = "examiner_trust.json"
KEY_DIR = "examiner_keys"
KEYRING_SERVICE = "SketchFace examiner key"
PROFILE_ENV = "SKETCHFACE_EXAMINER_PROFILE"
PASSPHRASE_ENV = "SKETCHFACE_EXAMINER_PASSPHRASE"
KNOWN, UNKNOWN, REVOKED = "known examiner", "unknown key", "revoked"
NO_PROFILE_HINT = ("Create your examiner profile first: sketchface examiner add --name \"YOUR NAME\" "
                   "--identifier BADGE-OR-STAFF-NUMBER (scripts choose one with --examiner-profile or "
                   f"{PROFILE_ENV}).")

_lock = threading.RLock()
_unlocked: dict[str, Ed25519PrivateKey] = {}  # fingerprint -> key, for this process only
_override: dict[str, str] = {}  # config folder -> the profile this process acts as there (switcher, --examiner-profile)
PassphraseSource = Callable[["Profile", bool], str]
_passphrase_source: PassphraseSource | None = None


class NoExaminer(CaseError):
    """No examiner profile is chosen: nothing is written without knowing who is working."""

    title = "Who is working?"


def _now() -> str:
    return utc_now_iso()


@dataclass(frozen=True)
class Profile:
    """One examiner as this workstation knows them; the private key is kept apart (keyring or key file)."""

    name: str
    identifier: str
    public_key: str
    fingerprint: str
    store: str
    created_at: str
    os_user: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def author(self) -> dict[str, str]:
        """What every audit entry made under this profile says about its author."""
        return {"name": self.name, "identifier": self.identifier, "fingerprint": self.fingerprint,
                "public_key": self.public_key, "os_user": os_account()}


def os_account() -> str:
    """The OS account running this process (recorded beside the profile, never instead of it)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


# --- profiles -------------------------------------------------------------------------------------


def _profiles_path() -> Path:
    return paths.config_dir() / PROFILES_FILE


def _read_profiles() -> dict[str, Any]:
    try:
        data = json.loads(_profiles_path().read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"profiles": [], "current": None}
    except (OSError, ValueError) as exc:
        raise CaseError(f"The examiner profiles {_profiles_path()} cannot be read ({exc}).",
                        hint="Restore the file from a backup, or add your profile again.") from exc
    return data if isinstance(data, dict) else {"profiles": [], "current": None}


def profiles() -> list[Profile]:
    """Every examiner profile of this workstation, oldest first."""
    fields = Profile.__dataclass_fields__
    return [Profile(**{k: str(v) for k, v in p.items() if k in fields})
            for p in _read_profiles().get("profiles", []) if isinstance(p, dict)]


def find(ref: str) -> Profile:
    """The profile ``ref`` names: fingerprint (or a prefix of 8+ digits), identifier, or display name."""
    ref = ref.strip()
    folded = ref.casefold()
    for p in profiles():
        if (len(ref) >= 8 and p.fingerprint.startswith(ref.lower())) or p.identifier.casefold() == folded:
            return p
    named = [p for p in profiles() if p.name.casefold() == folded]
    if len(named) == 1:
        return named[0]
    listed = ", ".join(f"{p.name} ({p.identifier})" for p in profiles()) or "none yet"
    raise CaseError(f"No examiner profile is called {ref!r}" + (" uniquely" if named else "") + ".",
                    hint=f"Profiles on this workstation: {listed}. Add one with 'sketchface examiner add'.")


def _key_file(fp: str) -> Path:
    return paths.config_dir() / KEY_DIR / f"{fp[:32]}.pem"


def _passphrase(profile: Profile, new: bool) -> str:
    env = os.environ.get(PASSPHRASE_ENV)
    if env:
        return env
    if _passphrase_source is not None:
        return _passphrase_source(profile, new)
    if sys.stdin is not None and sys.stdin.isatty():
        prompt = f"Passphrase for {profile.name}'s examiner key" + (" (new)" if new else "") + ": "
        return getpass.getpass(prompt)
    raise CaseError(f"The examiner key of {profile.name} ({profile.identifier}) is in a passphrase-protected key "
                    "file and no passphrase was given.",
                    hint=f"Run interactively, or set {PASSPHRASE_ENV} for this process.")


def set_passphrase_source(source: PassphraseSource | None) -> None:
    """Where a passphrase comes from when none is set in the environment (the window's dialog)."""
    global _passphrase_source
    _passphrase_source = source


def _store_private(profile: Profile, key: Ed25519PrivateKey, passphrase: str | None = None) -> str:
    """Keep ``key`` in the keyring, else in a passphrase-protected 0600 file; the store used."""
    raw = key.private_bytes_raw().hex()
    if workstation_key.store_kind() == "keyring":
        try:
            import keyring

            keyring.set_password(KEYRING_SERVICE, f"{paths.config_dir()}:{profile.fingerprint}", raw)
            return "keyring"
        except Exception as exc:  # a locked or broken keyring: the key file, as for the workstation key
            log.warning("The OS keyring could not hold the examiner key (%s); using a key file.", exc)
    phrase = passphrase if passphrase is not None else _passphrase(profile, True)
    if len(phrase) < 8:
        raise CaseError("An examiner key passphrase needs at least 8 characters.")
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.BestAvailableEncryption(phrase.encode("utf-8")))
    path = _key_file(profile.fingerprint)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
        f.flush()
        os.fsync(f.fileno())
    return "file"


def private_key(profile: Profile) -> Ed25519PrivateKey:
    """The profile's private key, unlocked once per process (keyring, else the key file and its passphrase)."""
    with _lock:
        if profile.fingerprint in _unlocked:
            return _unlocked[profile.fingerprint]
        key: Ed25519PrivateKey | None = None
        if profile.store == "keyring":
            import keyring

            stored = keyring.get_password(KEYRING_SERVICE, f"{paths.config_dir()}:{profile.fingerprint}")
            key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(stored)) if stored else None
        else:
            path = _key_file(profile.fingerprint)
            try:
                pem = path.read_bytes()
            except OSError as exc:
                raise CaseError(f"The examiner key file {path} of {profile.name} cannot be read ({exc}).") from exc
            try:
                loaded = serialization.load_pem_private_key(pem, _passphrase(profile, False).encode("utf-8"))
            except (ValueError, TypeError) as exc:
                raise CaseError(f"The passphrase for {profile.name}'s examiner key is wrong, or the key file "
                                f"{path} is damaged.") from exc
            key = loaded if isinstance(loaded, Ed25519PrivateKey) else None
        if key is None or key.public_key().public_bytes_raw().hex() != profile.public_key:
            raise CaseError(f"The examiner key of {profile.name} ({profile.identifier}) is missing or is not the "
                            "key the profile names.", hint="Restore it from a backup, or rotate to a new key.")
        _unlocked[profile.fingerprint] = key
        return key


def _write_profiles(data: dict[str, Any]) -> None:
    atomic_write_text(_profiles_path(), json.dumps(data, indent=2, ensure_ascii=False))


def add(name: str, identifier: str, *, make_current: bool = True, passphrase: str | None = None) -> Profile:
    """Create a profile with a new key; it counts as known on this workstation and (by default) becomes current.

    ``passphrase`` protects the key file where no keyring is used (default: asked, or from the environment).
    """
    name, identifier = name.strip(), identifier.strip()
    if not name or not identifier:
        raise CaseError("An examiner profile needs a display name and an agency identifier (badge or staff number).")
    with _lock:
        if any(p.identifier.casefold() == identifier.casefold() for p in profiles()):
            raise CaseError(f"A profile with identifier {identifier} already exists on this workstation.",
                            hint="Use it with 'sketchface examiner use', or rotate its key.")
        return _new_key_profile(name, identifier, make_current=make_current, passphrase=passphrase)


def _new_key_profile(name: str, identifier: str, *, make_current: bool, replaces: str = "",
                     passphrase: str | None = None) -> Profile:
    key = Ed25519PrivateKey.generate()
    pub = key.public_key().public_bytes_raw().hex()
    fp = workstation_key.key_fingerprint(pub)
    draft = Profile(name, identifier, pub, fp, "", _now(), os_account())
    store = _store_private(draft, key, passphrase)
    profile = Profile(name, identifier, pub, fp, store, draft.created_at, draft.os_user)
    data = _read_profiles()
    kept = [p for p in data.get("profiles", []) if isinstance(p, dict) and p.get("fingerprint") != replaces]
    data["profiles"] = [*kept, profile.to_dict()]
    if make_current or data.get("current") == replaces:
        data["current"] = fp
    _write_profiles(data)
    _unlocked[fp] = key
    return profile


def use(ref: str) -> Profile:
    """Make ``ref`` this workstation's current profile (kept in the config folder)."""
    profile = find(ref)
    with _lock:
        data = _read_profiles()
        data["current"] = profile.fingerprint
        _write_profiles(data)
    return profile


def act_as(ref: str | None) -> Profile | None:
    """Act as ``ref`` in this process only (the window's switcher, ``--examiner-profile``); None: the default."""
    profile = find(ref) if ref else None
    if profile is None:
        _override.pop(str(paths.config_dir()), None)
    else:
        _override[str(paths.config_dir())] = profile.fingerprint
    return profile


def current() -> Profile | None:
    """The acting profile: this process's choice, else ``SKETCHFACE_EXAMINER_PROFILE``, else the saved one."""
    chosen = _override.get(str(paths.config_dir()))
    if chosen:
        return find(chosen)
    env = os.environ.get(PROFILE_ENV, "").strip()
    if env:
        return find(env)
    saved = _read_profiles().get("current")
    if saved:
        try:
            return find(str(saved))
        except CaseError:
            return None
    return None


def require_current() -> Profile:
    """The acting profile, or :class:`NoExaminer` naming how to create one."""
    profile = current()
    if profile is None:
        raise NoExaminer("No examiner profile is chosen on this workstation, so nothing can be recorded as "
                         "anyone's work.", hint=NO_PROFILE_HINT)
    return profile


def rotate(ref: str | None = None, reason: str = "") -> Profile:
    """Give a profile a new key; the old key is revoked from now on (its earlier signatures stay valid)."""
    old = find(ref) if ref else require_current()
    with _lock:
        new = _new_key_profile(old.name, old.identifier, make_current=False, replaces=old.fingerprint)
        revoke(old.fingerprint, reason=reason or f"rotated to {new.fingerprint}", by=new)
    return new


def export_key(ref: str | None = None) -> dict[str, str]:
    """The public half of a profile, as another workstation's trust list accepts it."""
    p = find(ref) if ref else require_current()
    return {"format": "sketchface-examiner-key", "name": p.name, "identifier": p.identifier,
            "public_key": p.public_key, "fingerprint": p.fingerprint}


def revocation(fingerprint: str) -> dict[str, Any] | None:
    """The trust list's row for ``fingerprint`` when that key is revoked, else None."""
    keys, _ok = _read_trust()
    row = next((k for k in keys if k.get("fingerprint") == fingerprint), None)
    return row if row is not None and row.get("revoked_at") else None


def sign(profile: Profile, purpose: str, payload: dict[str, Any]) -> str:
    """``profile``'s signature (hex) over ``payload``, tagged with its purpose.

    Refused for a revoked key: verification would flag every later signature by it as a finding, so
    nothing is written with it in the first place (a stolen or rotated key stops at the write).
    """
    row = revocation(profile.fingerprint)
    if row is not None:
        raise CaseError(f"The examiner key of {profile.name} ({profile.identifier}, key {profile.fingerprint[:16]}) "
                        f"was revoked on {row.get('revoked_at')} ({row.get('revoke_reason') or 'no reason given'}); "
                        "nothing is signed with it, so nothing was written.",
                        hint="Work under another examiner profile ('sketchface examiner use'), or give this profile "
                             "a new key ('sketchface examiner rotate').")
    return workstation_key.sign_with(private_key(profile), purpose, payload)


# --- trust list -----------------------------------------------------------------------------------


def _trust_path() -> Path:
    return paths.config_dir() / TRUST_FILE


def _read_trust() -> tuple[list[dict[str, Any]], bool]:
    """The trusted keys and whether the list's workstation signature holds (False: treat none as known)."""
    try:
        data = json.loads(_trust_path().read_text(encoding="utf-8"))
    except FileNotFoundError:
        return [], True
    except (OSError, ValueError):
        return [], False
    keys = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(keys, list):
        return [], False
    ok = workstation_key.verify("examiner-trust", {"keys": keys}, str(data.get("signature", "")))
    return [k for k in keys if isinstance(k, dict)], ok


def _write_trust(keys: list[dict[str, Any]]) -> None:
    sig = workstation_key.sign("examiner-trust", {"keys": keys})
    atomic_write_text(_trust_path(), json.dumps({"keys": keys, "signature": sig}, indent=2, ensure_ascii=False))


def trusted_keys() -> list[dict[str, Any]]:
    """The trust list as stored (raises when its signature no longer holds: it was edited by hand)."""
    keys, ok = _read_trust()
    if not ok:
        raise CaseError(f"The examiner trust list {_trust_path()} does not carry this workstation's signature: it "
                        "was altered, or written under another workstation key.",
                        hint="Restore it from a backup, or import the agency's list again.")
    return keys


def _who(by: Profile | None) -> str:
    p = by if by is not None else current()
    return f"{p.name} ({p.identifier}, key {p.fingerprint[:16]})" if p else f"OS account {os_account()}"


def accept(entry: dict[str, Any], *, source: str, accepted_by: Profile | None = None) -> dict[str, Any]:
    """Add one examiner key (``export-key`` output, or an agency file's row) to the trust list."""
    pub = str(entry.get("public_key", "")).strip().lower()
    try:
        if len(bytes.fromhex(pub)) != 32:
            raise ValueError(pub)
    except ValueError:
        raise CaseError("An examiner key must give its 32-byte Ed25519 public key in hex.") from None
    fp = workstation_key.key_fingerprint(pub)
    if entry.get("fingerprint") and str(entry["fingerprint"]).lower() != fp:
        raise CaseError(f"The key of {entry.get('name')} does not have the fingerprint it states; not accepted.")
    with _lock:
        keys = trusted_keys() if _trust_path().exists() else []
        row = next((k for k in keys if k.get("fingerprint") == fp), None)
        if row is None:
            row = {"fingerprint": fp, "public_key": pub, "name": str(entry.get("name", "")),
                   "identifier": str(entry.get("identifier", "")), "source": source,
                   "accepted_by": _who(accepted_by), "accepted_at": _now()}
            keys.append(row)
        if entry.get("revoked_at") and not row.get("revoked_at"):
            row.update(revoked_at=str(entry["revoked_at"]), revoked_by=source,
                       revoke_reason=str(entry.get("revoke_reason", "")))
        _write_trust(keys)
    return row


def import_agency_file(path: Path) -> list[dict[str, Any]]:
    """Accept every key of an agency file (``{"agency": ..., "examiners": [{name, identifier, public_key}]}``)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CaseError(f"The agency key file {path} cannot be read ({exc}).") from exc
    rows = data.get("examiners") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise CaseError(f"{path} is not an agency key file (no 'examiners' list).")
    source = f"agency file {path.name}" + (f" ({data.get('agency')})" if data.get("agency") else "")
    return [accept(r, source=source) for r in rows if isinstance(r, dict)]


def revoke(fingerprint: str, *, reason: str = "", by: Profile | None = None) -> dict[str, Any]:
    """Revoke a key from now on: later signatures by it are findings, earlier ones stay valid with a note."""
    with _lock:
        keys = trusted_keys()
        row = next((k for k in keys if str(k.get("fingerprint", "")).startswith(fingerprint.lower())
                    and len(fingerprint) >= 8), None)
        own = next((p for p in profiles() if len(fingerprint) >= 8
                    and p.fingerprint.startswith(fingerprint.lower())), None)
        if row is None and own is not None:  # a profile of this workstation: it enters the list to be revoked
            row = {"fingerprint": own.fingerprint, "public_key": own.public_key, "name": own.name,
                   "identifier": own.identifier, "source": "a profile of this workstation",
                   "accepted_by": _who(by), "accepted_at": _now()}
            keys.append(row)
        if row is None:
            raise CaseError(f"No key with fingerprint {fingerprint} is on this workstation's trust list.")
        if not row.get("revoked_at"):
            row.update(revoked_at=_now(), revoked_by=_who(by), revoke_reason=reason)
            _write_trust(keys)
    return row


def labeller() -> Callable[[str, str], tuple[str, str, bool]]:
    """:func:`label` over one reading of the trust list and the profiles.

    Verifying a case labels every entry; reading both files once per verification, not once per entry,
    keeps a write (which verifies the record first) cheap on a long case.
    """
    keys, ok = _read_trust()
    own_profiles = profiles()

    def label_at(fingerprint: str, signed_at: str) -> tuple[str, str, bool]:
        if not ok:
            return UNKNOWN, "the trust list of this workstation does not verify", False
        row = next((k for k in keys if k.get("fingerprint") == fingerprint), None)
        own = next((p for p in own_profiles if p.fingerprint == fingerprint), None)
        if row is None and own is not None:
            return KNOWN, f"{own.name} ({own.identifier}), a profile of this workstation", False
        if row is None:
            return UNKNOWN, "this key is on no trust list of this workstation", False
        who = f"{row.get('name')} ({row.get('identifier')})"
        revoked = str(row.get("revoked_at") or "")
        if not revoked:
            return KNOWN, who, False
        if signed_at and signed_at < revoked:
            return REVOKED, f"{who}; signed before the key was revoked on {revoked}, still valid", False
        return (REVOKED, f"{who}; signed after the key was revoked on {revoked} "
                f"({row.get('revoke_reason') or 'no reason'})", True)

    return label_at


def label(fingerprint: str, signed_at: str) -> tuple[str, str, bool]:
    """(label, note, finding) for a signature by ``fingerprint`` made at ``signed_at`` (ISO time, UTC)."""
    return labeller()(fingerprint, signed_at)
