"""Exact rank of each solved case's true subject among every subject of a gallery.

Why exact and batched: a validation must say where the true person landed even at rank 5,000, which
no top-k search returns. Scoring a block of queries against the gallery is one matrix product
(BLAS amortises reading the gallery over the whole block), so a validated sketch costs about what a
plain search costs. Candidates are grouped as search groups them (``group_by_subject``): one entry
per subject id, and a face without a subject id stands alone. The score of a subject is its best
face's cosine; the rank of the true subject is 1 + the number of *other* subjects scoring at least
as high (ties count against the true subject: a validation must never flatter).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.progress import CancelToken, check

if TYPE_CHECKING:
    from engine.gallery import Gallery

HIST_BINS = 200  # cosine histogram of "other" candidates: 200 bins of 0.01 over [-1, 1]
_INFO_CHUNK = 10_000
_CACHE_BYTES = 2 << 30  # keep the gallery's embeddings in memory up to 2 GiB (~1M faces), else stream


@dataclass
class RankOutcome:
    """Per query: exact rank, true score, best other subject's score; and the histogram of all other scores."""

    ranks: np.ndarray
    true_scores: np.ndarray
    best_other: np.ndarray
    other_hist: np.ndarray


class GalleryMatrix:
    """A gallery's stored embeddings ordered by subject, with subject boundaries and per-subject metadata.

    Args:
        gallery: an open gallery (only its store is read; its HNSW index is not needed).
        cancel: checked between chunks of the store.
    """

    def __init__(self, gallery: Gallery, cancel: CancelToken | None = None) -> None:
        self.gallery = gallery
        store = gallery.store
        ids = store.face_ids()
        keys: list[str] = []
        self.photo_faces: dict[str, list[int]] = {}  # photo SHA-256 -> face ids, for photo-identified truth
        self.subject_ids: set[str] = set()
        for start in range(0, len(ids), _INFO_CHUNK):
            check(cancel)
            chunk = ids[start:start + _INFO_CHUNK]
            infos = store.face_infos([int(x) for x in chunk])
            for fid in chunk:
                info = infos[int(fid)]
                key = subject_key(info.subject_id, int(fid))
                keys.append(key)
                if info.subject_id:
                    self.subject_ids.add(info.subject_id)
                if info.sha256 and info.primary:
                    self.photo_faces.setdefault(info.sha256, []).insert(0, int(fid))
                elif info.sha256:
                    self.photo_faces.setdefault(info.sha256, []).append(int(fid))
        key_arr = np.asarray(keys, dtype=object)
        order = np.argsort(key_arr, kind="stable") if len(ids) else np.zeros(0, np.int64)
        self.face_ids = ids[order]
        sorted_keys = key_arr[order]
        starts = [0] + [i for i in range(1, len(sorted_keys)) if sorted_keys[i] != sorted_keys[i - 1]]
        self.starts = np.asarray(starts if len(sorted_keys) else [], dtype=np.int64)
        self.keys = [str(sorted_keys[i]) for i in self.starts]
        self.group_of = {k: i for i, k in enumerate(self.keys)}
        self._cache: np.ndarray | None = None
        if len(ids) * 512 * 4 <= _CACHE_BYTES:
            self._cache = self._read(0, len(ids))

    @property
    def n_faces(self) -> int:
        return len(self.face_ids)

    @property
    def n_subjects(self) -> int:
        """The number of candidates a grouped search can list: subjects, plus faces without a subject id."""
        return len(self.keys)

    def faces_of(self, key: str) -> np.ndarray:
        g = self.group_of[key]
        end = self.starts[g + 1] if g + 1 < len(self.starts) else self.n_faces
        return self.face_ids[self.starts[g]:end]

    def metadata_of(self, key: str) -> dict[str, Any]:
        """A subject's metadata: per field, the first value found over its photos (in import order)."""
        ids = sorted(int(x) for x in self.faces_of(key))
        infos = self.gallery.store.face_infos(ids)
        out: dict[str, Any] = {}
        for fid in ids:
            for k, v in infos[fid].metadata.items():
                out.setdefault(k, v)
        return out

    def _read(self, start: int, end: int) -> np.ndarray:
        return self.gallery.store.embeddings(self.face_ids[start:end])

    def blocks(self, faces_per_block: int = 50_000) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """(first group, embeddings, group offsets within the block): blocks end on subject boundaries."""
        g = 0
        n_groups = len(self.starts)
        while g < n_groups:
            first = int(self.starts[g])
            stop = int(np.searchsorted(self.starts, first + faces_per_block, side="right"))
            stop = max(stop, g + 1)
            end = int(self.starts[stop]) if stop < n_groups else self.n_faces
            emb = self._cache[first:end] if self._cache is not None else self._read(first, end)
            yield g, emb, self.starts[g:stop] - first
            g = stop


def subject_key(subject_id: str | None, face_id: int) -> str:
    """Grouping key as search groups candidates: the subject id, or the face alone when it has none."""
    return f"s:{subject_id}" if subject_id else f"f:{face_id}"


def rank_queries(matrix: GalleryMatrix, queries: np.ndarray, targets: Sequence[str],
                 cancel: CancelToken | None = None, block: int = 256) -> RankOutcome:
    """Exact grouped rank of each query's target subject (see the module docstring).

    Args:
        matrix: the gallery, ordered by subject.
        queries: N x 512 unit vectors.
        targets: N subject keys (:func:`subject_key`) of the true subjects; each must be in the gallery.
    """
    q_all = np.ascontiguousarray(queries, dtype=np.float32)
    n = len(q_all)
    tgt = np.asarray([matrix.group_of[t] for t in targets], dtype=np.int64)
    ranks = np.ones(n, np.int64)
    best_other = np.full(n, -np.inf, np.float32)
    true_scores = np.empty(n, np.float32)
    hist = np.zeros(HIST_BINS, np.int64)
    for i, t in enumerate(targets):  # true score first: the scan then only counts who beats it
        emb = matrix.gallery.store.embeddings(matrix.faces_of(t))
        true_scores[i] = float(np.max(emb @ q_all[i]))
    for qs in range(0, n, block):
        q = q_all[qs:qs + block]
        t_blk, true_blk = tgt[qs:qs + block], true_scores[qs:qs + block]
        cols = np.arange(len(q))
        for g0, emb, offsets in matrix.blocks():
            check(cancel)
            per_subject = np.maximum.reduceat(emb @ q.T, offsets, axis=0)  # groups x queries
            local = t_blk - g0
            inside = (local >= 0) & (local < len(offsets))
            per_subject[local[inside], cols[inside]] = -np.inf  # the true subject is not its own rival
            ranks[qs:qs + block] += np.count_nonzero(per_subject >= true_blk, axis=0)
            np.maximum(best_other[qs:qs + block], per_subject.max(axis=0), out=best_other[qs:qs + block])
            bins = ((np.clip(per_subject, -1.0, 1.0 - 1e-6) + 1.0) * (HIST_BINS / 2)).astype(np.int64)
            hist += np.bincount(bins.ravel(), minlength=HIST_BINS)
            hist[0] -= int(np.count_nonzero(inside))  # the masked true subjects fell into bin 0
    return RankOutcome(ranks, true_scores, best_other, hist)
