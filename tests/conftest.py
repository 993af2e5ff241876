"""Shared fixtures: an isolated SKETCHFACE_HOME per test and tiny models built once per session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("SKETCHFACE_FORCE_CPU", "1")
TEST_PASSPHRASE = "test-examiner-passphrase"
TEST_EXAMINER = ("A. Examiner", "A-1001")


@pytest.fixture(autouse=True)
def sketchface_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Path:
    """Every test gets its own data/config/log folders, so no test sees another's galleries or cases, and an
    examiner profile (key file under the test passphrase) unless marked ``no_examiner``."""
    home = tmp_path / "sketchface_home"
    home.mkdir()
    monkeypatch.setenv("SKETCHFACE_HOME", str(home))
    for var in ("SKETCHFACE_DATA_DIR", "SKETCHFACE_CONFIG_DIR", "SKETCHFACE_LOG_DIR",
                "SKETCHFACE_MODELS_DIR", "SKETCHFACE_CASES_DIR", "SKETCHFACE_CACHE_DIR", "SKETCHFACE_EXAMINER_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SKETCHFACE_EXAMINER_PASSPHRASE", TEST_PASSPHRASE)
    if not request.node.get_closest_marker("no_examiner"):
        from engine import examiners

        examiners.add(TEST_EXAMINER[0], TEST_EXAMINER[1])  # as a script does first: sketchface examiner add
    return home


@pytest.fixture(autouse=True)
def tiny_models_stand_in(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tiny test models stand in for real ones whose publishers state a SHA-256 and size: only in tests,
    those published values are set aside so the stand-ins load (they are then pinned at first import, as any
    unpublished file is). Tests marked ``real_manifest`` keep the product's manifest as shipped."""
    if request.node.get_closest_marker("real_manifest"):
        return
    import dataclasses

    from engine.models import MODELS

    for model_id, spec in list(MODELS.items()):
        if any(f.sha256 or f.size for f in spec.files):
            files = tuple(dataclasses.replace(f, sha256=None, size=None) for f in spec.files)
            monkeypatch.setitem(MODELS, model_id, dataclasses.replace(spec, files=files))


@pytest.fixture(scope="session")
def tiny_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model set (real file formats and signatures), built once per test session."""
    from tests.fixtures import tiny_models

    out = tmp_path_factory.mktemp("tiny_models")
    tiny_models.build(out)
    return out


@pytest.fixture
def installed_models(tiny_models_dir: Path, sketchface_home: Path) -> Path:
    """Install the tiny models into this test's models dir, as `sketchface models import` would place them."""
    from engine import paths

    dest = paths.models_dir()
    for child in tiny_models_dir.iterdir():
        if child.is_dir():
            shutil.copytree(child, dest / child.name, dirs_exist_ok=True)
    return dest
