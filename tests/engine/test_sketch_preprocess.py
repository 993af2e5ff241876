"""Sketch preprocessing: gray, ink orientation, face region (guide or ink box), and numpy/torch parity."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import BadImage
from engine.sketch.config import PreprocessConfig
from engine.sketch.preprocess import (
    crop_square,
    face_region,
    ink_box,
    normalize,
    orient_ink,
    prepare_gray,
    preprocess,
    to_gray,
)


def _drawing(h: int = 300, w: int = 240) -> np.ndarray:
    """White page with a rectangle outline drawn at x 60..140, y 100..220."""
    page = np.full((h, w, 3), 255, np.uint8)
    page[100:220, 60:62] = 0
    page[100:220, 138:140] = 0
    page[100:102, 60:140] = 0
    page[218:220, 60:140] = 0
    return page


def test_gray_from_bgr_bgra_and_gray() -> None:
    bgr = np.zeros((4, 4, 3), np.uint8)
    bgr[..., 2] = 255  # pure red in BGR
    assert to_gray(bgr)[0, 0] == 76  # OpenCV's 0.299 * 255
    bgra = np.zeros((4, 4, 4), np.uint8)  # fully transparent black: blank paper
    assert (to_gray(bgra) == 255).all()
    assert to_gray(np.full((3, 3), 7, np.uint8)).tolist() == [[7] * 3] * 3
    with pytest.raises(BadImage):
        to_gray(np.zeros((0, 5, 3), np.uint8))


def test_white_on_black_is_turned_into_ink_on_paper() -> None:
    gray = to_gray(_drawing())
    assert np.array_equal(orient_ink(255 - gray), gray)
    assert np.array_equal(orient_ink(gray), gray)


def test_ink_box_ignores_specks_and_blank_pages() -> None:
    gray = to_gray(_drawing())
    rng = np.random.default_rng(0)
    ys, xs = rng.integers(0, 300, 60), rng.integers(0, 240, 60)
    specked = gray.copy()
    specked[ys, xs] = 0  # dust far from the drawing
    for img in (gray, specked):
        x1, y1, x2, y2 = ink_box(img)  # type: ignore[misc]
        assert (x1, y1, x2, y2) == pytest.approx((60, 100, 140, 220), abs=1.5)
    assert ink_box(np.full((50, 50), 255, np.uint8)) is None


def test_face_region_is_a_square_with_margin_around_the_guide_or_the_ink() -> None:
    cfg = PreprocessConfig(margin=0.1)
    gray = to_gray(_drawing())
    x0, y0, side = face_region(gray, None, cfg)
    assert side == round(120 * 1.2) and (x0 + side / 2, y0 + side / 2) == pytest.approx((100, 160), abs=1)
    x0, y0, side = face_region(gray, (0, 0, 50, 100), cfg)  # the canvas guide wins over the ink
    assert side == 120 and (x0, y0) == (-35, -10)
    crop = crop_square(gray, x0, y0, side)
    assert crop.shape == (120, 120) and crop[0, 0] == 255  # outside the page: blank paper
    with pytest.raises(BadImage):
        face_region(gray, (10, 10, 5, 20), cfg)


def test_prepared_sketch_is_the_framed_drawing_at_input_size() -> None:
    cfg = PreprocessConfig(input_size=64, margin=0.0)
    out = prepare_gray(_drawing(), None, cfg)
    assert out.shape == (64, 64) and out.dtype == np.uint8
    # 80 x 120 drawing in a 120 square: the top edge touches the border, 20/120 of paper left and right
    assert out[0, 16:48].mean() < 128 and out[63, 16:48].mean() < 128
    assert out[16:48, :9].min() == 255 and out[16:48, 55:].min() == 255
    assert out[16:48, 10:12].min() < 128
    shifted = np.full((400, 400, 3), 255, np.uint8)
    shifted[50:350, 100:340] = _drawing()
    assert np.array_equal(prepare_gray(shifted, None, cfg), out)  # where it sits on the page does not matter


def test_numpy_and_torch_normalisation_are_the_same_function() -> None:
    import torch

    from engine.sketch.transforms import eval_tensor, gray_tensor, normalize_tensor

    cfg = PreprocessConfig(input_size=32)
    gray = prepare_gray(_drawing(), None, cfg)
    a = normalize(gray, cfg)
    b = normalize_tensor(gray_tensor(gray), cfg).numpy()
    assert a.shape == (3, 32, 32) and np.allclose(a, b, atol=1e-6)
    assert np.allclose(a[:, 0, 0], (1.0 - np.array(cfg.mean)) / np.array(cfg.std), atol=1e-6)
    assert np.allclose(eval_tensor(_drawing(), None, cfg).numpy(), preprocess(_drawing(), None, cfg), atol=1e-6)
    batch = normalize_tensor(torch.stack([gray_tensor(gray)] * 2), cfg)
    assert batch.shape == (2, 3, 32, 32) and np.allclose(batch[1].numpy(), a, atol=1e-6)
