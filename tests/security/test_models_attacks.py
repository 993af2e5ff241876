"""Attacks on model loading and installing, as someone who can write the models folder would try them.

- a recognizer (or sketch encoder) swapped between the pin check and the load, by replacing the file or
  by re-pointing a symlink: a racing swapper thread during 40 loads, and the swap placed exactly between
  the check and the session;
- the pins edited along with the file, without the workstation key;
- a bundle carrying code and a pickle, and a partial bundle.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine import cli, paths
from engine.demo_models import build_recognizer
from engine.errors import ModelInvalid, ModelTampered
from engine.fsutil import sha256_bytes
from engine.models import installed, model_dir
from engine.models.bundle import BadBundle, import_bundle

DET, REC, ENC = "buffalo_l.det_10g", "buffalo_l.w600k_r50", "sketch_encoder"
LOADS = 40


@pytest.fixture
def tiny(tiny_models_dir: Path) -> Path:
    """The tiny detector and recognizer, imported as a user would (pinned at first import)."""
    for model_id in (DET, REC):
        import_bundle(tiny_models_dir / model_id)
    return tiny_models_dir


@pytest.fixture
def evil_rec(tmp_path: Path) -> Path:
    """The attacker's recognizer: the same signature and size as the tiny one, other weights."""
    return build_recognizer(tmp_path / "attacker" / "w600k_r50.onnx", seed=1)


def _crop() -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.integers(0, 255, (112, 112, 3), dtype=np.uint8)


def _embedding(pipeline: Any) -> np.ndarray:
    return np.asarray(pipeline.embed([_crop()])[0])


def _pipeline_with(det: Path, rec: Path) -> Any:
    from engine.faces.pipeline import FacePipeline

    return FacePipeline(det, rec, device="cpu")


def _load() -> Any:
    from engine.faces.pipeline import load_pipeline

    return load_pipeline("cpu", det_size=640)


def _make_link(target: Path, link: Path) -> None:
    """Point ``link`` at ``target`` atomically (a new link renamed over the old one)."""
    tmp = link.with_name(f".{link.name}.{threading.get_ident()}.lnk")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    os.replace(tmp, link)


def _put_file(source: Path, target: Path) -> None:
    """Replace ``target`` with the bytes of ``source`` atomically (a hard link renamed over it)."""
    tmp = target.with_name(f".{target.name}.{threading.get_ident()}.swap")
    tmp.unlink(missing_ok=True)
    os.link(source, tmp)
    os.replace(tmp, target)


# -- finding 4: swapped between the pin check and the load -------------------------------------------


def _race(target: Path, good: Path, evil: Path, flip: Callable[[Path, Path], None]) -> dict[str, int]:
    """40 loads while a thread flips ``target`` between the good and the attacker's file; the figures."""
    good_vec = _embedding(_pipeline_with(model_dir(DET) / "det_10g.onnx", good))
    evil_vec = _embedding(_pipeline_with(model_dir(DET) / "det_10g.onnx", evil))
    assert not np.allclose(good_vec, evil_vec), "the attacker's recognizer must be told apart by its output"
    pinned = sha256_bytes(good.read_bytes())
    stop = threading.Event()
    flips = 0

    def swapper() -> None:
        nonlocal flips
        while not stop.is_set():
            for source in (evil, good):
                flip(source, target)
                flips += 1

    figures = {"loads": 0, "refused": 0, "ran_pinned": 0, "ran_swapped": 0, "swapped_recorded_as_pinned": 0}
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # hand the GIL over often, as a second process would not need to wait for it
    thread = threading.Thread(target=swapper, daemon=True)
    thread.start()
    try:
        for _ in range(LOADS):
            figures["loads"] += 1
            try:
                pipeline = _load()
            except ModelInvalid:  # ModelTampered: the attacker's bytes were hashed and refused
                figures["refused"] += 1
                continue
            vec = _embedding(pipeline)
            if np.allclose(vec, evil_vec, atol=1e-5):
                figures["ran_swapped"] += 1
                if pipeline.recognizer_sha256 == pinned:
                    figures["swapped_recorded_as_pinned"] += 1
            else:
                assert np.allclose(vec, good_vec, atol=1e-5)
                assert pipeline.recognizer_sha256 == pinned
                figures["ran_pinned"] += 1
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(old_interval)
    figures["flips"] = flips
    print(f"\nrace figures ({flip.__name__}): {json.dumps(figures)}")
    return figures


def test_race_a_swapper_replacing_the_recognizer_during_40_loads_never_gets_its_file_run(
        tmp_path: Path, tiny: Path, evil_rec: Path) -> None:
    target = model_dir(REC) / "w600k_r50.onnx"
    good = tmp_path / "good" / "w600k_r50.onnx"
    good.parent.mkdir()
    shutil.copy2(target, good)
    figures = _race(target, good, evil_rec, _put_file)
    assert figures["flips"] > LOADS  # the swapper really raced the loads
    assert figures["ran_swapped"] == 0, figures
    assert figures["ran_pinned"] + figures["refused"] == LOADS


def test_race_a_swapper_re_pointing_a_symlinked_recognizer_during_40_loads_never_gets_its_file_run(
        tmp_path: Path, tiny: Path, evil_rec: Path) -> None:
    target = model_dir(REC) / "w600k_r50.onnx"
    good = tmp_path / "good" / "w600k_r50.onnx"
    good.parent.mkdir()
    shutil.move(target, good)
    target.symlink_to(good)  # the same bytes, through a link: the pin still matches
    figures = _race(target, good, evil_rec, _make_link)
    assert figures["flips"] > LOADS
    assert figures["ran_swapped"] == 0, figures
    assert figures["ran_pinned"] + figures["refused"] == LOADS


@pytest.fixture
def swap_at_session(monkeypatch: pytest.MonkeyPatch) -> Callable[[Callable[[], None]], list[int]]:
    """Run ``swap`` once, when onnxruntime is first asked for a session: after every pin check, before any load."""
    import onnxruntime as ort

    def install(swap: Callable[[], None]) -> list[int]:
        real = ort.InferenceSession.__init__
        calls: list[int] = []

        def swapping(self: Any, *args: Any, **kwargs: Any) -> None:
            if not calls:
                swap()
            calls.append(1)
            real(self, *args, **kwargs)

        monkeypatch.setattr(ort.InferenceSession, "__init__", swapping)
        return calls

    return install


@pytest.mark.parametrize("how", ["replace the file", "re-point a symlink"])
def test_a_recognizer_swapped_after_its_pin_check_is_not_the_one_that_runs(
        tmp_path: Path, tiny: Path, evil_rec: Path, how: str,
        swap_at_session: Callable[[Callable[[], None]], list[int]]) -> None:
    target = model_dir(REC) / "w600k_r50.onnx"
    good = tmp_path / "good" / "w600k_r50.onnx"
    good.parent.mkdir()
    shutil.copy2(target, good)
    good_vec = _embedding(_pipeline_with(model_dir(DET) / "det_10g.onnx", good))
    evil_vec = _embedding(_pipeline_with(model_dir(DET) / "det_10g.onnx", evil_rec))
    if how == "re-point a symlink":
        target.unlink()
        target.symlink_to(good)
        calls = swap_at_session(lambda: _make_link(evil_rec, target))
    else:
        calls = swap_at_session(lambda: _put_file(evil_rec, target))
    pipeline = _load()
    assert calls, "the swap ran"
    assert target.read_bytes() == evil_rec.read_bytes()  # the attacker's file is in place now
    vec = _embedding(pipeline)
    assert not np.allclose(vec, evil_vec, atol=1e-5), "the attacker's recognizer ran"
    assert np.allclose(vec, good_vec, atol=1e-5)
    assert pipeline.recognizer_sha256 == sha256_bytes(good.read_bytes())
    # ... and the next load refuses the swapped file outright.
    with pytest.raises(ModelTampered):
        _load()


def test_a_symlinked_model_file_is_loaded_from_its_resolved_path_and_that_path_is_recorded(
        tmp_path: Path, tiny: Path, caplog: pytest.LogCaptureFixture) -> None:
    target = model_dir(REC) / "w600k_r50.onnx"
    real = tmp_path / "elsewhere" / "w600k_r50.onnx"
    real.parent.mkdir()
    shutil.move(target, real)
    target.symlink_to(real)
    with caplog.at_level(logging.WARNING):
        pipeline = _load()
    refs = {ref["id"]: ref for ref in pipeline.model_refs()}
    assert refs[REC]["resolved_path"] == str(real.resolve())
    assert "resolved_path" not in refs[DET]  # a plain file records no link
    assert any("link" in r.getMessage() and str(real.resolve()) in r.getMessage() for r in caplog.records)


def _evil_encoder(tmp_path: Path, tiny_models_dir: Path) -> Path:
    """The attacker's sketch encoder: same config (same ArcFace), other weights."""
    from tests.fixtures import tiny_sketch

    root = tmp_path / "attacker_encoder"
    (root / REC).mkdir(parents=True)
    shutil.copy2(tiny_models_dir / REC / "w600k_r50.onnx", root / REC / "w600k_r50.onnx")
    return tiny_sketch.build(root, seed=1)


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_a_sketch_encoder_swapped_after_its_pin_check_is_not_the_one_that_runs(
        tmp_path: Path, installed_models: Path, tiny_models_dir: Path, backend: str,
        monkeypatch: pytest.MonkeyPatch, swap_at_session: Callable[[Callable[[], None]], list[int]]) -> None:
    from engine.sketch import embedder as embedder_mod

    evil = _evil_encoder(tmp_path, tiny_models_dir)
    good = tiny_models_dir / ENC
    assert (evil / "config.json").read_bytes() == (good / "config.json").read_bytes()
    image = np.full((96, 96, 3), 255, np.uint8)
    image[20:76, 30:66] = 0
    good_vec = embedder_mod.TrainedSketchEmbedder(good, device="cpu", backend=backend).embed(image)
    evil_vec = embedder_mod.TrainedSketchEmbedder(evil, device="cpu", backend=backend).embed(image)
    assert not np.allclose(good_vec, evil_vec, atol=1e-4)
    swapped: list[str] = []

    def swap() -> None:  # after load_sketch_embedder checked every file, as the loader starts
        if not swapped:
            for name in ("model.safetensors", "model.onnx"):
                _put_file(evil / name, model_dir(ENC) / name)
                swapped.append(name)

    if backend == "onnx":
        swap_at_session(swap)
    else:
        import safetensors.torch

        def swapping(real: Callable[..., Any]) -> Callable[..., Any]:
            def load(*args: Any, **kwargs: Any) -> Any:
                swap()
                return real(*args, **kwargs)
            return load

        for name in ("load_file", "load"):
            monkeypatch.setattr(safetensors.torch, name, swapping(getattr(safetensors.torch, name)))
    embedder = embedder_mod.load_sketch_embedder("cpu", backend=backend)
    assert swapped
    vec = embedder.embed(image)
    assert not np.allclose(vec, evil_vec, atol=1e-4), "the attacker's sketch encoder ran"
    assert np.allclose(vec, good_vec, atol=1e-4)
    assert embedder.model_sha256 == sha256_bytes((good / "model.safetensors").read_bytes())


# -- finding 9: pins editable by whoever writes the models folder ---------------------------------------


def _rewrite_digest_everywhere(old: str, new: str) -> list[Path]:
    """What an attacker without the key does: write the new digest into every pin file it can find."""
    touched = []
    for root in (paths.models_dir(), paths.config_dir()):
        for path in root.rglob("*.json"):
            text = path.read_text("utf-8")
            if old in text:
                path.write_text(text.replace(old, new), "utf-8")
                touched.append(path)
    return touched


def test_the_pins_do_not_live_in_the_models_folder(tiny: Path) -> None:
    pinned = sha256_bytes((model_dir(REC) / "w600k_r50.onnx").read_bytes())
    in_models = [p for p in paths.models_dir().rglob("*") if p.is_file() and pinned in p.read_bytes().decode(
        "utf-8", "replace")]
    assert in_models == []


def test_a_recognizer_replaced_with_its_pin_edited_without_the_key_is_a_finding_and_refused(
        tiny: Path, evil_rec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = model_dir(REC) / "w600k_r50.onnx"
    old, new = sha256_bytes(target.read_bytes()), sha256_bytes(evil_rec.read_bytes())
    shutil.copy2(evil_rec, target)
    assert _rewrite_digest_everywhere(old, new), "the attacker found a pin to edit"
    capsys.readouterr()
    assert cli.main(["models", "verify"]) == 1
    captured = capsys.readouterr()
    assert "pin" in (captured.out + captured.err).lower() and "key" in (captured.out + captured.err).lower()
    assert cli.main(["models", "status"]) == 0
    assert "NOT AUTHENTIC" in capsys.readouterr().out
    with pytest.raises(ModelTampered, match="(?i)pin"):
        _load()


def test_negative_control_pins_written_by_this_workstation_verify(tiny: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["models", "verify"]) == 0
    assert "NOT AUTHENTIC" not in capsys.readouterr().out
    _load()


def test_an_existing_lock_in_the_models_folder_is_migrated_once_and_then_ignored(
        tiny_models_dir: Path, evil_rec: Path, caplog: pytest.LogCaptureFixture) -> None:
    from engine.models import digests

    for model_id in (DET, REC):  # an install from before the pins moved: files and lock in the models folder
        shutil.copytree(tiny_models_dir / model_id, model_dir(model_id))
    good = sha256_bytes((model_dir(REC) / "w600k_r50.onnx").read_bytes())
    legacy = paths.models_dir() / "models.lock.json"
    legacy.write_text(json.dumps({"format": 1, "files": {
        f"{REC}/w600k_r50.onnx": {"sha256": good, "size": 1, "pinned_at": "2025-01-01T00:00:00+00:00",
                                  "source": "import:old"}}}), "utf-8")
    with caplog.at_level(logging.WARNING):
        assert digests.pinned_digest(REC, "w600k_r50.onnx") == good
    assert any("trusted" in r.getMessage().lower() and str(legacy) in r.getMessage() for r in caplog.records)
    assert not legacy.exists()
    _load()  # the existing install keeps working
    # Later, a lock planted in the models folder changes nothing.
    shutil.copy2(evil_rec, model_dir(REC) / "w600k_r50.onnx")
    legacy.write_text(json.dumps({"format": 1, "files": {
        f"{REC}/w600k_r50.onnx": {"sha256": sha256_bytes(evil_rec.read_bytes())}}}), "utf-8")
    with pytest.raises(ModelTampered):
        _load()


# -- finding 12: what a bundle may install ---------------------------------------------------------------


@pytest.fixture
def hostile_bundle(tmp_path: Path, tiny_models_dir: Path) -> Path:
    """A sketch-encoder bundle that also carries a Python module and a pickle."""
    import pickle

    folder = tmp_path / "bundle" / ENC
    shutil.copytree(tiny_models_dir / ENC, folder)
    (folder / "evil_module.py").write_text("import os\nos.system('echo owned')\n", "utf-8")
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    return tmp_path / "bundle"


def _models_folder_files() -> set[str]:
    return {p.relative_to(paths.models_dir()).as_posix() for p in paths.models_dir().rglob("*") if p.is_file()}


def test_a_bundle_with_a_python_module_and_a_pickle_is_refused_and_installs_nothing(
        hostile_bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["models", "import", str(hostile_bundle)]) != 0
    err = capsys.readouterr().err
    assert "evil_module.py" in err and "pytorch_model.bin" in err
    assert {f for f in _models_folder_files() if f.startswith(f"{ENC}/")} == set()
    with pytest.raises(BadBundle):
        import_bundle(hostile_bundle)


def test_a_zipped_bundle_with_a_pickle_is_refused(tmp_path: Path, tiny_models_dir: Path) -> None:
    import pickle

    bundle = tmp_path / "models.zip"
    with zipfile.ZipFile(bundle, "w") as zf:
        zf.write(tiny_models_dir / REC / "w600k_r50.onnx", f"{REC}/w600k_r50.onnx")
        zf.writestr(f"{REC}/extra.pkl", pickle.dumps(["x"]))
    with pytest.raises(BadBundle, match="extra.pkl"):
        import_bundle(bundle)
    assert not installed(REC)


def test_negative_control_the_same_bundle_without_them_installs(hostile_bundle: Path) -> None:
    (hostile_bundle / ENC / "evil_module.py").unlink()
    (hostile_bundle / ENC / "pytorch_model.bin").unlink()
    assert import_bundle(hostile_bundle) == [ENC]
    assert {f for f in _models_folder_files() if f.startswith(f"{ENC}/")} == {
        f"{ENC}/model.safetensors", f"{ENC}/config.json", f"{ENC}/model.onnx"}


def test_a_partial_bundle_lists_the_files_installed_and_says_the_model_is_incomplete(
        tmp_path: Path, tiny_models_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "partial" / ENC
    folder.mkdir(parents=True)
    shutil.copy2(tiny_models_dir / ENC / "config.json", folder / "config.json")
    assert cli.main(["models", "import", str(tmp_path / "partial")]) == 0
    out = capsys.readouterr().out
    assert f"Installed: {ENC}\n" not in out and f"Installed: {ENC}" != out.strip()
    assert f"{ENC}/config.json" in out
    assert "incomplete" in out.lower() and "model.safetensors" in out
    assert cli.main(["models", "import", str(tmp_path / "partial"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["files"] == [{"model": ENC, "file": "config.json",
                             "sha256": sha256_bytes((folder / "config.json").read_bytes())}]
    assert doc["incomplete"] == {ENC: ["model.safetensors"]}
    assert not installed(ENC)


def test_unknown_data_files_in_a_model_folder_are_not_installed_and_are_listed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "bundle" / "sd15.vae_ft_mse"
    root.mkdir(parents=True)
    (root / "config.json").write_text('{"_class_name": "AutoencoderKL"}')
    (root / "diffusion_pytorch_model.safetensors").write_bytes(b"weights")
    (root / "README.md").write_text("extra file shipped with the model")
    assert cli.main(["models", "import", str(tmp_path / "bundle")]) == 0
    out = capsys.readouterr().out
    assert "README.md" in out and "not installed" in out.lower()
    assert {f for f in _models_folder_files() if f.startswith("sd15.")} == {
        "sd15.vae_ft_mse/config.json", "sd15.vae_ft_mse/diffusion_pytorch_model.safetensors"}
