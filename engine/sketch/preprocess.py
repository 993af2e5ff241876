"""Sketch preprocessing in numpy: grayscale, orientation of ink, face-region crop, resize, normalise.

This is the one definition of how a sketch becomes encoder input. The trainer applies the same
:func:`prepare_gray` to every training sketch before its augmentations and the same normalisation
after them (``engine.sketch.transforms``), so training and inference cannot drift apart.

The face crop (:func:`crop_sketch`: the canvas guide box, else the ink box, squared with a margin) is
the one crop of a sketch anywhere in the product: search, reconstruction (embedding and structure
image), the compare overlay and the trainer all go through it; front-ends pass the guide box and
never crop themselves.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from engine.errors import BadImage
from engine.faces.decode import load_image
from engine.sketch.config import PreprocessConfig

Box = tuple[float, float, float, float]
PAPER = 255  # fill value for padding: blank paper


def check_face_box(face_box: Sequence[float] | None) -> Box | None:
    """The face box as four floats (x1, y1, x2, y2), or None; BadImage when it is not a usable box."""
    if face_box is None:
        return None
    values = tuple(face_box)
    if len(values) != 4:
        raise BadImage(f"A face box is (x1, y1, x2, y2); got {values!r}.")
    try:
        x1, y1, x2, y2 = (float(v) for v in values)
    except (TypeError, ValueError):
        raise BadImage(f"A face box is four numbers (x1, y1, x2, y2); got {values!r}.") from None
    if not all(np.isfinite((x1, y1, x2, y2))):
        raise BadImage(f"The face box {values!r} has a coordinate that is not a finite number.")
    if not (x2 > x1 and y2 > y1):
        raise BadImage(f"The face box {values!r} is empty (x2 <= x1 or y2 <= y1).")
    return x1, y1, x2, y2


def to_gray(image: np.ndarray) -> np.ndarray:
    """A uint8 grayscale copy of a BGR, BGRA or gray image (alpha composited on white paper)."""
    arr = np.asarray(image)
    if arr.size == 0 or arr.ndim not in (2, 3):
        raise BadImage(f"A sketch must be a non-empty 2-D image; got an array of shape {arr.shape}.")
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and float(np.nanmax(arr)) <= 1.0:
            arr = arr * 255.0
        arr = np.clip(np.nan_to_num(arr), 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        return arr.copy()
    channels = arr.shape[2]
    if channels == 1:
        return arr[:, :, 0].copy()
    if channels == 4:
        alpha = arr[:, :, 3:4].astype(np.float32) / 255.0
        rgb = arr[:, :, :3].astype(np.float32) * alpha + PAPER * (1.0 - alpha)
        arr = np.clip(rgb + 0.5, 0, 255).astype(np.uint8)
    elif channels != 3:
        raise BadImage(f"A sketch must have 1, 3 or 4 channels; got {channels}.")
    return cv2.cvtColor(np.ascontiguousarray(arr[:, :, :3]), cv2.COLOR_BGR2GRAY)


def orient_ink(gray: np.ndarray) -> np.ndarray:
    """Invert white-on-black sketches (dark border: chalk, negatives) so ink is dark on light paper."""
    h, w = gray.shape
    bh, bw = max(1, h // 20), max(1, w // 20)
    border = np.concatenate([gray[:bh].ravel(), gray[-bh:].ravel(), gray[:, :bw].ravel(), gray[:, -bw:].ravel()])
    return 255 - gray if float(np.median(border)) < 128 else gray


def ink_box(gray: np.ndarray, threshold: int = 200, quantile: float = 0.002,
            speck_area: float = 2e-5) -> Box | None:
    """Bounding box (x1, y1, x2, y2) of the drawing's ink; None for a blank page.

    Scans carry dust and pencil specks far from the face; they would stretch a plain bounding box to
    the page. So connected ink components smaller than ``speck_area`` of the page (at least 3 px)
    are ignored, then a ``quantile`` of the remaining ink pixels is trimmed at each end.
    """
    mask = (gray < threshold).astype(np.uint8)
    if not mask.any():
        return None
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    min_area = max(3, int(speck_area * gray.size))
    keep = np.zeros(n, dtype=bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_area
    if not keep.any():  # only specks: use them all rather than call the page blank
        keep[1:] = True
    ys, xs = np.nonzero(keep[labels])
    if quantile > 0 and xs.size > 20:
        x1, x2 = np.quantile(xs, [quantile, 1.0 - quantile])
        y1, y2 = np.quantile(ys, [quantile, 1.0 - quantile])
    else:
        x1, x2, y1, y2 = xs.min(), xs.max(), ys.min(), ys.max()
    return float(x1), float(y1), float(x2) + 1.0, float(y2) + 1.0


def face_region(gray: np.ndarray, face_box: Sequence[float] | None, cfg: PreprocessConfig) -> tuple[int, int, int]:
    """The square (x0, y0, side) the encoder sees: the guide box, else the ink box, else the page.

    The square is centred on the region, ``cfg.margin`` of its longer side added on every side; it may
    extend past the image (padded with paper), so a sketch drawn to the edge is not squeezed.
    """
    h, w = gray.shape
    box = check_face_box(face_box)
    if box is None:
        box = ink_box(gray, cfg.ink_threshold, cfg.ink_quantile)
    if box is None:
        box = (0.0, 0.0, float(w), float(h))
    x1, y1, x2, y2 = box
    side = max(x2 - x1, y2 - y1) * (1.0 + 2.0 * cfg.margin)
    side = max(side, 8.0)
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    return int(round(cx - side / 2.0)), int(round(cy - side / 2.0)), int(round(side))


def crop_square(gray: np.ndarray, x0: int, y0: int, side: int, fill: int = PAPER) -> np.ndarray:
    """Crop a square that may reach past the image, padding the outside with ``fill``."""
    h, w = gray.shape
    out = np.full((side, side), fill, dtype=np.uint8)
    sx0, sy0 = max(0, x0), max(0, y0)
    sx1, sy1 = min(w, x0 + side), min(h, y0 + side)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = gray[sy0:sy1, sx0:sx1]
    return out


def resize_square(gray: np.ndarray, size: int) -> np.ndarray:
    """Resize a square image: area averaging when shrinking (keeps thin strokes), cubic when enlarging."""
    if gray.shape[0] == size:
        return gray
    interp = cv2.INTER_AREA if gray.shape[0] > size else cv2.INTER_CUBIC
    return cv2.resize(gray, (size, size), interpolation=interp)


def _oriented_gray(image: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    gray = to_gray(image)
    return orient_ink(gray) if cfg.auto_invert else gray


def sketch_square(image: np.ndarray, face_box: Sequence[float] | None,
                  cfg: PreprocessConfig | None = None) -> tuple[int, int, int]:
    """The square (x0, y0, side), in ``image`` pixels, that the encoder sees (e.g. to frame it on the canvas)."""
    cfg = cfg or PreprocessConfig()
    return face_region(_oriented_gray(image, cfg), face_box, cfg)


def crop_sketch(image: np.ndarray, face_box: Sequence[float] | None,
                cfg: PreprocessConfig | None = None) -> np.ndarray:
    """The sketch's face square at full resolution: uint8 gray, ink dark on paper, padded with paper.

    The one crop of a sketch in the product (search, reconstruction, compare overlay, trainer).

    Args:
        image: BGR/BGRA/gray array as :func:`engine.faces.load_image` returns.
        face_box: (x1, y1, x2, y2) of the face in ``image`` (the canvas guide), or None for the ink box.
        cfg: the embedder's preprocessing (``embedder.preprocess_config``); None for the defaults.
    """
    cfg = cfg or PreprocessConfig()
    gray = _oriented_gray(image, cfg)
    x0, y0, side = face_region(gray, face_box, cfg)
    return crop_square(gray, x0, y0, side)


def crop_sketch_png(png: bytes, face_box: Sequence[float] | None, cfg: PreprocessConfig | None = None) -> bytes:
    """:func:`crop_sketch` of an encoded image, as a grayscale PNG (for front-ends that show the crop)."""

    ok, buf = cv2.imencode(".png", crop_sketch(load_image(png), face_box, cfg))
    if not ok:  # pragma: no cover - encoding a valid uint8 array does not fail
        raise BadImage("The cropped sketch could not be encoded as PNG.")
    return bytes(buf)


def prepare_gray(image: np.ndarray, face_box: Sequence[float] | None, cfg: PreprocessConfig) -> np.ndarray:
    """Sketch image -> uint8 (S, S) grayscale of the face region: the common start of training and inference.

    Args:
        image: BGR/BGRA/gray array as :func:`engine.faces.load_image` returns.
        face_box: (x1, y1, x2, y2) of the face in ``image`` (the canvas guide), or None for the ink box.
        cfg: the encoder's preprocessing config.
    """
    return resize_square(crop_sketch(image, face_box, cfg), cfg.input_size)


def normalize(gray: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """uint8 (S, S) gray (or float in [0, 1]) -> float32 (3, S, S): three equal channels, CLIP mean/std."""
    x = np.asarray(gray, dtype=np.float32)
    if np.asarray(gray).dtype == np.uint8:
        x = x / 255.0
    mean = np.asarray(cfg.mean, dtype=np.float32).reshape(3, 1, 1)
    std = np.asarray(cfg.std, dtype=np.float32).reshape(3, 1, 1)
    return ((np.broadcast_to(x, (3, *x.shape)) - mean) / std).astype(np.float32)


def preprocess(image: np.ndarray, face_box: Sequence[float] | None, cfg: PreprocessConfig) -> np.ndarray:
    """Sketch image -> float32 (3, S, S) encoder input (what :class:`SketchEmbedder` feeds the network)."""
    return normalize(prepare_gray(image, face_box, cfg), cfg)
