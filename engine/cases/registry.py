"""The workstation's list of case locations, plus the last audit anchor it saw for each case.

Cases normally live under ``paths.cases_dir()``, but an examiner may keep one on an encrypted or
network volume; the registry remembers where. It lives in the data dir, i.e. *outside* the case
folder, which also makes it a useful place for a copy of each case's audit anchor: someone who cuts
entries off a case's log and fixes the case's own anchor still leaves this copy behind.

Every read-modify-write holds an inter-process file lock, so concurrent ``case new`` processes
lose nothing. A registry that cannot be parsed is never overwritten: it is renamed aside with a
time stamp and reported, and the cases under ``cases_dir()`` are found again by scanning.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from engine import paths
from engine import workstation_key as wk
from engine.errors import CaseError
from engine.fsutil import atomic_write_text

log = logging.getLogger(__name__)

REGISTRY_NAME = "case_registry.json"
ANCHOR_PURPOSE = "sketchface-registry-anchor"
LOCK_TIMEOUT_S = 60.0
_LOCK = threading.RLock()
_file_locks: dict[str, FileLock] = {}
_notices: list[str] = []


def registry_path() -> Path:
    """Where the registry file lives (data dir, outside every case folder)."""
    return paths.data_dir() / REGISTRY_NAME


@contextlib.contextmanager
def locked() -> Iterator[None]:
    """Hold the registry for a read-modify-write, across threads and processes (re-entrant)."""
    path = str(registry_path()) + ".lock"
    with _LOCK:
        lock = _file_locks.setdefault(path, FileLock(path, timeout=LOCK_TIMEOUT_S))
        try:
            with lock:
                yield
        except Timeout as exc:
            raise CaseError(f"The case registry {registry_path()} stayed locked for {LOCK_TIMEOUT_S:.0f} s.",
                            hint="Another SketchFace process is writing it; try again when it has finished.") from exc


def take_notices() -> list[str]:
    """Problems found with the registry since the last call (a front-end shows them once)."""
    with _LOCK:
        out = list(_notices)
        _notices.clear()
    return out


def _parse(text: str) -> dict[str, dict[str, Any]] | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("cases", {}), dict):
        return None
    return {str(k): v for k, v in data.get("cases", {}).items() if isinstance(v, dict)}


def _move_aside(path: Path) -> None:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    aside = path.with_name(f"{path.name}.unreadable-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.unreadable-{stamp}-{n}")
    os.replace(path, aside)
    msg = (f"The case registry {path} could not be read; it was moved aside to {aside.name} and a new one "
           f"started. Cases under {paths.cases_dir()} are found again automatically; cases kept elsewhere are "
           f"listed in {aside} (open each by its folder to register it again).")
    log.warning("%s", msg)
    _notices.append(msg)


def load() -> dict[str, dict[str, Any]]:
    """All registered cases by case id; an unreadable registry is moved aside (never overwritten) and reported."""
    path = registry_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError):
        text = None
    cases = None if text is None else _parse(text)
    if cases is not None:
        return cases
    with locked():
        try:  # another process may have repaired or replaced it meanwhile
            cases = _parse(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError):
            cases = None
        if cases is None:
            _move_aside(path)
            return {}
    return cases


def write_lagging(path: Path, text: str) -> None:
    """Replace ``path`` atomically (temp file + rename) but without fsync.

    For the audit-anchor copies only: they may lag behind the log by design (verification accepts
    an older anchor as long as the log still holds it), so a crash can cost at most the newest copy,
    and skipping two fsyncs per change keeps every examiner action fast.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _save(cases: dict[str, dict[str, Any]], durable: bool = True) -> None:
    text = json.dumps({"version": 1, "cases": cases}, indent=2, sort_keys=True)
    with locked():
        if durable:
            atomic_write_text(registry_path(), text)
        else:
            write_lagging(registry_path(), text)


def register(case_id: str, folder: Path, case_number: str, title: str) -> None:
    """Record (or move) a case's folder."""
    with locked():
        cases = load()
        entry = cases.get(case_id, {})
        entry.update({"path": str(Path(folder).resolve()), "case_number": case_number, "title": title})
        cases[case_id] = entry
        _save(cases)


def _anchor_payload(case_id: str, count: int, head: str) -> dict[str, Any]:
    return {"case_id": case_id, "count": count, "head": head}


def update_anchor(case_id: str, count: int, head: str) -> None:
    """Keep the case's latest audit count and head hash, signed with the workstation key (after every change)."""
    sig = wk.sign(ANCHOR_PURPOSE, _anchor_payload(case_id, count, head))
    with locked():
        cases = load()
        entry = cases.get(case_id)
        if entry is None:
            return
        entry["anchor"] = {"count": count, "head": head, "sig": sig}
        _save(cases, durable=False)


def update_fields(case_id: str, **fields: str) -> None:
    """Update a registered case's listed fields (title, number) after an edit."""
    with locked():
        cases = load()
        if case_id in cases:
            cases[case_id].update(fields)
            _save(cases)


def anchor(case_id: str) -> tuple[int, str] | None:
    """The last audit (count, head) this workstation recorded for a case, if any and if authentic."""
    rec = anchor_record(case_id)
    return (rec[0], rec[1]) if rec is not None and rec[2] else None


def anchor_record(case_id: str) -> tuple[int, str, bool] | None:
    """The registry's (count, head, authentic) for a case; None when it keeps no anchor.

    ``authentic`` is False when the record's workstation signature does not verify (it was altered,
    or written under another key). An anchor written before anchors were signed carries no
    signature; it is still compared (it can only add findings), and the next change signs it.
    """
    a = load().get(case_id, {}).get("anchor")
    if not isinstance(a, dict):
        return None
    try:
        count, head = int(a["count"]), str(a["head"])
    except (KeyError, TypeError, ValueError):
        return 0, "", False
    if "sig" not in a:
        return count, head, True
    return count, head, wk.verify(ANCHOR_PURPOSE, _anchor_payload(case_id, count, head), str(a["sig"]))
