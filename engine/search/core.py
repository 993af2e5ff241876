"""Query images -> ranked gallery faces, with a manifest that lets anyone re-run the search later.

Why each step:
- *Fusion* of several query images (several witnesses' sketches, or photos) takes the weighted mean
  of their unit embeddings and re-normalises it. For a gallery vector g, cos(g, m/|m|) =
  sum_i w_i cos(g, q_i) / |m|, and |m| is the same for every g: ranking by the fused vector is
  exactly ranking by the weighted mean cosine to the individual queries, at the cost of one search.
  Averaging also cancels part of each witness's independent error.
- *Exact first*: a local gallery is scanned exactly (every stored embedding scored, float32) while its
  measured scan time stays under a bound (:mod:`engine.gallery.exact`); beyond it, or when the
  examiner chooses, HNSW returns candidates (more than k) whose scores are recomputed from the stored
  embeddings, the truth the index is derived from. The manifest records which mode ran.
- *One search for every gallery kind*: local and server galleries answer through one protocol
  (:mod:`engine.gallery.source`), so fusion, ranking, the (gallery, face) key and the manifest are
  built once here.
- *Filters*: the store returns the allowed faces; when they are few (very selective filter) an exact
  numpy scan over their stored embeddings is both exact and fast; otherwise hnswlib's filter callback
  keeps the graph search (a Python call per visited node is cheap only when most nodes pass).
- *Grouping per subject*: one row per (gallery, subject id), so ten photos of one person do not push
  everyone else off the list; the candidate pool grows until k groups are found.
"""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

import engine
from engine import environment
from engine import settings as settings_mod
from engine.arcface import recognizer_sha256, require_same_arcface
from engine.errors import GalleryError
from engine.faces import l2_normalize, load_image, load_pipeline
from engine.fsutil import sha256_bytes
from engine.gallery import open_gallery, parse_filters
from engine.gallery.exact import AUTO, HNSW
from engine.gallery.filters import Filter
from engine.gallery.source import (
    PREFILTER_FRACTION,
    PREFILTER_MAX,
    Candidates,
    SearchableGallery,
    SearchContext,
)
from engine.manifest import ARCFACE, EmbedderRef, GalleryRef, QueryRef, RunManifest
from engine.models.identity import search_model_refs
from engine.progress import CancelToken, check
from engine.search.embedders import SketchEmbedder, embed_sketch, load_embedder
from engine.settings import Settings
from engine.sketch.preprocess import Box, check_face_box
from engine.types import Match

if TYPE_CHECKING:
    from engine.faces import FacePipeline

KINDS = ("photo", "sketch")
__all__ = ["PREFILTER_FRACTION", "PREFILTER_MAX", "Query", "SearchResult", "Searcher", "build_manifest", "fuse",
           "search"]


@dataclass(frozen=True)
class Query:
    """One query image: its encoded bytes (identified by SHA-256), what it is, its fusion weight and,
    for a sketch, the face box (the canvas guide, in the image's pixels) the engine crops it to.

    Front-ends pass the whole sheet and the guide box and never crop themselves: the crop is
    :func:`engine.sketch.preprocess.crop_sketch`, the same for search and reconstruction, and the box
    is recorded in the run manifest. ``face_box=None`` crops a sketch to its ink.
    """

    kind: str
    data: bytes
    weight: float = 1.0
    name: str = ""
    face_box: Box | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise GalleryError(f"A query image is a photo or a sketch, not {self.kind!r}.")
        if not self.weight > 0:
            raise GalleryError(f"Query weight {self.weight} must be positive.")
        if self.face_box is not None and self.kind != "sketch":
            raise GalleryError("A face box belongs to a sketch query; a photo's face is found by the detector.")
        object.__setattr__(self, "face_box", check_face_box(self.face_box))

    @classmethod
    def from_path(cls, path: str | Path, kind: str, weight: float = 1.0,
                  face_box: Box | None = None) -> Query:
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise GalleryError(f"Cannot read the query image {path}: {exc.strerror or exc}.") from exc
        return cls(kind, data, weight, path.name, face_box)

    @property
    def sha256(self) -> str:
        return sha256_bytes(self.data)

    def ref(self) -> QueryRef:
        """This query as the run manifest records it."""
        return QueryRef(self.kind, self.sha256, float(self.weight), self.face_box)


@dataclass
class SearchResult:
    """Ranked matches plus the run manifest (``run``, typed; ``manifest``, its JSON form that cases store)."""

    matches: list[Match]
    run: RunManifest
    query_vector: np.ndarray
    baseline: bool
    elapsed_ms: float
    notes: list[str] = field(default_factory=list)
    galleries: Sequence[Any] = field(default_factory=tuple, repr=False)
    """The searchable galleries that answered (they give the candidates' thumbnails while open)."""

    @property
    def mode(self) -> str:
        """How the galleries were searched: ``exact``, ``hnsw`` (with exact re-rank) or ``mixed``."""
        return str(self.run.index.get("mode", HNSW))

    @property
    def manifest(self) -> dict[str, Any]:
        """The run manifest as JSON values (what ``engine.cases.add_search`` stores and hashes)."""
        return self.run.to_dict()

    def to_dict(self) -> dict[str, Any]:
        return {"matches": [m.to_dict() for m in self.matches], "manifest": self.manifest, "mode": self.mode,
                "baseline": self.baseline, "elapsed_ms": round(self.elapsed_ms, 2), "notes": self.notes}


def fuse(vectors: np.ndarray, weights: Sequence[float] | None = None) -> np.ndarray:
    """Weighted mean of unit embeddings, re-normalised (see the module docstring for why)."""
    vecs = l2_normalize(np.asarray(vectors, dtype=np.float32).reshape(-1, vectors.shape[-1]))
    w = np.ones(len(vecs), np.float32) if weights is None else np.asarray(weights, dtype=np.float32)
    if len(w) != len(vecs) or np.any(w <= 0):
        raise GalleryError("Fusion weights must be positive, one per query image.")
    mean = (w[:, None] * vecs).sum(axis=0) / w.sum()
    if float(np.linalg.norm(mean)) < 1e-6:
        raise GalleryError("The query images cancel each other out (their embeddings point in opposite directions).",
                           hint="Search with them one at a time.")
    return l2_normalize(mean)


class Searcher:
    """Holds the loaded models between searches (the desktop keeps one on its engine thread).

    Args:
        pipeline: a loaded :class:`FacePipeline`; loaded from the installed models on first need.
        sketch_embedder: overrides :func:`load_embedder` (tests, a specific encoder).
    """

    def __init__(self, pipeline: FacePipeline | None = None, sketch_embedder: SketchEmbedder | None = None,
                 settings: Settings | None = None) -> None:
        self.settings = settings or settings_mod.load()
        self._pipeline = pipeline
        self._embedder = sketch_embedder

    @property
    def pipeline(self) -> FacePipeline:
        if self._pipeline is None:
            self._pipeline = load_pipeline(settings=self.settings)
        return self._pipeline

    @property
    def sketch_embedder(self) -> SketchEmbedder:
        if self._embedder is None:
            self._embedder = load_embedder(self.pipeline, self.settings.device)
        return self._embedder

    @property
    def arcface_sha256(self) -> str:
        return recognizer_sha256(self.pipeline)

    def embed(self, queries: Sequence[Query], cancel: CancelToken | None = None) -> tuple[np.ndarray, bool]:
        """Unit embedding of each query (photos: ArcFace on the primary face; sketches: the embedder)."""
        if not queries:
            raise GalleryError("A search needs at least one query image.")
        vecs, baseline = [], False
        for q in queries:
            check(cancel)
            bgr = load_image(q.data)
            if q.kind == "photo":
                vecs.append(self.pipeline.embed_primary(bgr).embedding)
            else:
                vecs.append(embed_sketch(self.sketch_embedder, bgr, q.face_box))
                baseline = baseline or bool(self.sketch_embedder.is_baseline)
        return l2_normalize(np.stack(vecs)), baseline

    def search(self, queries: Sequence[Query], galleries: Sequence[Any], k: int | None = None,
               filters: Sequence[str | Filter] = (), group_by_subject: bool = False, ef: int | None = None,
               cancel: CancelToken | None = None, mode: str | Mapping[str, str] = AUTO) -> SearchResult:
        """Top-``k`` faces (or subjects) over the galleries for the fused query; see the module docstring.

        Args:
            galleries: open galleries of any kind (local :class:`Gallery`, server ``PgGallery``, or their
                ``searchable()`` forms), kept open; names or ids of local galleries are opened for this
                search only.
            mode: how local galleries search: ``auto`` (exact while the measured scan stays under the
                bound), ``exact`` or ``hnsw``; or one mode per gallery id (a re-run repeats each).
        """
        start = time.perf_counter()
        k = k or self.settings.search_top_k
        if k < 1:
            raise GalleryError(f"k must be at least 1, not {k}.")
        ef = ef or 0  # 0: each gallery's self-tuned ef (engine.gallery.tuning)
        parsed = parse_filters(list(filters))
        opened = [open_gallery(g, self.settings) if isinstance(g, str) else g for g in galleries]
        try:
            sources = _unique([_searchable(g, mode) for g in opened])
            return self._search(queries, sources, k, parsed, group_by_subject, ef, cancel, start)
        finally:
            for g, given in zip(opened, galleries, strict=True):
                if isinstance(given, str):
                    g.close()

    def _check_models(self, queries: Sequence[Query], galleries: Sequence[SearchableGallery]) -> tuple[str,
                                                                                                        EmbedderRef]:
        """The one ArcFace-space check of a search: the sketch embedder's and every gallery's ArcFace file."""
        arcface = self.arcface_sha256
        if any(q.kind == "sketch" for q in queries):
            emb = self.sketch_embedder
            require_same_arcface(emb.arcface_sha256, arcface, what="sketch encoder's training",
                                 against="installed ArcFace model")
            embedder = EmbedderRef.of_sketch_embedder(emb)
        else:
            embedder = EmbedderRef(ARCFACE, arcface)
        for g in galleries:
            require_same_arcface(g.model_sha256, arcface, what=f"gallery '{g.name}'",
                                 against="installed ArcFace model")
        return arcface, embedder

    def _search(self, queries: Sequence[Query], sources: list[SearchableGallery], k: int, filters: list[Filter],
                group: bool, ef: int, cancel: CancelToken | None, start: float) -> SearchResult:
        if not sources:
            raise GalleryError("Choose at least one gallery to search.")
        arcface, embedder = self._check_models(queries, sources)
        vectors, baseline = self.embed(queries, cancel)
        q = fuse(vectors, [x.weight for x in queries])
        context = SearchContext(_query_digest(queries), socket.gethostname())
        matches, refs = _rank(sources, q, k, filters, group, ef, context, cancel)
        if baseline:
            matches = [dataclasses.replace(m, baseline=True) for m in matches]
        sketch = self.sketch_embedder if any(x.kind == "sketch" for x in queries) else None
        manifest = build_manifest(queries, embedder, arcface, refs, ef, filters, k, group,
                                  models=search_model_refs(self.pipeline, sketch))
        notes = ["Sketch embedded by ArcFace itself (no trained sketch encoder installed): a weak baseline."] \
            if baseline else []
        return SearchResult(matches, manifest, q, baseline, (time.perf_counter() - start) * 1000, notes, sources)


def search_vector(q: np.ndarray, galleries: Sequence[Any], k: int, filters: Sequence[str | Filter] = (), *,
                  group_by_subject: bool = False, ef: int | None = None, mode: str | Mapping[str, str] = AUTO,
                  context: SearchContext | None = None,
                  cancel: CancelToken | None = None) -> tuple[list[Match], list[GalleryRef]]:
    """The ranking part of a search, for an already embedded unit query: (matches best first over all the
    galleries, each gallery's manifest record). :meth:`Searcher.search` is this after embedding and fusion."""
    sources = _unique([_searchable(g, mode) for g in galleries])
    vec = np.asarray(q, np.float32).reshape(-1)
    return _rank(sources, vec, k, parse_filters(list(filters)), group_by_subject, ef or 0,
                 context or SearchContext(workstation=socket.gethostname()), cancel)


def _rank(sources: list[SearchableGallery], q: np.ndarray, k: int, filters: list[Filter], group: bool, ef: int,
          context: SearchContext, cancel: CancelToken | None) -> tuple[list[Match], list[GalleryRef]]:
    """One list over every gallery by exact score; ties break on (gallery id, face id), so it is deterministic."""
    if group and not all(s.can_group for s in sources):
        raise GalleryError("Grouping by subject is not available when server galleries are searched.",
                           hint="Search without grouping by subject, or search the local galleries alone.")
    pool = max(5 * k, k + 50) if group else max(2 * k, k + 20)
    while True:
        found = _ask(sources, q, k, pool, filters, ef, context, cancel)
        hits = sorted(((s, src, f) for src in sources for f, s in found[src.id].hits),
                      key=lambda h: (-h[0], h[1].id, h[2]))
        rows = _group(hits, k) if group else [(h, 1) for h in hits[:k]]
        if not group or len(rows) >= k or all(len(c.hits) < pool for c in found.values()):
            break
        pool *= 4  # grouping: fewer subjects than k in the pool, and a gallery has more faces
    refs = [src.manifest_ref(found[src.id].content_version) for src in sources]
    return _matches(rows, False), refs


def _searchable(g: Any, mode: str | Mapping[str, str]) -> SearchableGallery:
    """The searchable form of an open gallery of any kind (already one: itself)."""
    if not hasattr(g, "searchable"):
        return cast(SearchableGallery, g)
    chosen = mode if isinstance(mode, str) else mode.get(g.id, AUTO)
    return cast(SearchableGallery, g.searchable(chosen))


def _ask(sources: list[SearchableGallery], q: np.ndarray, k: int, pool: int, filters: list[Filter], ef: int,
         context: SearchContext, cancel: CancelToken | None) -> dict[str, Candidates]:
    """Every gallery's candidates, galleries of one kind asked together (a server: one logged request)."""
    kinds: dict[Any, list[SearchableGallery]] = {}
    for src in sources:
        kinds.setdefault(type(src).search_together, []).append(src)
    found: dict[str, Candidates] = {}
    for ask, group in kinds.items():
        check(cancel)
        found.update(ask(group, q, k, pool, filters, ef, context))
    return found


def _query_digest(queries: Sequence[Query]) -> str:
    """The query's digest a server logs: the image's SHA-256, or the digest of all of them (fusion)."""
    if len(queries) == 1:
        return queries[0].sha256
    return sha256_bytes(b"".join(bytes.fromhex(x.sha256) for x in queries))


def _unique(galleries: list[SearchableGallery]) -> list[SearchableGallery]:
    seen: dict[str, SearchableGallery] = {}
    for g in galleries:
        seen.setdefault(g.id, g)
    return list(seen.values())


Hit = tuple[float, SearchableGallery, int]


def _group(hits: list[Hit], k: int) -> list[tuple[Hit, int]]:
    """Best hit per (gallery, subject id) with the number of hits of that subject; faces without one stand alone."""
    owners = {g.id: g for _, g, _ in hits}
    by_gallery: dict[str, list[int]] = {}
    for _, g, f in hits:
        by_gallery.setdefault(g.id, []).append(f)
    subjects = {gid: {fid: d.subject_id for fid, d in owners[gid].face_details(ids).items()}
                for gid, ids in by_gallery.items()}
    order: list[tuple[Any, ...]] = []
    best: dict[tuple[Any, ...], Hit] = {}
    size: dict[tuple[Any, ...], int] = {}
    for hit in hits:
        subject = subjects[hit[1].id].get(hit[2])
        key: tuple[Any, ...] = (hit[1].id, subject) if subject else (hit[1].id, None, hit[2])
        if key not in best:
            best[key] = hit
            order.append(key)
        size[key] = size.get(key, 0) + 1
    return [(best[key], size[key]) for key in order[:k]]


def _matches(rows: list[tuple[Hit, int]], baseline: bool) -> list[Match]:
    """The ranked list, each row keyed by (gallery, face) with that gallery's own face details."""
    owners = {g.id: g for (_, g, _), _n in rows}
    wanted: dict[str, list[int]] = {}
    for (_, g, f), _n in rows:
        wanted.setdefault(g.id, []).append(f)
    details = {gid: owners[gid].face_details(ids) for gid, ids in wanted.items()}
    out = []
    for rank, ((score, g, f), n) in enumerate(rows, start=1):
        d = details[g.id][f]
        out.append(Match(rank=rank, score=score, gallery_id=g.id, face_id=f, photo_id=d.photo_id,
                         photo_path=d.photo_path, photo_sha256=d.photo_sha256, subject_id=d.subject_id,
                         metadata=dict(d.metadata), baseline=baseline, group_size=n, gallery_name=g.name,
                         quality=d.quality, bbox=d.bbox))
    return out


def _mode(refs: Sequence[GalleryRef]) -> str:
    """The search mode of the whole run: each gallery's, or ``mixed`` when they differ."""
    modes = {str(r.index.get("mode", HNSW)) for r in refs}
    return modes.pop() if len(modes) == 1 else "mixed"


def build_manifest(queries: Sequence[Query], embedder: EmbedderRef, arcface: str, galleries: Sequence[Any],
                   ef: int, filters: list[Filter], k: int, group: bool,
                   models: Sequence[dict[str, Any]] = ()) -> RunManifest:
    """The run manifest: everything needed to repeat the search and compare the list.

    Args:
        galleries: each gallery's manifest record (or an open gallery, recorded at its current version).
    """
    refs = [g if isinstance(g, GalleryRef) else _searchable(g, HNSW).manifest_ref(g.content_version)
            for g in galleries]
    first = refs[0].index if refs else {}
    kind = first.get("kind", "hnswlib")
    return RunManifest(
        query=tuple(q.ref() for q in queries),
        embedder=embedder,
        arcface_sha256=arcface,
        galleries=tuple(refs),
        index={"M": first.get("M"), "ef_construction": first.get("ef_construction"), "ef": ef or first.get("ef"),
               **({} if kind == "hnswlib" else {"kind": kind}), "mode": _mode(refs)},
        filters=tuple(str(f) for f in filters),
        k=k,
        group_by_subject=group,
        engine_version=engine.__version__,
        models=tuple(models),
        software=environment.manifest_entry(),
    )


def search(queries: Sequence[Query], galleries: Sequence[Any], k: int | None = None,
           filters: Sequence[str | Filter] = (), *, group_by_subject: bool = False, ef: int | None = None,
           pipeline: FacePipeline | None = None, sketch_embedder: SketchEmbedder | None = None,
           cancel: CancelToken | None = None, mode: str = AUTO) -> SearchResult:
    """One-shot search (loads models unless given); keep a :class:`Searcher` to search repeatedly."""
    return Searcher(pipeline, sketch_embedder).search(queries, galleries, k, filters, group_by_subject, ef, cancel,
                                                      mode)
