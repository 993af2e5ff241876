#!/usr/bin/env python
"""Search benchmark: exact search (the default of a local gallery) against the HNSW index, on synthetic
512-D embeddings.

    python bench/search.py --n 100000 --queries 1000 --k 10 --json

``side_by_side`` puts the modes a local gallery can search in next to each other, in one run, on the
same vectors and queries: ``exact_cpu`` is the engine's own exact scan (:class:`engine.gallery.exact.ExactScan`,
float32 BLAS), ``exact_gpu`` the same on a CUDA GPU when there is one, ``hnsw`` the float32 HNSW index
at its (self-tuned with ``--tune``) ef with exact re-rank of its candidates, as a search asks for them.
Each reports p50/p99 latency per query, recall@k against an independent batched exact top-k (exact is
1.0 by construction: it is checked, not assumed; ties at the k-th score are counted as hits) and
the memory it holds per vector. ``budget_ms`` and ``exact_chosen`` say what the engine's self-measured
bound (:func:`engine.gallery.exact.choose_mode`) picks on this machine for a gallery of this size.

Three query sets, one JSON object (top-level keys: photo-like queries; ``sketch_queries`` and
``isotropic`` carry the same keys):

Besides recall against the exact top-k, face-like sets report ``mate_recall_at_k``: of the query
identity's own photos in the exact top-k, the share HNSW also returns (the misses that would matter
to an examiner, as opposed to swaps among near-tied strangers at the bottom of the list).

- photo-like: face embeddings lie near a low-dimensional manifold, so identities are codes in a
  ``--latent``-D space mapped linearly to 512-D; each photo adds a low-rank "nuisance" part (pose,
  light: ``--variation``-D) and a little isotropic noise, then is unit-normalised. Queries are new
  photos of gallery identities. The generator's parameters and the measured same/different-identity
  cosines are printed in ``data``.
- sketch-like: the same identities seen through a shifted domain (a fixed offset plus a distorted
  identity code and more noise), standing for sketch-encoder outputs: lower same-identity cosine,
  out-of-distribution for the graph.
- isotropic: uniform random unit vectors, the hopeless worst case of any ANN index (reported, never
  tuned for).

Timings are single-threaded on both sides (BLAS is pinned to one thread before numpy loads; hnswlib
queries run with ``num_threads=1``); the index build uses every core (``--threads``).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # single-threaded exact scan: the fair baseline for a single-threaded query

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine.gallery.exact import EXACT, EXACT_BUDGET_MS, ExactScan, choose_mode, scan_ms  # noqa: E402
from engine.gallery.index import HnswIndex  # noqa: E402
from engine.gallery.tuning import TARGET_RECALL, tune_ef  # noqa: E402

DIM = 512
CHUNK = 50_000


def log(msg: str) -> None:
    print(f"[search-bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


class FaceLikeModel:
    """Low-rank identity model: x = unit(a*unit(A z_id) + b*unit(B e) + c*noise/sqrt(512))."""

    def __init__(self, latent: int, variation: int, a: float, b: float, c: float, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.latent, self.variation, self.a, self.b, self.c = latent, variation, a, b, c
        self.A = rng.standard_normal((latent, DIM)).astype(np.float32)
        self.B = rng.standard_normal((variation, DIM)).astype(np.float32)
        self.shift = unit(rng.standard_normal((1, DIM)).astype(np.float32))[0]

    def identities(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.standard_normal((n, self.latent)).astype(np.float32)

    def photos(self, codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        ident = unit(codes @ self.A)
        nuis = unit(rng.standard_normal((len(codes), self.variation)).astype(np.float32) @ self.B)
        noise = rng.standard_normal((len(codes), DIM)).astype(np.float32) / np.sqrt(DIM)
        return unit(self.a * ident + self.b * nuis + self.c * noise)

    def sketches(self, codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Shifted domain: the witness's distorted identity, a constant sketch offset, more noise."""
        distorted = codes + 0.6 * rng.standard_normal(codes.shape).astype(np.float32)
        ident = unit(distorted @ self.A)
        nuis = unit(rng.standard_normal((len(codes), self.variation)).astype(np.float32) @ self.B)
        noise = rng.standard_normal((len(codes), DIM)).astype(np.float32) / np.sqrt(DIM)
        return unit(self.a * ident + 0.45 * self.shift + self.b * nuis + 1.6 * self.c * noise)


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: fall back to the peak (less exact)
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def build(x: np.ndarray, m: int, efc: int, ef: int, threads: int) -> tuple[HnswIndex, dict[str, float]]:
    before = rss_bytes()
    t0 = time.perf_counter()
    index = HnswIndex(DIM, M=m, ef_construction=efc, ef=ef, capacity=len(x))
    for start in range(0, len(x), CHUNK):
        index.add(x[start:start + CHUNK], np.arange(start, min(len(x), start + CHUNK)), num_threads=threads)
        log(f"  built {min(len(x), start + CHUNK):,}/{len(x):,}")
    build_s = time.perf_counter() - t0
    mem = rss_bytes() - before
    with tempfile.TemporaryDirectory() as tmp:
        index.save(Path(tmp) / "i.hnsw")
        file_bytes = (Path(tmp) / "i.hnsw").stat().st_size
    return index, {"build_s": round(build_s, 2), "bytes_per_vector": round(mem / len(x), 1),
                   "index_file_bytes_per_vector": round(file_bytes / len(x), 1)}


def exact_topk(x: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    out = np.empty((len(q), k), np.int64)
    step = 64  # 64 x 1M scores = 256 MB at a time
    for start in range(0, len(q), step):
        scores = q[start:start + step] @ x.T
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1)
        out[start:start + step] = np.take_along_axis(part, order, axis=1)
    return out


def measure(index: HnswIndex, x: np.ndarray, q: np.ndarray, k: int, exact_timed: int,
            mates: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, float]:
    """Recall against the exact scan, latencies; with ``mates`` = (owner of each gallery vector, identity of
    each query) also how many same-identity photos HNSW finds, relative to the exact top-k."""
    truth = exact_topk(x, q, k)
    times, hits, mates_exact, mates_hnsw = [], 0, 0, 0
    for i in range(len(q)):
        t0 = time.perf_counter()
        labels, _ = index.query(q[i], k)
        times.append(time.perf_counter() - t0)
        found = set(labels[0].tolist()) & set(truth[i].tolist())
        hits += len(found)
        if mates is not None:
            owner, ident = mates
            mates_exact += int(np.sum(owner[truth[i]] == ident[i]))
            mates_hnsw += sum(1 for label in found if owner[label] == ident[i])
    exact_times = []
    for i in range(min(exact_timed, len(q))):
        t0 = time.perf_counter()
        scores = x @ q[i]
        top = np.argpartition(-scores, k - 1)[:k]
        top[np.argsort(-scores[top])]
        exact_times.append(time.perf_counter() - t0)
    p50 = float(np.percentile(times, 50)) * 1e3
    exact_p50 = float(np.percentile(exact_times, 50)) * 1e3 if exact_times else float("nan")
    out = {"recall_at_k": round(hits / (len(q) * k), 4), "hnsw_p50_ms": round(p50, 3),
           "hnsw_p99_ms": round(float(np.percentile(times, 99)) * 1e3, 3), "exact_p50_ms": round(exact_p50, 2),
           "speedup_p50": round(exact_p50 / p50, 1)}
    if mates is not None:
        out["mate_recall_at_k"] = round(mates_hnsw / max(1, mates_exact), 4)
        out["mates_per_query_in_exact_top_k"] = round(mates_exact / len(q), 2)
    return out


def _hits(found: np.ndarray, truth: np.ndarray, scores_row: np.ndarray, k: int) -> int:
    """Members of ``found`` in the exact top-k, a face tied with the k-th exact score counting as one."""
    kth = float(np.min(scores_row[truth]))
    return sum(1 for f in found.tolist() if f in set(truth.tolist()) or scores_row[f] >= kth - 1e-6)


def _timed(search: Any, q: np.ndarray, x: np.ndarray, truth: np.ndarray, k: int) -> dict[str, float]:
    times, hits = [], 0
    for i in range(len(q)):
        t0 = time.perf_counter()
        found = search(q[i])
        times.append(time.perf_counter() - t0)
        hits += _hits(np.asarray(found), truth[i], x @ q[i], k)
    return {"recall_at_k": round(hits / (len(q) * k), 4), "p50_ms": round(float(np.percentile(times, 50)) * 1e3, 3),
            "p99_ms": round(float(np.percentile(times, 99)) * 1e3, 3)}


def _batched(x: np.ndarray, q: np.ndarray, truth: np.ndarray, k: int, batch: int) -> dict[str, float]:
    """Exact float32 scan of ``batch`` queries at once (one matrix product, one thread): the faster exact
    variant for queued searches; per-query time is the batch's time over its size, and recall is checked."""
    per_query, hits = [], 0
    for start in range(0, len(q), batch):
        block = q[start:start + batch]
        t0 = time.perf_counter()
        scores = block @ x.T
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        top = np.take_along_axis(part, np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1), axis=1)
        per_query += [(time.perf_counter() - t0) / len(block)] * len(block)
        for i, found in enumerate(top):
            hits += _hits(found, truth[start + i], scores[i], k)
    return {"recall_at_k": round(hits / (len(q) * k), 4), "p50_ms": round(float(np.percentile(per_query, 50)) * 1e3, 3),
            "p99_ms": round(float(np.percentile(per_query, 99)) * 1e3, 3)}


def side_by_side(index: HnswIndex, x: np.ndarray, queries: dict[str, np.ndarray], args: argparse.Namespace,
                 hnsw_bytes: float) -> dict[str, Any]:
    """Exact (CPU float32, and GPU when there is one) and HNSW with exact re-rank, on the same queries."""
    ids = np.arange(len(x), dtype=np.int64)
    pool = max(2 * args.k, args.k + 20)  # the candidates a search asks HNSW for (engine.search.core)
    before = rss_bytes()
    cpu = ExactScan(ids, np.ascontiguousarray(x.copy()), 0, "cpu")  # the copy a gallery's scan holds
    cpu_bytes = (rss_bytes() - before) / len(x)
    scans: dict[str, tuple[ExactScan, float]] = {"exact_cpu": (cpu, cpu_bytes)}
    try:
        import torch

        if torch.cuda.is_available():
            gpu = ExactScan(ids, x, 0, "cuda")
            scans["exact_gpu"] = (gpu, float(len(x) * DIM * 4) / len(x))  # held in GPU memory
    except ImportError:
        pass
    out: dict[str, Any] = {"budget_ms": EXACT_BUDGET_MS, "measured_scan_ms": round(scan_ms(len(x), "cpu"), 2),
                           "exact_chosen": choose_mode("auto", len(x), "cpu") == EXACT, "hnsw_candidates": pool,
                           "scan_threads": 1}
    for name, q in queries.items():
        q = q[:args.side_queries]
        truth = exact_topk(x, q, args.k)
        row: dict[str, Any] = {}
        for mode, (scan, per_vector) in scans.items():
            row[mode] = {**_timed(lambda v, s=scan: [f for f, _ in s.top(v, args.k)], q, x, truth, args.k),
                         "bytes_per_vector": round(per_vector, 1)}

        def hnsw(v: np.ndarray) -> np.ndarray:
            cand = index.query(v, pool)[0][0]
            return cand[np.argsort(-(x[cand] @ v))[:args.k]]  # exact re-rank from the stored vectors

        row["exact_cpu_batched"] = {**_batched(x, q, truth, args.k, args.batch), "batch": args.batch,
                                    "bytes_per_vector": round(cpu_bytes, 1)}
        row["hnsw"] = {**_timed(hnsw, q, x, truth, args.k), "ef": index.params["ef"],
                       "bytes_per_vector": round(hnsw_bytes, 1)}
        row["exact_recall_is_1"] = all(row[m]["recall_at_k"] == 1.0 for m in (*scans, "exact_cpu_batched"))
        out[name] = row
    return out


def compact(x: np.ndarray, queries: dict[str, np.ndarray], args: argparse.Namespace) -> dict[str, Any]:
    """usearch int8 (engine.gallery.compact) + exact re-rank from the float32 vectors, its ef and re-rank depth
    self-tuned by the gallery's own routine (engine.gallery.tuning.tune_ef) unless ``--no-compact-tune``."""
    from engine.gallery.compact import UsearchI8Index
    from engine.gallery.tuning import RerankedQuery

    class _Store:  # the stored float32 vectors, as a gallery's store hands them to the re-rank
        def embeddings(self, ids: np.ndarray, dim: int = DIM) -> np.ndarray:
            return x[ids]

    before = rss_bytes()
    t0 = time.perf_counter()
    index = UsearchI8Index(DIM, M=args.m, ef_construction=args.ef_construction, ef=256)
    for start in range(0, len(x), CHUNK):
        index.add(x[start:start + CHUNK], np.arange(start, min(len(x), start + CHUNK)), num_threads=args.threads)
    out: dict[str, Any] = {"index": "usearch i8, cos", "M": args.m, "ef": 256, "rerank": args.rerank,
                           "build_s": round(time.perf_counter() - t0, 2),
                           "bytes_per_vector": round((rss_bytes() - before) / len(x), 1),
                           "usearch_memory_usage_per_vector": round(index.memory_bytes / len(x), 1)}
    reranked = RerankedQuery(index, _Store(), args.rerank)
    if not args.no_compact_tune:
        rng = np.random.default_rng(args.seed + 1)
        sample = x[rng.choice(len(x), size=min(args.tune_probes, len(x)), replace=False)]
        tuned = tune_ef(reranked, index.set_ef, sample,
                        lambda: ((np.arange(s, min(len(x), s + CHUNK)), x[s:s + CHUNK]) for s in range(0, len(x), CHUNK)),
                        len(x), target=args.target_recall, k=args.k, set_rerank=reranked.set_depth)
        log(f"  compact: chose ef {tuned.ef}, re-rank depth {tuned.rerank}: probe recall photo "
            f"{tuned.recall_photo}, sketch {tuned.recall_sketch} (reached: {tuned.reached})")
        out.update({"ef": tuned.ef, "rerank": tuned.rerank, "tuning": tuned.to_dict()})
    for name, q in queries.items():
        truth = exact_topk(x, q, args.k)
        times, hits = [], 0
        for i in range(len(q)):
            t1 = time.perf_counter()
            top = reranked(q[i:i + 1], args.k)[0]
            times.append(time.perf_counter() - t1)
            hits += len(set(top.tolist()) & set(truth[i].tolist()))
        out[name] = {"recall_at_k": round(hits / (len(q) * args.k), 4),
                     "p50_ms": round(float(np.percentile(times, 50)) * 1e3, 3),
                     "p99_ms": round(float(np.percentile(times, 99)) * 1e3, 3)}
    return out


def self_tune(index: HnswIndex, x: np.ndarray, args: argparse.Namespace) -> dict[str, Any]:
    """The gallery's own ef self-measurement (engine.gallery.tuning) on the built index; sets the chosen ef."""
    log(f"self-tuning ef to recall@{args.k} >= {args.target_recall} (probes from the stored vectors)")
    rng = np.random.default_rng(args.seed + 1)
    sample = x[rng.choice(len(x), size=min(args.tune_probes, len(x)), replace=False)]

    def batches() -> Any:
        return ((np.arange(s, min(len(x), s + CHUNK)), x[s:s + CHUNK]) for s in range(0, len(x), CHUNK))

    result = tune_ef(lambda q, k: index.query(q, k)[0], index.set_ef, sample, batches, len(x),
                     target=args.target_recall, k=args.k)
    log(f"  chose ef {result.ef}: probe recall photo {result.recall_photo}, sketch {result.recall_sketch}")
    return result.to_dict()


def cosine_stats(model: FaceLikeModel, rng: np.random.Generator) -> dict[str, float]:
    codes = model.identities(2000, rng)
    p1, p2, s = model.photos(codes, rng), model.photos(codes, rng), model.sketches(codes, rng)
    same = np.sum(p1 * p2, axis=1)
    diff = np.sum(p1 * np.roll(p2, 1, axis=0), axis=1)
    return {"same_identity_cos_mean": round(float(same.mean()), 3), "same_identity_cos_std": round(float(same.std()), 3),
            "different_identity_cos_mean": round(float(diff.mean()), 3),
            "different_identity_cos_std": round(float(diff.std()), 3),
            "sketch_to_photo_same_identity_cos_mean": round(float(np.sum(s * p1, axis=1).mean()), 3)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = np.random.default_rng(args.seed)
    model = FaceLikeModel(args.latent, args.variation, 0.8, 0.45, 0.3, args.seed)
    n_ids = max(1, args.n // args.photos_per_identity)
    codes = model.identities(n_ids, rng)
    log(f"generating {args.n:,} face-like vectors ({n_ids:,} identities)")
    x = np.empty((args.n, DIM), np.float32)
    owner = np.arange(args.n) % n_ids
    for start in range(0, args.n, CHUNK):
        x[start:start + CHUNK] = model.photos(codes[owner[start:start + CHUNK]], rng)
    query_ids = rng.choice(n_ids, size=args.queries, replace=args.queries > n_ids)
    photo_q, sketch_q = model.photos(codes[query_ids], rng), model.sketches(codes[query_ids], rng)
    log("building the face-like index")
    index, built = build(x, args.m, args.ef_construction, args.ef, args.threads)
    tuning = self_tune(index, x, args) if args.tune else None
    log("measuring photo-like and sketch-like queries")
    out: dict[str, Any] = {"n": args.n, "queries": args.queries, "k": args.k, "dim": DIM, "M": args.m,
                           "ef_construction": args.ef_construction, "ef": args.ef, "build_threads": args.threads,
                           "query_threads": 1}
    if tuning is not None:
        out["ef"] = tuning["ef"]
        out["tuning"] = tuning
    mates = (owner, query_ids)
    log("side by side: exact scan and HNSW with exact re-rank")
    out["side_by_side"] = side_by_side(index, x, {"photo": photo_q, "sketch": sketch_q}, args,
                                       built["bytes_per_vector"])
    out.update(measure(index, x, photo_q, args.k, args.exact_timed, mates))
    out.update(built)
    out["sketch_queries"] = {**measure(index, x, sketch_q, args.k, args.exact_timed, mates), **built}
    if args.ef_sweep:
        sweep = []
        for ef in (int(v) for v in args.ef_sweep.split(",")):
            index.set_ef(ef)
            m = measure(index, x, photo_q[:300], args.k, 0)
            sweep.append({"ef": ef, "recall_at_k": m["recall_at_k"], "hnsw_p50_ms": m["hnsw_p50_ms"]})
        out["ef_sweep_photo"] = sweep
        index.set_ef(int(out["ef"]))
    if args.compact:
        log("compact index: usearch int8 + exact re-rank")
        out["compact"] = compact(x, {"photo": photo_q, "sketch": sketch_q}, args)
    out["data"] = {"model": "identity code (latent) -> 512-D linear map, + low-rank nuisance + isotropic noise",
                   "latent_dim": args.latent, "variation_dim": args.variation, "identity_weight": 0.8,
                   "variation_weight": 0.45, "noise_weight": 0.3, "identities": n_ids,
                   "photos_per_identity": args.photos_per_identity,
                   "sketch": "identity code + N(0, 0.6^2) distortion, + 0.45 x fixed domain offset, 1.6x noise",
                   **cosine_stats(model, rng)}
    del index, x
    if args.no_isotropic:
        out["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}
        return out
    iso_n = args.isotropic_n or args.n
    log(f"isotropic set: {iso_n:,} random unit vectors")
    xi = unit(rng.standard_normal((iso_n, DIM)).astype(np.float32))
    qi = unit(rng.standard_normal((args.queries, DIM)).astype(np.float32))
    index, built = build(xi, args.m, args.ef_construction, args.ef, args.threads)
    out["isotropic"] = {"n": iso_n, **measure(index, xi, qi, args.k, args.exact_timed), **built}
    out["goals_at_1M"] = {"recall_at_k>=0.99": out["recall_at_k"] >= 0.99, "hnsw_p50_ms<=2": out["hnsw_p50_ms"] <= 2,
                          "speedup_p50>=50": out["speedup_p50"] >= 50,
                          "bytes_per_vector<=2600": out["bytes_per_vector"] <= 2600}
    out["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100_000, help="gallery vectors")
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--json", action="store_true", help="print one JSON object (else a short summary)")
    p.add_argument("--m", type=int, default=16)
    p.add_argument("--ef-construction", type=int, default=200)
    p.add_argument("--ef", type=int, default=200)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="index build threads")
    p.add_argument("--latent", type=int, default=48, help="identity latent dimension")
    p.add_argument("--variation", type=int, default=16, help="nuisance (pose/light) dimension")
    p.add_argument("--photos-per-identity", type=int, default=4)
    p.add_argument("--isotropic-n", type=int, default=0, help="size of the isotropic set (default: --n)")
    p.add_argument("--exact-timed", type=int, default=100, help="queries timed on the exact scan")
    p.add_argument("--ef-sweep", default="", help="also measure these ef values, e.g. 50,100,200,400")
    p.add_argument("--tune", action="store_true",
                   help="set ef by the gallery's self-measurement (engine.gallery.tuning) instead of --ef")
    p.add_argument("--target-recall", type=float, default=TARGET_RECALL, help="self-tuning target recall@k")
    p.add_argument("--tune-probes", type=int, default=200, help="stored vectors the tuning probes derive from")
    p.add_argument("--compact", action="store_true", help="also measure usearch int8 + exact re-rank")
    p.add_argument("--rerank", type=int, default=50,
                   help="candidates re-ranked exactly per top-k (compact index, with --no-compact-tune)")
    p.add_argument("--no-compact-tune", action="store_true",
                   help="compact index at its fixed ef 256 and --rerank instead of self-tuned")
    p.add_argument("--side-queries", type=int, default=200, help="queries per set in the side-by-side table")
    p.add_argument("--batch", type=int, default=32, help="queries per matrix product in the batched exact scan")
    p.add_argument("--no-isotropic", action="store_true", help="skip the isotropic worst case (one index less)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    t0 = time.perf_counter()
    out = run(args)
    out["elapsed_s"] = round(time.perf_counter() - t0, 1)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        sbs = out["side_by_side"]
        for name in ("photo", "sketch"):
            for mode in ("exact_cpu", "exact_cpu_batched", "exact_gpu", "hnsw"):
                if mode in sbs[name]:
                    d = sbs[name][mode]
                    print(f"{name:>6} {mode:>9}: recall@{args.k} {d['recall_at_k']:.4f}  p50 {d['p50_ms']:.3f} ms  "
                          f"p99 {d['p99_ms']:.3f} ms  {d['bytes_per_vector']:.0f} B/vector")
        if args.no_isotropic:
            return
        for name, d in (("photo", out), ("sketch", out["sketch_queries"]), ("isotropic", out["isotropic"])):
            print(f"{name:>9}: recall@{args.k} {d['recall_at_k']:.4f}  p50 {d['hnsw_p50_ms']:.3f} ms  "
                  f"p99 {d['hnsw_p99_ms']:.3f} ms  exact {d['exact_p50_ms']:.1f} ms  x{d['speedup_p50']}  "
                  f"{d['bytes_per_vector']:.0f} B/vector  build {d['build_s']} s")


if __name__ == "__main__":
    main()
