"""Training state files (``last.pt`` / ``best.pt``): everything needed for an exact resume.

Saved with ``torch.save`` and read back with ``weights_only=True`` (tensors and plain containers only),
so a state file from elsewhere can never run code. RNG states are stored as tensors and lists.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from engine.fsutil import atomic_path
from engine.sketch.checkpoint import TRAIN_STATE_FORMAT, TRAIN_STATE_VERSION, read_train_state


def rng_state() -> dict[str, Any]:
    """Global RNG states (torch CPU/CUDA, numpy legacy, Python) as weights_only-safe values."""
    np_state = cast(tuple[Any, ...], np.random.get_state(legacy=True))
    py_version, py_internal, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)), int(np_state[2]),
                  int(np_state[3]), float(np_state[4])],
        "python": [py_version, list(py_internal), py_gauss],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_py = state["python"]
    random.setstate((version, tuple(internal), gauss_py))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_state(path: Path, payload: dict[str, Any]) -> Path:
    """Write a state file atomically (a crash mid-save leaves the previous one intact)."""
    doc = {"format": TRAIN_STATE_FORMAT, "format_version": TRAIN_STATE_VERSION, **payload, "rng": rng_state()}
    with atomic_path(path) as tmp:
        torch.save(doc, str(tmp))
    return path


def load_state(path: Path) -> dict[str, Any]:
    """Read a state file (never unpickles code)."""
    return read_train_state(path)
