"""Gallery-server profile operations (Tools > Gallery servers): list, save, remove and test a profile.

A profile is a small settings file plus a password in the OS keyring, so listing, saving and removing
run in place; testing connects to the server and is an op in the io lane. Each answer carries the
sentence the dialog shows (the engine's own wording when something is refused), so the dialog needs
none of the engine's types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine import servers
from engine.errors import EngineError
from sketchface_desktop.ops.base import Op, query


@dataclass(frozen=True)
class Outcome:
    """What a profile change did: whether it happened, and the sentence that says so (or why not)."""

    ok: bool
    text: str


def read_profiles() -> tuple[dict[str, Any], str]:
    """The saved profiles by name, and a problem to show ('' when none).

    A broken profiles file must not lock the examiner out of the dialog that fixes it, so any failure
    to read becomes an empty list and its message.
    """
    try:
        return dict(servers.load_profiles()), ""
    except Exception as exc:
        return {}, str(exc)


def save_profile(name: str, url: str, unit: str, password: str | None) -> Outcome:
    """Save a profile; the password (if given) goes to the OS keyring, never to a file."""
    try:
        profile, note = servers.add_profile(name, url, unit, password)
    except EngineError as exc:
        return Outcome(False, str(exc))
    return Outcome(True, f"Saved '{profile.name}' ({profile.where}); {note}.")


def remove_profile(name: str) -> Outcome:
    """Remove a profile and its keyring password."""
    try:
        servers.remove_profile(name)
    except EngineError as exc:
        return Outcome(False, str(exc))
    return Outcome(True, f"Removed '{name}' and its keyring password.")


def find_profile(name: str) -> tuple[Any | None, str]:
    """The profile called ``name`` and where it points, or None and why not."""
    try:
        return servers.get_profile(name), ""
    except Exception as exc:
        return None, str(exc)


def connection_report(profile: Any) -> dict[str, Any]:
    """Connect and report versions, TLS and the user's units (blocks: run it through :func:`check_server`)."""
    return dict(servers.test_profile(profile))


def check_server(profile: Any) -> Op[dict[str, Any]]:
    """`connection_report` as an op in the io lane (a network round trip never runs in the GUI thread)."""
    return query(f"Testing server {profile.name}", lambda: connection_report(profile))
