"""SQLite store of one gallery: photos, faces, stored embeddings, thumbnails, metadata (WAL mode).

Why this shape: the database is the truth and the vector index is derived from it. Each photo is
recorded with its faces and their embeddings in one transaction, so an import killed at any moment
leaves either the whole photo or nothing; face ids come from AUTOINCREMENT and are never reused, so
an index label can never come to mean a different face. ``content_version`` grows with every change
and is written into search manifests, which makes "was the gallery the same?" answerable later.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import EngineError, GalleryError, IndexCorrupt
from engine.fsutil import disk_error, folder_write_problem
from engine.gallery.filters import Filter, to_sql
from engine.timestamps import utc_now_iso

SCHEMA_VERSION = 1
STATUSES = ("ok", "no_face", "error")
_CHUNK = 900  # ids per IN (...) clause, under every SQLite build's variable limit
# SQLite primary result codes (the low byte of extended ones): sqlite.org/rescode.html
_SQLITE_PERM, _SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_FULL, _SQLITE_CANTOPEN = 3, 8, 10, 13, 14

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS photos (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE,
    sha256 TEXT,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'no_face', 'error')),
    error TEXT,
    width INTEGER,
    height INTEGER,
    face_count INTEGER NOT NULL DEFAULT 0,
    added TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS photos_sha256 ON photos(sha256);
CREATE TABLE IF NOT EXISTS faces (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
    x1 REAL, y1 REAL, x2 REAL, y2 REAL,
    landmarks BLOB,
    det_score REAL, quality REAL, blur REAL,
    is_primary INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS faces_photo ON faces(photo_id);
CREATE TABLE IF NOT EXISTS embeddings (
    face_id INTEGER PRIMARY KEY REFERENCES faces(id) ON DELETE CASCADE,
    vector BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS thumbnails (
    face_id INTEGER PRIMARY KEY REFERENCES faces(id) ON DELETE CASCADE,
    jpeg BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS photo_meta (
    photo_id INTEGER PRIMARY KEY REFERENCES photos(id) ON DELETE CASCADE,
    subject_id TEXT, sex TEXT, birth_year INTEGER, source TEXT, date TEXT,
    extras TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS photo_meta_subject ON photo_meta(subject_id);
"""


def now_iso() -> str:
    """New records' time in the one format (engine.timestamps); rows written earlier keep ``+00:00``."""
    return utc_now_iso()


@dataclass(frozen=True)
class PhotoRecord:
    """What ingest learnt about one file (status "ok", "no_face" or "error" with its reason)."""

    path: str
    sha256: str | None
    size: int
    mtime_ns: int
    status: str
    error: str | None = None
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class FaceRecord:
    """One face to store: box, landmarks, scores, its unit embedding and a JPEG thumbnail."""

    bbox: tuple[float, float, float, float]
    landmarks: np.ndarray
    det_score: float
    quality: float
    blur: float
    primary: bool
    embedding: np.ndarray
    thumbnail: bytes


@dataclass(frozen=True)
class FaceInfo:
    """A stored face with its photo and metadata, as search results need it."""

    face_id: int
    photo_id: int
    path: str
    sha256: str
    bbox: tuple[float, float, float, float]
    quality: float
    primary: bool
    subject_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MetaRecord:
    """Per-photo metadata from a CSV."""

    subject_id: str | None = None
    sex: str | None = None
    birth_year: int | None = None
    source: str | None = None
    date: str | None = None
    extras: dict[str, str] = field(default_factory=dict)


def _blob(vec: np.ndarray) -> bytes:
    return np.ascontiguousarray(vec, dtype="<f4").tobytes()


def _chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    for i in range(0, len(ids), _CHUNK):
        yield [int(x) for x in ids[i:i + _CHUNK]]


class GalleryStore:
    """One gallery's SQLite database. Thread-safe: one connection, one lock, short transactions."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise GalleryError(f"No gallery database at {self.path}.")
        self._lock = threading.RLock()
        try:
            self._conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None,
                                         timeout=30.0)
            self._conn.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed photo survives power loss too, not only a killed process.
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise self.damaged(exc) from exc

    def damaged(self, exc: sqlite3.DatabaseError) -> EngineError:
        """The one message for a database SQLite cannot use: which file, what is wrong, what to do.

        A full, read-only or forbidden disk is named as such (SQLite reports it as "disk is full",
        "readonly database", "unable to open" or a bare "disk I/O error"; the folder is asked which);
        none of that is damage, and no message ever advises deleting the gallery.
        """
        text = str(exc)
        base = int(getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
        if isinstance(exc, sqlite3.OperationalError) and "locked" in text:
            return GalleryError(f"The gallery database {self.path} is busy ({exc}).",
                                hint="Another program holds it; try again in a moment.")
        code: int | None = None
        if base == _SQLITE_FULL or "database or disk is full" in text:
            code = errno.ENOSPC
        elif base == _SQLITE_READONLY or "readonly database" in text:
            code = folder_write_problem(self.path.parent) or errno.EROFS
        elif base in (_SQLITE_IOERR, _SQLITE_CANTOPEN, _SQLITE_PERM) or "disk I/O error" in text \
                or "unable to open" in text:
            code = folder_write_problem(self.path.parent)
            if code is None:
                return GalleryError(
                    f"The gallery database {self.path} could not be read or written ({exc}).",
                    title="Disk error",
                    hint="Check the disk it is on (cable, network share, free space); nothing stored before was "
                         "lost. Then run the same command again.")
        if code is not None and (disk := disk_error(code, self.path.parent, "the gallery database")) is not None:
            return disk
        return IndexCorrupt(
            f"The gallery database {self.path} is damaged ({exc}).",
            hint=f"Keep the gallery folder as it is and restore {self.path.name} from a backup; the photos "
                 "themselves are untouched, so they can also be imported again into a new gallery.")

    @classmethod
    def create(cls, path: Path, meta: dict[str, str]) -> GalleryStore:
        path.parent.mkdir(parents=True, exist_ok=True)
        sqlite3.connect(str(path)).close()
        store = cls(path)
        with store.transaction() as c:
            base = {"schema_version": str(SCHEMA_VERSION), "content_version": "0", "created": now_iso()}
            for key, value in {**base, **meta}.items():
                c.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))
        return store

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any error."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.DatabaseError as exc:
                raise self.damaged(exc) from exc
            try:
                yield self._conn
            except sqlite3.DatabaseError as exc:
                with contextlib.suppress(sqlite3.DatabaseError):
                    self._conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.IntegrityError | sqlite3.ProgrammingError):
                    raise
                raise self.damaged(exc) from exc
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            try:
                self._conn.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                raise self.damaged(exc) from exc

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.IntegrityError | sqlite3.ProgrammingError):
                    raise
                raise self.damaged(exc) from exc

    # -- meta --------------------------------------------------------------------------------
    def meta(self) -> dict[str, str]:
        return {k: v for k, v in self._rows("SELECT key, value FROM meta") if v is not None}

    def set_meta(self, key: str, value: str | None, bump: bool = False) -> None:
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))
            if bump:
                self._bump(c)

    def set_metas(self, values: dict[str, str | None]) -> None:
        """Set several meta keys in one transaction (a value of None removes the key)."""
        with self.transaction() as c:
            for key, value in values.items():
                if value is None:
                    c.execute("DELETE FROM meta WHERE key = ?", (key,))
                else:
                    c.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    @staticmethod
    def _bump(c: sqlite3.Connection) -> None:
        c.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'content_version'")

    @property
    def content_version(self) -> int:
        return int(self.meta().get("content_version", "0"))

    # -- photos ------------------------------------------------------------------------------
    def photo_index(self) -> dict[str, tuple[int, int, int, str | None]]:
        """path -> (photo id, size, mtime_ns, sha256) for every photo: one query for a whole scan."""
        return {r[0]: (r[1], r[2], r[3], r[4])
                for r in self._rows("SELECT path, id, size, mtime_ns, sha256 FROM photos")}

    def touch_photo(self, photo_id: int, size: int, mtime_ns: int) -> None:
        """Same content, new size/mtime stamp (e.g. copied back): no re-processing, no version bump."""
        with self.transaction() as c:
            c.execute("UPDATE photos SET size = ?, mtime_ns = ? WHERE id = ?", (size, mtime_ns, photo_id))

    def record_photo(self, photo: PhotoRecord, faces: Sequence[FaceRecord]) -> tuple[list[int], list[int]]:
        """Store one photo and its faces in one transaction. Returns (new face ids, replaced face ids)."""
        if photo.status not in STATUSES:
            raise ValueError(f"bad status {photo.status!r}")
        with self.transaction() as c:
            row = c.execute("SELECT id FROM photos WHERE path = ?", (photo.path,)).fetchone()
            values = (photo.sha256, photo.size, photo.mtime_ns, photo.status, photo.error, photo.width,
                      photo.height, len(faces))
            old: list[int] = []
            if row:
                photo_id = int(row[0])
                old = [int(r[0]) for r in c.execute("SELECT id FROM faces WHERE photo_id = ?", (photo_id,))]
                c.execute("DELETE FROM faces WHERE photo_id = ?", (photo_id,))
                c.execute("UPDATE photos SET sha256=?, size=?, mtime_ns=?, status=?, error=?, width=?, height=?,"
                          " face_count=? WHERE id=?", (*values, photo_id))
            else:
                cur = c.execute("INSERT INTO photos(sha256, size, mtime_ns, status, error, width, height,"
                                " face_count, path, added) VALUES (?,?,?,?,?,?,?,?,?,?)",
                                (*values, photo.path, now_iso()))
                photo_id = int(cur.lastrowid or 0)
            new: list[int] = []
            for f in faces:
                cur = c.execute(
                    "INSERT INTO faces(photo_id, x1, y1, x2, y2, landmarks, det_score, quality, blur, is_primary)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (photo_id, *map(float, f.bbox), _blob(f.landmarks), float(f.det_score), float(f.quality),
                     float(f.blur), int(f.primary)))
                face_id = int(cur.lastrowid or 0)
                c.execute("INSERT INTO embeddings(face_id, vector) VALUES (?, ?)", (face_id, _blob(f.embedding)))
                c.execute("INSERT INTO thumbnails(face_id, jpeg) VALUES (?, ?)", (face_id, f.thumbnail))
                new.append(face_id)
            self._bump(c)
        return new, old

    def photo_ids_for_paths(self, paths: Sequence[str]) -> list[int]:
        """Photo ids of exact paths and of every photo under folder paths."""
        ids: set[int] = set()
        for p in paths:
            prefix = p.rstrip("/\\") + os.sep
            rows = self._rows("SELECT id FROM photos WHERE path = ? OR substr(path, 1, ?) = ?",
                              (p, len(prefix), prefix))
            ids.update(int(r[0]) for r in rows)
        return sorted(ids)

    def remove_photos(self, photo_ids: Sequence[int]) -> list[int]:
        """Delete photos with their faces, embeddings, thumbnails and metadata; returns the face ids."""
        faces: list[int] = []
        with self.transaction() as c:
            for chunk in _chunks(photo_ids):
                marks = ",".join("?" * len(chunk))
                faces += [int(r[0]) for r in c.execute(f"SELECT id FROM faces WHERE photo_id IN ({marks})", chunk)]
                c.execute(f"DELETE FROM photos WHERE id IN ({marks})", chunk)
            if photo_ids:
                self._bump(c)
        return faces

    def bad_photos(self) -> list[tuple[str, str, str]]:
        """(path, status, reason) of every photo not indexed: undecodable files and faceless images."""
        rows = self._rows("SELECT path, status, COALESCE(error, '') FROM photos WHERE status != 'ok' ORDER BY path")
        return [(str(a), str(b), str(c)) for a, b, c in rows]

    def suspect_photos(self) -> list[tuple[str, str]]:
        """(path, why) of every indexed photo that failed its format's integrity check at import."""
        rows = self._rows("SELECT path, substr(error, 10) FROM photos WHERE status = 'ok' AND error LIKE 'suspect: %'"
                          " ORDER BY path")
        return [(str(a), str(b)) for a, b in rows]

    def photos_added_before(self, iso_time: str) -> list[int]:
        """Ids of photos added before ``iso_time`` (retention by age, :mod:`engine.gallery.retention`)."""
        return [int(r[0]) for r in self._rows("SELECT id FROM photos WHERE added < ? ORDER BY id", (iso_time,))]

    def photo_paths(self) -> list[tuple[int, str]]:
        return [(int(a), str(b)) for a, b in self._rows("SELECT id, path FROM photos ORDER BY id")]

    def photo_sha256s(self) -> list[tuple[int, str]]:
        return [(int(a), str(b)) for a, b in self._rows("SELECT id, sha256 FROM photos WHERE sha256 IS NOT NULL")]

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in STATUSES}
        for status, n in self._rows("SELECT status, COUNT(*) FROM photos GROUP BY status"):
            out[str(status)] = int(n)
        out["photos"] = sum(out[s] for s in STATUSES)
        out["faces"] = int(self._rows("SELECT COUNT(*) FROM faces")[0][0])
        out["with_metadata"] = int(self._rows("SELECT COUNT(*) FROM photo_meta")[0][0])
        return out

    # -- faces and embeddings ----------------------------------------------------------------
    def face_ids(self) -> np.ndarray:
        return np.asarray([r[0] for r in self._rows("SELECT id FROM faces ORDER BY id")], dtype=np.int64)

    def face_count(self) -> int:
        return int(self._rows("SELECT COUNT(*) FROM faces")[0][0])

    def embeddings(self, face_ids: Sequence[int] | np.ndarray, dim: int = 512) -> np.ndarray:
        """Stored embeddings in the order of ``face_ids``; ``IndexCorrupt`` if one is missing."""
        ids = [int(x) for x in np.asarray(face_ids).reshape(-1)]
        found: dict[int, bytes] = {}
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            found.update(self._rows(f"SELECT face_id, vector FROM embeddings WHERE face_id IN ({marks})", chunk))
        missing = [i for i in ids if i not in found]
        if missing:
            raise IndexCorrupt(f"{len(missing)} face(s) have no stored embedding (e.g. face {missing[0]}).",
                               hint="The gallery database is damaged; re-import the affected photos.")
        out = np.empty((len(ids), dim), dtype=np.float32)
        for row, i in enumerate(ids):
            out[row] = np.frombuffer(found[i], dtype="<f4")
        return out

    def iter_embeddings(self, batch: int = 10_000, dim: int = 512) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(face ids, embeddings) in id order, a batch at a time (keyset pages: no long-held cursor)."""
        last = -1
        while True:
            rows = self._rows("SELECT face_id, vector FROM embeddings WHERE face_id > ? ORDER BY face_id LIMIT ?",
                              (last, batch))
            if not rows:
                return
            ids = np.asarray([r[0] for r in rows], dtype=np.int64)
            vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), dim)
            yield ids, vecs.astype(np.float32)
            last = int(ids[-1])

    def filtered_face_ids(self, filters: list[Filter]) -> np.ndarray:
        """Ids of the faces whose photo and face fields satisfy every filter."""
        where, params = to_sql(filters)
        rows = self._rows("SELECT f.id FROM faces f JOIN photos p ON p.id = f.photo_id"
                          f" LEFT JOIN photo_meta m ON m.photo_id = p.id WHERE {where} ORDER BY f.id", params)
        return np.asarray([r[0] for r in rows], dtype=np.int64)

    def face_infos(self, face_ids: Sequence[int]) -> dict[int, FaceInfo]:
        out: dict[int, FaceInfo] = {}
        for chunk in _chunks(list(face_ids)):
            marks = ",".join("?" * len(chunk))
            rows = self._rows(
                "SELECT f.id, p.id, p.path, p.sha256, f.x1, f.y1, f.x2, f.y2, f.quality, f.is_primary,"
                " m.subject_id, m.sex, m.birth_year, m.source, m.date, m.extras FROM faces f"
                " JOIN photos p ON p.id = f.photo_id LEFT JOIN photo_meta m ON m.photo_id = p.id"
                f" WHERE f.id IN ({marks})", chunk)
            for r in rows:
                meta = {k: v for k, v in zip(("sex", "birth_year", "source", "date"), r[11:15], strict=True)
                        if v is not None}
                if r[15]:
                    meta.update(json.loads(r[15]))
                out[int(r[0])] = FaceInfo(int(r[0]), int(r[1]), str(r[2]), str(r[3] or ""),
                                          (float(r[4]), float(r[5]), float(r[6]), float(r[7])), float(r[8]),
                                          bool(r[9]), r[10], meta)
        return out

    def thumbnail(self, face_id: int) -> bytes | None:
        rows = self._rows("SELECT jpeg FROM thumbnails WHERE face_id = ?", (int(face_id),))
        return bytes(rows[0][0]) if rows else None

    def faces_of_photo(self, photo_id: int) -> list[int]:
        return [int(r[0]) for r in self._rows("SELECT id FROM faces WHERE photo_id = ? ORDER BY id", (photo_id,))]

    def face_subjects(self) -> list[tuple[int, str | None, str, bool]]:
        """(face id, subject id, photo SHA-256, primary) of every face in id order: one query (validation)."""
        rows = self._rows("SELECT f.id, m.subject_id, p.sha256, f.is_primary FROM faces f JOIN photos p"
                          " ON p.id = f.photo_id LEFT JOIN photo_meta m ON m.photo_id = p.id ORDER BY f.id")
        return [(int(a), b, str(c or ""), bool(d)) for a, b, c, d in rows]

    def integrity_problems(self) -> list[str]:
        """SQLite's own check plus the invariants ingest keeps (ok photos have faces, counts agree)."""
        problems = [str(r[0]) for r in self._rows("PRAGMA quick_check") if r[0] != "ok"]
        n = self._rows("SELECT COUNT(*) FROM photos p WHERE face_count != (SELECT COUNT(*) FROM faces f"
                       " WHERE f.photo_id = p.id)")[0][0]
        if n:
            problems.append(f"{n} photo(s) whose face count disagrees with their stored faces")
        n = self._rows("SELECT COUNT(*) FROM photos WHERE status = 'ok' AND face_count = 0")[0][0]
        if n:
            problems.append(f"{n} photo(s) marked ok without any face")
        n = self._rows("SELECT COUNT(*) FROM faces f LEFT JOIN embeddings e ON e.face_id = f.id"
                       " WHERE e.face_id IS NULL")[0][0]
        if n:
            problems.append(f"{n} face(s) without a stored embedding")
        return problems

    # -- metadata ----------------------------------------------------------------------------
    def upsert_metadata(self, rows: Sequence[tuple[int, MetaRecord]]) -> None:
        with self.transaction() as c:
            for photo_id, m in rows:
                c.execute("INSERT OR REPLACE INTO photo_meta(photo_id, subject_id, sex, birth_year, source, date,"
                          " extras) VALUES (?,?,?,?,?,?,?)",
                          (photo_id, m.subject_id, m.sex, m.birth_year, m.source, m.date,
                           json.dumps(m.extras, sort_keys=True, ensure_ascii=False)))
            if rows:
                self._bump(c)
