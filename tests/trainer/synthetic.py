"""Procedural faces for trainer tests: identities drawn from parameters, photos and derived sketches.

Each identity is a parameter vector (face shape, eye spacing/size/height, brows, nose length, mouth
width/height/opening, hair line, glasses, beard). Its *photo* is a flat-colour rendering (PIL) sized
so the tiny SCRFD-signature detector's centred face box covers the features; its *sketch* is the
product's own XDoG line drawing of a re-rendering with slightly perturbed pose, then distorted (small
affine warp, stroke thickness change, speckle) and placed on a larger page at a random offset.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFilter

PHOTO = 160


@dataclass(frozen=True)
class Identity:
    face_w: float
    face_h: float
    eye_dx: float
    eye_y: float
    eye_r: float
    brow_dy: float
    brow_tilt: float
    nose_len: float
    mouth_w: float
    mouth_y: float
    mouth_open: float
    hair_line: float
    glasses: bool
    beard: bool
    skin: int


def random_identity(rng: np.random.Generator) -> Identity:
    """Parameters in face units (the face box's side), wide ranges so identities differ at coarse scale."""
    u = rng.uniform
    return Identity(face_w=u(0.30, 0.44), face_h=u(0.40, 0.55), eye_dx=u(0.10, 0.21), eye_y=u(-0.16, 0.0),
                    eye_r=u(0.025, 0.06), brow_dy=u(0.05, 0.11), brow_tilt=u(-0.04, 0.04),
                    nose_len=u(0.07, 0.20), mouth_w=u(0.06, 0.19), mouth_y=u(0.14, 0.28),
                    mouth_open=u(0.0, 0.05), hair_line=u(-0.42, -0.18), glasses=bool(rng.random() < 0.35),
                    beard=bool(rng.random() < 0.35), skin=int(rng.integers(185, 200)))


# The face box's side as a fraction of the photo: the tiny detector's centred box (and so the aligned
# ArcFace crop) covers the central 30 %, so the whole head (outline, hair, beard) lands in the crop.
FACE_BOX = 0.34


def render(ident: Identity, size: int = PHOTO, dx: float = 0.0, dy: float = 0.0) -> np.ndarray:
    """The identity's face as an RGB uint8 image (``dx``, ``dy``: small shift in face units)."""
    s = float(size)
    f = FACE_BOX * s
    img = Image.new("RGB", (size, size), (150, 160, 170))
    d = ImageDraw.Draw(img)
    cx, cy = 0.5 * s + dx * f, 0.5 * s + dy * f
    fw, fh = ident.face_w * f, ident.face_h * f
    skin = (ident.skin, int(ident.skin * 0.8), int(ident.skin * 0.65))
    hair = (40, 30, 25)
    d.ellipse([cx - fw * 1.1, cy - fh * 1.12, cx + fw * 1.1, cy + fh * 0.5], fill=hair)  # hair mass
    d.ellipse([cx - fw, cy - fh, cx + fw, cy + fh], fill=skin)
    y0 = cy - fh * 1.12
    top = max(cy + ident.hair_line * f, y0 + 0.05 * f)  # the fringe's lower edge
    d.chord([cx - fw * 1.02, y0, cx + fw * 1.02, 2 * top - y0], 180, 360, fill=hair)
    if ident.beard:
        d.chord([cx - fw * 0.97, cy - fh * 0.15, cx + fw * 0.97, cy + fh], 0, 180, fill=(60, 45, 38))
    ey, er = cy + ident.eye_y * f, ident.eye_r * f
    line = max(1, size // 60)
    for side in (-1, 1):
        ex = cx + side * ident.eye_dx * f
        d.ellipse([ex - er * 1.6, ey - er, ex + er * 1.6, ey + er], fill=(245, 245, 245))
        d.ellipse([ex - er * 0.7, ey - er * 0.7, ex + er * 0.7, ey + er * 0.7], fill=(25, 25, 25))
        by, tilt = ey - ident.brow_dy * f, side * ident.brow_tilt * f
        d.line([ex - er * 2.0, by + tilt, ex + er * 2.0, by - tilt], fill=hair, width=2 * line)
        if ident.glasses:
            g = er * 2.5
            d.ellipse([ex - g, ey - g * 0.8, ex + g, ey + g * 0.8], outline=(15, 15, 15), width=2 * line)
    nl, nb = ident.nose_len * f, ey + er
    d.line([cx, nb, cx - nl * 0.15, nb + nl], fill=(110, 70, 55), width=line)
    d.line([cx - nl * 0.25, nb + nl, cx + nl * 0.2, nb + nl], fill=(110, 70, 55), width=line)
    my, mw, mo = cy + ident.mouth_y * f, ident.mouth_w * f, ident.mouth_open * f
    d.ellipse([cx - mw, my - mo - 0.02 * f, cx + mw, my + mo + 0.02 * f], fill=(140, 40, 40))
    img = img.filter(ImageFilter.GaussianBlur(0.5))
    return np.asarray(img)


def photo(ident: Identity, rng: np.random.Generator) -> np.ndarray:
    """RGB photo: the rendering plus mild sensor noise."""
    rgb = render(ident).astype(np.float32) + rng.normal(0, 2.0, (PHOTO, PHOTO, 3))
    return np.clip(rgb, 0, 255).astype(np.uint8)


def sketch(ident: Identity, rng: np.random.Generator) -> np.ndarray:
    """Grayscale sketch on a page: XDoG of a shifted rendering, warped, re-stroked, speckled, offset."""
    from trainer.sketches import xdog

    size = 2 * PHOTO
    rgb = render(ident, size, dx=rng.uniform(-0.03, 0.03), dy=rng.uniform(-0.03, 0.03))
    gray = xdog(np.ascontiguousarray(rgb[:, :, ::-1]))
    angle, scale = rng.uniform(-4, 4), rng.uniform(0.95, 1.05)
    m = cv2.getRotationMatrix2D((size / 2, size / 2), angle, scale).astype(np.float64)
    m[:, 2] += rng.uniform(-4, 4, 2)
    gray = cv2.warpAffine(gray, m, (size, size), flags=cv2.INTER_LINEAR, borderValue=255)
    if rng.random() < 0.4:
        gray = cv2.erode(gray, np.ones((2, 2), np.uint8))  # heavier pencil
    speck = rng.random(gray.shape) < 0.001
    gray[speck] = 0
    page = np.full((int(size * 1.3), int(size * 1.2)), 255, np.uint8)
    oy = int(rng.integers(0, page.shape[0] - size))
    ox = int(rng.integers(0, page.shape[1] - size))
    page[oy:oy + size, ox:ox + size] = np.minimum(page[oy:oy + size, ox:ox + size], gray)
    return page


def write_dataset(root: Path, n_ids: int, seed: int = 0, unpaired: int = 0) -> list[Identity]:
    """``root/real/id_XXXX.jpg`` + ``root/sketch/id_XXXX.png`` for ``n_ids`` identities (+ unpaired extras)."""
    rng = np.random.default_rng(seed)
    (root / "real").mkdir(parents=True, exist_ok=True)
    (root / "sketch").mkdir(parents=True, exist_ok=True)
    idents = [random_identity(rng) for _ in range(n_ids)]
    for i, ident in enumerate(idents):
        Image.fromarray(photo(ident, rng)).save(root / "real" / f"id_{i:04d}.jpg", quality=95)
        Image.fromarray(sketch(ident, rng)).save(root / "sketch" / f"id_{i:04d}.png")
    for j in range(unpaired):
        Image.fromarray(photo(random_identity(rng), rng)).save(root / "real" / f"lonely_{j}.jpg")
    return idents
