"""The one gallery protocol search runs over: local and server galleries alike.

Why one protocol: a search over several galleries (local, on a gallery server, or both) must fuse,
rank, key each candidate by (gallery, face), build its manifest and record its thumbnails the same way
whatever stores the faces, so there is one search (:mod:`engine.search.core`) and each gallery kind
supplies only what differs: its candidates with exact scores, its faces' details and thumbnails, its
content version and its manifest record. A gallery gives its searchable form with ``searchable()``.

Galleries of one kind are asked together (:meth:`SearchableGallery.search_together`): a gallery server
answers all of its galleries in one logged request and one snapshot; a local gallery is asked alone.

Exact re-rank: every candidate's score is recomputed from the stored embedding (the truth an index is
derived from), so scores of local and server galleries are the same inner product of the same unit
query with a stored ArcFace vector, on one scale, and sort together.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from engine.gallery.exact import EXACT, HNSW, choose_mode, exact_scan
from engine.gallery.filters import Filter
from engine.gallery.tuning import rerank_depth
from engine.manifest import GalleryRef

if TYPE_CHECKING:
    from engine.gallery.gallery import Gallery

# A filter leaving at most this many faces (or this fraction of a gallery) is scanned exactly with numpy.
PREFILTER_MAX = 20_000
PREFILTER_FRACTION = 0.05


@dataclass(frozen=True)
class SearchContext:
    """What a logged search request names: the query's digest and the workstation it came from."""

    query_sha256: str = ""
    workstation: str = ""


@dataclass(frozen=True)
class Candidates:
    """One gallery's answer: (face id, exact cosine) pairs and the content version they were read at."""

    hits: list[tuple[int, float]]
    content_version: int


@dataclass(frozen=True)
class FaceDetail:
    """A face as a search result shows it (the same fields from a local or a server gallery)."""

    photo_id: int
    photo_path: str
    photo_sha256: str
    subject_id: str | None
    metadata: dict[str, Any] = field(default_factory=dict)
    quality: float | None = None
    bbox: tuple[float, float, float, float] | None = None


class SearchableGallery(Protocol):
    """A gallery search can rank, describe and record (see the module docstring)."""

    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def model_sha256(self) -> str | None: ...

    @property
    def can_group(self) -> bool:
        """Whether grouping by subject may read the details of every candidate in the pool."""

    @classmethod
    def search_together(cls, galleries: Sequence[Any], q: np.ndarray, k: int, pool: int, filters: list[Filter],
                        ef: int, context: SearchContext) -> dict[str, Candidates]: ...

    def face_details(self, face_ids: Iterable[int]) -> dict[int, FaceDetail]: ...

    def thumbnails(self, face_ids: Iterable[int]) -> dict[int, bytes]: ...

    def thumbnail(self, face_id: int) -> bytes | None: ...

    def manifest_ref(self, content_version: int) -> GalleryRef: ...


def hnsw_candidates(g: Gallery, q: np.ndarray, n: int, allowed: np.ndarray | None,
                    ef: int) -> list[tuple[int, float]]:
    """(face id, exact cosine) of up to ``n`` faces found by the gallery's HNSW index, re-ranked exactly.

    A selective filter (few allowed faces) is scanned exactly instead: a Python call per visited node
    is cheap only when most nodes pass.
    """
    index = g.index
    ef = ef or g.ef
    if index.params["ef"] != ef:
        index.set_ef(ef)
    live = len(index)
    if allowed is not None and (len(allowed) <= PREFILTER_MAX or len(allowed) <= PREFILTER_FRACTION * live):
        return _stored_scan(g, q, allowed, n)
    members = set(allowed.tolist()) if allowed is not None else None
    ask = n
    if g.index_kind != "hnswlib":  # compact: the self-tuned re-rank depth (engine.gallery.tuning)
        ask = rerank_depth(g.recall_record(), n)
    try:
        labels, _ = index.query(q, min(ask, live if members is None else len(members)),
                                allowed=members.__contains__ if members is not None else None)
    except RuntimeError:  # hnswlib found fewer than asked (tiny or heavily filtered graph): be exact
        return _stored_scan(g, q, allowed if allowed is not None else g.store.face_ids(), n)
    ids = labels[0]
    if not len(ids):
        return []
    scores = g.store.embeddings(ids) @ q  # exact re-rank from the stored truth
    keep = np.argsort(-scores, kind="stable")[:n]
    return [(int(ids[i]), float(scores[i])) for i in keep]


def _stored_scan(g: Gallery, q: np.ndarray, ids: np.ndarray, n: int) -> list[tuple[int, float]]:
    if not len(ids):
        return []
    scores = g.store.embeddings(ids) @ q
    n = min(n, len(ids))
    top = np.argpartition(-scores, n - 1)[:n]
    return [(int(ids[i]), float(scores[i])) for i in top]


class GalleryView:
    """What every search view forwards from the gallery it wraps: its id, name and ArcFace file digest."""

    gallery: Any

    @property
    def id(self) -> str:
        return self.gallery.id

    @property
    def name(self) -> str:
        return self.gallery.name

    @property
    def model_sha256(self) -> str | None:
        return self.gallery.model_sha256


class LocalSearchable(GalleryView):
    """A local gallery as search sees it: an exact scan, or HNSW with exact re-rank (``mode``)."""

    can_group = True

    def __init__(self, gallery: Gallery, mode: str = "auto") -> None:
        self.gallery = gallery
        self.requested = mode
        self.mode = choose_mode(mode, gallery.store.face_count() if mode == "auto" else 0, gallery.settings.device)
        self._ef = 0

    def candidates(self, q: np.ndarray, n: int, filters: list[Filter], ef: int) -> Candidates:
        """Up to ``n`` (face id, exact cosine), best first, at the gallery's current content version."""
        g = self.gallery
        version = g.content_version
        allowed = g.store.filtered_face_ids(filters) if filters else None
        if self.mode == EXACT:
            hits = exact_scan(g).top(q, n, allowed)
        else:
            hits = hnsw_candidates(g, q, n, allowed, ef)
            self._ef = int(g.index.params["ef"])
        return Candidates(sorted(hits, key=lambda h: (-h[1], h[0])), version)

    @classmethod
    def search_together(cls, galleries: Sequence[Any], q: np.ndarray, k: int, pool: int, filters: list[Filter],
                        ef: int, context: SearchContext) -> dict[str, Candidates]:
        """Each local gallery answers alone (``pool`` candidates, so grouping can fill ``k`` subjects)."""
        return {g.id: g.candidates(q, pool, filters, ef) for g in galleries}

    def face_details(self, face_ids: Iterable[int]) -> dict[int, FaceDetail]:
        infos = self.gallery.store.face_infos(list(face_ids))
        return {f: FaceDetail(d.photo_id, d.path, d.sha256, d.subject_id, dict(d.metadata), d.quality, d.bbox)
                for f, d in infos.items()}

    def thumbnails(self, face_ids: Iterable[int]) -> dict[int, bytes]:
        out = {}
        for f in face_ids:
            thumb = self.gallery.thumbnail(int(f))
            if thumb is not None:
                out[int(f)] = thumb
        return out

    def thumbnail(self, face_id: int) -> bytes | None:
        return self.gallery.thumbnail(face_id)

    def manifest_ref(self, content_version: int) -> GalleryRef:
        """The gallery's manifest record: its index (kind, parameters, recall) and the search mode that ran."""
        g = self.gallery
        kind = getattr(g, "index_kind", None)
        return GalleryRef(g.id, content_version, g.name, g.store.face_count(),
                          {**g.index_params, **({"kind": str(kind)} if kind else {}), "recall": g.recall_record(),
                           "mode": self.mode})


__all__ = ["EXACT", "HNSW", "PREFILTER_FRACTION", "PREFILTER_MAX", "Candidates", "FaceDetail", "LocalSearchable",
           "SearchContext", "SearchableGallery", "hnsw_candidates"]
