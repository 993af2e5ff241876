"""The watch list as a case records it: watches, their runs and hits, ending them, acknowledging a hit.

Every change is one audited write naming the rows it wrote (``records=[...]``), so verification covers
watches like every other record, both ways. The search itself (models, galleries) is the use-case layer's
(:mod:`engine.workstation.watch`); this module only stores what a run found.

Why a run is one transaction per watch: its hits, its run row and the galleries' new "last seen" state
commit together or not at all, so a run killed part-way leaves the watch where it was and the next run
searches the same new faces again; the unique key (watch, gallery, face) keeps a hit from being stored
twice even when two runs overlap.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.cases import searches, watch_schema
from engine.cases.db import canonical_json, now_iso
from engine.cases.images import inspect_image
from engine.cases.store import Case, resolve_user
from engine.errors import BadImage, CaseError
from engine.fsutil import sha256_bytes
from engine.types import Match

ACTIVE, ENDED, REMOVED = "active", "ended", "removed"


@dataclass(frozen=True)
class GalleryState:
    """What a watch last saw of one gallery: its content version, highest face id and face count."""

    gallery_id: str
    content_version: int
    last_face_id: int
    face_count: int


@dataclass(frozen=True)
class Watch:
    """A watched search of a case."""

    id: int
    search_id: int
    manifest_sha256: str
    galleries: list[dict[str, Any]]
    bar: dict[str, Any]
    query_vector: bytes
    status: str
    ended_reason: str
    created_at: str
    created_by: str
    state: dict[str, GalleryState]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "search_id": self.search_id, "galleries": self.galleries, "bar": self.bar,
                "status": self.status, "ended_reason": self.ended_reason, "created_at": self.created_at,
                "created_by": self.created_by,
                "last_seen": {g: s.content_version for g, s in self.state.items()}}


@dataclass(frozen=True)
class WatchHit:
    """A new candidate over a watch's bar; ``search_id`` is set once an examiner acknowledged it."""

    id: int
    watch_id: int
    run_id: int
    gallery_id: str
    face_id: int
    score: float
    content_version: int
    row: dict[str, Any]
    thumbnail_path: str | None
    thumbnail_sha256: str | None
    acknowledged_at: str | None
    acknowledged_by: str | None
    search_id: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "watch_id": self.watch_id, "run_id": self.run_id, "gallery_id": self.gallery_id,
                "face_id": self.face_id, "score": self.score, "content_version": self.content_version,
                "photo_path": self.row.get("photo_path"), "thumbnail_sha256": self.thumbnail_sha256,
                "acknowledged_at": self.acknowledged_at, "acknowledged_by": self.acknowledged_by,
                "search_id": self.search_id}


@dataclass(frozen=True)
class NewHit:
    """A hit a run found, before it is stored: the match, its gallery's content version and thumbnail."""

    match: Match
    content_version: int
    thumbnail: bytes | None


def _state(case: Case, watch_id: int) -> dict[str, GalleryState]:
    rows = case.conn.execute("SELECT * FROM watch_state WHERE watch_id = ? ORDER BY gallery_id", (watch_id,))
    return {r["gallery_id"]: GalleryState(r["gallery_id"], int(r["content_version"]), int(r["last_face_id"]),
                                          int(r["face_count"])) for r in rows.fetchall()}


def _watch(case: Case, r: Any) -> Watch:
    return Watch(int(r["id"]), int(r["search_id"]), r["manifest_sha256"], json.loads(r["galleries"]),
                 json.loads(r["bar"]), bytes(r["query_vector"]), r["status"], r["ended_reason"], r["created_at"],
                 r["created_by"], _state(case, int(r["id"])))


def list_watches(case: Case, *, active_only: bool = False) -> list[Watch]:
    """The case's watches, oldest first (ended and removed ones too unless ``active_only``)."""
    if not watch_schema.present(case.conn):
        return []
    sql = "SELECT * FROM watches" + (" WHERE status = 'active'" if active_only else "") + " ORDER BY id"
    return [_watch(case, r) for r in case.conn.execute(sql).fetchall()]


def get_watch(case: Case, watch_id: int) -> Watch:
    """One watch of the case, or CaseError naming how to list them."""
    found = [w for w in list_watches(case) if w.id == watch_id]
    if not found:
        raise CaseError(f"Case {case.case_id} has no watch {watch_id}.", hint="See its watches with 'sketchface watch "
                        "list'.")
    return found[0]


def add_watch(case: Case, search_id: int, galleries: Sequence[Mapping[str, Any]], bar: Mapping[str, Any],
              query_vector: bytes, state: Sequence[GalleryState], *, user: str | None = None) -> Watch:
    """Store a watch on a recorded search of an open case (refused for a closed case or a search already watched)."""
    user = resolve_user(user)
    if case.info.status != "open":
        raise CaseError(f"Case {case.case_id} is {case.info.status}: only an open case's searches can be watched.")
    record = searches.get_search(case, search_id)
    with case.write() as conn:
        watch_schema.ensure_tables(conn)
        if conn.execute("SELECT 1 FROM watches WHERE search_id = ? AND status = 'active'", (search_id,)).fetchone():
            raise CaseError(f"Search {search_id} of case {case.case_id} is already watched.",
                            hint="See its watch with 'sketchface watch list'.")
        cur = conn.execute(
            "INSERT INTO watches (search_id, manifest_sha256, galleries, bar, query_vector, status, ended_reason, "
            "created_at, created_by) VALUES (?,?,?,?,?,?,?,?,?)",
            (search_id, record.manifest_sha256, canonical_json(list(galleries)), canonical_json(dict(bar)),
             query_vector, ACTIVE, "", now_iso(), user))
        wid = int(cur.lastrowid or 0)
        _write_state(conn, wid, state)
        case.log("watch.add", f"watch:{wid}", user=user, inputs={"manifest": record.manifest_sha256},
                 details={"watch_id": wid, "search_id": search_id, "bar": dict(bar),
                          "galleries": [dict(g) for g in galleries],
                          "last_seen": {s.gallery_id: s.content_version for s in state}},
                 records=[("watches", wid), ("watch_state", wid)])
    return get_watch(case, wid)


def _write_state(conn: Any, watch_id: int, state: Sequence[GalleryState]) -> None:
    for s in state:
        conn.execute("INSERT INTO watch_state VALUES (?,?,?,?,?) ON CONFLICT(watch_id, gallery_id) DO UPDATE SET "
                     "content_version = excluded.content_version, last_face_id = excluded.last_face_id, "
                     "face_count = excluded.face_count",
                     (watch_id, s.gallery_id, s.content_version, s.last_face_id, s.face_count))


def _set_status(case: Case, conn: Any, watch_id: int, status: str, reason: str, user: str, action: str) -> None:
    conn.execute("UPDATE watches SET status = ?, ended_reason = ? WHERE id = ?", (status, reason, watch_id))
    case.log(action, f"watch:{watch_id}", user=user, details={"watch_id": watch_id, "status": status,
                                                               "reason": reason}, records=[("watches", watch_id)])


def remove_watch(case: Case, watch_id: int, *, user: str | None = None) -> Watch:
    """Stop a watch (its runs and hits stay in the record)."""
    user = resolve_user(user)
    watch = get_watch(case, watch_id)
    if watch.status != ACTIVE:
        raise CaseError(f"Watch {watch_id} of case {case.case_id} is already {watch.status}.")
    with case.write() as conn:
        _set_status(case, conn, watch_id, REMOVED, "removed by the examiner", user, "watch.remove")
    return get_watch(case, watch_id)


def end_watch(case: Case, watch_id: int, reason: str, *, user: str | None = None) -> None:
    """End one active watch with the reason (a full re-run replaced it)."""
    with case.write() as conn:
        _set_status(case, conn, watch_id, ENDED, reason, resolve_user(user), "watch.end")


def end_watches(case: Case, reason: str, *, user: str) -> list[int]:
    """End every active watch of the case, one audit entry each (call inside the write that closes the case)."""
    if not watch_schema.present(case.conn):
        return []
    ids = [int(r[0]) for r in case.conn.execute("SELECT id FROM watches WHERE status = 'active' ORDER BY id")]
    with case.write() as conn:
        for wid in ids:
            _set_status(case, conn, wid, ENDED, reason, user, "watch.end")
    return ids


def record_run(case: Case, watch: Watch, *, outcome: str, galleries: Sequence[Mapping[str, Any]],
               faces_searched: int, hits: Sequence[NewHit], new_state: Sequence[GalleryState], reason: str = "",
               user: str | None = None) -> int | None:
    """Store one run of a watch: its run row, its new hits and what it saw, in one audited write.

    Returns the run id, or None when the watch changed since the run read it (another run stored this
    delta first, or the watch was ended): nothing is written then.
    """
    user = resolve_user(user)
    thumbs = [h.thumbnail for h in hits]
    with case.write() as conn:
        current = conn.execute("SELECT status FROM watches WHERE id = ?", (watch.id,)).fetchone()
        if current is None or current[0] != ACTIVE or _state(case, watch.id) != watch.state:
            return None
        cur = conn.execute("INSERT INTO watch_runs (watch_id, outcome, galleries, faces_searched, n_hits, reason, "
                           "ran_at, ran_by) VALUES (?,?,?,?,?,?,?,?)",
                           (watch.id, outcome, canonical_json([dict(g) for g in galleries]), faces_searched, 0,
                            reason, now_iso(), user))
        run_id = int(cur.lastrowid or 0)
        stored = _store_thumbnails(case, thumbs)
        hit_ids = []
        for h, (tpath, tsha) in zip(hits, stored, strict=True):
            m = h.match
            row = {"gallery_id": m.gallery_id, "gallery_name": m.gallery_name, "face_id": m.face_id,
                   "photo_id": m.photo_id, "photo_path": m.photo_path, "photo_sha256": m.photo_sha256,
                   "subject_id": m.subject_id, "metadata": _plain_metadata(m.metadata),
                   "quality": m.quality, "bbox": list(m.bbox) if m.bbox else None, "baseline": m.baseline}
            c = conn.execute("INSERT OR IGNORE INTO watch_hits (watch_id, run_id, gallery_id, face_id, score, "
                             "content_version, row, thumbnail_path, thumbnail_sha256) VALUES (?,?,?,?,?,?,?,?,?)",
                             (watch.id, run_id, m.gallery_id, m.face_id, float(m.score), h.content_version,
                              canonical_json(row), tpath, tsha))
            if c.rowcount:
                hit_ids.append(int(c.lastrowid or 0))
        conn.execute("UPDATE watch_runs SET n_hits = ? WHERE id = ?", (len(hit_ids), run_id))
        _write_state(conn, watch.id, new_state)
        case.log("watch.run", f"watch:{watch.id}", user=user,
                 details={"watch_id": watch.id, "run_id": run_id, "outcome": outcome, "hits": hit_ids,
                          "faces_searched": faces_searched, "reason": reason,
                          "galleries": [dict(g) for g in galleries]},
                 records=[("watch_runs", run_id), ("watch_state", watch.id), *(("watch_hits", i) for i in hit_ids)])
    return run_id


def _plain_metadata(meta: Mapping[str, Any]) -> dict[str, Any]:
    """Metadata as JSON keeps it (thumbnail bytes left out: the thumbnail is stored as its own file)."""
    return dict(json.loads(json.dumps({k: v for k, v in meta.items() if not isinstance(v, bytes | bytearray)},
                                      default=str)))


def _store_thumbnails(case: Case, thumbs: Sequence[bytes | None]) -> list[tuple[str | None, str | None]]:
    """Store each usable thumbnail content-addressed; (path, sha256) per hit, (None, None) where none."""
    out: list[tuple[str | None, str | None]] = []
    for data in thumbs:
        try:
            ext = inspect_image(data, "thumbnail")[0] if data is not None else ""
        except BadImage:
            data = None  # a broken thumbnail must not block storing the hit; the report shows none
        if data is None:
            out.append((None, None))
            continue
        digest = sha256_bytes(data)
        out.append((case.store_files("thumbnails", [(f"{digest}{ext}", data)])[0], digest))
    return out


def _hit(r: Any) -> WatchHit:
    return WatchHit(int(r["id"]), int(r["watch_id"]), int(r["run_id"]), r["gallery_id"], int(r["face_id"]),
                    float(r["score"]), int(r["content_version"]), json.loads(r["row"]), r["thumbnail_path"],
                    r["thumbnail_sha256"], r["acknowledged_at"], r["acknowledged_by"], r["search_id"])


def list_hits(case: Case, *, watch_id: int | None = None, unacknowledged: bool = False) -> list[WatchHit]:
    """The case's watch hits, oldest first."""
    if not watch_schema.present(case.conn):
        return []
    where = ["1"]
    args: list[Any] = []
    if watch_id is not None:
        where.append("watch_id = ?")
        args.append(watch_id)
    if unacknowledged:
        where.append("acknowledged_at IS NULL")
    rows = case.conn.execute(f"SELECT * FROM watch_hits WHERE {' AND '.join(where)} ORDER BY id", args).fetchall()
    return [_hit(r) for r in rows]


def list_runs(case: Case) -> list[dict[str, Any]]:
    """Every watch run of the case, oldest first (for the report and ``watch list``)."""
    if not watch_schema.present(case.conn):
        return []
    return [{**dict(r), "galleries": json.loads(r["galleries"])}
            for r in case.conn.execute("SELECT * FROM watch_runs ORDER BY id").fetchall()]


def acknowledge(case: Case, hit_id: int, *, user: str | None = None) -> WatchHit:
    """An examiner acknowledges a hit: it is recorded as an ordinary search of one candidate, to examine and decide.

    The new search's manifest is the watched search's, with the hit's gallery at the content version that
    brought it, and a ``watch`` entry saying it came from a delta search (so a re-run of it is not expected
    to repeat a one-candidate list).
    """
    user = resolve_user(user)
    found = [h for h in list_hits(case) if h.id == hit_id]
    if not found:
        raise CaseError(f"Case {case.case_id} has no watch hit {hit_id}.", hint="See them with 'sketchface watch list'.")
    hit = found[0]
    if hit.acknowledged_at:
        raise CaseError(f"Watch hit {hit_id} was acknowledged by {hit.acknowledged_by} at {hit.acknowledged_at}; "
                        f"it is search {hit.search_id}.")
    watch = get_watch(case, hit.watch_id)
    original = searches.get_search(case, watch.search_id)
    manifest = dict(original.manifest)
    manifest["galleries"] = [{**g, "content_version": hit.content_version} for g in manifest["galleries"]
                             if str(g.get("id")) == hit.gallery_id]
    manifest["watch"] = {"watch_id": watch.id, "hit_id": hit.id, "run_id": hit.run_id, "of_search": watch.search_id,
                         "delta": True}
    row = hit.row
    match = Match(1, hit.score, hit.gallery_id, hit.face_id, int(row.get("photo_id") or 0),
                  str(row.get("photo_path") or ""), str(row.get("photo_sha256") or ""), row.get("subject_id"),
                  dict(row.get("metadata") or {}), bool(row.get("baseline")), 1, str(row.get("gallery_name") or ""),
                  row.get("quality"), tuple(row["bbox"]) if row.get("bbox") else None)
    thumbs = {(hit.gallery_id, hit.face_id): case.read_file(hit.thumbnail_path, hit.thumbnail_sha256)} \
        if hit.thumbnail_path else {}
    images = searches.query_images(case, watch.search_id)
    with case.write() as conn:
        rec = searches.add_search(case, manifest, [match], images, thumbnails=thumbs, user=user,
                                  label=f"Watch hit {hit.id} (watch {watch.id} of search {watch.search_id})")
        conn.execute("UPDATE watch_hits SET acknowledged_at = ?, acknowledged_by = ?, search_id = ? WHERE id = ?",
                     (now_iso(), user, rec.id, hit.id))
        case.log("watch.acknowledge", f"watch_hit:{hit.id}", user=user,
                 inputs={"thumbnail": hit.thumbnail_sha256 or "", "face": sha256_bytes(canonical_json(row).encode())},
                 details={"hit_id": hit.id, "watch_id": watch.id, "search_id": rec.id},
                 records=[("watch_hits", hit.id)])
    return next(h for h in list_hits(case) if h.id == hit_id)
