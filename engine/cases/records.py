"""What each audit entry says it wrote: digests of the rows it inserted or changed, by table and key.

Every audited change names the rows it wrote (``details["records"]``: ``"table:key" -> SHA-256`` of
the rows' full content). Replaying the log in order gives the digest each record must have now;
:func:`all_records` gives what the database holds. Comparing both ways finds a row the log never
wrote (a forged sign-off) and a row the log wrote that is gone (a deleted decision).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable
from typing import Any

from engine.cases import exam_schema, lineup_schema, watch_schema, witness_schema
from engine.cases.db import canonical_json

# table -> (column that groups rows into one audited record, ordering column inside the group)
RECORD_TABLES: dict[str, tuple[str, str]] = {
    "case_info": ("id", "id"),
    "sketches": ("id", "id"),
    "sketch_versions": ("id", "id"),
    "searches": ("id", "id"),
    "search_queries": ("search_id", "idx"),
    "results": ("search_id", "rank"),
    "decisions": ("id", "id"),
    "generated": ("id", "id"),
    "attachments": ("id", "id"),
    "signoffs": ("id", "id"),
    "intakes": ("id", "id"),
    "comparison_rows": ("id", "id"),
    "conclusions": ("id", "id"),
    "authorizations": ("id", "id"),
    **watch_schema.RECORD_TABLES,
    **lineup_schema.RECORD_TABLES,
    **witness_schema.RECORD_TABLES,
}
LABELS = {"case_info": "Case details", "sketches": "Sketch", "sketch_versions": "Sketch version",
          "searches": "Search", "search_queries": "Query images of search", "results": "Results of search",
          "decisions": "Decision", "generated": "Generated image", "attachments": "Attachment",
          "signoffs": "Sign-off", "intakes": "Probe intake", "comparison_rows": "Comparison sheet row",
          "conclusions": "Conclusion", "authorizations": "Search authorization",
          **watch_schema.LABELS, **lineup_schema.LABELS, **witness_schema.LABELS}


def _cell(value: Any) -> Any:
    """A stored value in a form whose JSON keeps its SQLite type (1, 1.0 and '1' stay different)."""
    if isinstance(value, float):
        return {"real": repr(value)}
    if isinstance(value, bytes):
        return {"blob": value.hex()}
    return value


def _digest(columns: list[str], rows: Iterable[tuple[Any, ...]]) -> str:
    body = [{c: _cell(v) for c, v in zip(columns, r, strict=True)} for r in rows]
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def record_key(table: str, key: Any) -> str:
    """The name of one audited record: ``table:key`` (the key as Python writes it, so 3 and '3' differ)."""
    return f"{table}:{key!r}"


def label(record: str) -> str:
    """'attachments:3' -> 'Attachment 3', for messages a person reads."""
    table, _, key = record.partition(":")
    return f"{LABELS.get(table, table)} {key}"


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [str(r[1]) for r in conn.execute(f'PRAGMA table_info("{table}")').fetchall()]


def digests(conn: sqlite3.Connection, refs: Iterable[tuple[str, Any]]) -> dict[str, str]:
    """Digests of the named records as they are now (call inside the write that changed them).

    A record with no rows (a search that returned nothing has no results) is left out.
    """
    out: dict[str, str] = {}
    for table, key in refs:
        group, order = RECORD_TABLES[table]
        cols = _columns(conn, table)
        rows = conn.execute(f'SELECT * FROM "{table}" WHERE "{group}" IS ? ORDER BY "{order}"', (key,)).fetchall()
        if rows:
            out[record_key(table, key)] = _digest(cols, (tuple(r) for r in rows))
    return out


def all_records(conn: sqlite3.Connection) -> dict[str, str]:
    """Every record the database holds now, with its digest."""
    out: dict[str, str] = {}
    for table, (group, order) in RECORD_TABLES.items():
        if table in (*exam_schema.TABLES, *watch_schema.TABLES, *lineup_schema.TABLES,
                      *witness_schema.TABLES) and not exam_schema.present(conn, table):
            continue  # a case made before examination records: nothing of that kind to verify
        cols = _columns(conn, table)
        gi = cols.index(group)
        groups: dict[str, list[tuple[Any, ...]]] = {}
        for r in conn.execute(f'SELECT * FROM "{table}" ORDER BY "{group}", "{order}"').fetchall():
            groups.setdefault(record_key(table, r[gi]), []).append(tuple(r))
        out.update({k: _digest(cols, rows) for k, rows in groups.items()})
    return out
