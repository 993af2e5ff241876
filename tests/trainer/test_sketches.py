"""make-sketches: XDoG / dodge pencil sketches, a ready dataset layout, JSON-lines output."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.faces import load_image
from tests.trainer import synthetic
from trainer.__main__ import main
from trainer.sketches import dodge, sketch_image, xdog


@pytest.mark.parametrize("method", ["xdog", "dodge"])
def test_sketch_is_dark_lines_on_white_paper(method: str) -> None:
    rng = np.random.default_rng(0)
    bgr = np.ascontiguousarray(synthetic.photo(synthetic.random_identity(rng), rng)[:, :, ::-1])
    out = sketch_image(bgr, method)
    assert out.dtype == np.uint8 and out.shape == bgr.shape[:2]
    assert np.median(out) > 200          # mostly paper
    assert (out < 100).mean() > 0.005    # but with strokes
    flat = np.full((64, 64, 3), 90, np.uint8)
    assert xdog(flat).min() > 240 and dodge(flat).min() > 200  # no edges, no ink


def test_make_sketches_writes_a_dataset_root_and_resumes(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(1)
    for i in range(3):
        Image.fromarray(synthetic.photo(synthetic.random_identity(rng), rng)).save(photos / f"p{i}.jpg")
    (photos / "broken.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "ds"
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["make-sketches", str(photos), str(out), "--method", "dodge"]) == 0
    events = [json.loads(line) for line in buf.getvalue().splitlines()]
    done = events[-1]
    assert done["event"] == "done" and done["sketched"] == 3 and len(done["unreadable"]) == 1
    assert sorted(p.name for p in (out / "sketch").iterdir()) == ["p0.png", "p1.png", "p2.png"]
    assert sorted(p.name for p in (out / "real").iterdir()) == ["p0.jpg", "p1.jpg", "p2.jpg"]
    assert load_image(out / "sketch" / "p0.png").shape[:2] == (160, 160)
    buf = io.StringIO()
    with redirect_stdout(buf):
        main(["make-sketches", str(photos), str(out)])
    again = json.loads(buf.getvalue().splitlines()[-1])
    assert again["sketched"] == 0 and again["kept"] == 3  # an interrupted run continues, never redoes
