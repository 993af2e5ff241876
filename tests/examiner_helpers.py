"""Acting as a second examiner profile in tests: as a reviewer does with 'sketchface examiner use'."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from engine import examiners

REVIEWER = ("B. Reviewer", "B-2002")


def ensure_profile(name: str, identifier: str) -> examiners.Profile:
    """The profile with this identifier, created when it does not exist yet (current only where none is)."""
    try:
        return examiners.find(identifier)
    except Exception:  # no such profile yet
        return examiners.add(name, identifier, make_current=examiners.current() is None)


@contextlib.contextmanager
def acting_as(name: str = REVIEWER[0], identifier: str = REVIEWER[1]) -> Iterator[examiners.Profile]:
    """Act as another examiner profile (created on first use) for the block, then as the default again."""
    profile = ensure_profile(name, identifier)
    examiners.act_as(profile.fingerprint)
    try:
        yield profile
    finally:
        examiners.act_as(None)
