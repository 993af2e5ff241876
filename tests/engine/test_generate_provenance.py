"""Provenance of generated images: PNG metadata round trip, model digests, the visible SYNTHETIC mark."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.fsutil import sha256_file
from engine.generate import provenance
from engine.generate.model_set import BASE, FACEID, SAFETY, VAE, ModelLocator
from engine.generate.reconstruct import Reconstructor
from engine.generate.types import ReconstructionRequest, RuntimeOptions
from tests.fixtures import tiny_diffusion


@pytest.fixture(scope="session")
def gen_models(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_diffusion.session_models(request, tmp_path_factory)


@pytest.fixture(scope="module", autouse=True)
def single_thread() -> Iterator[None]:
    with tiny_diffusion.one_thread():
        yield


def _face() -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray((rng.random((64, 48, 3)) * 255).astype(np.uint8))


def test_record_round_trips_through_the_png(tmp_path: Path) -> None:
    record = provenance.build_record("reconstruction", parameters={"prompt": "p", "steps": 30}, seed=42,
                                     models={"m": {"f.bin": "ab" * 32}}, sources={"sketch_sha256": "cd" * 32})
    path = tmp_path / "out" / "c.png"
    digest = provenance.save_png(_face(), record, path)
    assert digest == sha256_file(path)
    back = provenance.read_record(path)
    assert back == record
    assert back["synthetic"] is True and back["seed"] == 42
    assert back["digital_source_type"].endswith("trainedAlgorithmicMedia")
    info = Image.open(path).info
    assert "trainedAlgorithmicMedia" in info["XML:com.adobe.xmp"]
    assert info["Description"].startswith("SYNTHETIC")
    assert provenance.read_record(provenance.png_bytes(_face(), record)) == record


def test_a_plain_png_has_no_record(tmp_path: Path) -> None:
    path = tmp_path / "plain.png"
    _face().save(path)
    assert provenance.read_record(path) is None


def test_visible_mark_is_a_band_at_the_bottom_only() -> None:
    img = Image.new("RGB", (256, 256), (200, 180, 160))
    marked = np.asarray(provenance.add_mark(img)).astype(int)
    plain = np.asarray(img).astype(int)
    assert marked.shape == plain.shape
    band = max(10, round(256 * 0.065))
    assert np.array_equal(marked[: 256 - band], plain[: 256 - band])  # the face is untouched
    bottom = marked[256 - band:]
    assert bottom.mean() < plain.mean() / 2  # dark band...
    assert (bottom.max(axis=2) > 200).sum() > 50  # ...with white lettering
    assert np.asarray(provenance.add_mark(Image.new("RGB", (24, 24)))).shape == (24, 24, 3)  # tiny images too


def test_reconstruction_outputs_carry_full_provenance(gen_models: Path, tmp_path: Path) -> None:
    emb = np.random.default_rng(3).normal(size=512).astype(np.float32)
    rec = Reconstructor(models=ModelLocator(gen_models), runtime=RuntimeOptions(allow_cpu=True), identity=None)
    req = ReconstructionRequest(embedding=emb / np.linalg.norm(emb), prompt="portrait", seeds=(77,), steps=2,
                                width=32, height=32, sources={"sketch_sha256": "e" * 64})
    cand = rec.reconstruct(req).candidates[0]
    path = tmp_path / "cand.png"
    cand.save(path)
    record = provenance.read_record(path)
    assert record is not None and record["synthetic"] is True and record["kind"] == "reconstruction"
    assert record["seed"] == 77 and record["marked"] is True
    params = record["parameters"]
    assert params["prompt"] == "portrait" and params["steps"] == 2 and params["likeness_strength"] == 1.1
    assert params["mode"] == "faceid" and params["scheduler"] == "DDIMScheduler"
    assert record["sources"]["sketch_sha256"] == "e" * 64 and len(record["sources"]["embedding_sha256"]) == 64
    assert set(record["models"]) == {BASE, VAE, FACEID, SAFETY}  # the safety checker is on by default
    assert record["safety_checker"] == {"enabled": True, "model": SAFETY, "flagged": False, "action": "none"}
    weights = gen_models / FACEID / "ip-adapter-faceid_sd15.bin"
    assert record["models"][FACEID]["ip-adapter-faceid_sd15.bin"] == sha256_file(weights)
    unet = gen_models / BASE / "unet" / "diffusion_pytorch_model.safetensors"
    assert record["models"][BASE]["unet/diffusion_pytorch_model.safetensors"] == sha256_file(unet)
    assert "diffusers" in record["libraries"]
    # The saved image shows the band; the unmarked copy does not.
    assert not np.array_equal(np.asarray(cand.image), np.asarray(cand.unmarked))


def test_model_digests_follow_file_changes(gen_models: Path, tmp_path: Path) -> None:
    import shutil

    shutil.copytree(gen_models / VAE, tmp_path / VAE)
    loc = ModelLocator(tmp_path)
    first = loc.digests(VAE)
    assert first == {rel: sha256_file(tmp_path / VAE / rel) for rel in first}
    assert loc.digests(VAE) == first
    config = tmp_path / VAE / "config.json"
    config.write_text(config.read_text() + "\n")  # a modified file must not be served from the cache
    assert loc.digests(VAE)["config.json"] == sha256_file(config) != first["config.json"]
