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

from engine.errors import IndexCorrupt
from engine.progress import CancelToken, check

if TYPE_CHECKING:
    from engine.gallery import Gallery

HIST_BINS = 200  # cosine histogram of "other" candidates: 200 bins of 0.01 over [-1, 1]
HIST_SAMPLE = 4096  # faces per query and block sampled (evenly) for that histogram: a distribution, not a count
_PAGE = 20_000  # embeddings read per keyset page
_CACHE_BYTES = 2 << 30  # keep the gallery's embeddings in memory up to 2 GiB (~1M faces), else stream


@dataclass
class RankOutcome:
    """Per query: exact rank, true score, best other subject's score; and a histogram of other faces' scores
    (an even sample of the gallery's faces per query, at most ``HIST_SAMPLE`` per block)."""

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
        rows = gallery.store.face_subjects()
        check(cancel)
        ids = np.asarray([r[0] for r in rows], dtype=np.int64)
        keys = [subject_key(subject, fid) for fid, subject, _sha, _primary in rows]
        self.subject_ids: set[str] = {r[1] for r in rows if r[1]}
        self._rows = rows
        self._photo_faces: dict[str, list[int]] | None = None
        code_of: dict[str, int] = {}  # group codes in first-seen order: an integer sort groups the faces
        codes = np.fromiter((code_of.setdefault(k, len(code_of)) for k in keys), np.int64, len(keys))
        self.order = np.argsort(codes, kind="stable")
        self.face_ids = ids[self.order]
        sorted_codes = codes[self.order]
        if len(sorted_codes):
            change = np.flatnonzero(sorted_codes[1:] != sorted_codes[:-1]) + 1
            self.starts = np.concatenate([[0], change]).astype(np.int64)
        else:
            self.starts = np.zeros(0, np.int64)
        key_list = list(code_of)
        sorted_keys = [key_list[c] for c in sorted_codes[self.starts]]
        self.keys = sorted_keys
        self.group_of = {k: i for i, k in enumerate(self.keys)}
        self.singletons = len(self.keys) == len(ids)  # no subject has two faces: no grouping needed
        self.faces_per_block = 50_000
        self._cache: np.ndarray | None = None
        if len(ids) * 512 * 4 <= _CACHE_BYTES:
            self._cache = self._read_all(ids, cancel)

    def _read_all(self, ids: np.ndarray, cancel: CancelToken | None) -> np.ndarray:
        """Every stored embedding, placed in subject order (keyset pages: one pass over the table)."""
        out = np.empty((len(ids), 512), np.float32)
        where = np.empty(len(ids), np.int64)
        where[self.order] = np.arange(len(ids))  # face-id position -> subject-ordered row
        pos = 0
        for page_ids, vecs in self.gallery.store.iter_embeddings(_PAGE):
            check(cancel)
            if not np.array_equal(page_ids, ids[pos:pos + len(page_ids)]):
                raise IndexCorrupt("The gallery's faces and stored embeddings disagree.",
                                   hint="Run 'sketchface gallery verify' on it.")
            out[where[pos:pos + len(page_ids)]] = vecs
            pos += len(page_ids)
        if pos != len(ids):
            raise IndexCorrupt("Some faces of the gallery have no stored embedding.",
                               hint="Run 'sketchface gallery verify' on it.")
        return out

    def group_embeddings(self, key: str) -> np.ndarray:
        """The stored embeddings of one subject's faces."""
        g = self.group_of[key]
        start = int(self.starts[g])
        end = int(self.starts[g + 1]) if g + 1 < len(self.starts) else self.n_faces
        return self._cache[start:end] if self._cache is not None else self._read(start, end)

    @property
    def photo_faces(self) -> dict[str, list[int]]:
        """Photo SHA-256 -> its face ids, primary first (built on first use: only photo-identified truth needs it)."""
        if self._photo_faces is None:
            found: dict[str, list[int]] = {}
            for fid, _subject, sha, primary in self._rows:
                if sha:
                    faces = found.setdefault(sha, [])
                    faces.insert(0, fid) if primary else faces.append(fid)
            self._photo_faces = found
        return self._photo_faces

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

    def blocks(self, faces_per_block: int | None = None) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """(first group, embeddings, group offsets within the block): blocks end on subject boundaries."""
        faces_per_block = faces_per_block or self.faces_per_block
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
    true_scores = np.asarray([float(np.max(matrix.group_embeddings(t) @ q_all[i])) for i, t in enumerate(targets)],
                             dtype=np.float32)  # first: the scan then only counts who beats it
    hist = np.zeros(HIST_BINS, np.int64)
    for qs in range(0, n, block):
        q = q_all[qs:qs + block]
        t_blk, true_blk = tgt[qs:qs + block], true_scores[qs:qs + block]
        for g0, emb, offsets in matrix.blocks():
            check(cancel)
            scores = q @ emb.T  # queries x faces
            ends = np.r_[offsets[1:], len(emb)]
            for j, g in enumerate(t_blk - g0):
                if 0 <= g < len(offsets):  # the true subject is not its own rival
                    scores[j, offsets[g]:ends[g]] = -np.inf
            beats = scores >= true_blk[:, None]
            if not matrix.singletons:
                beats = np.logical_or.reduceat(beats, offsets, axis=1)  # one vote per subject
            ranks[qs:qs + block] += np.count_nonzero(beats, axis=1)
            np.maximum(best_other[qs:qs + block], scores.max(axis=1), out=best_other[qs:qs + block])
            sample = scores[:, ::max(1, scores.shape[1] // HIST_SAMPLE)]
            bins = ((np.clip(sample, -1.0, 1.0 - 1e-6) + 1.0) * (HIST_BINS / 2)).astype(np.int64)
            hist += np.bincount(bins.ravel(), minlength=HIST_BINS)
            hist[0] -= int(np.count_nonzero(np.isneginf(sample)))  # the masked true subjects' faces
    return RankOutcome(ranks, true_scores, best_other, hist)
