"""Self-tuned HNSW ``ef``: a gallery measures its own recall against an exact scan and picks the smallest ef that keeps it.

Why: a fixed ``ef`` loses recall silently as a gallery grows, and loses it first on out-of-distribution
queries (sketches). After each import the gallery draws two probe sets from its own stored vectors and
compares the index's top-k with the exact top-k (streamed over the stored embeddings, so memory stays
flat at any size):

- *photo-like*: each probe is a stored face plus isotropic noise (cosine to its source ~0.7, about the
  same-identity cosine of two photos);
- *sketch-like*: a stored face plus a fixed domain offset and more noise (cosine ~0.5, about what a
  sketch encoder gives against the photo of the same person), as in ``bench/search.py``.

``ef`` is then the smallest value of an increasing ladder whose recall@k reaches the target on *both* sets.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

TARGET_RECALL = 0.99
TARGET_K = 10
PROBES = 200
EF_LADDER = (16, 24, 32, 48, 64, 96, 128, 160, 200, 256, 320, 400, 512, 640, 800, 1024, 1536, 2048)
PHOTO_NOISE = 1.0  # cos(probe, source) ~ 1/sqrt(1 + 1.0^2) = 0.71
SKETCH_NOISE = 1.6  # with the offset: cos ~ 1/sqrt(1 + 0.45^2 + 1.6^2) = 0.52
SKETCH_OFFSET = 0.45
SEED = 20_240


@dataclass(frozen=True)
class EfTuning:
    """The outcome of one self-measurement, stored with the gallery and written into run manifests."""

    ef: int
    recall_photo: float
    recall_sketch: float
    target: float
    k: int
    probes: int
    faces: int
    reached: bool
    measured_at: str
    elapsed_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EfTuning:
        return cls(int(d["ef"]), float(d["recall_photo"]), float(d["recall_sketch"]), float(d["target"]),
                   int(d["k"]), int(d["probes"]), int(d["faces"]), bool(d["reached"]), str(d["measured_at"]),
                   float(d.get("elapsed_s", 0.0)))


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def make_probes(sources: np.ndarray, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """(photo-like, sketch-like) probes derived from stored unit vectors (see the module docstring)."""
    rng = np.random.default_rng(seed)
    n, dim = sources.shape
    offset = _unit(rng.standard_normal((1, dim)).astype(np.float32))
    photo = _unit(sources + PHOTO_NOISE * rng.standard_normal((n, dim)).astype(np.float32) / np.sqrt(dim))
    sketch = _unit(sources + SKETCH_OFFSET * offset
                   + SKETCH_NOISE * rng.standard_normal((n, dim)).astype(np.float32) / np.sqrt(dim))
    return photo, sketch


def exact_topk(batches: Iterable[tuple[np.ndarray, np.ndarray]], queries: np.ndarray, k: int) -> np.ndarray:
    """Exact top-``k`` labels per query over (labels, vectors) batches, keeping only a running top-k."""
    best_s = np.full((len(queries), k), -np.inf, np.float32)
    best_l = np.full((len(queries), k), -1, np.int64)
    for labels, vecs in batches:
        scores = queries @ np.asarray(vecs, np.float32).T
        s = np.concatenate([best_s, scores], axis=1)
        lab = np.concatenate([best_l, np.broadcast_to(np.asarray(labels, np.int64), scores.shape)], axis=1)
        top = np.argpartition(-s, k - 1, axis=1)[:, :k]
        best_s, best_l = np.take_along_axis(s, top, axis=1), np.take_along_axis(lab, top, axis=1)
    return best_l


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each exact top-k that the index also returned."""
    hits = sum(len(set(f.tolist()) & set(t.tolist()) - {-1}) for f, t in zip(found, truth, strict=True))
    denom = sum(int(np.sum(t >= 0)) for t in truth)
    return hits / max(1, denom)


QueryFn = Callable[[np.ndarray, int], np.ndarray]  # (queries, k) -> labels; the index's ef is already set


def tune_ef(query: QueryFn, set_ef: Callable[[int], None], sample: np.ndarray,
            batches: Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]], faces: int,
            target: float = TARGET_RECALL, k: int = TARGET_K, ladder: tuple[int, ...] = EF_LADDER,
            seed: int = SEED) -> EfTuning:
    """Smallest ``ef`` of ``ladder`` whose recall@k on both probe sets reaches ``target`` (bisection).

    Args:
        query: the index's search (labels of the top-k rows per query).
        set_ef: sets the index's query-time ef.
        sample: stored vectors the probes are derived from (a random sample of the gallery).
        batches: a fresh iterator of (labels, vectors) over every live stored face, for the exact scan.
        faces: the gallery's live face count (recorded).
    """
    start = time.perf_counter()
    k = max(1, min(k, faces))
    photo, sketch = make_probes(np.asarray(sample, np.float32), seed)
    probes = np.concatenate([photo, sketch])
    truth = exact_topk(batches(), probes, k)
    n = len(photo)
    steps = [ef for ef in ladder if ef >= k] or [k]
    memo: dict[int, tuple[float, float]] = {}

    def measure(ef: int) -> tuple[float, float]:
        if ef not in memo:
            set_ef(ef)
            found = query(probes, k)
            memo[ef] = (recall_at_k(found[:n], truth[:n]), recall_at_k(found[n:], truth[n:]))
        return memo[ef]

    lo, hi = 0, len(steps) - 1
    if min(measure(steps[hi])) < target:
        chosen = steps[hi]
    else:
        while lo < hi:  # invariant: steps[hi] reaches the target
            mid = (lo + hi) // 2
            if min(measure(steps[mid])) >= target:
                hi = mid
            else:
                lo = mid + 1
        chosen = steps[hi]
    rp, rs = measure(chosen)
    set_ef(chosen)
    return EfTuning(chosen, round(rp, 4), round(rs, 4), target, k, n, faces, min(rp, rs) >= target,
                    time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), round(time.perf_counter() - start, 3))


META_KEY = "ef_tuning"


def stored_tuning(meta: dict[str, str]) -> EfTuning | None:
    """The last self-measurement recorded in a gallery's metadata (None before the first import)."""
    import json

    raw = meta.get(META_KEY)
    if not raw:
        return None
    try:
        return EfTuning.from_dict(json.loads(raw))
    except (ValueError, KeyError, TypeError):
        return None


def reranked_query(index: Any, store: Any) -> QueryFn:
    """The compact index's search as a gallery runs it: a candidate pool re-scored from the stored vectors.

    Why: int8 scores only choose candidates; the recall that matters is that of the exact re-rank.
    """
    from engine.gallery.compact import rerank_pool

    def query(q: np.ndarray, n: int) -> np.ndarray:
        cand = index.query(q, rerank_pool(n))[0]
        ids = np.unique(cand[cand >= 0])
        if not len(ids):
            return np.full((len(q), n), -1, np.int64)
        emb = store.embeddings(ids, q.shape[1])
        out = np.full((len(q), n), -1, np.int64)
        for row, (c, v) in enumerate(zip(cand, q, strict=True)):
            c = c[c >= 0]
            scores = emb[np.searchsorted(ids, c)] @ v
            best = c[np.argsort(-scores, kind="stable")][:n]
            out[row, :len(best)] = best
        return out

    return query


def tune_gallery(gallery: Any, target: float = TARGET_RECALL, k: int = TARGET_K, probes: int = PROBES) -> EfTuning | None:
    """Measure a local gallery's recall, set its index's ef and record the result in its metadata."""
    import json

    store, index = gallery.store, gallery.index
    ids = store.face_ids()
    if not len(ids):
        return None
    rng = np.random.default_rng(SEED)
    sample = store.embeddings(np.sort(rng.choice(ids, size=min(probes, len(ids)), replace=False)))
    query: QueryFn = lambda q, n: index.query(q, n)[0]  # noqa: E731
    if getattr(gallery, "index_kind", "hnswlib") != "hnswlib":
        query = reranked_query(index, store)
    result = tune_ef(query, index.set_ef, sample,
                     lambda: store.iter_embeddings(10_000, sample.shape[1]), len(index), target, k)
    store.set_meta(META_KEY, json.dumps(result.to_dict(), sort_keys=True))
    return result
