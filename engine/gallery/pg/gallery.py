"""A gallery on a PostgreSQL + pgvector server: batch ingest by COPY, filtered HNSW search with exact re-rank.

Why this shape (see :mod:`engine.gallery.pg.schema` for the server side): the workstation detects and
embeds locally, then pushes whole batches in one transaction (COPY into a temporary table, then one
``INSERT ... ON CONFLICT (gallery_id, sha256) DO NOTHING``), so a killed or parallel import never
duplicates a photo and a re-run inserts only what is missing. Searches call the server's ``search``
function, which checks the unit, writes the access log and re-scores every candidate from the stored
float32 vector; the content version is read in the same transaction and goes into the run manifest.

Every read of faces is two steps (the server hands nothing out before its access-log row is committed):
make the request and commit it, then ask for its results by the request's id. See :mod:`.schema`.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.errors import GalleryError
from engine.gallery.exact import HNSW
from engine.gallery.filters import FIELDS, Filter, _coerce, parse_filters
from engine.gallery.gallery import DIM, GalleryInfo
from engine.gallery.pg.pool import get_pool
from engine.gallery.pg.schema import FILTER_COLUMNS, SCHEMA, unit_role
from engine.gallery.source import Candidates, FaceDetail, GalleryView, SearchContext
from engine.manifest import GalleryRef

DEFAULT_EF = 200
EF_MAX = 1000  # pgvector's upper bound for hnsw.ef_search


@dataclass(frozen=True)
class UploadFace:
    """One face to push: what the local pipeline computed (never re-embedded on the server)."""

    bbox: tuple[float, float, float, float]
    det_score: float
    quality: float
    blur: float
    primary: bool
    embedding: np.ndarray
    thumbnail: bytes | None = None


@dataclass(frozen=True)
class UploadPhoto:
    """One photo to push, identified by its SHA-256, with its faces and metadata."""

    sha256: str
    path: str
    faces: Sequence[UploadFace]
    width: int | None = None
    height: int | None = None
    status: str = "ok"
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PushReport:
    """What one batch push did: photos newly stored, photos already there (skipped), faces stored."""

    inserted: int = 0
    skipped: int = 0
    faces: int = 0


def filters_json(filters: Sequence[str | Filter]) -> list[dict[str, str]]:
    """Filters in the server's JSON form; validated with the local filter parser (one grammar)."""
    out: list[dict[str, str]] = []
    for f in parse_filters(list(filters)):
        value = _coerce(f)
        if f.key in FIELDS:
            column, kind = FILTER_COLUMNS[f.key]
            text = ("true" if value else "false") if kind == "bool" else str(value)
            out.append({"column": column, "op": f.op, "value": text})
        else:
            try:
                float(f.value)
                numeric = f.op not in ("=", "!=")
            except ValueError:
                numeric = False
            out.append({"key": f.key, "op": f.op, "value": f.value, "type": "number" if numeric else "text"})
    return out


class PgGallery:
    """One server gallery, addressed by id through a pooled connection string.

    Args:
        conninfo: libpq connection string or URL of the examiner's login role.
        gallery_id: the gallery's 12-hex id.
        server: the profile name, recorded in manifests.
    """

    def __init__(self, conninfo: str, gallery_id: str, server: str = "", pool_size: int = 4) -> None:
        self.conninfo = conninfo
        self.pool = get_pool(conninfo, pool_size)
        self.server = server
        row = self._one("SELECT id, name, model_sha256, hnsw_m, hnsw_ef_construction, ef_search, created"
                        f" FROM {SCHEMA}.galleries WHERE id = %s", (gallery_id,))
        if row is None:
            raise GalleryError(f"No gallery {gallery_id} on the server, or your unit may not see it.",
                               hint="Ask the server's administrator which galleries your units hold.")
        self.id: str = row[0]
        self._name: str = row[1]
        self._params = {"M": int(row[3]), "ef_construction": int(row[4]), "ef": int(row[5])}
        self._created = str(row[6])
        self.ef = int(row[5])

    # -- plumbing ----------------------------------------------------------------------------
    def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        with self.pool.connection() as conn:
            return conn.execute(sql, params).fetchone()

    def __enter__(self) -> PgGallery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Nothing to release per gallery: the pool is shared per server and closed at exit."""

    def __repr__(self) -> str:
        return f"PgGallery({self.id!r}, {self._name!r}, server={self.server!r})"

    # -- creation and lookup -------------------------------------------------------------------
    @classmethod
    def create(cls, conninfo: str, name: str, unit: str, server: str = "", m: int = 32,
               ef_construction: int = 200) -> PgGallery:
        """Create a gallery owned by ``unit`` (the caller must belong to it), with its own HNSW index."""
        pool = get_pool(conninfo)
        import psycopg

        try:
            with pool.connection() as conn:
                gallery_id = str(conn.execute(f"SELECT {SCHEMA}.create_gallery(%s, %s, %s, %s)",
                                              (name.strip(), unit_role(unit), m, ef_construction)).fetchone()[0])
        except psycopg.errors.UniqueViolation as exc:
            raise GalleryError(f"A gallery named '{name.strip()}' already exists in unit '{unit}'.",
                               hint="Choose another name, or open the existing gallery.") from exc
        except psycopg.errors.InsufficientPrivilege as exc:
            raise GalleryError(f"You may not create galleries for unit '{unit}' ({exc.diag.message_primary}).",
                               hint="Ask the server's administrator to add you to the unit.") from exc
        return cls(conninfo, gallery_id, server)

    @classmethod
    def open(cls, conninfo: str, ref: str, server: str = "") -> PgGallery:
        """Open by id or (case-insensitive) name among the galleries your units may see."""
        pool = get_pool(conninfo)
        with pool.connection() as conn:
            rows = conn.execute(f"SELECT id FROM {SCHEMA}.galleries WHERE id = %s OR lower(name) = lower(%s)",
                                (ref, ref.strip())).fetchall()
        if len(rows) != 1:
            raise GalleryError(f"No gallery '{ref}' visible to you on server '{server or conninfo}'.",
                               hint="List them with 'sketchface gallery list --server PROFILE'.")
        return cls(conninfo, rows[0][0], server)

    @staticmethod
    def list_all(conninfo: str) -> list[tuple[str, str, int]]:
        """(id, name, content version) of every gallery visible to the caller."""
        with get_pool(conninfo).connection() as conn:
            return [(str(a), str(b), int(c)) for a, b, c in conn.execute(
                f"SELECT id, name, content_version FROM {SCHEMA}.galleries ORDER BY lower(name)").fetchall()]

    # -- what front-ends show ------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name

    @property
    def content_version(self) -> int:
        return int(self._one(f"SELECT content_version FROM {SCHEMA}.galleries WHERE id = %s", (self.id,))[0])

    @property
    def model_sha256(self) -> str | None:
        row = self._one(f"SELECT model_sha256 FROM {SCHEMA}.galleries WHERE id = %s", (self.id,))
        return str(row[0]) if row and row[0] else None

    @property
    def params(self) -> dict[str, int]:
        return {**self._params, "ef": self.ef}

    def face_count(self) -> int:
        return int(self._one(f"SELECT count(*) FROM {SCHEMA}.faces WHERE gallery_id = %s", (self.id,))[0])

    def info(self) -> GalleryInfo:
        """The same record a local gallery gives (``path`` names the server)."""
        with self.pool.connection() as conn:
            version, sha = conn.execute(f"SELECT content_version, model_sha256 FROM {SCHEMA}.galleries"
                                        " WHERE id = %s", (self.id,)).fetchone()
            counts = dict(conn.execute(f"SELECT status, count(*) FROM {SCHEMA}.photos WHERE gallery_id = %s"
                                       " GROUP BY status", (self.id,)).fetchall())
            faces = conn.execute(f"SELECT count(*) FROM {SCHEMA}.faces WHERE gallery_id = %s",
                                 (self.id,)).fetchone()[0]
        photos = sum(int(v) for v in counts.values())
        return GalleryInfo(self.id, self._name, self._created, f"server:{self.server}", sha, int(version), photos,
                           int(faces), int(counts.get("ok", 0)), int(counts.get("no_face", 0)),
                           int(counts.get("error", 0)), 0, self.params, 0)

    def set_model_sha256(self, sha: str) -> None:
        """Adopt the ArcFace digest of the first push; refuse a different one (scores would be meaningless)."""
        current = self._one(f"SELECT {SCHEMA}.set_model(%s, %s)", (self.id, sha))[0]
        if current != sha:
            raise GalleryError(f"Server gallery '{self._name}' was embedded with ArcFace file {current[:12]}…, not"
                               f" {sha[:12]}…; mixing them would make scores meaningless.")

    # -- ingest --------------------------------------------------------------------------------
    def known_sha256(self) -> set[str]:
        """SHA-256 of every photo already stored (an import skips them: resume without re-sending)."""
        with self.pool.connection() as conn:
            return {r[0] for r in conn.execute(f"SELECT sha256 FROM {SCHEMA}.photos WHERE gallery_id = %s",
                                               (self.id,))}

    def push(self, photos: Sequence[UploadPhoto]) -> PushReport:
        """Store a batch in one transaction (COPY + idempotent insert); photos already stored are skipped."""
        if not photos:
            return PushReport()
        from psycopg.types.json import Jsonb

        with self.pool.connection() as conn, conn.transaction():
            conn.execute("CREATE TEMP TABLE sf_stage_photos (sha256 text, path text, status text, width int,"
                         " height int, face_count int, subject_id text, sex text, birth_year int, source text,"
                         " date text, extras jsonb) ON COMMIT DROP")
            conn.execute("CREATE TEMP TABLE sf_stage_faces (sha256 text, face_no int, bbox real[], det_score real,"
                         " quality real, blur real, is_primary boolean, embedding vector(512), thumbnail bytea)"
                         " ON COMMIT DROP")
            with conn.cursor() as cur:
                with cur.copy("COPY sf_stage_photos FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(["text", "text", "text", "int4", "int4", "int4", "text", "text", "int4", "text",
                                    "text", "jsonb"])
                    for p in photos:
                        m = p.meta
                        extras = {k: str(v) for k, v in m.items()
                                  if k not in ("subject_id", "sex", "birth_year", "source", "date")}
                        copy.write_row((p.sha256, p.path, p.status, p.width, p.height, len(p.faces),
                                        m.get("subject_id"), m.get("sex"), m.get("birth_year"), m.get("source"),
                                        m.get("date"), Jsonb(extras)))
                with cur.copy("COPY sf_stage_faces FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(["text", "int4", "float4[]", "float4", "float4", "float4", "bool", "vector",
                                    "bytea"])
                    for p in photos:
                        for i, f in enumerate(p.faces):
                            copy.write_row((p.sha256, i, [float(v) for v in f.bbox], float(f.det_score),
                                            float(f.quality), float(f.blur), bool(f.primary),
                                            np.asarray(f.embedding, np.float32).reshape(DIM), f.thumbnail))
            row = conn.execute(
                f"WITH ins AS (INSERT INTO {SCHEMA}.photos (gallery_id, sha256, path, status, width, height,"
                " face_count) SELECT %(g)s, sha256, path, status, width, height, face_count FROM sf_stage_photos"
                " ON CONFLICT (gallery_id, sha256) DO NOTHING RETURNING id, sha256),"
                f" fins AS (INSERT INTO {SCHEMA}.faces (gallery_id, photo_id, face_no, photo_sha256, path, bbox,"
                " det_score, quality, blur, is_primary, subject_id, sex, birth_year, source, date, extras,"
                " embedding, thumbnail) SELECT %(g)s, ins.id, f.face_no, f.sha256, p.path, f.bbox, f.det_score,"
                " f.quality, f.blur, f.is_primary, p.subject_id, p.sex, p.birth_year, p.source, p.date, p.extras,"
                " f.embedding, f.thumbnail FROM ins JOIN sf_stage_photos p ON p.sha256 = ins.sha256"
                " JOIN sf_stage_faces f ON f.sha256 = ins.sha256 RETURNING 1)"
                " SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM fins)", {"g": self.id}).fetchone()
        inserted, faces = int(row[0]), int(row[1])
        return PushReport(inserted, len({p.sha256 for p in photos}) - inserted, faces)

    # -- search --------------------------------------------------------------------------------
    def search(self, q: np.ndarray, k: int, filters: Sequence[str | Filter] = (), ef: int | None = None,
               candidates: int | None = None, exact: bool = False, query_sha256: str = "",
               workstation: str = "") -> tuple[list[tuple[int, float]], int]:
        """((face id, exact cosine) best first, content version) for one unit query vector; logged server-side."""
        return search_many([self], q, k, filters, ef, candidates, exact, query_sha256, workstation)[self.id]

    def _read_faces(self, face_ids: Iterable[int], purpose: str, reader: str) -> tuple[list[str], list[Any]]:
        """(column names, rows) of a logged read: the request is committed (its log row with it) before the
        server hands out anything; a face outside your units refuses the whole request."""
        ids = sorted({int(x) for x in face_ids})
        if not ids:
            return [], []
        with self.pool.connection() as conn:
            ticket = conn.execute(f"SELECT {SCHEMA}.request_faces(%s, %s, %s)",
                                  (ids, purpose, socket.gethostname())).fetchone()[0]
            conn.commit()
            cur = conn.execute(f"SELECT * FROM {SCHEMA}.{reader}(%s)", (ticket,))
            return [d.name for d in cur.description or []], cur.fetchall()

    def face_details(self, face_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """Photo, box and metadata of faces of this server's galleries your units may use (one access-log row)."""
        names, rows = self._read_faces(face_ids, "details", "face_details")
        return {int(r[0]): dict(zip(names, r, strict=True)) for r in rows}

    def thumbnails(self, face_ids: Iterable[int]) -> dict[int, bytes]:
        """Stored thumbnails of faces (one access-log row for all of them); faces without one are left out."""
        _, rows = self._read_faces(face_ids, "thumbnails", "thumbnails")
        return {int(f): bytes(t) for f, t in rows if t is not None}

    def thumbnail(self, face_id: int) -> bytes | None:
        """One face's stored thumbnail, or None (logged like any read of faces)."""
        return self.thumbnails([face_id]).get(int(face_id))

    def searchable(self, mode: str = "auto") -> ServerSearchable:
        """This gallery as search runs over it: pgvector HNSW with exact re-rank (``mode`` is for local
        galleries; a server gallery always searches this way)."""
        return ServerSearchable(self)


def search_many(galleries: Sequence[PgGallery], q: np.ndarray, k: int, filters: Sequence[str | Filter] = (),
                ef: int | None = None, candidates: int | None = None, exact: bool = False, query_sha256: str = "",
                workstation: str = "") -> dict[str, tuple[list[tuple[int, float]], int]]:
    """One server request per connection string: {gallery id: (hits best first, content version)}.

    The request (log row and hits) is committed in its own REPEATABLE READ transaction, so the hits and
    the content versions come from one snapshot; the hits are then read back by the request's id.
    """
    if k < 1:
        raise GalleryError(f"k must be at least 1, not {k}.")
    vec = np.asarray(q, np.float32).reshape(DIM)
    fjson = json.dumps(filters_json(filters))
    out: dict[str, tuple[list[tuple[int, float]], int]] = {}
    by_pool: dict[int, list[PgGallery]] = {}
    for g in galleries:
        by_pool.setdefault(id(g.pool), []).append(g)
    for group in by_pool.values():
        ef_used = min(EF_MAX, max(ef or max(g.ef for g in group), k))
        n = candidates or max(2 * k, k + 20)
        with group[0].pool.connection() as conn:
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                ticket = conn.execute(f"SELECT {SCHEMA}.search(%s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s)",
                                      ([g.id for g in group], vec, k, n, ef_used, fjson, query_sha256, exact,
                                       workstation)).fetchone()[0]
            rows = conn.execute(f"SELECT gallery_id, face_id, score, content_version FROM {SCHEMA}.search_results(%s)",
                                (ticket,)).fetchall()
        versions = {gid: int(v) for gid, _, _, v in rows}
        for g in group:
            hits = sorted(((int(f), float(s)) for gid, f, s, _ in rows if gid == g.id and f is not None),
                          key=lambda h: (-h[1], h[0]))
            out[g.id] = (hits[:k], versions.get(g.id, -1))
    return out


META_COLUMNS = ("sex", "birth_year", "source", "date")


class ServerSearchable(GalleryView):
    """Search's view of a :class:`PgGallery` (grouping by subject is not offered: not grouped server-side)."""

    can_group = False
    mode = HNSW

    def __init__(self, gallery: PgGallery) -> None:
        self.gallery = gallery

    @classmethod
    def search_together(cls, galleries: Sequence[Any], q: np.ndarray, k: int, pool: int, filters: list[Filter],
                        ef: int, context: SearchContext) -> dict[str, Candidates]:
        """One logged request per server: the best ``k`` of ``pool`` HNSW candidates per gallery, re-ranked."""
        found = search_many([g.gallery for g in galleries], q, k, filters, ef or None, pool,
                            query_sha256=context.query_sha256, workstation=context.workstation)
        return {gid: Candidates(hits, version) for gid, (hits, version) in found.items()}

    def face_details(self, face_ids: Iterable[int]) -> dict[int, FaceDetail]:
        out = {}
        for f, d in self.gallery.face_details(face_ids).items():
            meta = {key: d[key] for key in META_COLUMNS if d.get(key) is not None}
            meta.update(d.get("extras") or {})
            out[f] = FaceDetail(int(d["photo_id"]), str(d["path"] or ""), str(d["photo_sha256"]), d["subject_id"],
                                meta, d["quality"], tuple(d["bbox"]) if d["bbox"] else None)
        return out

    def thumbnails(self, face_ids: Iterable[int]) -> dict[int, bytes]:
        return self.gallery.thumbnails(face_ids)

    def thumbnail(self, face_id: int) -> bytes | None:
        return self.gallery.thumbnail(face_id)

    def manifest_ref(self, content_version: int) -> GalleryRef:
        g = self.gallery
        return GalleryRef(g.id, content_version, g.name, None, {**g.params, "mode": HNSW},
                          server=g.server or "server")
