"""``sketchface sketch export-onnx`` with the sketch encoder's weights swapped between the pin check and the export.

The export must be made from the checked bytes, and only the new ``model.onnx`` may be pinned: re-pinning the
folder would sign the attacker's weights with the workstation key, and ``models verify`` would then say OK.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.errors import ModelTampered
from engine.fsutil import sha256_bytes
from engine.models import digests, model_dir
from engine.models.bundle import import_bundle

DET, REC, ENC = "buffalo_l.det_10g", "buffalo_l.w600k_r50", "sketch_encoder"


@pytest.fixture
def imported(tiny_models_dir: Path) -> Path:
    """The tiny detector, recognizer and sketch encoder, imported as a user would (pinned at import)."""
    for model_id in (DET, REC, ENC):
        import_bundle(tiny_models_dir / model_id)
    return model_dir(ENC)


def _evil_encoder(tmp_path: Path, tiny_models_dir: Path) -> Path:
    """The attacker's sketch encoder: same config (same ArcFace), other weights."""
    from tests.fixtures import tiny_sketch

    root = tmp_path / "attacker_encoder"
    (root / REC).mkdir(parents=True)
    shutil.copy2(tiny_models_dir / REC / "w600k_r50.onnx", root / REC / "w600k_r50.onnx")
    return tiny_sketch.build(root, seed=1)


def _sketch() -> np.ndarray:
    image = np.full((96, 96, 3), 255, np.uint8)
    image[20:76, 30:66] = 0
    return image


def _vec(folder: Path, backend: str) -> np.ndarray:
    from engine.sketch.embedder import TrainedSketchEmbedder

    return np.asarray(TrainedSketchEmbedder(folder, device="cpu", backend=backend).embed(_sketch()))


def test_weights_swapped_between_check_and_export_are_neither_exported_nor_pinned(
        imported: Path, tmp_path: Path, tiny_models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.sketch.install import export_installed_onnx

    evil = _evil_encoder(tmp_path, tiny_models_dir)
    target = imported / "model.safetensors"
    good_sha = sha256_bytes(target.read_bytes())
    before = digests.read_lock()
    swapped: list[str] = []

    def swap_after(real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(path: Path, *args: Any, **kwargs: Any) -> Any:
            out = real(path, *args, **kwargs)
            if Path(path).name == target.name and not swapped:  # right after the weights were hashed or read
                tmp = target.with_name(".swap")
                shutil.copyfile(evil / "model.safetensors", tmp)
                os.replace(tmp, target)
                swapped.append(real.__name__)
            return out
        return wrapper

    monkeypatch.setattr(digests, "sha256_cached", swap_after(digests.sha256_cached))
    monkeypatch.setattr(digests, "read_once", swap_after(digests.read_once))
    report = export_installed_onnx()
    assert swapped

    after = digests.read_lock()
    assert after[f"{ENC}/model.safetensors"]["sha256"] == good_sha, "the attacker's weights were signed"
    changed = {k for k in after if after[k] != before.get(k)}
    assert changed == {f"{ENC}/model.onnx"}, f"only the new export may be pinned, not {sorted(changed)}"
    assert after[f"{ENC}/model.onnx"]["sha256"] == sha256_bytes((imported / "model.onnx").read_bytes())
    assert report["model_sha256"] == good_sha

    # The export was made from the checked weights, not the attacker's.
    check = tmp_path / "check" / ENC
    shutil.copytree(tiny_models_dir / ENC, check)
    shutil.copyfile(imported / "model.onnx", check / "model.onnx")
    exported = _vec(check, "onnx")
    assert np.allclose(exported, _vec(tiny_models_dir / ENC, "torch"), atol=1e-4)
    assert not np.allclose(exported, _vec(evil, "torch"), atol=1e-4)

    # And the swapped weights are still refused by the next load, as they should be.
    from engine.sketch.embedder import load_sketch_embedder

    with pytest.raises(ModelTampered, match=r"model\.safetensors has changed"):
        load_sketch_embedder("cpu", backend="torch")


def test_negative_control_an_untouched_encoder_exports_and_loads(imported: Path) -> None:
    from engine.sketch.embedder import load_sketch_embedder
    from engine.sketch.install import export_installed_onnx

    before = digests.read_lock()
    (imported / "model.onnx").unlink()
    report = export_installed_onnx()
    assert report["max_abs_diff"] <= report["tolerance"]
    after = digests.read_lock()
    assert {k for k in after if after[k] != before.get(k)} == {f"{ENC}/model.onnx"}
    assert load_sketch_embedder("cpu", backend="onnx").backend == "onnxruntime"
