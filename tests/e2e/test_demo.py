"""``sketchface demo``: tiny models, sample photos and a demo case in a separate home, all labelled DEMO."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from engine import paths
from engine.cli import main
from engine.demo import DEMO_CASE_NUMBER, DEMO_NOTICE, MARKER, prepare_demo
from engine.errors import Cancelled, ConfigError
from engine.progress import CancelToken

pytestmark = pytest.mark.slow


@pytest.mark.real_manifest  # the product's model manifest as shipped: the demo must install under it
def test_demo_fills_its_own_home_never_the_real_one(tmp_path: Path, sketchface_home: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    real_before = sorted(p.relative_to(sketchface_home) for p in sketchface_home.rglob("*"))
    demo_home = tmp_path / "demo"
    assert main(["demo", "--home", str(demo_home), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert os.environ["SKETCHFACE_HOME"] == str(sketchface_home)  # the process is left on the real home
    assert sorted(p.relative_to(sketchface_home) for p in sketchface_home.rglob("*")) == real_before
    assert info["case_number"] == DEMO_CASE_NUMBER and info["photos"] >= 20 and "RANDOM" in info["notice"]
    assert (demo_home / MARKER).is_file()
    assert (demo_home / "data" / "models" / "sketch_encoder" / "model.safetensors").is_file()

    os.environ["SKETCHFACE_HOME"] = str(demo_home)  # what the app does when started on the demo
    try:
        assert paths.data_dir() == demo_home / "data"
        assert main(["case", "show", DEMO_CASE_NUMBER, "--json"]) == 0
        case = json.loads(capsys.readouterr().out)
        assert "DEMO" in case["case"]["title"] and case["case"]["notes"] == DEMO_NOTICE
        assert [s["label"] for s in case["searches"]] and all("DEMO" in s["label"] for s in case["searches"])
        assert main(["case", "show", DEMO_CASE_NUMBER, "--search", str(info["search_id"]), "--json"]) == 0
        shown = json.loads(capsys.readouterr().out)
        assert shown["candidates"] and shown["search"]["manifest"]["embedder"]["kind"] == "sketch_encoder"
        assert main(["case", "verify", DEMO_CASE_NUMBER]) == 0
    finally:
        os.environ["SKETCHFACE_HOME"] = str(sketchface_home)
    capsys.readouterr()
    again = prepare_demo(demo_home)  # idempotent: the prepared demo is returned, nothing rebuilt
    assert again.case_id == info["case_id"] and again.search_id == info["search_id"]


def test_demo_refuses_a_folder_with_other_data_and_cleans_up_when_cancelled(tmp_path: Path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "cases").mkdir()
    with pytest.raises(ConfigError, match="not empty"):
        prepare_demo(busy)
    assert (busy / "cases").is_dir()  # nothing touched
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        prepare_demo(tmp_path / "cancelled", cancel=token)
    assert not (tmp_path / "cancelled").exists()


def test_the_packaged_app_ships_the_files_the_demo_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the demo's photo writer with file opens recorded: every scikit-image file it reads is collected."""
    import builtins

    from engine.demo import sample_photos
    from installer import collect

    root = collect.package_dir("skimage")
    opened: set[Path] = set()
    real_open, real_load = builtins.open, np.load

    def spy_open(file: object, *a: object, **k: object) -> object:
        if isinstance(file, str | Path) and Path(file).resolve().is_relative_to(root):
            opened.add(Path(file).resolve())
        return real_open(file, *a, **k)  # type: ignore[call-overload]

    def spy_load(file: object, *a: object, **k: object) -> object:
        if isinstance(file, str | Path):
            opened.add(Path(file).resolve())
        return real_load(file, *a, **k)  # type: ignore[arg-type]

    import imageio.v3 as iio

    real_imread = iio.imread

    def spy_imread(uri: object, *a: object, **k: object) -> object:
        if isinstance(uri, str | Path):
            opened.add(Path(uri).resolve())
        return real_imread(uri, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(np, "load", spy_load)
    monkeypatch.setattr(iio, "imread", spy_imread)
    assert len(sample_photos(tmp_path / "photos")) >= 20
    read = {p for p in opened if p.is_relative_to(root / "data") and p.suffix not in (".py", ".pyi")}
    assert read, "the spy saw no scikit-image data file: it no longer observes how skimage reads them"
    spec = next(p for p in collect.DATA_PACKAGES if p.package == "skimage")
    collected = {Path(src).resolve() for src, _ in collect.data_files(spec)}
    assert read <= collected, f"demo photos not collected: {sorted(str(p) for p in read - collected)}"
