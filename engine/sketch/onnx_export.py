"""ONNX export of the sketch encoder with a parity check against PyTorch.

Why: the app runs sketch queries through onnxruntime (no autograd, smaller start-up, the same
runtime as ArcFace). An exported graph is only used when its output matches the PyTorch model within
a tolerance on real sketch inputs; the measured max abs difference is reported and recorded.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import ModelInvalid
from engine.fsutil import atomic_path
from engine.sketch.config import EncoderConfig
from engine.sketch.preprocess import preprocess

if TYPE_CHECKING:
    from engine.sketch.model import SketchEncoder

INPUT_NAME = "pixels"
OUTPUT_NAME = "embedding"
DEFAULT_OPSET = 17
DEFAULT_TOLERANCE = 1e-4


@dataclass(frozen=True)
class ParityReport:
    """Result of comparing onnxruntime with PyTorch on the same inputs (unit vectors, so |diff| <= 2)."""

    onnx_path: str
    max_abs_diff: float
    tolerance: float
    samples: int
    opset: int

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.tolerance

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def parity_inputs(cfg: EncoderConfig, n_random: int = 2, seed: int = 0) -> np.ndarray:
    """Inputs for the parity check: a blank page, a drawn face-like sketch and random noise images."""
    size = cfg.preprocess.input_size
    rng = np.random.default_rng(seed)
    page = np.full((size, size), 255, np.uint8)
    drawn = page.copy()
    yy, xx = np.mgrid[:size, :size]
    ring = np.abs(np.hypot((xx - size / 2) / (size * 0.3), (yy - size / 2) / (size * 0.4)) - 1.0) < 0.04
    drawn[ring] = 30
    drawn[int(size * 0.4), int(size * 0.35):int(size * 0.45)] = 20
    drawn[int(size * 0.4), int(size * 0.55):int(size * 0.65)] = 20
    images = [page, drawn] + [rng.integers(0, 256, (size, size), dtype=np.uint8) for _ in range(n_random)]
    return np.stack([preprocess(im, None, cfg.preprocess) for im in images]).astype(np.float32)


def export_onnx(encoder: SketchEncoder, cfg: EncoderConfig, out_path: str | os.PathLike[str], *,
                opset: int = DEFAULT_OPSET, tolerance: float = DEFAULT_TOLERANCE) -> ParityReport:
    """Export ``encoder`` to ONNX (dynamic batch) and keep the file only if it matches PyTorch.

    Raises:
        ModelInvalid: the exported graph's output differs by more than ``tolerance``; no file is left.
    """
    import onnxruntime as ort
    import torch

    encoder = encoder.eval().to("cpu")
    inputs = parity_inputs(cfg)
    dummy = torch.from_numpy(inputs[:2])
    out_path = Path(out_path)
    with atomic_path(out_path) as tmp:
        with warnings.catch_warnings():
            # The TorchScript-based exporter needs no onnxscript; torch marks it deprecated and the
            # tracer warns about Python-side shape checks inside open_clip that are constant here.
            warnings.simplefilter("ignore")
            torch.onnx.export(encoder, (dummy,), str(tmp), dynamo=False, input_names=[INPUT_NAME],
                              output_names=[OUTPUT_NAME], opset_version=opset,
                              dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
        sess = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        got = sess.run([OUTPUT_NAME], {INPUT_NAME: inputs})[0]
        with torch.inference_mode():
            want = encoder(torch.from_numpy(inputs)).numpy()
        diff = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64))))
        report = ParityReport(str(out_path), diff, tolerance, int(inputs.shape[0]), opset)
        if not report.ok:
            raise ModelInvalid(f"The ONNX export of the sketch encoder differs from PyTorch by {diff:.2e} "
                               f"(tolerance {tolerance:.0e}); it was not written.",
                               hint="Keep using the PyTorch backend, or report the architecture that fails.")
    return report
