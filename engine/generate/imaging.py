"""Image conversions at the generation boundary: BGR arrays <-> RGB PIL, sizes, the lineart control image."""

from __future__ import annotations

import hashlib

import numpy as np
from PIL import Image, ImageOps

from engine.errors import BadImage, InvalidRequest
from engine.generate.types import ImageInput


def to_pil_rgb(image: ImageInput) -> Image.Image:
    """An RGB PIL image from a PIL image (any mode) or a BGR/gray ``uint8`` array (engine convention)."""
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise BadImage(f"Expected an 8-bit image array, got dtype {arr.dtype}.")
    if arr.ndim == 2:
        return Image.fromarray(arr, "L").convert("RGB")
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        return Image.fromarray(np.ascontiguousarray(arr[:, :, 2::-1]), "RGB")
    raise BadImage(f"Expected an HxW or HxWx3 image array, got shape {arr.shape}.")


def to_bgr(image: Image.Image) -> np.ndarray:
    """A BGR ``uint8`` array (what the face pipeline takes) from a PIL image."""
    rgb = np.asarray(image.convert("RGB"))
    return np.ascontiguousarray(rgb[:, :, ::-1])


def check_size(width: int, height: int) -> None:
    """Diffusion works on latents 1/8 of the image: sizes must be positive multiples of 8."""
    if width <= 0 or height <= 0 or width % 8 or height % 8:
        raise InvalidRequest(f"Image size must be positive multiples of 8, got {width}x{height}.")


def fit(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scale and centre-crop to exactly ``width`` x ``height`` (keeps the face's proportions)."""
    return ImageOps.fit(image, (width, height), method=Image.Resampling.LANCZOS)


def lineart_control(sketch: ImageInput, width: int, height: int) -> Image.Image:
    """The ControlNet lineart condition from a sketch: white lines on black, at the output size.

    Why a line extraction and not an inversion: lineart ControlNets were trained on line drawings,
    while forensic sketches carry pencil shading. Inverted, a shaded cheek becomes a bright area that
    the ControlNet follows as if it were a line. :func:`extract_lines` keeps strokes (thin, darker than
    their surroundings) and only the edges of shaded areas.
    """
    gray = np.asarray(fit(ImageOps.grayscale(to_pil_rgb(sketch)), width, height), dtype=np.float32) / 255.0
    lines = extract_lines(gray)
    return Image.fromarray(lines, "L").convert("RGB")


def extract_lines(gray: np.ndarray, stroke_px: float | None = None) -> np.ndarray:
    """Strokes of a grey sketch (1 = paper, 0 = ink) as white-on-black ``uint8`` lines (XDoG-style).

    A difference of Gaussians responds where a pixel is darker than its neighbourhood at the scale
    of a stroke, so flat or slowly varying shading gives no response inside, only at its border.
    The response is soft-thresholded (tanh) so faint strokes still show, as in XDoG.

    Args:
        gray: H x W floats in [0, 1].
        stroke_px: the widest stroke to keep as a line (default: 0.6 % of the short side, min 1.5 px).
    """
    import cv2

    ink = 1.0 - np.clip(np.asarray(gray, dtype=np.float32), 0.0, 1.0)
    short = min(ink.shape[:2])
    sigma = stroke_px if stroke_px is not None else max(1.5, 0.006 * short)
    fine = cv2.GaussianBlur(ink, (0, 0), sigma * 0.5)
    coarse = cv2.GaussianBlur(ink, (0, 0), sigma * 1.6 * 1.6)
    response = np.maximum(fine - coarse, 0.0)
    scale = float(np.percentile(response, 99.5))
    if scale <= 1e-4:  # a blank page: no lines
        return np.zeros(ink.shape[:2], dtype=np.uint8)
    soft = np.tanh(3.0 * np.maximum(response / scale - 0.15, 0.0))
    return np.clip(soft * 255.0 + 0.5, 0, 255).astype(np.uint8)


def plain_inversion(sketch: ImageInput, width: int, height: int) -> Image.Image:
    """The sketch inverted and auto-contrasted: the earlier control image, kept as a comparison baseline."""
    gray = ImageOps.grayscale(to_pil_rgb(sketch))
    return fit(ImageOps.autocontrast(ImageOps.invert(gray), cutoff=1), width, height).convert("RGB")


def array_sha256(arr: np.ndarray) -> str:
    """SHA-256 identifying an array's content (dtype, shape and bytes), for provenance records."""
    a = np.ascontiguousarray(arr)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())
    return h.hexdigest()
