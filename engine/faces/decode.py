"""Image decoding that never crashes on what examiners actually have on disk.

Scans, phone photos and exports arrive rotated by EXIF, in grayscale, CMYK, 16-bit or with alpha, and
sometimes truncated or not images at all. Every failure becomes :class:`BadImage` with a reason a
person can act on; the pixel limit is checked from the header, before any pixel is decoded, so a
"decompression bomb" costs nothing.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from engine.errors import BadImage
from engine.faces.jpegcheck import jpeg_problem

# 100 megapixels: more than any camera an examiner meets, far less than a bomb's gigapixels.
MAX_PIXELS = 100_000_000
# Shapes no face detector can use: the detector scales the long side to 640 pixels, and a side that
# becomes less than a pixel makes OpenCV fail. Faces need a few dozen pixels across; strips and slivers
# (1x20000) are damaged or hostile files, refused by name before decoding.
MIN_FACE_SIDE = 16
MAX_ASPECT = 20.0
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".jfif"})


def is_image_name(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        hi = arr.max() if arr.size else 0.0
        scale = 255.0 / (65535.0 if hi > 255 else max(hi, 1.0)) if hi > 255 else 1.0
        return Image.fromarray(np.clip(arr * scale, 0, 255).astype(np.uint8), "L").convert("RGB")
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 1.0)
        arr = (arr - lo) / (hi - lo or 1.0) * 255.0
        return Image.fromarray(arr.astype(np.uint8), "L").convert("RGB")
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def _png_header_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG's IHDR, read without decoding (PIL refuses data-less headers)."""
    if len(data) >= 24 and data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return None


def _too_large(name: str, w: int, h: int, max_pixels: int) -> BadImage:
    return BadImage(
        f"{name} is {w}x{h} pixels ({w * h / 1e6:.0f} MP), over the {max_pixels / 1e6:.0f} MP limit.",
        hint="Downscale it before importing; such sizes are usually corrupt or hostile files.",
    )


def face_shape_problem(width: int, height: int) -> str | None:
    """Why an image of this size cannot hold a face the detector can find (too small, a sliver), or None."""
    short, long_ = min(width, height), max(width, height)
    if short < MIN_FACE_SIDE:
        return f"it is {width}x{height} pixels: a side under {MIN_FACE_SIDE} pixels cannot hold a face"
    if long_ / short > MAX_ASPECT:
        return (f"it is {width}x{height} pixels: a strip over {MAX_ASPECT:.0f} times longer than wide is not a "
                "photo a face can be found in")
    return None


def integrity_problem(data: bytes) -> str | None:
    """How an image that decoded breaks its own format's integrity rules, or None.

    JPEG: a strict walk of its compressed data (:mod:`engine.faces.jpegcheck`; JPEG has no checksum, so
    a changed coefficient that keeps the coding valid cannot be seen by anyone). PNG: every chunk's
    CRC-32 (Pillow's ``verify``), which Pillow does not check while decoding pixel data.
    """
    if data[:2] == b"\xff\xd8":
        return jpeg_problem(data)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        try:
            with Image.open(io.BytesIO(data)) as img:
                img.verify()
        except (OSError, SyntaxError, ValueError) as exc:
            return f"a PNG chunk fails its check ({exc})"
    return None


def load_image(source: str | os.PathLike[str] | bytes, max_pixels: int = MAX_PIXELS,
               for_faces: bool = False) -> np.ndarray:
    """Decode an image file (or bytes) to an upright BGR uint8 array (OpenCV/insightface order).

    With ``for_faces``, shapes no detector can use (:func:`face_shape_problem`) are refused from the
    header, before any pixel is decoded.

    Raises:
        BadImage: empty, truncated, not an image, over ``max_pixels``, or (``for_faces``) an unusable shape.
    """
    name = "image data" if isinstance(source, bytes) else str(source)
    try:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
    except OSError as exc:
        raise BadImage(f"Cannot read {name}: {exc.strerror or exc}.") from exc
    if not data:
        raise BadImage(f"{name} is an empty file (0 bytes).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            w, h = img.size
            if w * h > max_pixels:
                raise _too_large(name, w, h, max_pixels)
            if for_faces and (shape := face_shape_problem(w, h)) is not None:
                raise BadImage(f"{name} cannot hold a face: {shape}.")
            img.load()
            upright: Image.Image = ImageOps.exif_transpose(img) or img
            rgb = _to_rgb(upright)
    except BadImage:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        size = _png_header_size(data)
        if size and size[0] * size[1] > max_pixels:
            raise _too_large(name, size[0], size[1], max_pixels) from exc
        if isinstance(exc, Image.DecompressionBombError):
            raise BadImage(f"{name} is too large to decode safely: {exc}") from exc
        if size:
            raise BadImage(f"{name} is a damaged PNG (its header reads {size[0]}x{size[1]}, the data is unreadable).") from exc
        raise BadImage(f"{name} is not an image file PIL can read (wrong extension or corrupt).") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        msg = str(exc)
        if "truncated" in msg.lower():
            raise BadImage(f"{name} is truncated (the file ends before the image does).") from exc
        raise BadImage(f"{name} could not be decoded: {msg}.") from exc
    arr = np.asarray(rgb, dtype=np.uint8)
    return np.ascontiguousarray(arr[:, :, ::-1])


def encode_png(bgr: np.ndarray) -> bytes:
    """PNG bytes of a BGR image (thumbnails, stored crops)."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(bgr[:, :, ::-1])).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def encode_jpeg(bgr: np.ndarray, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(bgr[:, :, ::-1])).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
