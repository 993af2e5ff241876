"""Hostile import folders: what a folder handed over by someone else may hold, through ``sketchface gallery add``.

Each import runs in its own process with a time limit and an address-space cap, so a hang or a
runaway read fails the test instead of the machine.
"""

from __future__ import annotations

import io
import json
import os
import random
import resource
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.faces.decode import integrity_problem
from engine.gallery import create_gallery, open_gallery
from tests.fixtures.photos import small_photo_folder

REPO = Path(__file__).resolve().parents[2]
MEMORY_CAP = 6 * 2**30


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def _add(folder: Path, timeout: float = 180) -> tuple[subprocess.CompletedProcess[str], dict]:  # type: ignore[type-arg]
    done = subprocess.run([sys.executable, "-m", "engine.cli", "gallery", "add", "g", str(folder), "--json"],
                          cwd=REPO, capture_output=True, text=True, timeout=timeout, preexec_fn=_cap_memory)
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert done.returncode == 0, (done.returncode, done.stderr[-3000:])
    return done, json.loads(done.stdout)


def _reasons(report: dict, kind: str = "bad") -> dict[str, str]:  # type: ignore[type-arg]
    return {Path(b["path"]).name: b["reason"] for b in report[kind]}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs and /dev/zero are POSIX")
def test_fifo_device_link_and_link_loops_are_skipped_with_reasons_and_the_import_finishes(
        installed_models: Path, tmp_path: Path) -> None:
    folder = tmp_path / "handed_over"
    good = small_photo_folder(folder, 3, seed=21)
    os.mkfifo(folder / "pipe.jpg")
    (folder / "zero.jpg").symlink_to("/dev/zero")
    (folder / "loop.jpg").symlink_to(folder / "loop.jpg")
    (folder / "ping.jpg").symlink_to(folder / "pong.jpg")
    (folder / "pong.jpg").symlink_to(folder / "ping.jpg")
    (folder / "gone.jpg").symlink_to(folder / "missing.jpg")
    (folder / "alias.jpg").symlink_to(good[0])  # a link to a real photo: followed, recorded once
    (folder / "sub").mkdir()
    (folder / "sub" / "up").symlink_to(folder, target_is_directory=True)  # a folder loop: never walked
    create_gallery("g").close()

    _, report = _add(folder)
    reasons = _reasons(report)
    assert "FIFO" in reasons["pipe.jpg"]
    assert "device" in reasons["zero.jpg"]
    assert all("loops" in reasons[n] for n in ("loop.jpg", "ping.jpg", "pong.jpg"))
    assert "missing" in reasons["gone.jpg"]
    assert report["skipped"] == 6 and report["added"] == 3
    with open_gallery("g") as g:
        assert {p for _, p in g.store.photo_paths()} == {str(p) for p in good}
    done, again = _add(folder)  # a re-run skips them again and reads nothing twice
    assert again["skipped"] == 6 and again["unchanged"] == 3


@pytest.mark.parametrize("make", ["fifo", "dev_zero"])
def test_a_fifo_or_a_dev_zero_link_alone_neither_hangs_nor_eats_memory(installed_models: Path, tmp_path: Path,
                                                                       make: str) -> None:
    folder = tmp_path / "one"
    small_photo_folder(folder, 1, seed=23)
    if make == "fifo":
        os.mkfifo(folder / "x.jpg")
    else:
        (folder / "x.jpg").symlink_to("/dev/zero")
    create_gallery("g").close()
    _, report = _add(folder, timeout=60)
    assert report["skipped"] == 1 and report["added"] == 1 and "x.jpg" in _reasons(report)


def test_a_directly_named_fifo_is_skipped_not_waited_on(installed_models: Path, tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.png")
    create_gallery("g").close()
    _, report = _add(tmp_path / "pipe.png", timeout=60)
    assert report["skipped"] == 1 and "FIFO" in report["bad"][0]["reason"]


def test_a_one_by_twenty_thousand_png_gets_a_plain_reason(installed_models: Path, tmp_path: Path) -> None:
    folder = tmp_path / "strips"
    folder.mkdir()
    Image.new("RGB", (1, 20000), (120, 90, 60)).save(folder / "strip.png")
    Image.new("RGB", (40, 20000), (120, 90, 60)).save(folder / "sliver.png")
    create_gallery("g").close()
    done, report = _add(folder)
    reasons = _reasons(report)
    assert "1x20000" in reasons["strip.png"] and "40x20000" in reasons["sliver.png"], reasons
    assert not report["failed"]
    assert "OpenCV" not in done.stdout + done.stderr and "cv2" not in done.stdout + done.stderr


def _flip_until_suspect(good: bytes, rng: random.Random) -> bytes:
    """A bit flip in the compressed data that still decodes and that breaks the JPEG's own coding."""
    sos = good.find(b"\xff\xda")
    while True:
        m = bytearray(good)
        m[rng.randrange(sos + 20, len(good) - 2)] ^= 1 << rng.randrange(8)
        try:
            Image.open(io.BytesIO(bytes(m))).load()
        except (OSError, SyntaxError, ValueError):
            continue
        if integrity_problem(bytes(m)):
            return bytes(m)


def test_bit_flipped_jpegs_that_still_decode_are_listed_as_suspect(installed_models: Path, tmp_path: Path) -> None:
    folder = tmp_path / "flipped"
    photos = small_photo_folder(folder, 8, seed=22)
    rng = random.Random(5)
    for p in photos[:6]:
        p.write_bytes(_flip_until_suspect(p.read_bytes(), rng))
    create_gallery("g").close()
    done, report = _add(folder)
    suspect = _reasons(report, "suspect")
    assert set(suspect) == {p.name for p in photos[:6] if p.name not in _reasons(report)}, (suspect, report["bad"])
    assert len(suspect) >= 4  # a flip may also wipe out the face: then it is not indexed at all
    with open_gallery("g") as g:  # the rule: suspect files are indexed, and stay listed
        assert {Path(p).name for p, _ in g.store.suspect_photos()} == set(suspect)
    info = subprocess.run([sys.executable, "-m", "engine.cli", "gallery", "info", "g", "--bad"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert info.stdout.count("suspect (indexed)") == len(suspect)


def test_intact_jpegs_and_pngs_are_not_suspect(tmp_path: Path) -> None:
    """Negative control: encoders' ordinary output (Pillow, OpenCV, restart markers, grayscale) passes."""
    import cv2

    rng = np.random.default_rng(0)
    img = (rng.random((96, 128, 3)) * 255).astype(np.uint8)
    outs = []
    for q, sub in ((95, 0), (75, 2), (50, 1)):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "JPEG", quality=q, subsampling=sub)
        outs.append(buf.getvalue())
    buf = io.BytesIO()
    Image.fromarray(img[:, :, 0]).save(buf, "JPEG")
    outs.append(buf.getvalue())
    outs.append(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_RST_INTERVAL, 3])[1].tobytes())
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG")
    outs.append(buf.getvalue())
    assert [integrity_problem(b) for b in outs] == [None] * len(outs)


def test_a_png_with_a_bad_chunk_crc_is_suspect() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (1, 2, 3)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    ihdr_end = 8 + 8 + 13
    struct.pack_into(">I", data, ihdr_end, zlib.crc32(b"not it"))
    assert integrity_problem(bytes(data))
