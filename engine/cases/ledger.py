"""The last audit head this workstation verified for each case, kept in the config folder and signed.

Before any write extends a case's log, the log must be shown whole up to the head it extends (see
:meth:`engine.cases.store.Case.write`). Re-hashing the whole log on every click is avoidable: this
record says "entries 1..count of case X ended in ``head`` when this workstation last checked or wrote
them", so a write re-checks only what came after. It lives in the config folder, outside every case
folder and the data folder, and each entry carries the workstation key's signature, so a changed or
replaced entry reads as altered, never as trusted. It is also the anchor that catches a rollback of
the case *and* of the data folder's registry together: neither copy reaches back into the config
folder.

An entry only moves forward (a higher count), except when ``case import`` accepts a case, which
starts that case's record afresh at the head the import verified.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from engine import paths
from engine import workstation_key as wk
from engine.errors import CaseError, EngineError
from engine.fsutil import atomic_write_text

log = logging.getLogger(__name__)

LEDGER_NAME = "case_heads.json"
PURPOSE = "sketchface-case-verified-head"
LOCK_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class VerifiedHead:
    """A case's last verified (count, head); ``authentic`` is False when the key's signature fails."""

    case_id: str
    count: int
    head: str
    authentic: bool


def ledger_path() -> Path:
    """Where the record lives: the config folder, beside the workstation key."""
    return paths.config_dir() / LEDGER_NAME


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    try:
        with FileLock(str(ledger_path()) + ".lock", timeout=LOCK_TIMEOUT_S):
            yield
    except Timeout as exc:
        raise CaseError(f"The verified-head record {ledger_path()} stayed locked for {LOCK_TIMEOUT_S:.0f} s.",
                        hint="Another SketchFace process is writing it; try again when it has finished.") from exc


class _Unreadable(Exception):
    """The record exists but cannot be parsed: altered or damaged, never silently started afresh."""


def _load() -> dict[str, Any]:
    try:
        data = json.loads(ledger_path().read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise _Unreadable(str(exc)) from exc
    cases = data.get("cases") if isinstance(data, dict) else None
    if not isinstance(cases, dict):
        raise _Unreadable("not a record of verified heads")
    return cases


def _payload(case_id: str, count: int, head: str) -> dict[str, Any]:
    return {"case_id": case_id, "count": count, "head": head}


def lookup(case_id: str) -> VerifiedHead | None:
    """The record for ``case_id`` (None if this workstation holds none); check ``authentic`` before use.

    An unreadable record file reads as an altered entry for every case: losing it would silently
    drop the rollback anchor of every case at once.
    """
    try:
        entry = _load().get(case_id)
    except _Unreadable as exc:
        log.warning("The verified-head record %s cannot be read (%s).", ledger_path(), exc)
        return VerifiedHead(case_id, 0, "", False)
    if entry is None:
        return None
    try:
        count, head, sig = int(entry["count"]), str(entry["head"]), str(entry["sig"])
    except (KeyError, TypeError, ValueError):
        return VerifiedHead(case_id, 0, "", False)
    return VerifiedHead(case_id, count, head, wk.verify(PURPOSE, _payload(case_id, count, head), sig))


def record(case_id: str, count: int, head: str, *, reset: bool = False) -> None:
    """Keep (count, head) as the case's verified head, if it is newer than the one kept (or ``reset``).

    Raises EngineError/OSError when it cannot be written; callers decide whether that blocks them.
    """
    sig = wk.sign(PURPOSE, _payload(case_id, count, head))
    with _locked():
        try:
            cases = _load()
        except _Unreadable as exc:  # never overwrite it: it holds every other case's anchor
            raise CaseError(f"The verified-head record {ledger_path()} cannot be read ({exc}); it was not "
                            "overwritten.", hint="Restore it from a backup of the config folder.") from exc
        current = lookup(case_id)
        if not reset and current is not None and current.authentic and current.count >= count:
            return  # another process already recorded this head or a later one
        cases[case_id] = {"count": count, "head": head, "sig": sig}
        atomic_write_text(ledger_path(), json.dumps({"version": 1, "cases": cases}, indent=2, sort_keys=True))


def record_quietly(case_id: str, count: int, head: str) -> None:
    """:func:`record` after a committed change: a failure is logged, the next write re-checks in full."""
    try:
        record(case_id, count, head)
    except (OSError, EngineError) as exc:
        log.warning("Could not update the verified-head record for case %s: %s", case_id, exc)
