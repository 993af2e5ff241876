"""``sketchface reconstruct`` / ``sketchface vary`` end to end on the tiny models."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.cli import main
from engine.fsutil import sha256_file
from engine.generate.provenance import read_record
from tests.fixtures import tiny_diffusion


@pytest.fixture(scope="session")
def gen_models(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_diffusion.session_models(request, tmp_path_factory)


@pytest.fixture(scope="module", autouse=True)
def single_thread() -> Iterator[None]:
    with tiny_diffusion.one_thread():
        yield


@pytest.fixture(autouse=True)
def models_and_no_network(gen_models: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKETCHFACE_MODELS_DIR", str(gen_models))
    monkeypatch.delenv("REPLICATE_API_TOKEN", raising=False)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    vec = np.random.default_rng(0).normal(size=512).astype(np.float32)
    np.save(tmp_path / "sketch.npy", vec)
    sketch = np.full((64, 64), 240, np.uint8)
    sketch[20:24, 10:54] = 10
    Image.fromarray(sketch).save(tmp_path / "sketch.png")
    Image.fromarray((np.random.default_rng(1).random((48, 48, 3)) * 255).astype(np.uint8)).save(tmp_path / "face.png")
    return {"npy": tmp_path / "sketch.npy", "sketch": tmp_path / "sketch.png", "face": tmp_path / "face.png"}


def test_reconstruct_writes_ranked_pngs_with_provenance(inputs: dict[str, Path], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    rc = main(["reconstruct", "--embedding", str(inputs["npy"]), "--sketch", str(inputs["sketch"]), "--structure",
               "-n", "2", "--seed", "4", "--steps", "2", "--width", "32", "--height", "32", "--allow-cpu",
               "--set", "glasses=glasses", "--out", str(out), "--json"])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["structure"] is True and doc["mode"] == "faceid" and "wearing glasses" in doc["prompt"]
    assert sorted(c["seed"] for c in doc["candidates"]) == [4, 5]
    for cand in doc["candidates"]:
        path = Path(cand["path"])
        assert path.parent == out and sha256_file(path) == cand["sha256"]
        record = read_record(path)
        assert record is not None and record["synthetic"] is True and record["seed"] == cand["seed"]
        assert record["sources"]["sketch_sha256"] == sha256_file(inputs["sketch"])
        assert record["parameters"]["prompt"] == doc["prompt"]
        assert record["sources"]["control_image_sha256"] and record["safety_checker"]["enabled"] is True
    control = Path(doc["control_image"])  # the structure lines are shown to the user
    assert control.parent == out and control.is_file() and doc["memory_plan"]["placement"] == "cpu"


def test_reconstruct_refuses_on_cpu_without_allow_cpu(inputs: dict[str, Path], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    rc = main(["reconstruct", "--embedding", str(inputs["npy"]), "--prompt", "portrait", "--out", str(out)])
    assert rc == 1
    err = capsys.readouterr().err
    assert "no usable NVIDIA GPU" in err and "--allow-cpu" in err
    assert not out.exists()


def test_reconstruct_rejects_bad_sizes(inputs: dict[str, Path], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["reconstruct", "--embedding", str(inputs["npy"]), "--prompt", "p", "--width", "33",
               "--allow-cpu", "--out", str(tmp_path)])
    assert rc == 2 and "multiples of 8" in capsys.readouterr().err


def test_vary_runs_the_local_editor(inputs: dict[str, Path], tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "vars"
    rc = main(["vary", str(inputs["face"]), "--edits", "older,incognito", "--steps", "2", "--size", "32",
               "--seed", "1", "--allow-cpu", "--out", str(out), "--json"])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["backend"] == "instruct_pix2pix" and doc["remote"] is False
    assert [v["edit"] for v in doc["variations"]] == ["older", "incognito"]
    for v in doc["variations"]:
        record = read_record(v["path"])
        assert record is not None and record["kind"] == "variation"
        assert record["sources"]["base_image_file_sha256"] == sha256_file(inputs["face"])


def test_vary_with_replicate_needs_the_explicit_switch(inputs: dict[str, Path], tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["vary", str(inputs["face"]), "--backend", "replicate", "--edits", "older", "--out", str(tmp_path)])
    assert rc == 1 and "switched off" in capsys.readouterr().err
    rc = main(["vary", str(inputs["face"]), "--backend", "replicate", "--enable-replicate", "--edits", "older",
               "--out", str(tmp_path)])
    assert rc == 1 and "REPLICATE_API_TOKEN" in capsys.readouterr().err
