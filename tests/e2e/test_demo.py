"""``sketchface demo``: tiny models, sample photos and a demo case in a separate home, all labelled DEMO."""

from __future__ import annotations

import json
import os
from pathlib import Path

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
