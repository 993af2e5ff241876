"""The workstation's list of case locations, plus the last audit anchor it saw for each case.

Cases normally live under ``paths.cases_dir()``, but an examiner may keep one on an encrypted or
network volume; the registry remembers where. It lives in the data dir, i.e. *outside* the case
folder, which also makes it a useful place for a copy of each case's audit anchor: someone who cuts
entries off a case's log and fixes the case's own anchor still leaves this copy behind.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from engine import paths
from engine.fsutil import atomic_write_text

REGISTRY_NAME = "case_registry.json"
_LOCK = threading.Lock()


def registry_path() -> Path:
    """Where the registry file lives (data dir, outside every case folder)."""
    return paths.data_dir() / REGISTRY_NAME


def load() -> dict[str, dict[str, Any]]:
    """All registered cases by case id; an unreadable registry counts as empty (cases are re-found by scan)."""
    path = registry_path()
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    cases = data.get("cases", {}) if isinstance(data, dict) else {}
    return {str(k): v for k, v in cases.items() if isinstance(v, dict)}


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
    if durable:
        atomic_write_text(registry_path(), text)
    else:
        write_lagging(registry_path(), text)


def register(case_id: str, folder: Path, case_number: str, title: str) -> None:
    """Record (or move) a case's folder."""
    with _LOCK:
        cases = load()
        entry = cases.get(case_id, {})
        entry.update({"path": str(Path(folder).resolve()), "case_number": case_number, "title": title})
        cases[case_id] = entry
        _save(cases)


def update_anchor(case_id: str, count: int, head: str) -> None:
    """Keep the case's latest audit count and head hash (called after every committed change)."""
    with _LOCK:
        cases = load()
        entry = cases.get(case_id)
        if entry is None:
            return
        entry["anchor"] = {"count": count, "head": head}
        _save(cases, durable=False)


def update_fields(case_id: str, **fields: str) -> None:
    """Update a registered case's listed fields (title, number) after an edit."""
    with _LOCK:
        cases = load()
        if case_id in cases:
            cases[case_id].update(fields)
            _save(cases)


def anchor(case_id: str) -> tuple[int, str] | None:
    """The last audit (count, head) this workstation recorded for a case, if any."""
    entry = load().get(case_id, {})
    a = entry.get("anchor")
    if isinstance(a, dict) and "count" in a and "head" in a:
        return int(a["count"]), str(a["head"])
    return None
