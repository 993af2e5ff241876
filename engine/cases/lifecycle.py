"""Creating, finding and opening cases: the case lifecycle on top of the store's one audited write path."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from engine import paths
from engine.cases import db, registry, staging, watch_records
from engine.cases.store import STATUSES, Case, CaseInfo, open_case_folder, resolve_user
from engine.errors import CaseError
from engine.fsutil import private_dir


def _slug(text: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-_")[:40]
    return s or "case"


def create_case(case_number: str, title: str, *, examiner: str | None = None,
                witnesses: list[str] | tuple[str, ...] = (), incident_date: str = "", notes: str = "",
                location: str | os.PathLike[str] | None = None, user: str | None = None) -> Case:
    """Create a case folder and database, audit its creation, register it; return it open.

    Args:
        case_number: the agency's case number (unique on this workstation).
        title: short description.
        examiner: examiner in charge (default: the acting user).
        witnesses: witness names or codes.
        incident_date: free text (e.g. ISO date).
        notes: free text.
        location: parent folder to create the case in (e.g. an encrypted volume); default cases_dir().
        user: who creates it (default: settings examiner, else OS user).
    """
    case_number = case_number.strip()
    if not case_number:
        raise CaseError("A case needs a case number.")
    user = resolve_user(user)
    parent = private_dir(Path(location).expanduser()) if location else paths.cases_dir()
    with registry.locked():  # number check and registration as one step across processes
        if any(e.get("case_number") == case_number for e in registry.load().values()):
            raise CaseError(f"Case number {case_number} already exists on this workstation.",
                            hint="Open the existing case, or use another number.")
        final = _build_case(parent, case_number, title, examiner or user, list(witnesses), incident_date,
                            notes, user)
        case_id = final.name
        registry.register(case_id, final, case_number, title)
    case = open_case_folder(final)
    case._refresh_anchors()
    return case


def _build_case(parent: Path, case_number: str, title: str, examiner: str, witnesses: list[str],
                incident_date: str, notes: str, user: str) -> Path:
    """Build a new case in a staging folder and rename it into place; return its final folder."""
    staging.clean_stale(parent)
    case_id = f"{_slug(case_number)}-{secrets.token_hex(3)}"
    final = parent / case_id
    stage = staging.make(parent / f".{case_id}.creating")
    try:
        for sub in db.SUBFOLDERS:
            private_dir(stage / sub)
        conn = db.connect(stage / db.DB_NAME)
        db.init_schema(conn)
        ts = db.now_iso()
        info = {"case_number": case_number, "title": title, "examiner": examiner,
                "witnesses": witnesses, "incident_date": incident_date, "status": "open", "notes": notes}
        case = Case(stage, conn, case_id)
        with case.write():
            db.set_meta(conn, "schema_version", str(db.SCHEMA_VERSION))
            db.set_meta(conn, "case_id", case_id)
            conn.execute("INSERT INTO case_info VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (case_number, title, info["examiner"], json.dumps(info["witnesses"]),
                          incident_date, "open", notes, ts, ts))
            case.log("case.create", f"case:{case_id}", user=user, details=info, records=[("case_info", 1)])
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        (stage / staging.OWNER_FILE).unlink()
        os.replace(stage, final)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return final


def update_case(case: Case, *, title: str | None = None, status: str | None = None, notes: str | None = None,
                witnesses: list[str] | None = None, incident_date: str | None = None,
                user: str | None = None) -> CaseInfo:
    """Change case details; the audit entry records the values before and after."""
    if status is not None and status not in STATUSES:
        raise CaseError(f"Unknown case status {status!r}; use one of {', '.join(STATUSES)}.")
    before = case.info.to_dict()
    changes = {k: v for k, v in {"title": title, "status": status, "notes": notes,
                                  "witnesses": witnesses, "incident_date": incident_date}.items() if v is not None}
    if not changes:
        return case.info
    with case.write() as conn:
        for key, value in changes.items():
            stored = json.dumps(value) if key == "witnesses" else value
            conn.execute(f"UPDATE case_info SET {key} = ?, updated_at = ? WHERE id = 1", (stored, db.now_iso()))
        case.log("case.update", f"case:{case.case_id}", user=resolve_user(user),
                 details={"before": {k: before[k] for k in changes}, "after": changes}, records=[("case_info", 1)])
        if status in ("closed", "archived") and before["status"] != status:  # a closed case is watched no more
            watch_records.end_watches(case, f"case {status}", user=resolve_user(user))
    info = case.info
    registry.update_fields(case.case_id, title=info.title)
    return info


def _find_folder(ref: str) -> tuple[Path, str | None]:
    """The folder ``ref`` names, and the case id the workstation knows it by (None for a bare folder path)."""
    p = Path(ref).expanduser()
    if (p / db.DB_NAME).is_file():
        return p, None
    cases = registry.load()
    if ref in cases:
        return Path(cases[ref]["path"]), ref
    by_number = [(cid, e) for cid, e in cases.items() if e.get("case_number") == ref]
    if len(by_number) == 1:
        return Path(by_number[0][1]["path"]), by_number[0][0]
    local = paths.cases_dir() / ref
    if (local / db.DB_NAME).is_file():
        return local, ref  # case folders are named by their case id
    raise CaseError(f"No case {ref!r} on this workstation.",
                    hint="Give a case id or number from 'sketchface case list', or the case folder's path.")


def open_case(ref: str | os.PathLike[str]) -> Case:
    """Open a case by id, case number, or folder path.

    A case asked for by id or number must be that case: a folder holding another case (swapped in,
    or moved over it) is refused, naming both, before anything reads or writes it.
    """
    folder, expected = _find_folder(str(ref))
    if not folder.exists():
        raise CaseError(f"Case {ref} is registered at {folder}, which is not available.",
                        hint="Mount the volume that holds it, or import it again from an archive.")
    case = open_case_folder(folder)
    if expected is not None and case.case_id != expected:
        found = case.case_id
        case.close()
        raise CaseError(f"The folder {folder} registered for case {ref} ({expected}) holds case {found}: it was "
                        "swapped or moved over; nothing was checked or changed.",
                        hint=f"Open that folder by its path to examine case {found}; restore case {expected}'s folder "
                             "from its latest export.")
    if case.case_id not in registry.load():
        info = case.info
        registry.register(case.case_id, folder, info.case_number, info.title)
    return case


def list_cases() -> list[dict[str, Any]]:
    """Every known case (registry plus any case folder found under cases_dir()), newest first."""
    for child in sorted(paths.cases_dir().iterdir()):
        if (child / db.DB_NAME).is_file() and not child.name.startswith("."):
            with contextlib.suppress(CaseError, sqlite3.Error), open_case_folder(child) as c:
                if c.case_id not in registry.load():
                    registry.register(c.case_id, child, c.info.case_number, c.info.title)
    out: list[dict[str, Any]] = []
    for case_id, entry in registry.load().items():
        folder = Path(entry["path"])
        row: dict[str, Any] = {"case_id": case_id, "folder": str(folder), "available": False,
                               "case_number": entry.get("case_number", ""), "title": entry.get("title", "")}
        if (folder / db.DB_NAME).is_file():
            with contextlib.suppress(CaseError, sqlite3.Error), open_case_folder(folder) as c:
                if c.case_id == case_id:
                    row.update(c.info.to_dict(), available=True)
                else:  # another case's folder sits where this one is registered
                    row["swapped"] = c.case_id
        out.append(row)
    out.sort(key=lambda r: (r.get("created_at", ""), r["case_id"]), reverse=True)
    return out
