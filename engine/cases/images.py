"""Image checks and report renderings: validating stored images, display copies, the synthetic stamp.

Stored originals are never changed (their SHA-256 is evidence); everything here makes *copies*
for display, and the synthetic stamp is burnt into the display copy's pixels so that an image cut
out of a report still says what it is.
"""

from __future__ import annotations

import io
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError

from engine.errors import BadImage
from engine.paths import fonts_dir

SYNTHETIC_STAMP = "SYNTHETIC — investigative aid"
MAX_PIXELS = 64_000_000
_EXT = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "TIFF": ".tif", "BMP": ".bmp", "GIF": ".gif"}


def inspect_image(data: bytes, what: str = "image") -> tuple[str, int, int]:
    """Return (file extension, width, height) of image bytes, or raise :class:`BadImage` saying why.

    Checked before anything is stored, so a case never holds an undecodable sketch or a
    decompression bomb.
    """
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt, (w, h) = im.format or "", im.size
            if w * h > MAX_PIXELS:
                raise BadImage(f"The {what} is {w}×{h} pixels, more than the {MAX_PIXELS:,} allowed.",
                               hint="Scale it down before adding it to the case.")
            im.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise BadImage(f"The {what} could not be decoded as an image ({exc}).",
                       hint="Save it as PNG or JPEG and try again.") from exc
    return _EXT.get(fmt, ".img"), w, h


@lru_cache(maxsize=8)
def _font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    return ImageFont.truetype(str(fonts_dir() / name), size)


def display_copy(data: bytes, max_side: int, *, stamp: bool = False) -> Image.Image:
    """An RGB copy scaled to fit ``max_side`` (never enlarged), optionally stamped as synthetic."""
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        rgb = im.convert("RGBA")
    background = Image.new("RGBA", rgb.size, (255, 255, 255, 255))
    rgb = Image.alpha_composite(background, rgb).convert("RGB")
    rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    if stamp:
        stamp_synthetic(rgb)
    return rgb


def stamp_synthetic(im: Image.Image) -> None:
    """Burn a red band reading 'SYNTHETIC — investigative aid' across the bottom of ``im`` (in place)."""
    w, h = im.size
    band = max(12, h // 9)
    size = max(6, band * 3 // 5)
    font = _font(size, bold=True)
    while size > 6 and font.getlength(SYNTHETIC_STAMP) > w - 8:
        size -= 1
        font = _font(size, bold=True)
    draw = ImageDraw.Draw(im)
    draw.rectangle((0, h - band, w, h), fill=(178, 24, 24))
    tw = font.getlength(SYNTHETIC_STAMP)
    draw.text(((w - tw) / 2, h - band + (band - size) / 2 - 1), SYNTHETIC_STAMP, font=font, fill=(255, 255, 255))
    draw.rectangle((0, 0, w - 1, h - 1), outline=(178, 24, 24), width=max(1, w // 100))


def png_bytes(im: Image.Image) -> bytes:
    """Deterministic PNG encoding of a display copy (same pixels, same bytes)."""
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=False)
    return buf.getvalue()
