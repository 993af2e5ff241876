"""What an attacker who can write a case folder (but holds no workstation key) does to a case's record.

Used by the case attack tests. Each forgery uses only what the case folder itself gives away: the
published hash formats (``engine.cases.audit.entry_hash``, ``engine.cases.records.digests``). The
chain is rebuilt around the change, so the chain alone no longer shows it; only what the workstation
key authenticates (the signed head, the verified-head record, the registry anchor) still does.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from engine.cases import audit, records
from engine.cases.db import canonical_json
from engine.cli import main


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run one ``sketchface`` command as a user would; its exit status, stdout and stderr."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _rechain(conn: sqlite3.Connection, case_id: str, start_seq: int) -> None:
    """Recompute every entry hash from ``start_seq`` on and the meta head: the chain then reads as whole."""
    rows = conn.execute("SELECT * FROM audit ORDER BY seq").fetchall()
    prev = audit.genesis_hash(case_id)
    for r in rows:
        if r["seq"] >= start_seq:
            h = audit.entry_hash(case_id, r["seq"], r["ts"], r["user"], r["action"], r["object"],
                                 json.loads(r["inputs"]), json.loads(r["outputs"]), json.loads(r["details"]), prev)
            conn.execute("UPDATE audit SET prev_hash = ?, hash = ? WHERE pos = ?", (prev, h, r["pos"]))
            prev = h
        else:
            prev = r["hash"]
    conn.execute("UPDATE meta SET value = ? WHERE key = 'audit_anchor'",
                 (canonical_json({"count": len(rows), "head": prev}),))


def forge_decision(folder: Path, decision: str = "possible", note: str = "forged: strong match") -> None:
    """Rewrite the case's last 'excluded' decision and rebuild the chain and the case's own anchors.

    Everything the case folder holds then agrees with itself; the workstation signature does not.
    """
    conn = sqlite3.connect(folder / "case.sqlite", isolation_level=None)
    conn.row_factory = sqlite3.Row
    try:
        case_id = conn.execute("SELECT value FROM meta WHERE key = 'case_id'").fetchone()[0]
        did = conn.execute("SELECT id FROM decisions WHERE decision = 'excluded' ORDER BY id DESC").fetchone()[0]
        conn.execute("BEGIN")
        conn.execute("UPDATE decisions SET decision = ?, note = ? WHERE id = ?", (decision, note, did))
        digest = records.digests(conn, [("decisions", did)])
        key = records.record_key("decisions", did)
        entry: Any = next(r for r in conn.execute("SELECT * FROM audit ORDER BY seq").fetchall()
                          if key in json.loads(r["details"]).get("records", {}))
        details = json.loads(entry["details"])
        details["records"].update(digest)
        details["decision"] = decision
        conn.execute("UPDATE audit SET details = ? WHERE pos = ?", (canonical_json(details), entry["pos"]))
        _rechain(conn, case_id, entry["seq"])
        conn.execute("COMMIT")
        count, head = json.loads(conn.execute("SELECT value FROM meta WHERE key = 'audit_anchor'").fetchone()[0]
                                 ).values()
    finally:
        conn.close()
    sidecar = folder / "audit_anchor.json"
    sidecar.write_text(json.dumps({"case_id": case_id, "count": count, "head": head}, indent=2))


def stored_decision(folder: Path) -> tuple[str, str]:
    """The decision and note of the forged row, read straight from the database."""
    conn = sqlite3.connect(folder / "case.sqlite")
    try:
        row = conn.execute("SELECT decision, note FROM decisions WHERE note LIKE 'forged%'").fetchone()
    finally:
        conn.close()
    return (str(row[0]), str(row[1])) if row else ("", "")


def copy_case(src: Path, dest_parent: Path) -> Path:
    """Copy a case folder as a file manager would (database, anchors and stored files)."""
    dest = dest_parent / src.name
    shutil.copytree(src, dest)
    return dest
