"""A file dropped by hand into a model whose other files came from an import is refused, not pinned on first use.

Trust on first use is for a model placed wholly by hand: nothing is known about it, so its files are pinned
the first time they load. A model whose files came through ``models import`` (or ``sketch install``) has a
known origin; an unpinned file appearing beside them later (an attacker's ``model.onnx`` in the sketch
encoder's folder, which the loader prefers over the checked weights) must not be pinned and run.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from engine.errors import ModelTampered
from engine.models import digests, model_dir
from engine.models.bundle import import_bundle

DET, REC, ENC = "buffalo_l.det_10g", "buffalo_l.w600k_r50", "sketch_encoder"


def _sketch() -> np.ndarray:
    image = np.full((96, 96, 3), 255, np.uint8)
    image[20:76, 30:66] = 0
    return image


def _evil_onnx(tmp_path: Path, tiny_models_dir: Path) -> Path:
    """The attacker's ONNX sketch encoder: same input and output, other weights."""
    from tests.fixtures import tiny_sketch

    root = tmp_path / "attacker_encoder"
    (root / REC).mkdir(parents=True)
    shutil.copy2(tiny_models_dir / REC / "w600k_r50.onnx", root / REC / "w600k_r50.onnx")
    return tiny_sketch.build(root, seed=1) / "model.onnx"


@pytest.fixture
def imported_without_onnx(tmp_path: Path, tiny_models_dir: Path) -> Path:
    """Detector, recognizer and the sketch encoder's weights and config, imported (no ONNX export)."""
    for model_id in (DET, REC):
        import_bundle(tiny_models_dir / model_id)
    bundle = tmp_path / "bundle" / ENC
    bundle.mkdir(parents=True)
    for name in ("model.safetensors", "config.json"):
        shutil.copy2(tiny_models_dir / ENC / name, bundle / name)
    import_bundle(bundle)
    assert not (model_dir(ENC) / "model.onnx").exists()
    return model_dir(ENC)


def test_an_onnx_dropped_into_an_imported_sketch_encoder_is_refused_and_not_pinned(
        imported_without_onnx: Path, tmp_path: Path, tiny_models_dir: Path) -> None:
    from engine.sketch.embedder import load_sketch_embedder

    shutil.copyfile(_evil_onnx(tmp_path, tiny_models_dir), imported_without_onnx / "model.onnx")
    with pytest.raises(ModelTampered, match="added to an imported model by hand") as caught:
        load_sketch_embedder("cpu")  # "auto" prefers the ONNX file when there is one
    assert "sketchface sketch export-onnx" in caught.value.hint
    assert "sketchface models import" in caught.value.hint
    assert f"{ENC}/model.onnx" not in digests.read_lock(), "the dropped file was pinned"
    with pytest.raises(ModelTampered):  # still refused the second time: nothing was learnt from the first
        load_sketch_embedder("cpu", backend="onnx")


def test_importing_the_file_properly_makes_it_load(imported_without_onnx: Path, tmp_path: Path,
                                                   tiny_models_dir: Path) -> None:
    from engine.sketch.embedder import load_sketch_embedder

    bundle = tmp_path / "onnx_bundle" / ENC
    bundle.mkdir(parents=True)
    shutil.copy2(tiny_models_dir / ENC / "model.onnx", bundle / "model.onnx")
    import_bundle(bundle)
    embedder = load_sketch_embedder("cpu", backend="onnx")
    assert embedder.backend == "onnxruntime" and np.isfinite(embedder.embed(_sketch())).all()


def test_negative_control_a_model_placed_wholly_by_hand_is_still_pinned_on_first_load(
        installed_models: Path) -> None:
    from engine.sketch.embedder import load_sketch_embedder

    assert f"{ENC}/model.onnx" not in digests.load_pins().files
    assert load_sketch_embedder("cpu").backend == "onnxruntime"
    pins = digests.read_lock()
    assert pins[f"{ENC}/model.onnx"]["source"] == digests.FIRST_LOAD_SOURCE
    assert pins[f"{ENC}/model.safetensors"]["source"] == digests.FIRST_LOAD_SOURCE
