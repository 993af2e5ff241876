"""Tables of photo line-ups: the line-up, its members (the sealed key), filler swaps and witness responses.

Why a separate schema (as :mod:`engine.cases.exam_schema`): cases made before line-ups existed lack
these tables. They are created with every new case (:func:`engine.cases.db.init_schema`) and, in an
older case, inside the first line-up write (:func:`ensure_tables`), so an older case still verifies
and is never changed just by opening it.
"""

from __future__ import annotations

import sqlite3

# One statement per table: ``executescript`` would commit the caller's transaction.
STATEMENTS = (
    """CREATE TABLE IF NOT EXISTS lineups (
    id INTEGER PRIMARY KEY,
    search_id INTEGER NOT NULL REFERENCES searches(id),
    mode TEXT NOT NULL,
    seed TEXT NOT NULL,
    description TEXT NOT NULL,
    params TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS lineup_members (
    lineup_id INTEGER NOT NULL REFERENCES lineups(id),
    position INTEGER NOT NULL,
    role TEXT NOT NULL,
    gallery_id TEXT NOT NULL,
    face_id INTEGER NOT NULL,
    subject_id TEXT NOT NULL,
    photo_sha256 TEXT NOT NULL,
    thumbnail_sha256 TEXT NOT NULL,
    similarity REAL NOT NULL,
    metadata TEXT NOT NULL,
    PRIMARY KEY (lineup_id, position)
)""",
    """CREATE TABLE IF NOT EXISTS lineup_fairness (
    id INTEGER PRIMARY KEY,
    lineup_id INTEGER NOT NULL REFERENCES lineups(id),
    figures TEXT NOT NULL,
    warning TEXT NOT NULL,
    created_at TEXT NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS lineup_swaps (
    id INTEGER PRIMARY KEY,
    lineup_id INTEGER NOT NULL REFERENCES lineups(id),
    position INTEGER NOT NULL,
    old_gallery_id TEXT NOT NULL,
    old_face_id INTEGER NOT NULL,
    new_gallery_id TEXT NOT NULL,
    new_face_id INTEGER NOT NULL,
    reason TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS lineup_responses (
    id INTEGER PRIMARY KEY,
    lineup_id INTEGER NOT NULL REFERENCES lineups(id),
    choice INTEGER,
    confidence TEXT NOT NULL,
    administrator TEXT NOT NULL,
    material_sha256 TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL
)""",
)
TABLES = ("lineups", "lineup_members", "lineup_fairness", "lineup_swaps", "lineup_responses")
# table -> (column grouping rows into one audited record, ordering column), for engine.cases.records
RECORD_TABLES: dict[str, tuple[str, str]] = {
    "lineups": ("id", "id"),
    "lineup_members": ("lineup_id", "position"),
    "lineup_fairness": ("id", "id"),
    "lineup_swaps": ("id", "id"),
    "lineup_responses": ("id", "id"),
}
LABELS = {"lineups": "Line-up", "lineup_members": "Members of line-up", "lineup_fairness": "Line-up fairness",
          "lineup_swaps": "Line-up filler swap", "lineup_responses": "Line-up response"}


def ensure_tables(conn: sqlite3.Connection) -> None:
    """Create any missing line-up table (idempotent; safe inside a write transaction)."""
    for statement in STATEMENTS:
        conn.execute(statement)


def present(conn: sqlite3.Connection) -> bool:
    """Whether this case has the line-up tables (an older case gets them with its first line-up)."""
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'lineups'").fetchone() is not None
