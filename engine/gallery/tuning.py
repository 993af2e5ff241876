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

The compact (int8) index is tuned by the same routine with one more knob, its exact re-rank depth (how
many int8 candidates per top-k are re-scored from the stored float32 vectors): the smallest depth of
:data:`RERANK_LADDER` at which some ``ef`` reaches the target, then the smallest such ``ef``. When no
pair reaches it, the record says ``reached: false`` and :func:`tuning_note` words it for the examiner.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from engine.gallery.compact import rerank_pool
from engine.timestamps import utc_now_iso

TARGET_RECALL = 0.99
TARGET_K = 10
PROBES = 200
EF_LADDER = (16, 24, 32, 48, 64, 96, 128, 160, 200, 256, 320, 400, 512, 640, 800, 1024, 1536, 2048)
PHOTO_NOISE = 1.0  # cos(probe, source) ~ 1/sqrt(1 + 1.0^2) = 0.71
SKETCH_NOISE = 1.6  # with the offset: cos ~ 1/sqrt(1 + 0.45^2 + 1.6^2) = 0.52
SKETCH_OFFSET = 0.45
SEED = 20_240
RERANK_LADDER = (30, 50, 100, 200, 400)  # compact index: candidates re-scored exactly per top-10


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
    rerank: int = 0  # compact index: candidates re-scored exactly per top-``k`` (0: the float32 index)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EfTuning:
        return cls(int(d["ef"]), float(d["recall_photo"]), float(d["recall_sketch"]), float(d["target"]),
                   int(d["k"]), int(d["probes"]), int(d["faces"]), bool(d["reached"]), str(d["measured_at"]),
                   float(d.get("elapsed_s", 0.0)), int(d.get("rerank", 0)))


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
            seed: int = SEED, set_rerank: Callable[[int], None] | None = None,
            rerank_ladder: tuple[int, ...] = RERANK_LADDER) -> EfTuning:
    """Smallest ``ef`` of ``ladder`` whose recall@k on both probe sets reaches ``target`` (bisection);
    with ``set_rerank`` (the compact index) also the smallest re-rank depth of ``rerank_ladder`` at which
    some ``ef`` reaches it.

    Args:
        query: the index's search (labels of the top-k rows per query), re-ranked where the index is.
        set_ef: sets the index's query-time ef.
        sample: stored vectors the probes are derived from (a random sample of the gallery).
        batches: a fresh iterator of (labels, vectors) over every live stored face, for the exact scan.
        faces: the gallery's live face count (recorded).
        set_rerank: sets the re-rank depth ``query`` uses (candidates per top-``k``); None: not tuned.
    """
    start = time.perf_counter()
    k = max(1, min(k, faces))
    photo, sketch = make_probes(np.asarray(sample, np.float32), seed)
    probes = np.concatenate([photo, sketch])
    truth = exact_topk(batches(), probes, k)
    n = len(photo)
    steps = [ef for ef in ladder if ef >= k] or [k]
    depths = ([d for d in rerank_ladder if d >= k] or [k]) if set_rerank is not None else [0]
    memo: dict[tuple[int, int], tuple[float, float]] = {}

    def measure(depth: int, ef: int) -> tuple[float, float]:
        if (depth, ef) not in memo:
            if set_rerank is not None:
                set_rerank(depth)
            set_ef(ef)
            found = query(probes, k)
            memo[(depth, ef)] = (recall_at_k(found[:n], truth[:n]), recall_at_k(found[n:], truth[n:]))
        return memo[(depth, ef)]

    depth, chosen = depths[-1], steps[-1]  # best effort when nothing reaches the target
    for d in depths:
        if min(measure(d, steps[-1])) < target:
            continue
        lo, hi = 0, len(steps) - 1
        while lo < hi:  # invariant: steps[hi] reaches the target
            mid = (lo + hi) // 2
            if min(measure(d, steps[mid])) >= target:
                hi = mid
            else:
                lo = mid + 1
        depth, chosen = d, steps[hi]
        break
    rp, rs = measure(depth, chosen)
    if set_rerank is not None:
        set_rerank(depth)
    set_ef(chosen)
    return EfTuning(chosen, round(rp, 4), round(rs, 4), target, k, n, faces, min(rp, rs) >= target,
                    utc_now_iso(), round(time.perf_counter() - start, 3), depth)


def tuning_note(record: dict[str, Any]) -> str:
    """One line for ``gallery info`` and reports when the last self-measurement missed its target ("" otherwise)."""
    if not record or record.get("reached", True):
        return ""
    depth = f", re-rank depth {record['rerank']}" if record.get("rerank") else ""
    return (f"The index does not reach its recall target: recall@{record.get('k')} "
            f"{record.get('recall_photo')} (photo-like) and {record.get('recall_sketch')} (sketch-like) against "
            f"the target {record.get('target')}, at its largest setting (ef {record.get('ef')}{depth}). "
            "Search this gallery exactly (--mode exact) or rebuild it with a larger M.")


def rerank_depth(record: dict[str, Any], n: int) -> int:
    """Candidates a compact index is asked for so that ``n`` survive the exact re-rank at the tuned depth."""
    depth, k = int(record.get("rerank", 0) or 0), int(record.get("k", TARGET_K) or TARGET_K)
    if depth <= 0:
        return rerank_pool(n)
    return max(rerank_pool(n), -(-n * depth // k))


META_KEY = "ef_tuning"


def stored_tuning(meta: dict[str, str]) -> EfTuning | None:
    """The last self-measurement recorded in a gallery's metadata (None before the first import)."""

    raw = meta.get(META_KEY)
    if not raw:
        return None
    try:
        return EfTuning.from_dict(json.loads(raw))
    except (ValueError, KeyError, TypeError):
        return None


class RerankedQuery:
    """The compact index's search as a gallery runs it: ``depth`` int8 candidates per top-``k``, re-scored
    from the stored vectors.

    Why: int8 scores only choose candidates; the recall that matters is that of the exact re-rank.
    """

    def __init__(self, index: Any, store: Any, depth: int = 0) -> None:
        self.index, self.store, self.depth = index, store, depth

    def set_depth(self, depth: int) -> None:
        self.depth = depth

    def __call__(self, q: np.ndarray, n: int) -> np.ndarray:
        ask = rerank_depth({"rerank": self.depth, "k": n}, n)
        cand = self.index.query(q, ask)[0]
        ids = np.unique(cand[cand >= 0])
        if not len(ids):
            return np.full((len(q), n), -1, np.int64)
        emb = self.store.embeddings(ids, q.shape[1])
        out = np.full((len(q), n), -1, np.int64)
        for row, (c, v) in enumerate(zip(cand, q, strict=True)):
            c = c[c >= 0]
            scores = emb[np.searchsorted(ids, c)] @ v
            best = c[np.argsort(-scores, kind="stable")][:n]
            out[row, :len(best)] = best
        return out


def tune_gallery(gallery: Any, target: float = TARGET_RECALL, k: int = TARGET_K, probes: int = PROBES) -> EfTuning | None:
    """Measure a local gallery's recall, set its index's ef and record the result in its metadata."""

    store, index = gallery.store, gallery.index
    ids = store.face_ids()
    if not len(ids):
        return None
    rng = np.random.default_rng(SEED)
    sample = store.embeddings(np.sort(rng.choice(ids, size=min(probes, len(ids)), replace=False)))
    query: QueryFn = lambda q, n: index.query(q, n)[0]  # noqa: E731
    set_rerank: Callable[[int], None] | None = None
    if getattr(gallery, "index_kind", "hnswlib") != "hnswlib":
        reranked = RerankedQuery(index, store)
        query, set_rerank = reranked, reranked.set_depth
    result = tune_ef(query, index.set_ef, sample, lambda: store.iter_embeddings(10_000, sample.shape[1]),
                     len(index), target, k, set_rerank=set_rerank)
    store.set_meta(META_KEY, json.dumps(result.to_dict(), sort_keys=True))
    return result
