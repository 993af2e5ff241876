"""HnswIndex: the hnswlib facts the gallery relies on (ef after load, growth, deletion, atomic save, locking)."""

from __future__ import annotations

import threading
from pathlib import Path

import hnswlib
import numpy as np
import pytest

from engine.errors import IndexCorrupt
from engine.gallery.index import HnswIndex, RWLock, VectorIndex


def unit(n: int, dim: int = 64, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_hnsw_index_satisfies_the_vector_index_protocol() -> None:
    assert isinstance(HnswIndex(dim=8, capacity=4), VectorIndex)


def test_query_returns_the_vector_itself_first_with_similarity_one() -> None:
    vecs = unit(300)
    idx = HnswIndex(dim=64, M=8, ef_construction=100, ef=100, capacity=64)
    idx.add(vecs, np.arange(1000, 1300))
    labels, sims = idx.query(vecs[[5, 77]], k=3)
    assert labels[:, 0].tolist() == [1005, 1077]
    assert np.allclose(sims[:, 0], 1.0, atol=1e-5)
    assert np.all(np.diff(sims, axis=1) <= 1e-6)  # best first


def test_capacity_grows_in_chunks_and_nothing_is_lost() -> None:
    idx = HnswIndex(dim=64, M=8, ef_construction=50, capacity=10)
    for start in range(0, 250, 50):
        idx.add(unit(50, seed=start), np.arange(start, start + 50))
    assert len(idx) == 250
    assert idx.capacity >= 250
    assert sorted(idx.labels().tolist()) == list(range(250))


def test_ef_is_restored_after_load(tmp_path: Path) -> None:
    idx = HnswIndex(dim=64, ef=50, capacity=100)
    idx.add(unit(20), np.arange(20))
    idx.save(tmp_path / "i.hnsw")
    raw = hnswlib.Index(space="ip", dim=64)
    raw.load_index(str(tmp_path / "i.hnsw"))
    assert raw.ef == 10  # hnswlib itself forgets ef: the reason for the fix
    loaded = HnswIndex.load(tmp_path / "i.hnsw", dim=64, ef=321)
    assert loaded.params["ef"] == 321
    assert loaded._index.ef == 321


def test_removed_labels_are_never_returned_and_deletions_survive_reload(tmp_path: Path) -> None:
    vecs = unit(50)
    idx = HnswIndex(dim=64, capacity=100)
    idx.add(vecs, np.arange(50))
    assert idx.remove([3, 4, 999]) == 2  # 999 was never there
    labels, _ = idx.query(vecs[3], k=5)
    assert 3 not in labels[0] and 4 not in labels[0]
    assert len(idx) == 48
    idx.save(tmp_path / "i.hnsw")
    again = HnswIndex.load(tmp_path / "i.hnsw", dim=64)
    assert again.is_deleted(3) and not again.is_deleted(5)
    assert again.remove([3, 4]) == 0  # already deleted on disk: learnt, not counted twice
    assert len(again) == 48 and 3 not in again.labels()


def test_k_is_clamped_to_the_live_count() -> None:
    idx = HnswIndex(dim=64, capacity=10)
    idx.add(unit(3), np.arange(3))
    idx.remove([0])
    labels, sims = idx.query(unit(1, seed=9), k=10)
    assert sorted(labels[0].tolist()) == [1, 2]
    empty = HnswIndex(dim=64, capacity=10)
    assert empty.query(unit(1), k=5)[0].shape == (1, 0)


def test_a_crash_during_save_leaves_the_old_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "g").mkdir()
    target = tmp_path / "g" / "i.hnsw"
    idx = HnswIndex(dim=64, capacity=100)
    idx.add(unit(10), np.arange(10))
    idx.save(target)
    before = target.read_bytes()
    idx.add(unit(10, seed=1), np.arange(10, 20))

    class Dying:
        def __init__(self, real: object) -> None:
            self.real = real

        def save_index(self, path: str) -> None:
            Path(path).write_bytes(b"half an index")
            raise OSError(5, "I/O error while writing")

        def __getattr__(self, name: str) -> object:
            return getattr(self.real, name)

    monkeypatch.setattr(idx, "_index", Dying(idx._index))
    with pytest.raises(OSError):
        idx.save(target)
    assert target.read_bytes() == before
    assert list(target.parent.iterdir()) == [target]  # the temporary file is gone too
    assert sorted(HnswIndex.load(target, dim=64).labels().tolist()) == list(range(10))


def test_unreadable_index_file_is_reported_as_corrupt(tmp_path: Path) -> None:
    bad = tmp_path / "i.hnsw"
    bad.write_bytes(b"\x00" * 10)
    with pytest.raises(IndexCorrupt, match="rebuild"):
        HnswIndex.load(bad, dim=64)


def test_concurrent_adds_and_queries_do_not_fail() -> None:
    idx = HnswIndex(dim=64, M=8, ef_construction=40, ef=40, capacity=16)
    idx.add(unit(20), np.arange(20))
    errors: list[BaseException] = []

    def writer(start: int) -> None:
        try:
            for j in range(20):
                base = start + j * 5
                idx.add(unit(5, seed=base), np.arange(base, base + 5))  # forces resizes under load
        except BaseException as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    def reader() -> None:
        try:
            for j in range(200):
                idx.query(unit(1, seed=j), k=5)
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(s,)) for s in (1000, 5000)]
    threads += [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(idx) == 220


def test_rwlock_lets_readers_share_and_keeps_writers_exclusive() -> None:
    lock = RWLock()
    inside: list[str] = []
    both_readers = threading.Barrier(2, timeout=5)

    def read() -> None:
        with lock.read():
            inside.append("r")
            both_readers.wait()  # deadlocks (and times out) unless two readers can hold the lock at once
            inside.append("r-out")

    readers = [threading.Thread(target=read) for _ in range(2)]
    for t in readers:
        t.start()
    for t in readers:
        t.join()
    assert inside.count("r-out") == 2
    state = {"writers": 0, "max": 0}

    def write() -> None:
        for _ in range(200):
            with lock.write():
                state["writers"] += 1
                state["max"] = max(state["max"], state["writers"])
                state["writers"] -= 1

    writers = [threading.Thread(target=write) for _ in range(3)]
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    assert state["max"] == 1
