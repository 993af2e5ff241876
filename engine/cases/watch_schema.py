"""Tables of the watch list: watched searches, what each last saw of its galleries, its runs and its hits.

Why a separate schema: cases made before watches existed lack the tables. They are created with every new
case (:func:`engine.cases.db.init_schema`) and, in an older case, inside the first write that needs them
(:func:`ensure_tables`), so an older case still verifies and is never changed just by opening it.

A hit is unique per (watch, gallery, face): a run killed part-way and run again, or two runs at once,
can never record the same candidate twice (the insert is ``INSERT OR IGNORE`` on that key).
"""

from __future__ import annotations

import sqlite3

# One statement per table: ``executescript`` would commit the caller's transaction.
STATEMENTS = (
    """CREATE TABLE IF NOT EXISTS watches (
    id INTEGER PRIMARY KEY,
    search_id INTEGER NOT NULL REFERENCES searches(id),
    manifest_sha256 TEXT NOT NULL,
    galleries TEXT NOT NULL,
    bar TEXT NOT NULL,
    query_vector BLOB NOT NULL,
    status TEXT NOT NULL,
    ended_reason TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS watch_state (
    watch_id INTEGER NOT NULL REFERENCES watches(id),
    gallery_id TEXT NOT NULL,
    content_version INTEGER NOT NULL,
    last_face_id INTEGER NOT NULL,
    face_count INTEGER NOT NULL,
    PRIMARY KEY (watch_id, gallery_id)
)""",
    """CREATE TABLE IF NOT EXISTS watch_runs (
    id INTEGER PRIMARY KEY,
    watch_id INTEGER NOT NULL REFERENCES watches(id),
    outcome TEXT NOT NULL,
    galleries TEXT NOT NULL,
    faces_searched INTEGER NOT NULL,
    n_hits INTEGER NOT NULL,
    reason TEXT NOT NULL,
    ran_at TEXT NOT NULL,
    ran_by TEXT NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS watch_hits (
    id INTEGER PRIMARY KEY,
    watch_id INTEGER NOT NULL REFERENCES watches(id),
    run_id INTEGER NOT NULL REFERENCES watch_runs(id),
    gallery_id TEXT NOT NULL,
    face_id INTEGER NOT NULL,
    score REAL NOT NULL,
    content_version INTEGER NOT NULL,
    row TEXT NOT NULL,
    thumbnail_path TEXT,
    thumbnail_sha256 TEXT,
    acknowledged_at TEXT,
    acknowledged_by TEXT,
    search_id INTEGER REFERENCES searches(id),
    UNIQUE (watch_id, gallery_id, face_id)
)""",
)
TABLES = ("watches", "watch_state", "watch_runs", "watch_hits")
# table -> (column that groups rows into one audited record, ordering column inside the group)
RECORD_TABLES: dict[str, tuple[str, str]] = {
    "watches": ("id", "id"),
    "watch_state": ("watch_id", "gallery_id"),
    "watch_runs": ("id", "id"),
    "watch_hits": ("id", "id"),
}
LABELS = {"watches": "Watch", "watch_state": "Galleries last seen by watch", "watch_runs": "Watch run",
          "watch_hits": "Watch hit"}


def ensure_tables(conn: sqlite3.Connection) -> None:
    """Create any missing watch table (idempotent; safe inside a write transaction)."""
    for statement in STATEMENTS:
        conn.execute(statement)


def present(conn: sqlite3.Connection, table: str = "watches") -> bool:
    """Whether ``table`` exists in this database (an older case may lack the watch tables)."""
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone() is not None
