"""Exact search over a local gallery: every stored embedding scored against the query, float32.

Why exact first: an exact scan never misses the true match and repeats to the identical list, which is
what an examiner must be able to defend; an approximate index at recall@10 0.99 drops about one
top-10 candidate in a hundred, silently. A scan of n faces costs n x 512 multiply-adds per query:
affordable on a workstation up to about a million faces, so a local gallery searches exactly while its
measured scan time stays under :data:`EXACT_BUDGET_MS`, and uses HNSW with exact re-rank beyond that
(or when the examiner chooses it).

The scan time is measured here, on this machine, not guessed: :func:`scan_ms` times a float32
matrix-vector product of :data:`PROBE_ROWS` rows once per process (the fastest of :data:`PROBE_RUNS`, so
a momentarily busy machine does not flip the mode; on the GPU when the scan would run there) and scales
it by the gallery's size, so the decision follows this workstation's BLAS, threads
and memory bandwidth, as the ef self-tuning (:mod:`engine.gallery.tuning`) follows its recall. It is
not stored in the gallery: a gallery copied to another machine is measured again there.

On a CUDA GPU where the gallery fits (torch installed, device setting not "cpu") the matrix lives on
the GPU and the scan is a torch matmul; scores are float32 either way, so the list is the same.
"""

from __future__ import annotations

import sys
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from engine.gallery.gallery import Gallery

EXACT, HNSW, AUTO = "exact", "hnsw", "auto"
MODES = (AUTO, EXACT, HNSW)
EXACT_BUDGET_MS = 150.0
PROBE_ROWS = 50_000
PROBE_RUNS = 15
DIM = 512
GPU_MEMORY_FRACTION = 0.5  # the matrix may take at most this share of the GPU's free memory

_lock = threading.Lock()
_probe_ms: dict[str, float] = {}
_scans: weakref.WeakKeyDictionary[Any, ExactScan] = weakref.WeakKeyDictionary()


def check_mode(mode: str) -> str:
    """``mode`` if it is one of :data:`MODES`; ValueError otherwise (front-ends offer only these)."""
    if mode not in MODES:
        raise ValueError(f"search mode {mode!r}: use one of {', '.join(MODES)}")
    return mode


def _cuda_device(device_setting: str) -> Any:
    """The torch CUDA device when the exact scan should run there, else None.

    Device "cuda" imports torch; "auto" uses it only when something already loaded it (the sketch encoder,
    generation): importing torch only to ask costs seconds on a workstation without a GPU.
    """
    if device_setting == "cpu" or (device_setting != "cuda" and "torch" not in sys.modules):
        return None
    try:
        import torch
    except ImportError:
        return None
    return torch.device("cuda") if torch.cuda.is_available() else None


def _fits_gpu(n: int, cuda: Any) -> bool:
    import torch

    free, _total = torch.cuda.mem_get_info(cuda)
    return n * DIM * 4 <= GPU_MEMORY_FRACTION * free


def scan_ms(n: int, device_setting: str = "auto") -> float:
    """Measured milliseconds of one exact scan of ``n`` faces on this machine (see the module docstring)."""
    cuda = _cuda_device(device_setting)
    where = "cuda" if cuda is not None and _fits_gpu(n, cuda) else "cpu"
    with _lock:
        if where not in _probe_ms:
            _probe_ms[where] = _measure_probe(cuda if where == "cuda" else None)
        per_row = _probe_ms[where] / PROBE_ROWS
    return per_row * max(int(n), 0)


def _measure_probe(cuda: Any) -> float:
    rng = np.random.default_rng(0)
    mat = rng.standard_normal((PROBE_ROWS, DIM), dtype=np.float32)
    q = rng.standard_normal(DIM, dtype=np.float32)
    run: Callable[[], Any]
    if cuda is not None:
        import torch

        tm, tq = torch.from_numpy(mat).to(cuda), torch.from_numpy(q).to(cuda)
        run = lambda: (tm @ tq).cpu()  # noqa: E731  (the .cpu() waits for the GPU, as a search does)
    else:
        run = lambda: mat @ q  # noqa: E731
    run()
    times = []
    for _ in range(PROBE_RUNS):
        t = time.perf_counter()
        run()
        times.append((time.perf_counter() - t) * 1000)
    return float(np.min(times))  # what the machine can do; a busy moment must not flip the mode


def choose_mode(requested: str, n: int, device_setting: str = "auto") -> str:
    """The mode a local gallery of ``n`` faces searches in: the examiner's choice, else exact while the
    measured scan stays under :data:`EXACT_BUDGET_MS`."""
    if check_mode(requested) != AUTO:
        return requested
    return EXACT if scan_ms(n, device_setting) <= EXACT_BUDGET_MS else HNSW


class ExactScan:
    """A gallery's stored embeddings as one float32 matrix (GPU or RAM), reloaded when the content changes."""

    def __init__(self, ids: np.ndarray, matrix: np.ndarray, version: int, device_setting: str) -> None:
        self.ids = ids
        self.version = version
        self._cpu = matrix
        cuda = _cuda_device(device_setting) if len(ids) else None
        self._gpu: Any = None
        if cuda is not None and _fits_gpu(len(ids), cuda):
            import torch

            self._gpu = torch.from_numpy(matrix).to(cuda)

    @property
    def on_gpu(self) -> bool:
        return self._gpu is not None

    def scores(self, q: np.ndarray) -> np.ndarray:
        """Cosine of the unit query with every stored face, in the order of :attr:`ids`."""
        vec = np.asarray(q, np.float32).reshape(-1)
        if self._gpu is not None:
            import torch

            out: np.ndarray = (self._gpu @ torch.from_numpy(vec).to(self._gpu.device)).cpu().numpy()
            return out
        return self._cpu @ vec

    def top(self, q: np.ndarray, n: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """(face id, exact cosine) of up to ``n`` best faces, restricted to ``allowed`` ids when given."""
        scores = self.scores(q)
        ids = self.ids
        if allowed is not None:
            keep = np.isin(ids, allowed)
            ids, scores = ids[keep], scores[keep]
        if not len(ids):
            return []
        n = min(n, len(ids))
        top = np.argpartition(-scores, n - 1)[:n]
        return [(int(ids[i]), float(scores[i])) for i in top]


def exact_scan(g: Gallery) -> ExactScan:
    """The gallery's scan matrix, loaded from its store on first use and again after its content changed."""
    version = g.content_version
    with _lock:
        scan = _scans.get(g)
    if scan is not None and scan.version == version:
        return scan
    ids = g.store.face_ids()
    matrix = np.ascontiguousarray(g.store.embeddings(ids), dtype=np.float32) if len(ids) else \
        np.zeros((0, DIM), np.float32)
    scan = ExactScan(ids, matrix, version, g.settings.device)
    with _lock:
        _scans[g] = scan
    return scan
