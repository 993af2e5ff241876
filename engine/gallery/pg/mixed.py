"""One search over local and server galleries: every candidate re-scored exactly, then one list by score.

Why merging is sound: local candidates are re-scored from the SQLite store's float32 embeddings and
server candidates from the server's stored ``vector(512)``; both are the inner product of the same
unit query with the face's stored ArcFace vector, so the scores are on one scale and sort together.
Ties break on (gallery id, face id), the local search's own order, so the list is deterministic.
Each server gallery's content version is read in the transaction that searched it; the returned
gallery records carry ``server`` (the profile) beside id, name and version for the run manifest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from engine import environment
from engine.errors import GalleryError
from engine.gallery.filters import Filter, parse_filters
from engine.gallery.pg.gallery import PgGallery, search_many
from engine.types import Match

if TYPE_CHECKING:
    from engine.gallery.gallery import Gallery
    from engine.progress import CancelToken
    from engine.search.core import Query, Searcher, SearchResult
    from engine.search.manifest import GalleryRef


def _local_hits(g: Gallery, q: np.ndarray, n: int, filters: list[Filter], ef: int | None) -> list[tuple[int, float]]:
    from engine.search.core import _gallery_candidates

    allowed = g.store.filtered_face_ids(filters) if filters else None
    return _gallery_candidates(g, q, n, allowed, ef or g.index.params["ef"])


def search_mixed(q: np.ndarray, local: Sequence[Gallery], remote: Sequence[PgGallery], k: int,
                 filters: Sequence[str | Filter] = (), ef: int | None = None, query_sha256: str = "",
                 workstation: str = "") -> tuple[list[Match], list[GalleryRef]]:
    """(matches best first over all galleries, one manifest record per gallery: server, id, version, index)."""
    from engine.search.manifest import GalleryRef

    parsed = parse_filters(list(filters))
    vec = np.asarray(q, np.float32).reshape(-1)
    pool = max(2 * k, k + 20)
    hits: list[tuple[float, str, int]] = []
    records: list[GalleryRef] = []
    owners: dict[str, Any] = {}
    for g in local:
        owners[g.id] = g
        hits += [(s, g.id, f) for f, s in _local_hits(g, vec, pool, parsed, ef)]
        kind = {"kind": g.index_kind} if getattr(g, "index_kind", None) else {}
        records.append(GalleryRef(g.id, g.content_version, g.name, g.store.face_count(),
                                  {**g.index.params, **kind, "recall": g.recall_record()}))
    for gid, (found, version) in search_many(remote, vec, k, parsed, ef, pool, query_sha256=query_sha256,
                                             workstation=workstation).items():
        g2 = next(r for r in remote if r.id == gid)
        owners[gid] = g2
        hits += [(s, gid, f) for f, s in found]
        records.append(GalleryRef(gid, version, g2.name, None, dict(g2.params), server=g2.server or "server"))
    hits.sort(key=lambda h: (-h[0], h[1], h[2]))
    top = hits[:k]
    return _matches(top, owners), records


def _matches(top: list[tuple[float, str, int]], owners: dict[str, Any]) -> list[Match]:
    wanted: dict[str, list[int]] = {}
    for _, gid, fid in top:
        wanted.setdefault(gid, []).append(fid)
    details: dict[str, dict[int, Any]] = {}
    for gid, ids in wanted.items():
        g = owners[gid]
        details[gid] = g.face_details(ids) if isinstance(g, PgGallery) else g.store.face_infos(ids)
    out = []
    for rank, (score, gid, fid) in enumerate(top, start=1):
        d, g = details[gid][fid], owners[gid]
        if isinstance(g, PgGallery):
            meta = {key: d[key] for key in ("sex", "birth_year", "source", "date") if d.get(key) is not None}
            meta.update(d.get("extras") or {})
            out.append(Match(rank, score, gid, fid, int(d["photo_id"]), str(d["path"] or ""), str(d["photo_sha256"]),
                             d["subject_id"], meta, gallery_name=g.name, quality=d["quality"],
                             bbox=tuple(d["bbox"]) if d["bbox"] else None))
        else:
            out.append(Match(rank, score, gid, fid, d.photo_id, d.path, d.sha256, d.subject_id, dict(d.metadata),
                             gallery_name=g.name, quality=d.quality, bbox=d.bbox))
    return out


def run_mixed_search(searcher: Searcher, queries: Sequence[Query], local: Sequence[Gallery],
                     remote: Sequence[PgGallery], k: int, filters: Sequence[str] = (),
                     ef: int | None = None, cancel: CancelToken | None = None) -> SearchResult:
    """A whole search over local and server galleries: embed, merge, and the typed run manifest.

    The one place that turns :func:`search_mixed` into a :class:`SearchResult`, for the command line,
    the window and re-runs alike, so every mixed search records the same manifest (models included).
    Grouping by subject is not offered here: server galleries are not grouped server-side.
    """
    import socket
    import time

    import engine
    from engine.fsutil import sha256_bytes
    from engine.models.identity import search_model_refs
    from engine.search.core import SearchResult, fuse
    from engine.search.manifest import ARCFACE, EmbedderRef, RunManifest

    start = time.perf_counter()
    arcface = searcher.arcface_sha256
    every: list[Gallery | PgGallery] = [*local, *remote]
    for g in every:
        if g.model_sha256 and g.model_sha256 != arcface:
            raise GalleryError(f"Gallery '{g.name}' was embedded with ArcFace file {g.model_sha256[:12]}…, not the "
                               f"installed {arcface[:12]}…; its scores would be meaningless.")
    vectors, baseline = searcher.embed(queries, cancel)
    q = fuse(vectors, [x.weight for x in queries])
    digest = queries[0].sha256 if len(queries) == 1 else sha256_bytes(b"".join(bytes.fromhex(x.sha256)
                                                                                for x in queries))
    matches, records = search_mixed(q, local, remote, k, filters, ef, digest, socket.gethostname())
    if baseline:
        import dataclasses

        matches = [dataclasses.replace(m, baseline=True) for m in matches]
    sketch = searcher.sketch_embedder if any(x.kind == "sketch" for x in queries) else None
    embedder = EmbedderRef.of_sketch_embedder(sketch) if sketch is not None else EmbedderRef(ARCFACE, arcface)
    first = records[0].index if records else {}
    run = RunManifest(tuple(x.ref() for x in queries), embedder, arcface, tuple(records),
                      {"M": first.get("M"), "ef_construction": first.get("ef_construction"),
                       "ef": ef or first.get("ef")},
                      tuple(filters), k, engine_version=engine.__version__,
                      models=tuple(search_model_refs(searcher.pipeline, sketch)),
                      software=environment.manifest_entry())
    notes = ["Sketch embedded by ArcFace itself (no trained sketch encoder installed): a weak baseline."] \
        if baseline else []
    return SearchResult(matches, run, q, baseline, (time.perf_counter() - start) * 1000, notes)


def open_recorded_server_gallery(ref: GalleryRef) -> PgGallery:
    """The server gallery a run manifest names (its profile and id), for a re-run."""
    from engine import servers

    profile = servers.get_profile(ref.server)
    return PgGallery.open(servers.conninfo(profile), ref.id, profile.name)
