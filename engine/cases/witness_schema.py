"""Table of witness descriptions: what each witness said the culprit looked like, when and to whom.

Why a separate schema (as :mod:`engine.cases.lineup_schema`): cases made before witness records existed
lack this table. It is created with every new case (:func:`engine.cases.db.init_schema`) and, in an
older case, inside the first witness write (:func:`ensure_tables`), so an older case still verifies and
is never changed just by opening it.
"""

from __future__ import annotations

import sqlite3

# One statement per table: ``executescript`` would commit the caller's transaction.
STATEMENTS = (
    """CREATE TABLE IF NOT EXISTS witness_descriptions (
    id INTEGER PRIMARY KEY,
    reference TEXT NOT NULL,
    fields TEXT NOT NULL,
    taken_on TEXT NOT NULL,
    taken_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL
)""",
)
TABLES = ("witness_descriptions",)
# table -> (column grouping rows into one audited record, ordering column), for engine.cases.records
RECORD_TABLES: dict[str, tuple[str, str]] = {"witness_descriptions": ("id", "id")}
LABELS = {"witness_descriptions": "Witness description"}


def ensure_tables(conn: sqlite3.Connection) -> None:
    """Create the witness table if missing (idempotent; safe inside a write transaction)."""
    for statement in STATEMENTS:
        conn.execute(statement)


def present(conn: sqlite3.Connection) -> bool:
    """Whether this case has the witness table (an older case gets it with its first witness record)."""
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'witness_descriptions'"
                        ).fetchone() is not None
