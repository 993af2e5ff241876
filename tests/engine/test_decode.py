"""Decoding what examiners really have on disk, and refusing what would crash or exhaust memory."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.errors import BadImage
from engine.faces import load_image


def _save(img: Image.Image, path: Path, **kw: object) -> Path:
    img.save(path, **kw)
    return path


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    path = _save(img, tmp_path / "rot.jpg", exif=exif)
    assert load_image(path).shape == (40, 20, 3)


@pytest.mark.parametrize("mode", ["L", "CMYK", "RGBA", "LA", "P", "I;16"])
def test_modes_become_bgr_uint8(tmp_path: Path, mode: str) -> None:
    base = Image.new("RGB", (16, 12), (10, 120, 250))
    img = base.convert("L").convert("I;16") if mode == "I;16" else base.convert(mode)
    suffix = ".tif" if mode == "CMYK" else ".png"
    arr = load_image(_save(img, tmp_path / f"x{suffix}"))
    assert arr.dtype == np.uint8 and arr.shape == (12, 16, 3)


def test_sixteen_bit_is_scaled_not_clipped(tmp_path: Path) -> None:
    arr16 = np.full((8, 8), 40000, np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(arr16).save(path)
    out = load_image(path)
    assert 140 < out[0, 0, 0] < 170  # 40000/65535*255 = 155


def test_alpha_is_composited_on_white(tmp_path: Path) -> None:
    img = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    assert load_image(_save(img, tmp_path / "a.png"))[0, 0].tolist() == [255, 255, 255]


def test_zero_bytes(tmp_path: Path) -> None:
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(BadImage, match="empty file"):
        load_image(tmp_path / "empty.jpg")


def test_text_file_named_jpg(tmp_path: Path) -> None:
    (tmp_path / "notes.jpg").write_text("this is not an image")
    with pytest.raises(BadImage, match="not an image"):
        load_image(tmp_path / "notes.jpg")


def test_truncated_jpeg(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(buf, "JPEG")
    (tmp_path / "cut.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(BadImage, match="truncated"):
        load_image(tmp_path / "cut.jpg")


def png_header_only(width: int, height: int) -> bytes:
    """A PNG signature + IHDR claiming a huge size, and no pixel data (a decompression-bomb header)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))


def test_huge_header_is_refused_before_decoding(tmp_path: Path) -> None:
    (tmp_path / "bomb.png").write_bytes(png_header_only(30000, 30000))
    with pytest.raises(BadImage, match="900 MP"):
        load_image(tmp_path / "bomb.png")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BadImage, match="Cannot read"):
        load_image(tmp_path / "nope.jpg")
