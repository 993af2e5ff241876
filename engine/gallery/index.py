"""The vector index behind galleries: a ``VectorIndex`` protocol and its hnswlib implementation.

Why a protocol: the workstation embeds hnswlib, but a unit that shares galleries across machines
serves the same calls from PostgreSQL + pgvector. Search and ingest only use this interface.

Facts this module is built on (checked against hnswlib 0.8, see REFERENCE.md): ``ef`` is not saved
(it comes back as 10, so it is set after every load); adding past ``max_elements`` raises *after*
adding part of the batch (so capacity is grown before adding, in chunks); ``resize_index`` and
concurrent add/query from Python threads are unsafe (so a reader/writer lock guards every call);
``knn_query`` raises when fewer than ``k`` live elements exist (so ``k`` is clamped).
"""

from __future__ import annotations

import contextlib
import math
import mmap
import struct
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import hnswlib
import numpy as np

from engine.errors import IndexCorrupt
from engine.fsutil import atomic_save_with_digest
from engine.gallery.indexfile import IndexFileRefused, checked_file

# Growth step of the index capacity: at least this many elements, or half the current capacity.
MIN_CHUNK = 4096
# Fixed construction seed: the same inputs in the same order give the same graph.
RANDOM_SEED = 100

# hnswlib 0.8's file header (hnswalg.h saveIndex): offsetLevel0, max_elements, cur_element_count,
# size_data_per_element, label_offset, offsetData (size_t), maxlevel (int), enterpoint_node (uint32),
# maxM, maxM0, M (size_t), mult (double), ef_construction (size_t).
HNSW_HEADER = struct.Struct("<6QiI3QdQ")
MAX_M = 2048
MAX_LEVEL = 64  # levels are -ln(U)/ln(M): past 64 is not a graph hnswlib built
MAX_EF_CONSTRUCTION = 1 << 20
_CHECK_ROWS = 16384  # elements checked per numpy step (bounded scratch memory on multi-GB files)


class RWLock:
    """Many readers or one writer; a waiting writer blocks new readers (no writer starvation).

    Not re-entrant: a thread holding the lock must not take it again.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @contextlib.contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


@runtime_checkable
class VectorIndex(Protocol):
    """Approximate nearest-neighbour index over unit vectors, labelled by face id.

    Similarities are inner products (= cosine on unit vectors), larger is closer.
    """

    dim: int

    def add(self, vectors: np.ndarray, labels: np.ndarray) -> None: ...

    def remove(self, labels: Iterable[int]) -> int: ...

    def query(self, vectors: np.ndarray, k: int,
              allowed: Callable[[int], bool] | None = None) -> tuple[np.ndarray, np.ndarray]: ...

    def get(self, labels: np.ndarray) -> np.ndarray: ...

    def labels(self) -> np.ndarray: ...

    def __len__(self) -> int: ...

    def set_ef(self, ef: int) -> None: ...

    def save(self, path: Path) -> None: ...

    @property
    def params(self) -> dict[str, int]: ...


class HnswIndex:
    """hnswlib HNSW in inner-product space, thread-safe through a reader/writer lock.

    Args:
        dim: vector dimension (512 for ArcFace).
        M: graph degree (memory ~ 4*dim + 8*M + ~100 bytes per element).
        ef_construction: build-time beam width (recall of the graph).
        ef: query-time beam width; restored after every load.
        capacity: initial ``max_elements``; grows in chunks as vectors are added.
    """

    def __init__(self, dim: int = 512, M: int = 16, ef_construction: int = 200, ef: int = 200,
                 capacity: int = MIN_CHUNK, *, _index: Any = None) -> None:
        self.dim = dim
        self._lock = RWLock()
        self._deleted: set[int] = set()
        if _index is None:
            _index = hnswlib.Index(space="ip", dim=dim)
            _index.init_index(max_elements=max(1, capacity), M=M, ef_construction=ef_construction,
                              random_seed=RANDOM_SEED)
        self._index = _index
        self._ef = ef
        self._index.set_ef(ef)

    # -- persistence -------------------------------------------------------------------------
    @classmethod
    def load(cls, path: Path, dim: int = 512, ef: int = 200, extra_capacity: int = 0,
             expected_sha256: str | None = None) -> HnswIndex:
        """Load a saved index and set ``ef`` (hnswlib does not save it); ``IndexCorrupt`` if unreadable.

        The file is opened once, its bytes hashed against ``expected_sha256`` (when given) and checked by
        :func:`check_hnsw_file`, and hnswlib reads that same open file: a file hnswlib would crash on is
        refused before it gets there.
        """
        raw = hnswlib.Index(space="ip", dim=dim)
        try:
            with checked_file(path, lambda data: check_hnsw_file(data, dim), expected_sha256) as checked:
                raw.load_index(checked.load_path, max_elements=0)
            if extra_capacity > 0:
                raw.resize_index(raw.get_max_elements() + extra_capacity)
        except IndexFileRefused:
            raise
        except (RuntimeError, ValueError, OSError, MemoryError) as exc:
            raise IndexCorrupt(f"The vector index {path} cannot be read ({exc}).",
                               hint="Run 'sketchface gallery rebuild' to rebuild it from the stored embeddings.") from exc
        return cls(dim=dim, ef=ef, _index=raw)

    def save(self, path: Path) -> None:
        """Write the index to a temporary file beside ``path``, fsync it, then rename: never half-written."""
        self.save_with_digest(path)

    def save_with_digest(self, path: Path) -> str:
        """:meth:`save`, returning the SHA-256 of the bytes written (galleries check it before the next load)."""
        with self._lock.read():
            return atomic_save_with_digest(path, self._index.save_index)

    # -- mutation ----------------------------------------------------------------------------
    def add(self, vectors: np.ndarray, labels: np.ndarray, num_threads: int = -1) -> None:
        """Add (or replace) vectors under integer labels; capacity grows in chunks first."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        if len(vectors) != len(labels):
            raise ValueError(f"{len(vectors)} vectors but {len(labels)} labels")
        if not len(labels):
            return
        with self._lock.write():
            needed = self._index.element_count + len(labels)
            cap = self._index.get_max_elements()
            if needed > cap:
                self._index.resize_index(max(needed, cap + max(MIN_CHUNK, cap // 2)))
            self._index.add_items(vectors, labels, num_threads=num_threads)
            self._deleted.difference_update(int(x) for x in labels)

    def remove(self, labels: Iterable[int]) -> int:
        """Mark labels deleted (they stay in the graph until a rebuild). Returns how many were live."""
        removed = 0
        with self._lock.write():
            for label in labels:
                label = int(label)
                if label in self._deleted:
                    continue
                try:
                    self._index.mark_deleted(label)
                    removed += 1
                except RuntimeError as exc:  # "already deleted" or "Label not found": not live either way
                    if "already deleted" in str(exc):
                        self._deleted.add(label)
                    continue
                self._deleted.add(label)
        return removed

    def set_ef(self, ef: int) -> None:
        with self._lock.write():
            self._ef = ef
            self._index.set_ef(ef)

    # -- reading -----------------------------------------------------------------------------
    def query(self, vectors: np.ndarray, k: int,
              allowed: Callable[[int], bool] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` labels and inner-product similarities per query row (fewer when fewer live).

        ``allowed`` is hnswlib's filter callback (a Python call per visited label): use it for loose
        filters only; callers pre-filter selective ones with numpy over stored embeddings.
        """
        q = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        with self._lock.read():
            k = min(k, self._index.element_count - len(self._deleted))
            if k <= 0 or not len(q):
                return np.zeros((len(q), 0), np.int64), np.zeros((len(q), 0), np.float32)
            labels, dist = self._index.knn_query(q, k=k, num_threads=1, filter=allowed)
        return labels.astype(np.int64), (1.0 - dist).astype(np.float32)

    def get(self, labels: np.ndarray) -> np.ndarray:
        """Stored vectors of live labels (``IndexCorrupt`` if one is missing or deleted)."""
        ids = [int(x) for x in np.asarray(labels).reshape(-1)]
        if not ids:
            return np.zeros((0, self.dim), np.float32)
        with self._lock.read():
            try:
                return np.asarray(self._index.get_items(ids, return_type="numpy"), dtype=np.float32)
            except RuntimeError as exc:
                raise IndexCorrupt(f"The vector index lacks a face it should hold ({exc}).",
                                   hint="Run 'sketchface gallery rebuild'.") from exc

    def all_labels(self) -> np.ndarray:
        """Every label in the graph, deleted ones included."""
        with self._lock.read():
            return np.asarray(self._index.get_ids_list(), dtype=np.int64)

    def labels(self) -> np.ndarray:
        """Live labels: all but those marked deleted through :meth:`remove` (which also learns old marks)."""
        every = self.all_labels()
        if not self._deleted:
            return every
        return every[~np.isin(every, np.fromiter(self._deleted, np.int64, len(self._deleted)))]

    def is_deleted(self, label: int) -> bool:
        """Whether a label present in the graph is marked deleted (probes hnswlib; for verification)."""
        with self._lock.read():
            try:
                self._index.get_items([int(label)])
            except RuntimeError:
                return True
        return False

    def __len__(self) -> int:
        with self._lock.read():
            return int(self._index.element_count) - len(self._deleted)

    @property
    def deleted_count(self) -> int:
        return len(self._deleted)

    @property
    def capacity(self) -> int:
        return int(self._index.get_max_elements())

    @property
    def params(self) -> dict[str, int]:
        return {"M": int(self._index.M), "ef_construction": int(self._index.ef_construction), "ef": int(self._ef)}


def _refuse(why: str) -> IndexFileRefused:
    return IndexFileRefused(f"The vector index is not one hnswlib can read safely: {why}.",
                            hint="Run 'sketchface gallery rebuild' to rebuild it from the stored embeddings.")


def _rows_u32(rows: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Columns ``start:stop`` (bytes) of a (n, row bytes) uint8 block as little-endian uint32."""
    return np.ascontiguousarray(rows[:, start:stop]).view("<u4")


def check_hnsw_file(data: mmap.mmap | bytes, dim: int) -> None:
    """Refuse (``IndexFileRefused``) an hnswlib file whose layout would make hnswlib read out of bounds.

    Checked: the header against the gallery's dimension and hnswlib's own layout rules, the file size
    against the element count and every element's upper-level list, the entry point and top level, every
    neighbour id (in range, and on a level its node has), list counts within M, vectors finite, labels
    unique. What it cannot see: a well-formed file whose vectors were changed (the signature and the
    sampled comparison with the store catch that).
    """
    n = len(data)
    if n < HNSW_HEADER.size:
        raise _refuse(f"it is {n} bytes, shorter than its {HNSW_HEADER.size}-byte header")
    (off0, max_el, count, size_data, label_off, data_off, maxlevel, entry, max_m, max_m0, m, mult,
     efc) = HNSW_HEADER.unpack_from(data, 0)
    links0, vec_bytes = max_m0 * 4 + 4, dim * 4
    if not (2 <= m <= MAX_M and max_m == m and max_m0 == 2 * m):
        raise _refuse(f"its graph degrees (M={m}, maxM={max_m}, maxM0={max_m0}) are not hnswlib's")
    if (off0, data_off, label_off, size_data) != (0, links0, links0 + vec_bytes, links0 + vec_bytes + 8):
        raise _refuse(f"its element layout is not that of a {dim}-dimensional float index")
    if not count <= max_el <= max(2 * count, count + 16 * MIN_CHUNK) or count >= 2**32 - 1:
        raise _refuse(f"it claims {count} elements in room for {max_el}")
    if not (math.isfinite(mult) and abs(mult - 1.0 / math.log(m)) < 1e-9) or not 1 <= efc <= MAX_EF_CONSTRUCTION:
        raise _refuse("its level multiplier or ef_construction is not one hnswlib sets")
    level0_end = HNSW_HEADER.size + count * size_data
    if level0_end > n:
        raise _refuse(f"it ends before its {count} elements do")
    per_level = max_m * 4 + 4
    levels: list[int] = []
    starts: list[int] = []
    pos = level0_end
    size_at = struct.Struct("<I").unpack_from
    for _ in range(count):
        if pos + 4 > n:
            raise _refuse("it ends inside its upper-level lists")
        (size,) = size_at(data, pos)
        pos += 4
        if size % per_level or size // per_level > MAX_LEVEL:
            raise _refuse(f"an upper-level list of {size} bytes is not a whole number of levels")
        levels.append(size // per_level)
        starts.append(pos)
        pos += size
    if pos != n:
        raise _refuse(f"its size ({n} bytes) differs from what its elements take ({pos} bytes)")
    if count == 0:
        if maxlevel != -1:
            raise _refuse("an empty graph with a top level")
        return
    level = np.asarray(levels, np.int64)
    if not 0 <= maxlevel <= MAX_LEVEL or entry >= count or int(level.max()) != maxlevel or level[entry] != maxlevel:
        raise _refuse(f"its entry point ({entry}) or top level ({maxlevel}) is not in the graph")
    whole = np.frombuffer(data, np.uint8)
    base = whole[HNSW_HEADER.size:level0_end].reshape(count, size_data)
    labels = np.empty(count, np.uint64)
    slots0 = np.arange(max_m0)
    for start in range(0, count, _CHECK_ROWS):
        rows = base[start:start + _CHECK_ROWS]
        head = _rows_u32(rows, 0, 4).ravel()
        used = head & 0xFFFF
        if (used > max_m0).any() or ((head >> 16) > 1).any():  # byte 2 is the deleted mark, byte 3 unused
            raise _refuse("a level-0 neighbour list is longer than the graph allows")
        ids = _rows_u32(rows, 4, links0)
        if (ids[slots0 < used[:, None]] >= count).any():
            raise _refuse("a level-0 neighbour id points past the last element")
        if not np.isfinite(np.ascontiguousarray(rows[:, data_off:label_off]).view("<f4")).all():
            raise _refuse("a stored vector holds NaN or infinity")
        labels[start:start + len(rows)] = np.ascontiguousarray(rows[:, label_off:size_data]).view("<u8").ravel()
    if (labels >= 2**63).any() or len(np.unique(labels)) != count:
        raise _refuse("its labels are not distinct face ids")
    offsets = np.asarray(starts, np.int64)
    slots = np.arange(max_m)
    columns = np.arange(per_level)
    for lev in range(1, maxlevel + 1):
        nodes = np.flatnonzero(level >= lev)
        for start in range(0, len(nodes), _CHECK_ROWS):
            pick = offsets[nodes[start:start + _CHECK_ROWS]] + (lev - 1) * per_level
            rows = whole[pick[:, None] + columns]
            head = _rows_u32(rows, 0, 4).ravel()
            if (head > max_m).any():
                raise _refuse(f"a level-{lev} neighbour list is longer than the graph allows")
            ids = _rows_u32(rows, 4, per_level)[slots < head[:, None]]
            if (ids >= count).any() or (level[np.minimum(ids, count - 1)] < lev).any():
                raise _refuse(f"a level-{lev} neighbour id points past the graph or to a node without that level")
