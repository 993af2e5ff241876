"""Pencil-style sketches from photos (XDoG, dodge-blend), to bootstrap photo/sketch pairs.

Why: agencies have far more mugshots than solved sketch cases. Synthetic sketches of their own photos
give the encoder the photo-to-line-drawing gap to learn before real forensic sketches fine-tune it.
``make_sketch_dataset`` writes ``OUT/sketch/<stem>.png`` (and ``OUT/real/<stem>.<ext>`` copies), i.e. a
ready dataset root for ``python -m trainer train --set data.root=OUT``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from engine.errors import BadImage
from engine.faces import encode_png, is_image_name, load_image
from engine.fsutil import atomic_write_bytes

METHODS = ("xdog", "dodge")


def _gray01(bgr: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.float32) / 255.0


def xdog(bgr: np.ndarray, sigma: float | None = None, k: float = 1.6, tau: float = 0.985, epsilon: float = -0.004,
         phi: float = 250.0) -> np.ndarray:
    """eXtended Difference of Gaussians line drawing (Winnemoeller et al. 2012); uint8, ink dark on white.

    D = G_sigma - tau * G_{k sigma}; pixels with D >= epsilon are paper, the others fade to ink with a
    soft tanh ramp of steepness ``phi``. Flat regions of any tone stay white (D ~ (1 - tau) * tone),
    so only edges draw, like a pencil outline. ``sigma`` defaults to the short side / 300.
    """
    g = _gray01(bgr)
    sigma = sigma if sigma is not None else max(0.6, min(g.shape) / 300.0)
    g1 = cv2.GaussianBlur(g, (0, 0), sigma)
    g2 = cv2.GaussianBlur(g, (0, 0), sigma * k)
    d = g1 - tau * g2
    e = np.where(d >= epsilon, 1.0, 1.0 + np.tanh(phi * (d - epsilon)))
    return np.clip(e * 255.0, 0, 255).astype(np.uint8)


def dodge(bgr: np.ndarray, sigma: float | None = None, gamma: float = 1.6) -> np.ndarray:
    """Colour-dodge pencil sketch: the gray image divided by its blurred negative; uint8, ink dark.

    ``sigma`` defaults to the short side / 40; ``gamma`` > 1 darkens the strokes.
    """
    g = _gray01(bgr)
    sigma = sigma if sigma is not None else max(1.0, min(g.shape) / 40.0)
    blur = cv2.GaussianBlur(1.0 - g, (0, 0), sigma)
    out = np.clip(g / np.maximum(1.0 - blur, 1e-3), 0.0, 1.0) ** gamma
    return (out * 255.0).astype(np.uint8)


def sketch_image(bgr: np.ndarray, method: str = "xdog") -> np.ndarray:
    """A grayscale pencil-style sketch of a BGR photo."""
    if method == "xdog":
        return xdog(bgr)
    if method == "dodge":
        return dodge(bgr)
    raise ValueError(f"unknown sketch method {method!r}; choose one of {', '.join(METHODS)}")


def _resize_max(bgr: np.ndarray, max_side: int) -> np.ndarray:
    h, w = bgr.shape[:2]
    if max_side <= 0 or max(h, w) <= max_side:
        return bgr
    f = max_side / max(h, w)
    return cv2.resize(bgr, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)


def make_sketch_dataset(photos: str | Path, out: str | Path, method: str = "xdog", copy_photos: bool = True,
                        max_side: int = 1024, overwrite: bool = False,
                        on_event: Callable[[str, dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Sketch every photo in ``photos`` into ``out/sketch`` (and copy it to ``out/real``); returns counts.

    Existing sketches are kept unless ``overwrite`` (so an interrupted run resumes). Unreadable files
    and stems that occur twice are skipped and listed.
    """
    src, dst = Path(photos), Path(out)
    files = sorted(p for p in src.iterdir() if p.is_file() and is_image_name(p))
    (dst / "sketch").mkdir(parents=True, exist_ok=True)
    if copy_photos:
        (dst / "real").mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    done, kept, bad, dups = 0, 0, [], []
    for i, path in enumerate(files):
        if path.stem in seen:
            dups.append(path.name)
            continue
        seen.add(path.stem)
        target = dst / "sketch" / f"{path.stem}.png"
        if target.exists() and not overwrite:
            kept += 1
        else:
            try:
                bgr = _resize_max(load_image(path), max_side)
            except BadImage as exc:
                bad.append(f"{path.name}: {exc}")
                continue
            gray = sketch_image(bgr, method)
            atomic_write_bytes(target, encode_png(np.repeat(gray[:, :, None], 3, axis=2)))
            done += 1
        if copy_photos and not (dst / "real" / path.name).exists():
            shutil.copy2(path, dst / "real" / path.name)
        if on_event is not None and (i % 25 == 0 or i == len(files) - 1):
            on_event("progress", {"done": i + 1, "total": len(files)})
    return {"photos": len(files), "sketched": done, "kept": kept, "unreadable": bad, "duplicate_stems": dups,
            "out": str(dst), "method": method}
