"""The software on the record: the installed environment is the lock, and doctor, manifests and re-runs say so."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from engine import environment
from engine.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _dev() -> Any:
    """tools/dev.py as a module (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location("sketchface_dev", ROOT / "tools" / "dev.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_installed_environment_equals_the_lock() -> None:
    """Names and versions of every installed distribution are the lock's, and nothing else is installed."""
    lock = environment.lock_path()
    assert lock is not None, f"no lock for {environment.lock_name()}"
    record = environment.record_for(lock)
    assert record.matches, "\n".join(d.describe() for d in record.differences)
    assert len(environment.parse_lock(lock.read_text())) > 100  # the whole environment, not the top level


def test_a_package_at_another_version_is_reported() -> None:
    """Negative control: the comparison names a changed, a missing and an extra package."""
    lock = environment.lock_path()
    assert lock is not None
    pins = environment.parse_lock(lock.read_text())
    installed = dict(pins)
    installed["numpy"] = "1.0.0"
    del installed["torch"]
    installed["left-over"] = "0.1"
    record = environment.record_for(lock, installed)
    assert record.matches is False and record.status() == "differs from the lock in 3 packages"
    assert {d.describe() for d in record.differences} == {
        f"numpy: locked {pins['numpy']}, installed 1.0.0", f"torch: locked {pins['torch']}, not installed",
        "left-over: 0.1 installed, not in the lock"}


def test_the_lock_is_sound_and_its_checks_can_fail() -> None:
    """Exactly one ONNX Runtime, no opencv-python, torch named, every pin hashed; planted faults are caught."""
    dev = _dev()
    lock = environment.lock_path()
    assert lock is not None
    text = lock.read_text()
    assert dev.check_lock(text) == []
    pins = environment.parse_lock(text)
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"  # the releases pip is capped at here
    both = text + "onnxruntime==1.31.1 \\\n    --hash=sha256:" + "0" * 64 + "\n"
    assert any("exactly one" in p for p in dev.check_lock(both))
    cv = text + "opencv-python==4.14.0.94 \\\n    --hash=sha256:" + "0" * 64 + "\n"
    assert any("opencv-python" in p for p in dev.check_lock(cv))
    assert any("without hashes" in p for p in dev.check_lock(text + "six==1.16.0\n"))


def test_the_lock_name_is_one_definition_for_every_platform() -> None:
    assert environment.lock_name("linux", "x86_64", (3, 11)) == "linux-x86_64-cp311.txt"
    assert environment.lock_name("win32", "AMD64", (3, 12)) == "windows-x86_64-cp312.txt"
    assert environment.lock_name("darwin", "arm64", (3, 11)) == "macos-arm64-cp311.txt"


def test_doctor_json_shows_the_lock_digest_and_the_match(capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["doctor", "--json"]) == 0
    env = json.loads(capsys.readouterr().out)["environment"]
    lock = environment.lock_path()
    assert lock is not None
    assert env["lock_digest"] == hashlib.sha256(lock.read_bytes()).hexdigest()
    assert env["matches_lock"] is environment.current().matches  # True in the locked set-up (the test above)
    # A drifted environment is named package by package in the text report.
    drifted = dataclasses.replace(environment.current(), differences=(environment.Difference("numpy", "2.4.6", "9"),))
    monkeypatch.setattr(environment, "current", lambda: drifted)
    assert main(["doctor"]) == 0
    text = capsys.readouterr().out
    assert "DIFFERS in 1 package(s)" in text and "numpy: locked 2.4.6, installed 9" in text


def test_a_run_manifest_carries_the_lock_digest_and_a_rerun_elsewhere_says_so(installed_models: Any,
                                                                             tmp_path: Path) -> None:
    from engine.faces import FacePipeline
    from engine.gallery import create_gallery
    from engine.search import Query, Searcher
    from engine.search.rerun import manifest_differences
    from tests.fixtures.photos import small_photo_folder

    pipeline = FacePipeline.from_models("cpu")
    small_photo_folder(tmp_path / "p", 3, seed=7)
    g = create_gallery("Env")
    g.add([tmp_path / "p"], pipeline=pipeline)
    photo = next((tmp_path / "p").glob("*.jpg")).read_bytes()
    result = Searcher(pipeline).search([Query("photo", photo)], [g], k=2)
    software = result.manifest["software"]
    assert software["lock_digest"] == environment.current().lock_digest
    assert software["matches_lock"] is environment.current().matches
    assert manifest_differences(result.manifest, result.manifest) == []
    elsewhere = {**result.manifest, "software": {**software, "lock_digest": "f" * 64, "matches_lock": False}}
    notes = manifest_differences(result.manifest, elsewhere)
    assert len(notes) == 1 and notes[0].startswith("Software environment differs")
