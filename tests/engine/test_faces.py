"""The face pipeline through insightface's real loading code, on the tiny models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.errors import ModelInvalid, ModelMissing, NoFaceFound
from engine.faces import FacePipeline, load_image
from tests.fixtures.photos_basic import insightface_image, textured_image


@pytest.fixture
def pipeline(installed_models: Path) -> FacePipeline:
    return FacePipeline.from_models(device="cpu")


def test_missing_models_say_how_to_get_them() -> None:
    with pytest.raises(ModelMissing) as err:
        FacePipeline.from_models()
    assert "sketchface models import" in str(err.value)


def test_every_face_is_kept_and_the_largest_is_primary(pipeline: FacePipeline) -> None:
    faces = pipeline.analyze(load_image(insightface_image("t1.jpg")))
    assert len(faces) == 2
    assert [f.primary for f in faces] == [True, False]
    assert faces[0].box.area > faces[1].box.area
    for f in faces:
        assert f.aligned.shape == (112, 112, 3)
        assert f.embedding.shape == (512,)
        assert abs(float(np.linalg.norm(f.embedding)) - 1.0) < 1e-5
        assert 0.0 <= f.quality <= 1.0


def test_same_photo_same_embedding_different_photos_differ(pipeline: FacePipeline) -> None:
    a1 = pipeline.embed_primary(load_image(insightface_image("t1.jpg"))).embedding
    a2 = pipeline.embed_primary(load_image(insightface_image("t1.jpg"))).embedding
    b = pipeline.embed_primary(textured_image(seed=3)).embedding
    assert float(a1 @ a2) > 0.9999
    assert float(a1 @ b) < 0.9


def test_flat_image_has_no_face(pipeline: FacePipeline) -> None:
    flat = np.full((400, 600, 3), 200, np.uint8)
    assert pipeline.analyze(flat) == []
    with pytest.raises(NoFaceFound):
        pipeline.embed_primary(flat)
    emb, aligned = pipeline.embed_unaligned(flat)
    assert not aligned and emb.shape == (512,)


def test_batched_embedding_matches_one_by_one(pipeline: FacePipeline) -> None:
    crops = [textured_image(seed=s, size=(112, 112)) for s in range(5)]
    batched = pipeline.embed(crops, batch_size=2)
    single = np.stack([pipeline.embed([c])[0] for c in crops])
    assert np.allclose(batched, single, atol=1e-5)


def test_quality_drops_for_blurred_faces(pipeline: FacePipeline) -> None:
    import cv2

    sharp = textured_image(seed=1, size=(640, 640))
    blurred = cv2.GaussianBlur(sharp, (0, 0), 6)
    q_sharp = pipeline.analyze(sharp)[0].quality
    q_blur = pipeline.analyze(blurred)[0].quality
    assert q_blur < q_sharp


def test_wrong_model_file_is_refused(installed_models: Path, tmp_path: Path) -> None:
    det = installed_models / "buffalo_l.det_10g" / "det_10g.onnx"
    rec = installed_models / "buffalo_l.w600k_r50" / "w600k_r50.onnx"
    with pytest.raises(ModelInvalid, match="not an ArcFace recognizer"):
        FacePipeline(det, det, device="cpu")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelInvalid, match="could not be loaded"):
        FacePipeline(junk, rec, device="cpu")
