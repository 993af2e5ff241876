"""Copying an archived case database row by row into a freshly created one: only our schema survives.

The archive's database file is never used as the case database. It is opened read-only, its schema
must be exactly the one SketchFace creates (a trigger, view or extra table is refused: it could act
on later writes), and its rows are copied column by column into a new database built from our own
schema, so nothing of the archive's schema can reach the workstation.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from engine.cases import db
from engine.cases.integrity import META_KEYS, schema_differences
from engine.errors import CaseError


def _tables(conn: sqlite3.Connection) -> list[str]:
    return [str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY rowid")]


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [str(r[1]) for r in conn.execute(f'PRAGMA table_info("{table}")').fetchall()]


def _open_source(source: Path) -> sqlite3.Connection:
    src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
    src.execute("PRAGMA trusted_schema=OFF")
    src.execute("PRAGMA query_only=ON")
    return src


def copy_case_db(source: Path, dest: Path) -> None:
    """Create ``dest`` from our schema and copy every row of ``source`` into it; CaseError if refused."""
    try:
        src = _open_source(source)
    except sqlite3.DatabaseError as exc:
        raise CaseError(f"The archive's case database cannot be opened ({exc}); refused.") from exc
    try:
        try:
            damage = [str(r[0]) for r in src.execute("PRAGMA quick_check").fetchall()]
            diffs = schema_differences(src)
        except sqlite3.DatabaseError as exc:
            raise CaseError(f"The archive's case database is damaged or not a database ({exc}); refused.") from exc
        if damage != ["ok"]:
            raise CaseError(f"The archive's case database is damaged ({damage[0]}); refused.")
        if diffs:
            raise CaseError("The archive's case database holds " + "; ".join(diffs[:4])
                            + ": only SketchFace's own schema is accepted, so it was refused.")
        _copy_rows(src, dest)
    finally:
        src.close()


def _copy_rows(src: sqlite3.Connection, dest: Path) -> None:
    conn = db.connect(dest)
    try:
        db.init_schema(conn)
        conn.execute("PRAGMA foreign_keys=OFF")  # rows arrive table by table; references are checked at the end
        conn.execute("BEGIN IMMEDIATE")
        present = set(_tables(src))
        for table in _tables(conn):
            if table not in present:  # an examination table an older case never made
                continue
            cols = _columns(conn, table)
            names = ", ".join(f'"{c}"' for c in cols)
            where = f" WHERE key IN ({', '.join('?' * len(META_KEYS))})" if table == "meta" else ""
            args = sorted(META_KEYS) if table == "meta" else []
            rows = src.execute(f'SELECT {names} FROM "{table}"{where}', args).fetchall()
            conn.executemany(f'INSERT INTO "{table}" ({names}) VALUES ({", ".join("?" * len(cols))})', rows)
        broken = conn.execute("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise CaseError(f"The archive's case database has rows in {broken[0][0]} that refer to nothing; refused.")
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.DatabaseError as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise CaseError(f"The archive's case database breaks SketchFace's schema rules ({exc}); refused.") from exc
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()
