"""The case database: schema, connection settings (WAL) and canonical JSON used for every hash."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from engine.cases import exam_schema, lineup_schema, watch_schema, witness_schema
from engine.timestamps import utc_now_iso
from engine.workstation_key import canonical_json  # noqa: F401 - one definition, re-exported for the case modules

SCHEMA_VERSION = 1
DB_NAME = "case.sqlite"
SUBFOLDERS = ("sketches", "generated", "attachments", "reports", "queries", "thumbnails")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS case_info (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    case_number TEXT NOT NULL,
    title TEXT NOT NULL,
    examiner TEXT NOT NULL,
    witnesses TEXT NOT NULL,
    incident_date TEXT NOT NULL,
    status TEXT NOT NULL,
    notes TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sketches (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    witness TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sketch_versions (
    id INTEGER PRIMARY KEY,
    sketch_id INTEGER NOT NULL REFERENCES sketches(id),
    version INTEGER NOT NULL,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    note TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    UNIQUE (sketch_id, version)
);
CREATE TABLE IF NOT EXISTS searches (
    id INTEGER PRIMARY KEY,
    label TEXT NOT NULL,
    manifest TEXT NOT NULL,
    manifest_sha256 TEXT NOT NULL,
    results_sha256 TEXT NOT NULL,
    blind INTEGER NOT NULL,
    revealed_at TEXT,
    rerun_of INTEGER REFERENCES searches(id),
    rerun_report TEXT,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS search_queries (
    search_id INTEGER NOT NULL REFERENCES searches(id),
    idx INTEGER NOT NULL,
    kind TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    weight REAL NOT NULL,
    path TEXT NOT NULL,
    PRIMARY KEY (search_id, idx)
);
CREATE TABLE IF NOT EXISTS results (
    search_id INTEGER NOT NULL REFERENCES searches(id),
    rank INTEGER NOT NULL,
    blind_position INTEGER NOT NULL,
    score REAL NOT NULL,
    gallery_id TEXT NOT NULL,
    face_id INTEGER NOT NULL,
    photo_id INTEGER NOT NULL,
    photo_path TEXT NOT NULL,
    photo_sha256 TEXT NOT NULL,
    subject_id TEXT,
    metadata TEXT NOT NULL,
    baseline INTEGER NOT NULL,
    group_size INTEGER NOT NULL,
    thumbnail_path TEXT,
    thumbnail_sha256 TEXT,
    row TEXT NOT NULL,
    PRIMARY KEY (search_id, rank),
    UNIQUE (search_id, gallery_id, face_id)
);
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY,
    search_id INTEGER NOT NULL REFERENCES searches(id),
    gallery_id TEXT NOT NULL,
    face_id INTEGER NOT NULL,
    decision TEXT NOT NULL,
    note TEXT NOT NULL,
    examiner TEXT NOT NULL,
    decided_at TEXT NOT NULL,
    scores_hidden INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_by_candidate ON decisions (search_id, gallery_id, face_id, id);
CREATE TABLE IF NOT EXISTS generated (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    params TEXT NOT NULL,
    params_sha256 TEXT NOT NULL,
    parent TEXT,
    note TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS attachments (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    note TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS signoffs (
    id INTEGER PRIMARY KEY,
    examiner TEXT NOT NULL,
    role TEXT NOT NULL,
    statement TEXT NOT NULL,
    search_id INTEGER REFERENCES searches(id),
    audit_count INTEGER NOT NULL,
    audit_head TEXT NOT NULL,
    signed_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    pos INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL,
    ts TEXT NOT NULL,
    user TEXT NOT NULL,
    action TEXT NOT NULL,
    object TEXT NOT NULL,
    inputs TEXT NOT NULL,
    outputs TEXT NOT NULL,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
"""


def now_iso() -> str:
    """The current time as ISO 8601 UTC to the second: what every record and audit entry carries."""
    return utc_now_iso()


def connect(path: Path) -> sqlite3.Connection:
    """Open a case database in WAL mode with full durability.

    WAL lets the desktop app read a case while the engine thread writes it; ``synchronous=FULL``
    because an audit entry that a crash can lose is worth less than the milliseconds it saves.
    Transactions are explicit (``isolation_level=None``) so each change and its audit entry commit
    together or not at all.
    """
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30.0)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def connect_read_only(path: Path) -> sqlite3.Connection:
    """Open a case database that lives on write-protected storage, for verification and export only.

    SQLite opens a WAL database read-only only if its ``-shm`` file exists or can be made; on a
    write-protected folder after a clean close neither holds, so the file is then opened as
    immutable. That is exact only when no ``-wal`` file holds changes not yet merged into the
    database; if one does, reading without it would verify an older state, so it is refused.
    """
    ro = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False, timeout=30.0)
    try:
        ro.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError:
        ro.close()
    else:
        ro.row_factory = sqlite3.Row
        return ro
    wal = path.with_name(path.name + "-wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise sqlite3.OperationalError(f"{wal.name} holds changes not yet merged into {path.name}, and the folder "
                                       "is write-protected")
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?immutable=1", uri=True, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    return conn


def init_schema(conn: sqlite3.Connection) -> None:
    """Create the tables of a new case (idempotent)."""
    conn.executescript(SCHEMA)
    exam_schema.ensure_tables(conn)
    watch_schema.ensure_tables(conn)
    lineup_schema.ensure_tables(conn)
    witness_schema.ensure_tables(conn)


def get_meta(conn: sqlite3.Connection, key: str) -> str | None:
    """A value of the case's meta table (schema version, case id, audit anchor)."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    """Set a meta value; call inside the write transaction it belongs to."""
    conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                 "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))
