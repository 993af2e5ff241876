"""Sketch transforms in torch: tensor conversion, normalisation and the weak/strong training augmentations.

The trainer's pipeline is ``preprocess.prepare_gray`` (the same crop the app uses) -> :func:`gray_tensor`
-> :class:`SketchAugment` -> :func:`normalize_tensor` (numerically identical to ``preprocess.normalize``).
Every random draw comes from an explicit ``torch.Generator``, so a sample's views depend only on
(seed, epoch, index): data-loader workers and resumed runs produce exactly the same images.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch  # noqa: TID253 - training-side module, imported only on use
import torch.nn.functional as F  # noqa: TID253
import torchvision.transforms.v2.functional as TF

from engine.sketch.config import PreprocessConfig
from engine.sketch.preprocess import prepare_gray


@dataclass
class AugmentConfig:
    """One augmentation pipeline's strengths (all probabilities in [0, 1]).

    Attributes:
        rotate: max rotation in degrees; scale: max relative zoom; translate: max shift (fraction of side);
        shear: max shear in degrees; perspective_p / perspective: chance and strength of a keystone warp;
        thicken_p / thin_p: chance of thicker / thinner strokes (3x3 morphology);
        blur_p / blur_sigma: chance and max sigma of a Gaussian blur; contrast / brightness / gamma: max
        relative change; erase_p / erase_area: chance and max area of a blanked rectangle (missing strokes);
        noise_p / noise_std: chance and std of paper noise; invert_p: chance of white-on-black.
    """

    rotate: float = 5.0
    scale: float = 0.05
    translate: float = 0.03
    shear: float = 0.0
    perspective_p: float = 0.0
    perspective: float = 0.0
    thicken_p: float = 0.0
    thin_p: float = 0.0
    blur_p: float = 0.0
    blur_sigma: float = 0.0
    contrast: float = 0.1
    brightness: float = 0.05
    gamma: float = 0.0
    erase_p: float = 0.0
    erase_area: float = 0.0
    noise_p: float = 0.0
    noise_std: float = 0.0
    invert_p: float = 0.0


def weak_augment() -> AugmentConfig:
    """The teacher's view: small pose and contrast changes only."""
    return AugmentConfig()


def strong_augment() -> AugmentConfig:
    """The student's view: the variation between two artists drawing the same face."""
    return AugmentConfig(rotate=12.0, scale=0.12, translate=0.07, shear=6.0, perspective_p=0.4, perspective=0.12,
                         thicken_p=0.25, thin_p=0.15, blur_p=0.3, blur_sigma=1.0, contrast=0.3, brightness=0.12,
                         gamma=0.3, erase_p=0.25, erase_area=0.08, noise_p=0.3, noise_std=0.03, invert_p=0.05)


def gray_tensor(gray: np.ndarray) -> torch.Tensor:
    """uint8 (S, S) -> float32 (1, S, S) in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(gray)).to(torch.float32).div_(255.0).unsqueeze(0)


def normalize_tensor(x: torch.Tensor, cfg: PreprocessConfig) -> torch.Tensor:
    """(1, S, S) or (N, 1, S, S) in [0, 1] -> three channels with the encoder's mean/std.

    The same arithmetic as :func:`engine.sketch.preprocess.normalize` (tests pin the equality).
    """
    shape = (3, 1, 1) if x.dim() == 3 else (1, 3, 1, 1)
    mean = torch.tensor(cfg.mean, dtype=torch.float32, device=x.device).view(shape)
    std = torch.tensor(cfg.std, dtype=torch.float32, device=x.device).view(shape)
    reps = (3, 1, 1) if x.dim() == 3 else (1, 3, 1, 1)
    return (x.repeat(reps) - mean) / std


def eval_tensor(image: np.ndarray, face_box: Sequence[float] | None, cfg: PreprocessConfig) -> torch.Tensor:
    """Sketch image -> (3, S, S) tensor without augmentation (validation; equals the app's input)."""
    return normalize_tensor(gray_tensor(prepare_gray(image, face_box, cfg)), cfg)


def _u(gen: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=gen))


def _p(gen: torch.Generator, p: float) -> bool:
    return p > 0 and float(torch.rand((), generator=gen)) < p


class SketchAugment:
    """A stochastic sketch augmentation on (1, S, S) tensors in [0, 1] (ink dark, paper 1.0).

    Args:
        cfg: strengths; :func:`weak_augment` / :func:`strong_augment` give the recipe's two views.
    """

    def __init__(self, cfg: AugmentConfig) -> None:
        self.cfg = cfg

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        c = self.cfg
        side = x.shape[-1]
        # Draw every parameter unconditionally, in a fixed order: the stream stays aligned whatever
        # branches are taken, so a config change in one op does not reshuffle the others.
        angle, scale = _u(gen, -c.rotate, c.rotate), _u(gen, 1 - c.scale, 1 + c.scale)
        tx, ty = _u(gen, -c.translate, c.translate) * side, _u(gen, -c.translate, c.translate) * side
        shear = [_u(gen, -c.shear, c.shear), _u(gen, -c.shear, c.shear)]
        do_persp = _p(gen, c.perspective_p)
        corners = [_u(gen, 0.0, c.perspective) * side for _ in range(8)]
        do_thick, do_thin, do_blur = _p(gen, c.thicken_p), _p(gen, c.thin_p), _p(gen, c.blur_p)
        sigma = _u(gen, 0.3, max(0.3, c.blur_sigma))
        contrast, brightness = _u(gen, 1 - c.contrast, 1 + c.contrast), _u(gen, 1 - c.brightness, 1 + c.brightness)
        gamma = math.exp(_u(gen, -c.gamma, c.gamma))
        do_erase, area, aspect = _p(gen, c.erase_p), _u(gen, 0.02, max(0.02, c.erase_area)), _u(gen, 0.5, 2.0)
        ex, ey = _u(gen, 0.0, 1.0), _u(gen, 0.0, 1.0)
        do_noise, do_invert = _p(gen, c.noise_p), _p(gen, c.invert_p)
        noise_seed = int(torch.randint(0, 2**31 - 1, (), generator=gen))

        paper = [1.0]
        x = TF.affine(x, angle=angle, translate=[tx, ty], scale=scale, shear=shear,
                      interpolation=TF.InterpolationMode.BILINEAR, fill=paper)
        if do_persp:
            s = side - 1
            start = [[0, 0], [s, 0], [s, s], [0, s]]
            end = [[int(corners[0]), int(corners[1])], [int(s - corners[2]), int(corners[3])],
                   [int(s - corners[4]), int(s - corners[5])], [int(corners[6]), int(s - corners[7])]]
            x = TF.perspective(x, start, end, interpolation=TF.InterpolationMode.BILINEAR, fill=paper)
        if do_thick:  # dark strokes grow: a min filter
            x = -F.max_pool2d(-x.unsqueeze(0), 3, stride=1, padding=1).squeeze(0)
        elif do_thin:
            x = F.max_pool2d(x.unsqueeze(0), 3, stride=1, padding=1).squeeze(0)
        if do_blur:
            k = max(3, int(2 * math.ceil(3 * sigma) + 1))
            x = TF.gaussian_blur(x, [k, k], [sigma, sigma])
        x = ((x - 0.5) * contrast + 0.5) * brightness
        x = x.clamp(0.0, 1.0).pow(gamma)
        if do_erase:
            h = max(1, min(side, int(round(math.sqrt(area * aspect) * side))))
            w = max(1, min(side, int(round(math.sqrt(area / aspect) * side))))
            i, j = int(ey * (side - h)), int(ex * (side - w))
            x = x.clone()
            x[:, i:i + h, j:j + w] = 1.0
        if do_noise:
            noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(noise_seed))
            x = x + noise * c.noise_std
        if do_invert:
            x = 1.0 - x
        return x.clamp(0.0, 1.0)
