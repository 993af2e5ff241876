"""Reconstruction identity check over a folder of sketches, on the tiny diffusion models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.generate.model_set import ModelLocator
from engine.generate.reconstruct import Reconstructor
from engine.generate.types import RuntimeOptions
from engine.progress import ProgressEvent
from engine.validate.reconstruction import identity_check, identity_png
from tests.fixtures import tiny_diffusion


@pytest.fixture(scope="module", autouse=True)
def single_thread() -> Iterator[None]:
    with tiny_diffusion.one_thread():
        yield


def pixel_identity(bgr: np.ndarray) -> np.ndarray:
    """A stand-in ArcFace: a fixed random projection of the image at 8x8 (same image, same vector)."""
    small = cv2.resize(bgr, (8, 8), interpolation=cv2.INTER_AREA).astype(np.float32).reshape(-1) / 255.0
    proj = np.random.default_rng(7).normal(size=(512, small.size)).astype(np.float32)
    v = proj @ (small - small.mean())
    return v / max(float(np.linalg.norm(v)), 1e-12)


class PixelEmbedder:
    """A stand-in sketch encoder: the same projection, so a sketch and its photo can be compared."""

    is_baseline = False
    model_sha256 = "ab" * 32
    arcface_sha256 = None

    def embed(self, bgr: np.ndarray, face_box: object = None) -> np.ndarray:
        return pixel_identity(bgr)


def test_identity_distribution_over_a_folder(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                                             tmp_path: Path) -> None:
    models = tiny_diffusion.session_models(request, tmp_path_factory)
    rng = np.random.default_rng(0)
    (tmp_path / "set" / "photos").mkdir(parents=True)
    photos = {}
    for name in ("a", "b"):
        img = rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)
        cv2.imwrite(str(tmp_path / "set" / f"{name}.png"), img)
        photos[name] = img
    cv2.imwrite(str(tmp_path / "set" / "photos" / "a.png"), photos["a"])  # only "a" has a true photo
    rec = Reconstructor(models=ModelLocator(models), runtime=RuntimeOptions(allow_cpu=True),
                        identity=pixel_identity, face_crop=None)
    events: list[ProgressEvent] = []
    try:
        r = identity_check(tmp_path / "set", reconstructor=rec, embedder=PixelEmbedder(), identity=pixel_identity,
                           candidates=2, steps=2, size=32, progress=events.append)
    finally:
        rec.close()
    assert r["sketches"] == 2 and r["with_photo"] == 1 and r["no_face_in_generated"] == 0
    rows = {row["sketch"]: row for row in r["rows"]}
    assert len(rows["a"]["candidates"]) == 2 and rows["b"]["photo"] is None
    assert all(c["to_photo"] is None for c in rows["b"]["candidates"])
    # The sketch and its photo are the same image here: the reference cosine is 1.
    assert rows["a"]["sketch_to_photo"] == pytest.approx(1.0, abs=1e-5)
    for c in rows["a"]["candidates"]:  # same reference, so both measures agree
        assert c["to_photo"] == pytest.approx(c["to_sketch_embedding"], abs=1e-5)
    s = r["summary"]
    assert s["generated_to_sketch_embedding"]["n"] == 4 and s["generated_to_true_photo"]["n"] == 2
    assert -1 <= s["generated_to_sketch_embedding"]["median"] <= 1
    assert events and events[-1].total == 2 * 2 * 2
    assert identity_png(r)[:8] == b"\x89PNG\r\n\x1a\n"
