"""Watches: a recorded search of an open case searched again, automatically, over the faces added since.

Why: a sketch case goes cold when the person is not yet in any gallery; months later they are booked and
nobody searches the old sketch again. A watch keeps the search's manifest, its galleries, a bar and what
it last saw of each gallery; a run (:func:`run_watches`, for a scheduler or the window's timer) searches
only the faces added since, exactly, with the manifest's own models and queries:

- *Delta, batched*: a local gallery's new faces (face ids come from AUTOINCREMENT and are never reused, so
  "added since" is "id above the last one seen") are read once and scored against every watched query on
  that gallery in one float32 matrix product (:func:`delta_top`). A server gallery is asked per query
  with an exact search restricted to the new faces (one logged request each).
- *Same models or nothing*: the run compares the models the manifest names with the ones installed now
  (:func:`engine.manifest.compare_manifests`, the one comparison); if any differs the watch is refused
  with the reason, and :func:`rerun_watch` offers a full re-run recorded as a new search.
- *The bar*: a calibrated score bar where a calibration exists for the encoder (the score that kept a
  share of true matches in validation), else rank <= N together with score >= s, shown as uncalibrated.
  "Rank <= N" means the new face would enter the top N of the recorded list: its score beats the
  recorded N-th score, and at most N new faces are kept per run.
- *Removed faces are noted*: the run counts faces that left each gallery since it last looked.
- *A run that changes nothing writes nothing*: when every gallery is at the version the watch last saw, no
  run is recorded (a daily schedule would otherwise add an audit entry per watch per day saying nothing).

Limitation (stated, not hidden): on a server gallery "added since" is "face id above the last one seen";
two pushes committing out of id order at the very moment of a run could hide a face from that delta.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.cases import Case, list_cases, open_case, searches, watch_records
from engine.cases.watch_records import GalleryState, NewHit, Watch
from engine.errors import EngineError, GalleryError
from engine.gallery.filters import parse_filters
from engine.gallery.pg.gallery import PgGallery
from engine.gallery.pg.schema import SCHEMA
from engine.manifest import ARCFACE, EmbedderRef, RunManifest, compare_manifests
from engine.models.identity import search_model_refs
from engine.progress import CancelToken, check
from engine.search.core import Query, fuse
from engine.types import Match
from engine.workstation.watch_bar import WatchError, describe_bar, parse_bar

if TYPE_CHECKING:
    from engine.workstation.core import Workstation

MODEL_KEYS = ("embedder", "arcface_sha256", "models")
__all__ = ["WatchError", "add_watch", "delta_top", "describe_bar", "local_delta", "model_changes", "parse_bar",
           "rerun_watch", "run_watches", "watch_all"]


# -- models ----------------------------------------------------------------------------------------
def model_changes(ws: Workstation, manifest: Mapping[str, Any]) -> list[str]:
    """What differs between the models ``manifest`` names and the ones this workstation loads now."""
    sketch = any(q.get("kind") == "sketch" for q in manifest.get("query", []) if isinstance(q, Mapping))
    try:
        searcher = ws.searcher(sketch=sketch)
        arcface = searcher.arcface_sha256
        embedder = searcher.sketch_embedder if sketch else None
        now = {"embedder": (EmbedderRef.of_sketch_embedder(embedder) if embedder is not None
                            else EmbedderRef(ARCFACE, arcface)).to_dict(),
               "arcface_sha256": arcface, "models": search_model_refs(searcher.pipeline, embedder)}
    except EngineError as exc:
        return [f"The models could not be loaded: {exc.message}"]
    old = {k: manifest[k] for k in MODEL_KEYS if k in manifest}
    return [str(c["message"]) for c in compare_manifests(old, {k: now[k] for k in old})]


def query_vector(ws: Workstation, manifest: Mapping[str, Any], images: list[bytes]) -> np.ndarray:
    """The search's fused unit query vector, from its stored images with the models it names."""
    run = RunManifest.from_dict(manifest)
    queries = [Query(q.kind, data, q.weight, face_box=q.face_box) for q, data in zip(run.query, images, strict=True)]
    searcher = ws.searcher(sketch=any(q.kind == "sketch" for q in queries))
    vectors, _ = searcher.embed(queries)
    return fuse(vectors, [q.weight for q in queries]).astype(np.float32)


# -- galleries -------------------------------------------------------------------------------------
def gallery_ref(g: Mapping[str, Any]) -> str:
    """The workstation reference of a manifest gallery (``pg:PROFILE:ID`` for a server gallery)."""
    return f"pg:{g['server']}:{g['id']}" if g.get("server") else str(g["id"])


def _server_new(g: PgGallery, after: int) -> tuple[int, int, int]:
    """(new faces above ``after``, highest face id, face count) of a server gallery, in one snapshot."""
    with g.pool.connection() as conn:
        n, top, total = conn.execute(
            f"SELECT count(*) FILTER (WHERE id > %s), coalesce(max(id), 0), count(*) FROM {SCHEMA}.faces "
            "WHERE gallery_id = %s", (after, g.id)).fetchone()
    return int(n), int(top), int(total)


def state_now(ws: Workstation, ref: str) -> GalleryState:
    """What a gallery holds now: content version, highest face id, face count."""
    g = ws.open_any(ref)
    if isinstance(g, PgGallery):
        _, top, total = _server_new(g, 0)
        return GalleryState(g.id, g.content_version, top, total)
    ids = g.store.face_ids()
    return GalleryState(g.id, g.content_version, int(ids[-1]) if len(ids) else 0, len(ids))


# -- adding, listing, removing -----------------------------------------------------------------------
def add_watch(ws: Workstation, case: Case, search_id: int, *, bar: str | None = None,
              user: str | None = None) -> Watch:
    """Watch a recorded search of an open case from now on (refused when its models changed since)."""
    record = searches.get_search(case, search_id)
    manifest = record.manifest
    if "watch" in manifest:
        raise WatchError(f"Search {search_id} is an acknowledged watch hit; watch the search it came from.")
    changes = model_changes(ws, manifest)
    if changes:
        raise WatchError(f"Search {search_id} cannot be watched: its models changed since it ran ("
                         + "; ".join(changes) + ").",
                         hint=f"Re-run it first (sketchface case rerun {case.case_id} --search {search_id}) "
                              "and watch the new search.")
    vec = query_vector(ws, manifest, searches.query_images(case, search_id))
    galleries = [{"id": str(g["id"]), "name": str(g.get("name", "")), "server": str(g.get("server") or ""),
                  "ref": gallery_ref(g)} for g in manifest["galleries"]]
    state = [state_now(ws, g["ref"]) for g in galleries]
    spec = parse_bar(bar, manifest, searches.stored_matches(case, search_id))
    return watch_records.add_watch(case, search_id, galleries, spec, vec.astype("<f4").tobytes(), state, user=user)


def watch_all(ws: Workstation, case: Case, *, bar: str | None = None, user: str | None = None) -> list[Watch]:
    """Watch every recorded search of the case not yet watched (acknowledged hits and refused ones skipped)."""
    watched = {w.search_id for w in watch_records.list_watches(case, active_only=True)}
    out = []
    for rec in searches.list_searches(case):
        if rec.id in watched or "watch" in rec.manifest:
            continue
        out.append(add_watch(ws, case, rec.id, bar=bar, user=user))
    return out


# -- running ----------------------------------------------------------------------------------------
def delta_top(queries: np.ndarray, ids: np.ndarray, vectors: np.ndarray, after: Sequence[int],
              thresholds: Sequence[float], limits: Sequence[int],
              allowed: Sequence[np.ndarray | None] | None = None) -> list[list[tuple[int, float]]]:
    """For each watched query: up to ``limits[i]`` (face id, score) over ``thresholds[i]`` among faces above
    ``after[i]``, best first. One float32 product scores every query against every new face."""
    if not len(ids):
        return [[] for _ in range(len(queries))]
    scores = np.asarray(queries, np.float32) @ np.asarray(vectors, np.float32).T
    out = []
    for i in range(len(queries)):
        keep = (ids > after[i]) & (scores[i] >= thresholds[i])
        only = allowed[i] if allowed is not None else None
        if only is not None:
            keep &= np.isin(ids, only)
        idx = np.flatnonzero(keep)
        order = idx[np.lexsort((ids[idx], -scores[i, idx]))][: limits[i]]
        out.append([(int(ids[j]), float(scores[i, j])) for j in order])
    return out


@dataclass
class _Task:
    case: Case
    watch: Watch
    manifest: dict[str, Any]
    found: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    seen: list[dict[str, Any]] = field(default_factory=list)
    state: list[GalleryState] = field(default_factory=list)
    searched: int = 0
    problem: str = ""
    recorded: list[tuple[str, int]] = field(default_factory=list)

    def recorded_in(self, gallery_id: str) -> list[int]:
        """The watched search's recorded candidates in one gallery (to note those that left it)."""
        return [f for g, f in self.recorded if g == gallery_id]

    @property
    def vector(self) -> np.ndarray:
        return np.frombuffer(self.watch.query_vector, dtype="<f4")

    @property
    def limit(self) -> int:
        return int(self.watch.bar.get("rank") or self.manifest.get("k") or 10)


@dataclass(frozen=True)
class WatchRunReport:
    """What one ``watch run`` did, per watch: outcome, faces searched, hits stored, reason."""

    rows: list[dict[str, Any]]

    @property
    def hits(self) -> int:
        return sum(int(r.get("hits", 0)) for r in self.rows)

    @property
    def refused(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["outcome"] == "refused"]

    def to_dict(self) -> dict[str, Any]:
        return {"watches": self.rows, "hits": self.hits, "refused": len(self.refused)}


def local_delta(g: Any, queries: np.ndarray, after: Sequence[int], thresholds: Sequence[float],
                limits: Sequence[int], filters: Sequence[Sequence[str]]) -> tuple[np.ndarray, list[list[tuple[int, float]]]]:
    """One local gallery's delta for many watched queries: the new face ids (above the lowest ``after``) read
    once with their stored embeddings, and each query's hits (:func:`delta_top`); filters as the search's."""
    low = min(after)
    ids = g.store.filtered_face_ids(_parse([f"face_id>{low}"]))
    vectors = g.store.embeddings(ids) if len(ids) else np.zeros((0, 512), np.float32)
    allowed = [g.store.filtered_face_ids(_parse([*f, f"face_id>{low}"])) if f else None for f in filters]
    return ids, delta_top(queries, ids, vectors, after, thresholds, limits, allowed)


def _delta_local(g: Any, tasks: list[_Task]) -> None:
    version, total = g.content_version, g.store.face_count()
    ids, found = local_delta(g, np.stack([t.vector for t in tasks]), [t.watch.state[g.id].last_face_id for t in tasks],
                             [float(t.watch.bar["threshold"]) for t in tasks], [t.limit for t in tasks],
                             [list(t.manifest.get("filters") or []) for t in tasks])
    low = min(t.watch.state[g.id].last_face_id for t in tasks)
    top = int(ids[-1]) if len(ids) else low
    for t, hits in zip(tasks, found, strict=True):
        last = t.watch.state[g.id]
        new = int(np.count_nonzero(ids > last.last_face_id))
        present = g.store.face_infos(t.recorded_in(g.id))
        left = [f for f in t.recorded_in(g.id) if f not in present]
        _note(t, g.id, g.name, last, version, max(top, last.last_face_id), total, new, hits, left)


def _delta_server(g: PgGallery, tasks: list[_Task]) -> None:
    for t in tasks:
        last = t.watch.state[g.id]
        new, top, total = _server_new(g, last.last_face_id)
        version, hits = g.content_version, []
        if new:
            filters = [*(t.manifest.get("filters") or []), f"face_id>{last.last_face_id}", f"face_id<={top}"]
            found, version = g.search(t.vector, t.limit, filters, exact=True, query_sha256=t.watch.manifest_sha256,
                                      workstation=socket.gethostname())
            hits = [(f, s) for f, s in found if s >= float(t.watch.bar["threshold"])]
        _note(t, g.id, g.name, last, version, max(top, last.last_face_id), total, new, hits,
              _server_missing(g, t.recorded_in(g.id)))


def _server_missing(g: PgGallery, face_ids: list[int]) -> list[int]:
    """Which of ``face_ids`` the server gallery no longer holds."""
    if not face_ids:
        return []
    with g.pool.connection() as conn:
        rows = conn.execute(f"SELECT id FROM {SCHEMA}.faces WHERE gallery_id = %s AND id = ANY(%s)",
                            (g.id, face_ids)).fetchall()
    present = {int(r[0]) for r in rows}
    return [f for f in face_ids if f not in present]


def _note(t: _Task, gid: str, name: str, last: GalleryState, version: int, top: int, total: int, new: int,
          hits: list[tuple[int, float]], left: list[int]) -> None:
    removed = max(0, last.face_count + new - total)
    t.seen.append({"id": gid, "name": name, "from_version": last.content_version, "to_version": version,
                   "new_faces": new, "removed_faces": removed, "left_gallery": left})
    t.state.append(GalleryState(gid, version, top, total))
    t.searched += new
    t.found[gid] = hits


def _parse(filters: list[str]) -> Any:
    return parse_filters(filters)


def _details(ws: Workstation, gid_ref: str, hits: list[tuple[int, float]], version: int) -> list[NewHit]:
    g = ws.open_any(gid_ref).searchable()
    ids = [f for f, _ in hits]
    details, thumbs = g.face_details(ids), g.thumbnails(ids)
    out = []
    for rank, (f, score) in enumerate(hits, start=1):
        d = details.get(f)
        if d is None:  # removed between the search and now
            continue
        out.append(NewHit(Match(rank, score, g.id, f, d.photo_id, d.photo_path, d.photo_sha256, d.subject_id,
                                dict(d.metadata), False, 1, g.name, d.quality, d.bbox), version, thumbs.get(f)))
    return out


@contextlib.contextmanager
def _open_cases(case_refs: Sequence[str] | None) -> Iterator[list[Case]]:
    refs = list(case_refs) if case_refs else [c["case_id"] for c in list_cases()
                                              if c.get("available") and c.get("status") == "open"]
    opened: list[Case] = []
    try:
        for ref in refs:
            with contextlib.suppress(EngineError):
                opened.append(open_case(ref))
        yield opened
    finally:
        for c in opened:
            c.close()


def run_watches(ws: Workstation, *, cases: Sequence[str] | None = None, user: str | None = None,
                cancel: CancelToken | None = None) -> WatchRunReport:
    """Run every active watch of the open cases (or of ``cases``): see the module docstring."""
    rows: list[dict[str, Any]] = []
    with _open_cases(cases) as opened:
        tasks = [_Task(c, w, searches.get_search(c, w.search_id).manifest,
                       recorded=[(m.gallery_id, m.face_id) for m in searches.stored_matches(c, w.search_id)])
                 for c in opened if c.info.status == "open" for w in watch_records.list_watches(c, active_only=True)]
        checked: dict[str, list[str]] = {}
        runnable = []
        for t in tasks:
            key = json.dumps({k: t.manifest.get(k) for k in MODEL_KEYS}, sort_keys=True, default=str)
            if key not in checked:
                checked[key] = model_changes(ws, t.manifest)
            if checked[key]:
                t.problem = ("refused: the models changed since the search was recorded (" + "; ".join(checked[key])
                             + "). A full re-run, recorded as a new search: sketchface watch rerun "
                             f"{t.case.case_id} {t.watch.id}")
            else:
                runnable.append(t)
        by_gallery: dict[str, list[_Task]] = {}
        for t in runnable:
            for entry in t.watch.galleries:
                by_gallery.setdefault(entry["ref"], []).append(t)
        for ref, group in by_gallery.items():
            check(cancel)
            try:
                g = ws.open_any(ref)
                for t in group:  # a gallery embedded by another ArcFace file is another vector space
                    if g.model_sha256 and g.model_sha256 != t.manifest.get("arcface_sha256"):
                        t.problem = (f"refused: gallery {g.name} is now embedded with another ArcFace model "
                                     f"({str(g.model_sha256)[:12]}…) than the search ({str(t.manifest.get('arcface_sha256'))[:12]}…).")
                group = [t for t in group if not t.problem]
                if not group:
                    continue
                if isinstance(g, PgGallery):
                    _delta_server(g, group)
                else:
                    _delta_local(g, group)
            except EngineError as exc:
                for t in group:
                    t.problem = t.problem or f"gallery {ref} could not be searched: {exc.message}"
        for t in tasks:
            check(cancel)
            rows.append(_store(ws, t, user))
    return WatchRunReport(rows)


def _store(ws: Workstation, t: _Task, user: str | None) -> dict[str, Any]:
    refs = {g["id"]: g["ref"] for g in t.watch.galleries}
    row: dict[str, Any] = {"case": t.case.case_id, "watch": t.watch.id, "search": t.watch.search_id}
    if t.problem:
        outcome = "refused" if t.problem.startswith("refused") else "failed"
        watch_records.record_run(t.case, t.watch, outcome=outcome, galleries=[], faces_searched=0, hits=[],
                                 new_state=list(t.watch.state.values()), reason=t.problem, user=user)
        return {**row, "outcome": outcome, "reason": t.problem, "hits": 0, "faces_searched": 0}
    if all(t.watch.state.get(s.gallery_id) == s for s in t.state):  # every gallery as it last saw it
        return {**row, "outcome": "nothing new", "run": None, "faces_searched": 0, "hits": 0, "galleries": t.seen,
                "reason": "every gallery is at the version the watch last saw (nothing recorded)"}
    hits: list[NewHit] = []
    for gid, found in t.found.items():
        version = next(s.content_version for s in t.state if s.gallery_id == gid)
        hits += _details(ws, refs[gid], found, version) if found else []
    removed = sum(s["removed_faces"] for s in t.seen)
    left = sum(len(s["left_gallery"]) for s in t.seen)
    reason = "; ".join(x for x in (f"{removed} face(s) left the galleries since the last run" if removed else "",
                                   f"{left} recorded candidate(s) of the search have left the gallery; the case keeps "
                                   "their thumbnails" if left else "") if x)
    outcome = "searched" if t.searched else "nothing new"
    run_id = watch_records.record_run(t.case, t.watch, outcome=outcome, galleries=t.seen,
                                      faces_searched=t.searched, hits=hits, new_state=t.state, reason=reason,
                                      user=user)
    stored = sum(1 for h in watch_records.list_hits(t.case, watch_id=t.watch.id) if h.run_id == run_id)
    return {**row, "outcome": outcome if run_id is not None else "already run", "run": run_id,
            "faces_searched": t.searched, "hits": stored, "galleries": t.seen, "reason": reason}


def rerun_watch(ws: Workstation, case: Case, watch_id: int, *, user: str | None = None) -> Watch:
    """The offer made when a watch is refused: a full re-run of its search, recorded as a new search, which
    the watch then follows (the old watch ends, naming the new search)."""
    old = watch_records.get_watch(case, watch_id)
    report = ws.rerun(case, old.search_id, store=True, user=user)
    new_id = getattr(report, "new_search_id", None)
    if new_id is None:
        raise GalleryError("The full re-run was not stored; the watch was left as it was.")
    if old.status == watch_records.ACTIVE:
        watch_records.end_watch(case, watch_id, f"replaced by a full re-run (search {new_id})", user=user)
    bar = old.bar
    spec = (f"calibrated:{bar['share']}" if bar.get("kind") == "calibrated"
            else f"rank<={bar['rank']},score>={bar['score']}")
    return add_watch(ws, case, int(new_id), bar=spec, user=user)
