"""One sketch crop: the same sketch with the same guide is the same encoder input in search and reconstruction.

Before the crop moved into the engine, the desktop cropped a sketch to its guide for search (then the
encoder cropped that again to its ink), while reconstruction passed the guide box to the encoder: the
two encoder inputs differed. These tests record what the network is fed on both paths.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.errors import BadImage, GalleryError
from engine.faces import FacePipeline
from engine.gallery import Gallery, create_gallery
from engine.search import Query, RunManifest, Searcher, rerun_manifest
from engine.sketch.embedder import TrainedSketchEmbedder, load_sketch_embedder
from engine.sketch.preprocess import crop_sketch, crop_sketch_png, sketch_square
from tests.fixtures.photos import small_photo_folder

GUIDE = (150.0, 90.0, 410.0, 420.0)  # the canvas guide, in sheet pixels


def sheet_png() -> bytes:
    """A drawn face on a 560x640 sheet, off-centre, with a stray mark far from the face."""
    page = np.full((640, 560, 3), 255, np.uint8)
    cv2.ellipse(page, (280, 250), (110, 150), 0, 0, 360, (30, 30, 30), 3)
    for x in (235, 325):
        cv2.circle(page, (x, 215), 14, (20, 20, 20), 2)
    cv2.line(page, (280, 230), (268, 290), (40, 40, 40), 2)
    cv2.ellipse(page, (280, 330), (40, 12), 0, 0, 180, (40, 40, 40), 2)
    cv2.line(page, (20, 600), (90, 610), (0, 0, 0), 4)  # a note in the margin: part of the ink, not the face
    ok, buf = cv2.imencode(".png", page)
    assert ok
    return bytes(buf)


class Recorder:
    """Captures every batch the trained encoder's network is fed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.batches: list[np.ndarray] = []
        original = TrainedSketchEmbedder.forward

        def forward(emb: TrainedSketchEmbedder, batch: np.ndarray) -> np.ndarray:
            self.batches.append(np.array(batch, copy=True))
            return original(emb, batch)

        monkeypatch.setattr(TrainedSketchEmbedder, "forward", forward)

    def take(self) -> np.ndarray:
        assert len(self.batches) == 1, f"expected one encoder call, got {len(self.batches)}"
        return self.batches.pop()


@pytest.fixture
def gallery(tmp_path: Path, installed_models: Path) -> tuple[Gallery, FacePipeline]:
    pipeline = FacePipeline.from_models("cpu")
    small_photo_folder(tmp_path / "photos", 6, seed=3)
    g = create_gallery("Crop")
    g.add([tmp_path / "photos"], pipeline=pipeline)
    return g, pipeline


def test_search_and_reconstruction_feed_the_encoder_the_same_bytes_and_the_box_is_recorded(
        gallery: tuple[Gallery, FacePipeline], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.cases import add_search, create_case, get_search
    from engine.cli.generate import _sketch_embedding

    g, pipeline = gallery
    rec = Recorder(monkeypatch)
    png = sheet_png()
    embedder = load_sketch_embedder("cpu")
    assert isinstance(embedder, TrainedSketchEmbedder)  # the tiny trained encoder, not the baseline

    result = Searcher(pipeline, embedder).search([Query("sketch", png, face_box=GUIDE)], [g], k=3)
    searched = rec.take()
    path = tmp_path / "sheet.png"
    path.write_bytes(png)
    from engine.faces.decode import load_image

    vec, info, _cfg = _sketch_embedding(load_image(path), "cpu", GUIDE)  # `sketchface reconstruct --face-box`
    reconstructed = rec.take()
    assert searched.tobytes() == reconstructed.tobytes()  # byte-identical encoder input
    assert np.array_equal(vec, result.query_vector)
    assert info["sketch_embedder_baseline"] == "false"

    # Negative controls: no guide (ink box, which the margin note stretches) or another guide differ.
    Searcher(pipeline, embedder).search([Query("sketch", png)], [g], k=3)
    assert rec.take().tobytes() != searched.tobytes()
    Searcher(pipeline, embedder).search([Query("sketch", png, face_box=(100, 60, 460, 480))], [g], k=3)
    assert rec.take().tobytes() != searched.tobytes()

    # The old desktop path: crop the sheet to the guide (+12 %) itself, then search without a box.
    side = int(round(330 * 1.24))
    x0, y0 = int(round(280 - side / 2)), int(round(255 - side / 2))
    gray = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
    old = np.full((side, side), 255, np.uint8)
    old[max(0, -y0):, max(0, -x0):] = gray[max(0, y0):y0 + side, max(0, x0):x0 + side][:side - max(0, -y0),
                                                                                       :side - max(0, -x0)]
    Searcher(pipeline, embedder).search([Query("sketch", bytes(cv2.imencode(".png", old)[1]))], [g], k=3)
    assert rec.take().tobytes() != reconstructed.tobytes()

    entry = result.manifest["query"][0]
    assert entry["face_box"] == list(GUIDE)
    assert RunManifest.from_dict(result.manifest).query[0].face_box == GUIDE
    with create_case("2026-CROP", "crop") as case:
        stored = add_search(case, result.manifest, result.matches, [png])
        assert get_search(case, stored.id).manifest["query"][0]["face_box"] == list(GUIDE)
    _, again = rerun_manifest(result.manifest, [png], searcher=Searcher(pipeline, embedder), strict=True)
    assert rec.take().tobytes() == searched.tobytes()  # the re-run crops with the recorded box
    assert [m.face_id for m in again] == [m.face_id for m in result.matches]


def test_the_shown_crop_is_the_encoders_region() -> None:
    from engine.faces.decode import load_image
    from engine.sketch.config import PreprocessConfig
    from engine.sketch.preprocess import prepare_gray, resize_square

    png = sheet_png()
    cfg = PreprocessConfig(input_size=64, margin=0.08)
    crop = crop_sketch(load_image(png), GUIDE, cfg)
    x0, y0, side = sketch_square(load_image(png), GUIDE, cfg)
    assert crop.shape == (side, side) and side == round(330 * 1.16)
    assert (x0, y0) == (round(280 - 330 * 1.16 / 2), round(255 - 330 * 1.16 / 2))  # centred on the guide
    assert np.array_equal(resize_square(crop, 64), prepare_gray(load_image(png), GUIDE, cfg))
    decoded = cv2.imdecode(np.frombuffer(crop_sketch_png(png, GUIDE, cfg), np.uint8), cv2.IMREAD_GRAYSCALE)
    assert np.array_equal(decoded, crop)


def test_bad_face_boxes_are_refused_with_a_message() -> None:
    with pytest.raises(BadImage, match="empty"):
        Query("sketch", b"x", face_box=(10, 10, 5, 20))
    with pytest.raises(BadImage, match="x1, y1, x2, y2"):
        Query("sketch", b"x", face_box=(1, 2, 3))  # type: ignore[arg-type]
    with pytest.raises(BadImage, match="finite"):
        Query("sketch", b"x", face_box=(0, 0, float("nan"), 5))
    with pytest.raises(GalleryError, match="photo"):
        Query("photo", b"x", face_box=(0, 0, 5, 5))
