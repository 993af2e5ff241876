"""Query images -> ranked gallery faces, with a manifest that lets anyone re-run the search later.

Why each step:
- *Fusion* of several query images (several witnesses' sketches, or photos) takes the weighted mean
  of their unit embeddings and re-normalises it. For a gallery vector g, cos(g, m/|m|) =
  sum_i w_i cos(g, q_i) / |m|, and |m| is the same for every g: ranking by the fused vector is
  exactly ranking by the weighted mean cosine to the individual queries, at the cost of one search.
  Averaging also cancels part of each witness's independent error.
- *Exact re-rank*: HNSW returns candidates (more than k); their scores are recomputed from the
  embeddings stored in the database, the truth the index is derived from.
- *Filters*: the store returns the allowed faces; when they are few (very selective filter) an exact
  numpy scan over their stored embeddings is both exact and fast; otherwise hnswlib's filter callback
  keeps the graph search (a Python call per visited node is cheap only when most nodes pass).
- *Grouping per subject*: one row per (gallery, subject id), so ten photos of one person do not push
  everyone else off the list; the candidate pool grows until k groups are found.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import engine
from engine import environment
from engine import settings as settings_mod
from engine.errors import GalleryError, ModelInvalid
from engine.faces import l2_normalize, load_image
from engine.fsutil import sha256_bytes
from engine.gallery import Gallery, open_gallery, parse_filters
from engine.gallery.filters import Filter
from engine.gallery.modelhash import recognizer_sha256
from engine.progress import CancelToken, check
from engine.search.embedders import SketchEmbedder, embed_sketch, load_embedder
from engine.search.manifest import ARCFACE, EmbedderRef, GalleryRef, QueryRef, RunManifest
from engine.settings import Settings
from engine.sketch.preprocess import Box, check_face_box
from engine.types import Match

if TYPE_CHECKING:
    from engine.faces import FacePipeline

KINDS = ("photo", "sketch")
# A filter leaving at most this many faces (or this fraction of a gallery) is scanned exactly with numpy.
PREFILTER_MAX = 20_000
PREFILTER_FRACTION = 0.05


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

    @property
    def manifest(self) -> dict[str, Any]:
        """The run manifest as JSON values (what ``engine.cases.add_search`` stores and hashes)."""
        return self.run.to_dict()

    def to_dict(self) -> dict[str, Any]:
        return {"matches": [m.to_dict() for m in self.matches], "manifest": self.manifest,
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
            from engine.faces import load_pipeline

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

    def search(self, queries: Sequence[Query], galleries: Sequence[Gallery | str], k: int | None = None,
               filters: Sequence[str | Filter] = (), group_by_subject: bool = False, ef: int | None = None,
               cancel: CancelToken | None = None) -> SearchResult:
        """Top-``k`` faces (or subjects) over the galleries for the fused query; see the module docstring.

        Pass open :class:`Gallery` objects to keep their indexes loaded between searches; names or
        ids are opened (index loaded) for this search only.
        """
        start = time.perf_counter()
        k = k or self.settings.search_top_k
        if k < 1:
            raise GalleryError(f"k must be at least 1, not {k}.")
        ef = ef or 0  # 0: each gallery's self-tuned ef (engine.gallery.tuning)
        parsed = parse_filters(list(filters))
        opened = [g if isinstance(g, Gallery) else open_gallery(g, self.settings) for g in galleries]
        try:
            return self._search(queries, _unique(opened), k, parsed, group_by_subject, ef, cancel, start)
        finally:
            for g, given in zip(opened, galleries, strict=True):
                if not isinstance(given, Gallery):
                    g.close()

    def _check_models(self, queries: Sequence[Query], galleries: list[Gallery]) -> tuple[str, EmbedderRef]:
        arcface = self.arcface_sha256
        if any(q.kind == "sketch" for q in queries):
            emb = self.sketch_embedder
            if emb.arcface_sha256 is not None and emb.arcface_sha256.lower() != arcface.lower():
                raise ModelInvalid(
                    f"The sketch encoder was trained for ArcFace file {emb.arcface_sha256[:12]}…, but the installed "
                    f"ArcFace is {arcface[:12]}…; its vectors would not be comparable.",
                    hint="Install the matching ArcFace file or retrain the sketch encoder.")
            embedder = EmbedderRef.of_sketch_embedder(emb)
        else:
            embedder = EmbedderRef(ARCFACE, arcface)
        for g in galleries:
            if g.model_sha256 and g.model_sha256 != arcface:
                raise GalleryError(
                    f"Gallery '{g.name}' was embedded with ArcFace file {g.model_sha256[:12]}…, not the installed "
                    f"{arcface[:12]}…; its scores would be meaningless.",
                    hint="Search it with the ArcFace file it was built with, or re-import its photos in a new gallery.")
        return arcface, embedder

    def _search(self, queries: Sequence[Query], galleries: list[Gallery], k: int, filters: list[Filter],
                group: bool, ef: int, cancel: CancelToken | None, start: float) -> SearchResult:
        if not galleries:
            raise GalleryError("Choose at least one gallery to search.")
        arcface, embedder = self._check_models(queries, galleries)
        vectors, baseline = self.embed(queries, cancel)
        q = fuse(vectors, [x.weight for x in queries])
        allowed = {g.id: (g.store.filtered_face_ids(filters) if filters else None) for g in galleries}
        available = sum(len(a) if a is not None else len(g.index) for g, a in zip(galleries, allowed.values(),
                                                                                    strict=True))
        pool = max(5 * k, k + 50) if group else max(2 * k, k + 20)
        while True:
            hits: list[tuple[float, Gallery, int]] = []
            for g in galleries:
                check(cancel)
                hits += [(s, g, f) for f, s in _gallery_candidates(g, q, pool, allowed[g.id], ef)]
            hits.sort(key=lambda h: (-h[0], h[1].id, h[2]))
            rows = _group(hits, k) if group else [(h, 1) for h in hits[:k]]
            if not group or len(rows) >= k or pool >= available:
                break
            pool *= 4
        matches = _matches(rows, baseline)
        from engine.models.identity import search_model_refs

        sketch = self._embedder if any(q.kind == "sketch" for q in queries) else None
        manifest = build_manifest(queries, embedder, arcface, galleries, ef, filters, k, group,
                                  models=search_model_refs(self.pipeline, sketch))
        notes = ["Sketch embedded by ArcFace itself (no trained sketch encoder installed): a weak baseline."] \
            if baseline else []
        return SearchResult(matches, manifest, q, baseline, (time.perf_counter() - start) * 1000, notes)


def _unique(galleries: list[Gallery]) -> list[Gallery]:
    seen: dict[str, Gallery] = {}
    for g in galleries:
        seen.setdefault(g.id, g)
    return list(seen.values())


def _exact(g: Gallery, q: np.ndarray, ids: np.ndarray, n: int) -> list[tuple[int, float]]:
    if not len(ids):
        return []
    scores = g.store.embeddings(ids) @ q
    n = min(n, len(ids))
    top = np.argpartition(-scores, n - 1)[:n]
    return [(int(ids[i]), float(scores[i])) for i in top]


def _gallery_candidates(g: Gallery, q: np.ndarray, n: int, allowed: np.ndarray | None,
                        ef: int) -> list[tuple[int, float]]:
    """(face id, exact cosine) of up to ``n`` best faces of one gallery."""
    index = g.index
    ef = ef or g.ef
    if index.params["ef"] != ef:
        index.set_ef(ef)
    live = len(index)
    if allowed is not None and (len(allowed) <= PREFILTER_MAX or len(allowed) <= PREFILTER_FRACTION * live):
        return _exact(g, q, allowed, n)
    members = set(allowed.tolist()) if allowed is not None else None
    try:
        labels, _ = index.query(q, min(n, live if members is None else len(members)),
                                allowed=members.__contains__ if members is not None else None)
    except RuntimeError:  # hnswlib found fewer than asked (tiny or heavily filtered graph): be exact
        return _exact(g, q, allowed if allowed is not None else g.store.face_ids(), n)
    ids = labels[0]
    if not len(ids):
        return []
    scores = g.store.embeddings(ids) @ q  # exact re-rank from the stored truth
    return [(int(i), float(s)) for i, s in zip(ids, scores, strict=True)]


def _group(hits: list[tuple[float, Gallery, int]], k: int) -> list[tuple[tuple[float, Gallery, int], int]]:
    """Best hit per (gallery, subject id) with the number of hits of that subject; faces without one stand alone."""
    owners = {g.id: g for _, g, _ in hits}
    by_gallery: dict[str, list[int]] = {}
    for _, g, f in hits:
        by_gallery.setdefault(g.id, []).append(f)
    subjects = {gid: {fid: info.subject_id for fid, info in owners[gid].store.face_infos(ids).items()}
                for gid, ids in by_gallery.items()}
    order: list[tuple[Any, ...]] = []
    best: dict[tuple[Any, ...], tuple[float, Gallery, int]] = {}
    size: dict[tuple[Any, ...], int] = {}
    for hit in hits:
        subject = subjects[hit[1].id].get(hit[2])
        key: tuple[Any, ...] = (hit[1].id, subject) if subject else (hit[1].id, None, hit[2])
        if key not in best:
            best[key] = hit
            order.append(key)
        size[key] = size.get(key, 0) + 1
    return [(best[key], size[key]) for key in order[:k]]


def _matches(rows: list[tuple[tuple[float, Gallery, int], int]], baseline: bool) -> list[Match]:
    owners = {g.id: g for (_, g, _), _n in rows}
    wanted: dict[str, list[int]] = {}
    for (_, g, f), _n in rows:
        wanted.setdefault(g.id, []).append(f)
    infos = {gid: owners[gid].store.face_infos(ids) for gid, ids in wanted.items()}
    out = []
    for rank, ((score, g, f), n) in enumerate(rows, start=1):
        info = infos[g.id][f]
        out.append(Match(rank=rank, score=score, gallery_id=g.id, face_id=f, photo_id=info.photo_id,
                         photo_path=info.path, photo_sha256=info.sha256, subject_id=info.subject_id,
                         metadata=dict(info.metadata), baseline=baseline, group_size=n, gallery_name=g.name,
                         quality=info.quality, bbox=info.bbox))
    return out


def _kind(g: Any) -> dict[str, str]:
    """``{"kind": ...}`` for a local gallery's index kind (engine.gallery.compact); {} for a server's pgvector."""
    kind = getattr(g, "index_kind", None)
    return {"kind": str(kind)} if kind else {}


def build_manifest(queries: Sequence[Query], embedder: EmbedderRef, arcface: str, galleries: list[Gallery],
                   ef: int, filters: list[Filter], k: int, group: bool,
                   models: Sequence[dict[str, Any]] = ()) -> RunManifest:
    """The run manifest: everything needed to repeat the search and compare the list."""
    first = galleries[0].index.params
    return RunManifest(
        query=tuple(q.ref() for q in queries),
        embedder=embedder,
        arcface_sha256=arcface,
        galleries=tuple(GalleryRef(g.id, g.content_version, g.name, g.store.face_count(),
                                   {**g.index.params, **_kind(g), "recall": g.recall_record()})
                        for g in galleries),
        index={"M": first["M"], "ef_construction": first["ef_construction"], "ef": ef or first["ef"],
               **({} if _kind(galleries[0]).get("kind", "hnswlib") == "hnswlib" else _kind(galleries[0]))},
        filters=tuple(str(f) for f in filters),
        k=k,
        group_by_subject=group,
        engine_version=engine.__version__,
        models=tuple(models),
        software=environment.manifest_entry(),
    )


def search(queries: Sequence[Query], galleries: Sequence[Gallery | str], k: int | None = None,
           filters: Sequence[str | Filter] = (), *, group_by_subject: bool = False, ef: int | None = None,
           pipeline: FacePipeline | None = None, sketch_embedder: SketchEmbedder | None = None,
           cancel: CancelToken | None = None) -> SearchResult:
    """One-shot search (loads models unless given); keep a :class:`Searcher` to search repeatedly."""
    return Searcher(pipeline, sketch_embedder).search(queries, galleries, k, filters, group_by_subject, ef, cancel)
