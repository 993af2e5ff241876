"""SketchEmbedder: trained encoder (torch / onnxruntime), ArcFace baseline, ArcFace refusal, install, CLI."""

from __future__ import annotations

import io
import json
import shutil
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import torch

from engine import models
from engine.cli import main as sketchface
from engine.errors import ModelInvalid, ModelMissing
from engine.faces import FacePipeline, encode_png
from engine.fsutil import sha256_file
from engine.sketch import (
    ArcFaceBaselineEmbedder,
    SketchEmbedder,
    TrainedSketchEmbedder,
    install_checkpoint,
    load_sketch_embedder,
)
from engine.sketch.checkpoint import load_encoder, save_encoder
from engine.sketch.onnx_export import export_onnx
from tests.fixtures.tiny_sketch import tiny_config


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _sketch(seed: int = 0, size: tuple[int, int] = (300, 240)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    page = np.full((*size, 3), 255, np.uint8)
    for _ in range(12):
        y, x = rng.integers(40, size[0] - 60), rng.integers(40, size[1] - 60)
        page[y:y + 2, x:x + int(rng.integers(10, 40))] = 0
        page[y:y + int(rng.integers(10, 40)), x:x + 2] = 0
    return page


def _run(*argv: str) -> dict:  # type: ignore[type-arg]
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert sketchface(list(argv)) == 0
    return json.loads(buf.getvalue())


def test_trained_encoder_is_used_when_installed_and_onnx_matches_torch(installed_models: Path) -> None:
    emb = load_sketch_embedder(device="cpu")
    assert isinstance(emb, TrainedSketchEmbedder) and isinstance(emb, SketchEmbedder)
    assert emb.backend == "onnxruntime" and not emb.is_baseline
    via_torch = load_sketch_embedder(device="cpu", backend="torch")
    assert via_torch.backend == "torch"
    img = _sketch()
    a, b = emb.embed(img), via_torch.embed(img)
    assert a.shape == (512,) and a.dtype == np.float32 and abs(float(np.linalg.norm(a)) - 1) < 1e-5
    assert np.max(np.abs(a - b)) < 1e-4
    assert np.array_equal(emb.embed(img), a)  # deterministic
    assert emb.model_sha256 == sha256_file(installed_models / "sketch_encoder" / "model.safetensors")
    assert emb.arcface_sha256 == sha256_file(installed_models / "buffalo_l.w600k_r50" / "w600k_r50.onnx")
    guided = emb.embed(img, face_box=(0, 0, 120, 150))
    assert float(guided @ a) < 0.9999  # the guide box changes what the encoder sees
    info = emb.describe()
    assert info["baseline"] is False and info["onnx_sha256"] and info["input_size"] == 64
    batch = emb.embed_batch([img, _sketch(1)])
    assert batch.shape == (2, 512) and np.allclose(batch[0], a, atol=1e-6)


def test_an_encoder_for_another_arcface_is_refused(installed_models: Path) -> None:
    with pytest.raises(ModelInvalid) as err:
        load_sketch_embedder(device="cpu", expected_arcface_sha256="c" * 64, against="gallery 'mugshots'")
    assert "gallery 'mugshots'" in str(err.value) and "cccccccccccc" in str(err.value)
    from tests.fixtures.tiny_models import build_recognizer

    build_recognizer(installed_models / "buffalo_l.w600k_r50" / "w600k_r50.onnx", seed=5)  # a different file
    with pytest.raises(ModelInvalid, match="installed ArcFace model"):
        load_sketch_embedder(device="cpu")


def test_without_an_encoder_the_arcface_baseline_is_used_and_labelled(installed_models: Path) -> None:
    shutil.rmtree(installed_models / "sketch_encoder")
    emb = load_sketch_embedder(device="cpu")
    assert isinstance(emb, ArcFaceBaselineEmbedder) and emb.is_baseline and emb.backend == "arcface-baseline"
    assert emb.describe()["baseline"] is True
    img = _sketch()
    vec = emb.embed(img)
    assert vec.shape == (512,) and abs(float(np.linalg.norm(vec)) - 1) < 1e-5
    pipeline = FacePipeline.from_models(device="cpu")
    from engine.sketch.config import PreprocessConfig
    from engine.sketch.preprocess import crop_square, face_region, to_gray

    gray = to_gray(img)
    x0, y0, side = face_region(gray, None, PreprocessConfig(margin=0.12))
    crop = np.repeat(crop_square(gray, x0, y0, side)[:, :, None], 3, axis=2)
    assert np.allclose(vec, pipeline.embed_unaligned(crop)[0], atol=1e-6)
    with pytest.raises(ModelInvalid, match="installed ArcFace model"):
        load_sketch_embedder(device="cpu", expected_arcface_sha256="d" * 64)


def test_nothing_installed_says_how_to_get_models() -> None:
    with pytest.raises(ModelMissing):
        load_sketch_embedder(device="cpu")


def test_onnx_export_keeps_the_file_only_when_parity_holds(tmp_path: Path) -> None:
    cfg = tiny_config("a" * 64)
    torch.manual_seed(0)
    from engine.sketch.model import build_encoder

    model = build_encoder(cfg).eval()
    report = export_onnx(model, cfg, tmp_path / "model.onnx")
    assert report.ok and report.max_abs_diff < 1e-4 and report.samples == 4
    assert (tmp_path / "model.onnx").is_file()
    with pytest.raises(ModelInvalid, match="differs from PyTorch"):
        export_onnx(model, cfg, tmp_path / "strict.onnx", tolerance=-1.0)
    assert not (tmp_path / "strict.onnx").exists() and not list(tmp_path.glob(".strict.onnx*"))


def test_install_checks_then_swaps_in_and_cli_embeds(installed_models: Path, tmp_path: Path) -> None:
    arc = sha256_file(installed_models / "buffalo_l.w600k_r50" / "w600k_r50.onnx")
    cfg = tiny_config(arc)
    torch.manual_seed(7)
    from engine.sketch.model import build_encoder

    new = save_encoder(tmp_path / "new", build_encoder(cfg).state_dict(), cfg)
    report = install_checkpoint(new)
    assert report.arcface_verified and report.onnx is not None and report.onnx["ok"]
    dest = models.model_dir("sketch_encoder")
    assert report.model_sha256 == sha256_file(dest / "model.safetensors") == sha256_file(new / "model.safetensors")
    assert (dest / "model.onnx").is_file()
    from engine.models.digests import pinned_digest

    assert pinned_digest("sketch_encoder", "model.safetensors") == report.model_sha256
    assert not [p for p in dest.parent.iterdir() if p.name.startswith(".")]  # no staging left behind

    foreign_cfg = tiny_config("e" * 64)
    foreign = save_encoder(tmp_path / "foreign", load_encoder(new)[0].state_dict(), foreign_cfg)
    with pytest.raises(ModelInvalid, match="sketch encoder.s training belongs to ArcFace file eeeeeeeeeeee"):
        install_checkpoint(foreign)
    assert sha256_file(dest / "model.safetensors") == report.model_sha256  # the installed one is untouched

    sketch_file = tmp_path / "sketch.png"
    sketch_file.write_bytes(encode_png(_sketch()))
    doc = _run("sketch", "embed", str(sketch_file), "--json", "--device", "cpu", "--out", str(tmp_path / "v.npy"))
    assert doc["baseline"] is False and doc["dim"] == 512 and len(doc["embedding"]) == 512
    assert doc["model_sha256"] == report.model_sha256 and doc["image_sha256"] == sha256_file(sketch_file)
    assert np.allclose(np.load(tmp_path / "v.npy"), doc["embedding"], atol=1e-6)
    base = _run("sketch", "embed", str(sketch_file), "--json", "--baseline", "--box", "10,10,200,260")
    assert base["baseline"] is True and base["face_box"] == [10, 10, 200, 260]
    info = _run("sketch", "info", "--json")
    assert info["installed"] and info["matches_installed_arcface"] is True and info["onnx"]
    exported = _run("sketch", "export-onnx", "--json")
    assert exported["ok"] and exported["max_abs_diff"] < 1e-4


def test_cli_install_refuses_a_folder_that_is_not_a_checkpoint(installed_models: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert sketchface(["sketch", "install", str(tmp_path)]) == 1
    assert "not a sketch-encoder checkpoint" in capsys.readouterr().err
