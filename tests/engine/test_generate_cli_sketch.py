"""``sketchface reconstruct --sketch IMAGE`` embeds the drawing itself and records which embedder did it."""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.cli import main
from engine.generate.imaging import array_sha256
from engine.generate.provenance import read_record
from tests.fixtures import tiny_diffusion


@pytest.fixture(scope="module", autouse=True)
def single_thread() -> Iterator[None]:
    with tiny_diffusion.one_thread():
        yield


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture
def sketch(tmp_path: Path) -> Path:
    """A drawing with texture where the tiny detector looks for a face (so the baseline finds one)."""
    rng = np.random.default_rng(3)
    img = np.full((128, 128), 235, np.uint8)
    img[24:104, 24:104] = (rng.random((80, 80)) * 200).astype(np.uint8)
    path = tmp_path / "sketch.png"
    Image.fromarray(img).save(path)
    return path


def _run(sketch: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> dict:  # type: ignore[type-arg]
    rc = main(["reconstruct", "--sketch", str(sketch), "--prompt", "portrait", "-n", "1", "--seed", "9",
               "--steps", "1", "--width", "32", "--height", "32", "--allow-cpu", "--no-identity",
               "--out", str(out), "--json"])
    assert rc == 0
    return dict(json.loads(capsys.readouterr().out))


def _expected(sketch: Path) -> np.ndarray:
    from engine.faces.decode import load_image
    from engine.sketch import load_sketch_embedder

    vec = np.asarray(load_sketch_embedder("cpu").embed(load_image(str(sketch))), np.float32).reshape(-1)
    return vec / np.linalg.norm(vec)


def test_sketch_is_embedded_by_the_trained_encoder_when_installed(installed_models: Path, sketch: Path,
                                                                   tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    doc = _run(sketch, tmp_path / "out", capsys)
    assert doc["embedding"] == {"from": "sketch", "baseline": False}
    record = read_record(doc["candidates"][0]["path"])
    assert record is not None
    src = record["sources"]
    assert src["embedding_from"] == "sketch" and src["sketch_embedder_baseline"] == "false"
    assert src["sketch_embedder_sha256"]
    # The output was driven by exactly the vector the sketch embedder gives for this drawing.
    assert src["embedding_sha256"] == array_sha256(_expected(sketch))


def test_sketch_without_trained_encoder_is_recorded_as_baseline(installed_models: Path, sketch: Path,
                                                                tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    shutil.rmtree(installed_models / "sketch_encoder")
    doc = _run(sketch, tmp_path / "out", capsys)
    assert doc["embedding"] == {"from": "sketch", "baseline": True}
    record = read_record(doc["candidates"][0]["path"])
    assert record is not None and record["sources"]["sketch_embedder_baseline"] == "true"
    assert record["sources"]["sketch_embedder"] == "arcface-baseline"


def test_embedding_file_still_wins_over_the_sketch(installed_models: Path, sketch: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    vec = np.random.default_rng(0).normal(size=512).astype(np.float32)
    np.save(tmp_path / "v.npy", vec)
    rc = main(["reconstruct", "--embedding", str(tmp_path / "v.npy"), "--sketch", str(sketch), "--prompt", "p",
               "-n", "1", "--steps", "1", "--width", "32", "--height", "32", "--allow-cpu", "--no-identity",
               "--out", str(tmp_path / "out"), "--json"])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["embedding"] == {"from": "file", "baseline": False}
    record = read_record(doc["candidates"][0]["path"])
    assert record is not None
    assert record["sources"]["embedding_sha256"] == array_sha256(vec / np.linalg.norm(vec))


def test_reconstruct_needs_an_embedding_or_a_sketch(installed_models: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["reconstruct", "--prompt", "portrait", "--allow-cpu", "--out", str(tmp_path / "out")])
    assert rc == 2
    assert "--embedding" in capsys.readouterr().err and not (tmp_path / "out").exists()
