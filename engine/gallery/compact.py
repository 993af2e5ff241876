"""The compact index: usearch HNSW over int8-quantised vectors, behind the same ``VectorIndex`` protocol.

Why: the float32 hnswlib index costs about 2.4 KB per face (2 KB of vector plus the graph), so a 32 GB
workstation holds roughly 10M faces with nothing else running. usearch's int8 index keeps 512 bytes of
vector plus its graph (about 1 KB per face measured at 200k), and the search re-scores every candidate
from the gallery's stored float32 embeddings (the store is the truth), so the ranking keeps exact
scores. Use it past :data:`COMPACT_THRESHOLD_FACES`, or when :func:`choose_index_kind` says the float32
index would not fit in the memory given.

Facts this is built on (usearch 2.x, checked): ``expansion_search`` is not saved (set after every load);
``get`` returns the int8 codes (:meth:`UsearchI8Index.get` scales them back: approximate, for display
and checks, never for scoring); cosine metric on unit vectors equals inner product.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, cast

import numpy as np

from engine.errors import GalleryError, IndexCorrupt
from engine.fsutil import atomic_save_with_digest
from engine.gallery.index import MAX_LEVEL, RWLock
from engine.gallery.indexfile import IndexFileRefused, checked_file

HNSWLIB_BYTES_PER_FACE = 2400  # bench/README.md: 2374-2402 B measured at M=32, 100k-1M faces
USEARCH_I8_BYTES_PER_FACE = 1000  # issue 15's side-by-side at 200k faces: 1.0 KB (usearch i8, M=32)
COMPACT_THRESHOLD_FACES = 5_000_000  # float32 past this: ~12 GB of index, over a third of a 32 GB workstation
I8_SCALE = 127.0

# Index kinds a local gallery can hold, the file each is saved in, and the names the command line takes.
INDEX_KINDS = ("hnswlib", "usearch_i8")
INDEX_FILES = {"hnswlib": "index.hnsw", "usearch_i8": "index.usearch"}
_KIND_NAMES = {"hnswlib": "hnswlib", "hnsw": "hnswlib", "float32": "hnswlib",
               "usearch_i8": "usearch_i8", "compact": "usearch_i8", "usearch": "usearch_i8", "i8": "usearch_i8"}
# ``gallery verify``: float32 index vectors equal the stored ones up to rounding; int8 codes only
# approximate them (measured: cosine >= 0.996 to the stored vector, per-component error up to 0.015).
VERIFY_ATOL = 1e-6
VERIFY_I8_MIN_COS = 0.99


def same_vector(kind: str, indexed: np.ndarray, stored: np.ndarray) -> bool:
    """Whether an index's copy of a stored unit vector is that vector, within what the kind keeps."""
    if kind == "usearch_i8":
        return float(np.dot(indexed, stored)) >= VERIFY_I8_MIN_COS
    return bool(np.allclose(indexed, stored, atol=VERIFY_ATOL))


def parse_index_kind(name: str) -> str:
    """The canonical kind for a user's spelling (``compact`` / ``hnsw`` ...); ``GalleryError`` otherwise."""

    kind = _KIND_NAMES.get(name.strip().lower())
    if kind is None:
        raise GalleryError(f"{name!r} is not an index kind.", hint="Use 'hnsw' (float32, fastest) or 'compact' "
                           "(int8 with exact re-rank, about 1 KB a face).")
    return kind


def rerank_pool(k: int) -> int:
    """Candidates a search asks the index for before re-scoring them exactly (as ``engine.search.core``)."""
    return max(2 * k, k + 20)


def compact_hint(kind: str, faces: int, gallery: str) -> str:
    """The one-line offer of the compact index once a float32 gallery is past the threshold ("" otherwise)."""
    if kind != "hnswlib" or choose_index_kind(faces) == "hnswlib":
        return ""
    return (f"{faces} faces: a compact index (about {USEARCH_I8_BYTES_PER_FACE} B a face instead of "
            f"{HNSWLIB_BYTES_PER_FACE} B, same ranking) would fit more in memory: "
            f"sketchface gallery rebuild {gallery} --index compact")


def choose_index_kind(faces: int, memory_bytes: int | None = None, share: float = 0.5) -> str:
    """``"hnswlib"`` (fastest on float32) unless the gallery is past the threshold or its float32 index
    would take more than ``share`` of ``memory_bytes``; then ``"usearch_i8"``."""
    if faces >= COMPACT_THRESHOLD_FACES:
        return "usearch_i8"
    if memory_bytes is not None and faces * HNSWLIB_BYTES_PER_FACE > share * memory_bytes:
        return "usearch_i8"
    return "hnswlib"


def largest_gallery(memory_bytes: int, kind: str = "hnswlib", share: float = 0.75) -> int:
    """Faces whose index fits in ``share`` of the memory (the rest: OS, app, models)."""
    per = HNSWLIB_BYTES_PER_FACE if kind == "hnswlib" else USEARCH_I8_BYTES_PER_FACE
    return int(memory_bytes * share // per)


class UsearchI8Index:
    """usearch HNSW (cosine, int8) labelled by face id; thread-safe through a reader/writer lock.

    Args:
        dim: vector dimension.
        M: graph connectivity.
        ef_construction: build-time expansion.
        ef: query-time expansion (restored after every load).
    """

    def __init__(self, dim: int = 512, M: int = 32, ef_construction: int = 200, ef: int = 200,
                 capacity: int = 0, *, _index: Any = None) -> None:
        from usearch.index import Index

        self.dim = dim
        self._lock = RWLock()
        self._index: Any = _index if _index is not None else cast(Any, Index(
            ndim=dim, metric="cos", dtype="i8", connectivity=M, expansion_add=ef_construction, expansion_search=ef))
        self._index.expansion_search = ef
        self._M, self._efc, self._ef = M, ef_construction, ef

    @classmethod
    def load(cls, path: Path, dim: int = 512, ef: int = 200, M: int = 32, ef_construction: int = 200,
             expected_sha256: str | None = None) -> UsearchI8Index:
        """Restore a saved index from the very bytes that were hashed and checked (:func:`check_usearch_file`)."""
        from usearch.index import Index

        try:
            with checked_file(path, lambda data: check_usearch_file(data, dim), expected_sha256) as checked, \
                    memoryview(checked.data) as view:
                raw = Index.restore(view)  # copies: the view is released before the file is closed
        except IndexFileRefused:
            raise
        except (RuntimeError, ValueError, OSError, MemoryError) as exc:
            raise IndexCorrupt(f"The compact index {path} cannot be read ({exc}).",
                               hint="Run 'sketchface gallery rebuild' to rebuild it from the stored embeddings.") from exc
        if raw is None or raw.ndim != dim:
            raise IndexCorrupt(f"The compact index {path} is not a {dim}-D index.", hint="Rebuild the gallery.")
        return cls(dim, int(raw.connectivity), ef_construction, ef, _index=raw)

    def save(self, path: Path) -> None:
        self.save_with_digest(path)

    def save_with_digest(self, path: Path) -> str:
        """Save atomically, returning the SHA-256 of the bytes written (checked before the next load)."""
        with self._lock.read():
            return atomic_save_with_digest(path, self._index.save)

    def add(self, vectors: np.ndarray, labels: np.ndarray, num_threads: int = 0) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        if len(vectors) != len(labels):
            raise ValueError(f"{len(vectors)} vectors but {len(labels)} labels")
        if not len(labels):
            return
        with self._lock.write():
            present = [int(x) for x in labels if int(x) in self._index]
            if present:  # replace, as hnswlib does
                self._index.remove(present)
            self._index.add(labels, vectors, threads=num_threads)

    def remove(self, labels: Iterable[int]) -> int:
        with self._lock.write():
            live = [int(x) for x in labels if int(x) in self._index]
            if live:
                self._index.remove(live)
        return len(live)

    def set_ef(self, ef: int) -> None:
        with self._lock.write():
            self._ef = ef
            self._index.expansion_search = ef

    def query(self, vectors: np.ndarray, k: int,
              allowed: Callable[[int], bool] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k labels and approximate similarities (int8); callers re-score from the stored vectors.

        ``allowed`` is honoured by asking for more and dropping the rest (usearch has no filter callback).
        """
        q = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        with self._lock.read():
            n = min(k if allowed is None else 4 * k, len(self._index))
            if n <= 0 or not len(q):
                return np.zeros((len(q), 0), np.int64), np.zeros((len(q), 0), np.float32)
            m = self._index.search(q, n, threads=1)
        keys, dist = np.asarray(m.keys, np.int64).reshape(len(q), -1), np.asarray(m.distances).reshape(len(q), -1)
        if allowed is not None:
            rows = [[(key, d) for key, d in zip(kr, dr, strict=True) if allowed(int(key))][:k]
                    for kr, dr in zip(keys, dist, strict=True)]
            width = min(len(r) for r in rows)
            keys = np.asarray([[key for key, _ in r[:width]] for r in rows], np.int64).reshape(len(q), width)
            dist = np.asarray([[d for _, d in r[:width]] for r in rows], np.float32).reshape(len(q), width)
        return keys, (1.0 - dist).astype(np.float32)

    def get(self, labels: np.ndarray) -> np.ndarray:
        """Approximate (dequantised, re-normalised) vectors: int8 codes scaled back, never exact."""
        ids = [int(x) for x in np.asarray(labels).reshape(-1)]
        if not ids:
            return np.zeros((0, self.dim), np.float32)
        with self._lock.read():
            codes: Any = self._index.get(np.asarray(ids, np.int64))
        if any(c is None for c in codes):
            raise IndexCorrupt("The compact index lacks a face it should hold.", hint="Run 'sketchface gallery rebuild'.")
        out = np.stack([np.asarray(c, np.float32).reshape(self.dim) / I8_SCALE for c in codes])
        return (out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def labels(self) -> np.ndarray:
        with self._lock.read():
            return np.sort(np.asarray(self._index.keys, np.int64))

    def all_labels(self) -> np.ndarray:
        return self.labels()

    def is_deleted(self, label: int) -> bool:
        with self._lock.read():
            return int(label) not in self._index

    def __len__(self) -> int:
        with self._lock.read():
            return len(self._index)

    @property
    def deleted_count(self) -> int:
        return 0

    @property
    def memory_bytes(self) -> int:
        return int(self._index.memory_usage)

    @property
    def params(self) -> dict[str, int]:
        return {"M": self._M, "ef_construction": self._efc, "ef": int(self._ef)}


# usearch 2.x's dense file (checked against 2.26): the vectors matrix (rows, bytes per row as uint32, then
# the rows), a 64-byte head ("usearch", version, metric, scalar, key and slot kinds, counts, dimensions,
# multi), the graph header (size, connectivity, base connectivity, top level, entry slot as uint64), the
# level of every node (int16), then each node: key (uint64), level (int16), and per level a neighbour
# count (uint32) with its slots (uint32): 2*connectivity of them on level 0, connectivity above.
_USEARCH_HEAD = struct.Struct("<7s3H4B3Q?")
_USEARCH_GRAPH = struct.Struct("<5Q")
_METRIC_COS, _SCALAR_I8, _KEY_U64, _SLOT_U32 = ord("c"), 23, 14, 15
_NODE_HEAD = 10
_CHECK_NODES = 16384


def _refuse(why: str) -> IndexFileRefused:
    return IndexFileRefused(f"The compact index is not one usearch can read safely: {why}.",
                            hint="Run 'sketchface gallery rebuild' to rebuild it from the stored embeddings.")


def check_usearch_file(data: mmap.mmap | bytes, dim: int) -> None:
    """Refuse (``IndexFileRefused``) a compact-index file whose layout would make usearch read out of bounds.

    Checked: the matrix and head against the gallery's int8 cosine index of ``dim`` dimensions, the graph
    header, every node's level and size against the file size, every neighbour slot (in range, and on a
    level its node has). A well-formed file with changed vectors passes: the signature and the sampled
    comparison with the store catch that.
    """
    n = len(data)
    if n < 8 + _USEARCH_HEAD.size + _USEARCH_GRAPH.size:
        raise _refuse(f"it is {n} bytes, shorter than its headers")
    rows, cols = struct.unpack_from("<II", data, 0)
    pos = 8 + rows * cols
    if cols != dim or pos + _USEARCH_HEAD.size + _USEARCH_GRAPH.size > n:
        raise _refuse(f"its vectors matrix ({rows} x {cols} bytes) is not that of {dim}-dimensional int8 vectors")
    magic, major, _minor, _patch, metric, scalar, key, slot, present, deleted, dims, multi = \
        _USEARCH_HEAD.unpack_from(data, pos)
    if (magic, major, metric, scalar, key, slot, dims, multi) != (b"usearch", 2, _METRIC_COS, _SCALAR_I8, _KEY_U64,
                                                                  _SLOT_U32, dim, False):
        raise _refuse("its head is not that of a usearch 2 int8 cosine index of this dimension")
    pos += 64
    size, conn, conn0, top, entry = _USEARCH_GRAPH.unpack_from(data, pos)
    pos += _USEARCH_GRAPH.size
    if size != rows or present + deleted != size or not 2 <= conn <= 1024 or conn0 != 2 * conn:
        raise _refuse(f"its graph header (size {size}, connectivity {conn}/{conn0}) disagrees with its head")
    if size == 0:  # an empty graph: no levels, no nodes (its top level reads as -1)
        if pos != n:
            raise _refuse("an empty graph followed by node data")
        return
    if pos + 2 * size > n:
        raise _refuse("it ends inside its node levels")
    level = np.frombuffer(data, "<i2", size, pos).astype(np.int64)
    pos += 2 * size
    if (level.min() < 0 or top > MAX_LEVEL or int(level.max()) != top or entry >= size
                 or level[entry] != top):
        raise _refuse(f"its entry slot ({entry}) or top level ({top}) is not in the graph")
    base_bytes, upper_bytes = 4 + 4 * conn0, 4 + 4 * conn
    node_bytes = _NODE_HEAD + base_bytes + level * upper_bytes
    starts = pos + np.concatenate(([0], np.cumsum(node_bytes)[:-1]))
    if pos + int(node_bytes.sum()) != n:
        raise _refuse(f"its size ({n} bytes) differs from what its nodes take ({pos + int(node_bytes.sum())} bytes)")
    whole = np.frombuffer(data, np.uint8)
    for lev in range(top + 1):
        width, limit = (base_bytes, conn0) if lev == 0 else (upper_bytes, conn)
        cols_ = np.arange(width)
        slots = np.arange(limit)
        nodes = np.flatnonzero(level >= lev)
        for start in range(0, len(nodes), _CHECK_NODES):
            chosen = nodes[start:start + _CHECK_NODES]
            where = starts[chosen] + _NODE_HEAD + (0 if lev == 0 else base_bytes + (lev - 1) * upper_bytes)
            block = np.ascontiguousarray(whole[where[:, None] + cols_]).view("<u4")
            used = block[:, 0]
            if (level[chosen] != np.ascontiguousarray(
                    whole[(starts[chosen] + 8)[:, None] + np.arange(2)]).view("<i2").ravel()).any():
                raise _refuse("a node's own level disagrees with the level table")
            if (used > limit).any():
                raise _refuse(f"a level-{lev} neighbour list is longer than the graph allows")
            ids = block[:, 1:][slots < used[:, None]]
            if (ids >= size).any() or (level[np.minimum(ids, size - 1)] < lev).any():
                raise _refuse(f"a level-{lev} neighbour slot points past the graph or to a node without that level")
