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

from engine.gallery.filters import Filter, parse_filters
from engine.gallery.pg.gallery import PgGallery, search_many
from engine.types import Match

if TYPE_CHECKING:
    from engine.gallery.gallery import Gallery
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
        records.append(GalleryRef(g.id, g.content_version, g.name, g.store.face_count(),
                                  {**g.index.params, "recall": g.recall_record()}))
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
