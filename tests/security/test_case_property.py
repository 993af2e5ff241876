"""Property: any edit, insert or delete of any row of any table of a case database is found by verify.

A prebuilt case with rows in every table is copied per example; the attacker works on the copy with
plain SQL (foreign keys off, as a hand-made connection would be) and verification must report it.
Examples where SQLite refuses the change (constraint) or the stored value does not change are skipped.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from engine.cases.store import open_case_folder
from engine.errors import CaseError
from tests.security.test_case_support import full_case

TABLES = ["meta", "case_info", "sketches", "sketch_versions", "searches", "search_queries", "results", "decisions",
          "generated", "attachments", "signoffs", "audit"]
FRESH_TEXT = {"meta": "key"}
FRESH_INT = {"search_queries": ("idx",), "results": ("rank", "face_id"), "audit": ("pos",)}
VALUES = st.one_of(st.integers(-3, 2**40), st.text(max_size=12), st.floats(allow_nan=False, allow_infinity=False),
                   st.none(), st.binary(max_size=6))


def _typed(rows: list[tuple[Any, ...]]) -> list[tuple[tuple[str, Any], ...]]:
    return [tuple((type(v).__name__, v) for v in r) for r in rows]


def _snapshot(conn: sqlite3.Connection, table: str) -> list[tuple[tuple[str, Any], ...]]:
    return _typed([tuple(r) for r in conn.execute(f"SELECT rowid, * FROM {table} ORDER BY rowid")])


def _mutate(dbp: Path, table: str, op: str, pick: int, col_pick: int, value: Any) -> None:
    conn = sqlite3.connect(dbp, isolation_level=None)
    try:
        conn.execute("PRAGMA foreign_keys=OFF")
        cols = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
        rowids = [r[0] for r in conn.execute(f"SELECT rowid FROM {table} ORDER BY rowid")]
        assume(rowids)
        rowid, col = rowids[pick % len(rowids)], cols[col_pick % len(cols)]
        before = _snapshot(conn, table)
        try:
            if op == "edit":
                conn.execute(f'UPDATE {table} SET "{col}" = ? WHERE rowid = ?', (value, rowid))
            elif op == "delete":
                conn.execute(f"DELETE FROM {table} WHERE rowid = ?", (rowid,))
            else:
                row = dict(zip(cols, conn.execute(f"SELECT * FROM {table} WHERE rowid = ?", (rowid,)).fetchone(),
                               strict=True))
                for c in FRESH_INT.get(table, ("id",) if "id" in cols else ()):
                    row[c] = conn.execute(f"SELECT COALESCE(MAX({c}), 0) + 1 FROM {table}").fetchone()[0]
                if table in FRESH_TEXT:
                    row[FRESH_TEXT[table]] = f"forged_{pick}"
                if col not in FRESH_INT.get(table, ()) and col != "id" and col != FRESH_TEXT.get(table):
                    row[col] = value
                conn.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                             tuple(row.values()))
        except sqlite3.IntegrityError:
            assume(False)
        assume(_snapshot(conn, table) != before)
    finally:
        conn.close()


def test_every_random_edit_insert_or_delete_is_found(tmp_path: Path) -> None:
    with full_case() as case:
        source = case.folder
        assert case.verify().ok  # the control: untouched, the case verifies
    tables_hit: set[tuple[str, str]] = set()

    @settings(max_examples=120, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(table=st.sampled_from(TABLES), op=st.sampled_from(["edit", "insert", "delete"]),
           pick=st.integers(0, 1000), col_pick=st.integers(0, 100), value=VALUES)
    def check(table: str, op: str, pick: int, col_pick: int, value: Any) -> None:
        work = tmp_path / "work"
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(source, work)
        _mutate(work / "case.sqlite", table, op, pick, col_pick, value)
        tables_hit.add((table, op))
        try:
            with open_case_folder(work) as copy:
                report = copy.verify()
        except CaseError:
            return  # refused to open: detected
        assert not report.ok, (table, op, pick, col_pick, value)

    check()
    assert len({t for t, _ in tables_hit}) >= 8  # the search really reached most tables
