"""Tables of the reasoned examination: probe intake, comparison-sheet rows, conclusions, search authorizations.

Why a separate schema: cases made before these records existed lack the tables. They are created
with every new case (:func:`engine.cases.db.init_schema`) and, in an older case, inside the first
write that needs them (:func:`ensure_tables`), so an older case still verifies and is never changed
just by opening it.
"""

from __future__ import annotations

import sqlite3

# One statement per table: ``executescript`` would commit the caller's transaction.
STATEMENTS = (
    """CREATE TABLE IF NOT EXISTS intakes (
    id INTEGER PRIMARY KEY,
    probe_ref TEXT NOT NULL,
    probe_sha256 TEXT NOT NULL,
    source TEXT NOT NULL,
    software TEXT NOT NULL,
    witness TEXT NOT NULL,
    delay TEXT NOT NULL,
    artist TEXT NOT NULL,
    alterations TEXT NOT NULL,
    suitability TEXT NOT NULL,
    reasons TEXT NOT NULL,
    marks TEXT NOT NULL,
    evidential INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS comparison_rows (
    id INTEGER PRIMARY KEY,
    search_id INTEGER NOT NULL REFERENCES searches(id),
    gallery_id TEXT NOT NULL,
    face_id INTEGER NOT NULL,
    component TEXT NOT NULL,
    assessment TEXT NOT NULL,
    reason TEXT NOT NULL,
    note TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS conclusions (
    id INTEGER PRIMARY KEY,
    search_id INTEGER NOT NULL REFERENCES searches(id),
    gallery_id TEXT NOT NULL,
    face_id INTEGER NOT NULL,
    probe_type TEXT NOT NULL,
    scale_id TEXT NOT NULL,
    scale_sha256 TEXT NOT NULL,
    level TEXT NOT NULL,
    level_text TEXT NOT NULL,
    note TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS authorizations (
    id INTEGER PRIMARY KEY,
    search_id INTEGER NOT NULL REFERENCES searches(id),
    policy_sha256 TEXT NOT NULL,
    fields TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL
)""",
)
TABLES = ("intakes", "comparison_rows", "conclusions", "authorizations")


def ensure_tables(conn: sqlite3.Connection) -> None:
    """Create any missing examination table (idempotent; safe inside a write transaction)."""
    for statement in STATEMENTS:
        conn.execute(statement)


def present(conn: sqlite3.Connection, table: str) -> bool:
    """Whether ``table`` exists in this database (an older case may lack the examination tables)."""
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone() is not None
