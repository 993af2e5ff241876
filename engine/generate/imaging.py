"""Image conversions at the generation boundary: BGR arrays <-> RGB PIL, sizes, the lineart control image."""

from __future__ import annotations

import hashlib

import numpy as np
from PIL import Image, ImageOps

from engine.errors import BadImage
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
        raise ValueError(f"Image size must be positive multiples of 8, got {width}x{height}.")


def fit(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scale and centre-crop to exactly ``width`` x ``height`` (keeps the face's proportions)."""
    return ImageOps.fit(image, (width, height), method=Image.Resampling.LANCZOS)


def lineart_control(sketch: ImageInput, width: int, height: int) -> Image.Image:
    """The ControlNet lineart condition from a sketch: white lines on black, at the output size.

    Why: lineart ControlNets were trained on inverted line drawings, while forensic sketches are dark
    strokes on light paper; autocontrast removes the paper's grey so only strokes condition the model.
    """
    gray = ImageOps.grayscale(to_pil_rgb(sketch))
    lines = ImageOps.autocontrast(ImageOps.invert(gray), cutoff=1)
    return fit(lines, width, height).convert("RGB")


def array_sha256(arr: np.ndarray) -> str:
    """SHA-256 identifying an array's content (dtype, shape and bytes), for provenance records."""
    a = np.ascontiguousarray(arr)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())
    return h.hexdigest()
