"""The cheap alternative every run is measured against: a linear probe on the frozen pretrained tower.

Ridge regression, in closed form, from the pretrained image tower's pooled features of the training
sketches (no augmentation) to their ArcFace prototypes; the ridge strength is chosen on validation
Recall@1, the same score the trained encoder is selected by. On a few hundred pairs this readout can
match the full recipe; a run that cannot beat it has not shown that fine-tuning helped, and the
report says so. The probe is itself a sketch encoder of the product's family (the frozen tower plus a
linear head), so it can be exported and installed like any trained one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import torch

from engine.sketch.model import SketchEncoder
from trainer.evaluate import cmc
from trainer.runtime import autocast

T = TypeVar("T")

# Ridge strengths, as multiples of the mean eigenvalue of the centred Gram matrix (scale-free).
ALPHAS = tuple(float(a) for a in np.logspace(-4, 2, 13))


@torch.no_grad()
def tower_features(model: SketchEncoder, items: Sequence[T], to_input: Callable[[T], torch.Tensor],
                   device: torch.device, amp: torch.dtype | None = None, batch: int = 128) -> np.ndarray:
    """Pooled image-tower features (before the head) of ``items``, as float64.

    ``to_input`` turns one item into its normalised (3, S, S) input, a batch at a time, so thousands of
    training sketches never sit in memory as float tensors at once.
    """
    was_training = model.training
    model.eval()
    outs = []
    for start in range(0, len(items), batch):
        x = torch.stack([to_input(it) for it in items[start:start + batch]])
        with autocast(device, amp):
            outs.append(model.visual(x.to(device)).float().cpu())
    model.train(was_training)
    return torch.cat(outs).numpy().astype(np.float64) if outs else np.zeros((0, 0))


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


@dataclass
class LinearProbe:
    """``y = normalise(x @ weight + bias)``: the fitted readout, with how its strength was chosen."""

    weight: np.ndarray  # (D_tower, 512)
    bias: np.ndarray    # (512,)
    alpha: float
    val_recall1: dict[float, float] = field(default_factory=dict)

    def embed(self, feats: np.ndarray) -> np.ndarray:
        return _unit(feats @ self.weight + self.bias)

    def record(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "val_recall@1_by_alpha": {f"{a:g}": r for a, r in self.val_recall1.items()}}

    def head_state(self) -> dict[str, torch.Tensor]:
        """The probe as a :class:`SketchEncoder` linear head (``head_hidden=0``) state."""
        return {"head.weight": torch.from_numpy(self.weight.T.astype(np.float32).copy()),
                "head.bias": torch.from_numpy(self.bias.astype(np.float32).copy())}


def fit_ridge(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
              alphas: tuple[float, ...] = ALPHAS) -> LinearProbe:
    """Closed-form ridge ``W = (Xc'Xc + lambda I)^-1 Xc'Y`` for each strength; the best by validation R@1.

    One eigendecomposition of the centred Gram matrix serves every strength. Validation R@1 is
    scored against the validation identities' prototypes, like the run's selection metric; a tie
    keeps the stronger ridge (the simpler readout).
    """
    mu_x, mu_y = x_train.mean(0), y_train.mean(0)
    xc, yc = x_train - mu_x, y_train - mu_y
    evals, evecs = np.linalg.eigh(xc.T @ xc)
    proj = evecs.T @ (xc.T @ yc)
    scale = max(float(evals.mean()), 1e-12)
    truth = np.arange(len(y_val))
    best: LinearProbe | None = None
    scores: dict[float, float] = {}
    for alpha in sorted(alphas, reverse=True):
        w = evecs @ (proj / (np.maximum(evals, 0.0) + alpha * scale)[:, None])
        probe = LinearProbe(w, mu_y - mu_x @ w, alpha)
        scores[alpha] = float(cmc(probe.embed(x_val), y_val, truth, 1)[0])
        if best is None or scores[alpha] > scores[best.alpha]:
            best = probe
    assert best is not None
    best.val_recall1 = dict(sorted(scores.items()))
    return best
