"""The compact usearch int8 index keeps the VectorIndex protocol and, with exact re-rank, the recall."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.gallery.compact import (
    COMPACT_THRESHOLD_FACES,
    HNSWLIB_BYTES_PER_FACE,
    UsearchI8Index,
    choose_index_kind,
    largest_gallery,
)
from engine.gallery.index import VectorIndex
from engine.gallery.tuning import exact_topk, recall_at_k


def _unit(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, 512)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_protocol_round_trip_and_ef_restored(tmp_path: Path) -> None:
    x = _unit(500, 1)
    index = UsearchI8Index(512, M=16, ef_construction=64, ef=80)
    assert isinstance(index, VectorIndex)
    index.add(x, np.arange(100, 600))
    assert len(index) == 500 and index.remove([100, 101, 99999]) == 2 and len(index) == 498
    labels, scores = index.query(x[5], 3)
    assert labels[0][0] == 105 and abs(scores[0][0] - 1.0) < 0.02  # int8: approximate score
    approx = index.get(np.asarray([105]))[0]
    assert float(approx @ x[5]) > 0.99  # dequantised: close, not exact
    index.save(tmp_path / "c.usearch")
    loaded = UsearchI8Index.load(tmp_path / "c.usearch", ef=120)
    assert loaded.params["ef"] == 120 and len(loaded) == 498 and 100 not in set(loaded.labels().tolist())
    only_odd, _ = loaded.query(x[7], 5, allowed=lambda label: label % 2 == 1)
    assert len(only_odd[0]) == 5 and all(int(v) % 2 == 1 for v in only_odd[0])


def test_exact_rerank_of_int8_candidates_keeps_recall() -> None:
    x, q = _unit(3000, 2), _unit(100, 3)
    x_near = x[:100] + 0.6 * q  # queries with true neighbours, like photo queries
    x[:100] = x_near / np.linalg.norm(x_near, axis=1, keepdims=True)
    index = UsearchI8Index(512, M=32, ef_construction=200, ef=256)
    index.add(x, np.arange(len(x)))
    truth = exact_topk([(np.arange(len(x)), x)], q, 10)
    cand, _ = index.query(q, 50)
    reranked = np.stack([c[np.argsort(-(x[c] @ v))][:10] for c, v in zip(cand, q, strict=True)])
    assert recall_at_k(reranked, truth) >= 0.99


def test_index_kind_and_capacity_by_memory() -> None:
    assert choose_index_kind(100_000) == "hnswlib"
    assert choose_index_kind(COMPACT_THRESHOLD_FACES) == "usearch_i8"
    assert choose_index_kind(3_000_000, memory_bytes=8 * 2**30) == "usearch_i8"  # 7.2 GB > half of 8 GB
    gb32 = 32 * 2**30
    assert 9_000_000 < largest_gallery(gb32) < 11_000_000 and largest_gallery(gb32) * HNSWLIB_BYTES_PER_FACE < gb32
    assert largest_gallery(gb32, "usearch_i8") > 2 * largest_gallery(gb32)
