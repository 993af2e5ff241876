"""Fast start: showing the main window imports no torch, diffusers or onnxruntime (checked in a clean process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.gui

FORBIDDEN = ("torch", "diffusers", "onnxruntime")


def test_first_paint_imports_no_heavy_module(tmp_path: Path, sketchface_home: Path) -> None:
    """Runs the real entry point (``sketchface`` with no arguments) in a subprocess, so no other test's
    imports can hide a regression, and reads what was in ``sys.modules`` at the window's first paint."""
    probe = tmp_path / "probe.json"
    env = dict(os.environ, SKETCHFACE_STARTUP_PROBE=str(probe), QT_QPA_PLATFORM="offscreen")
    env.pop("SKETCHFACE_FORCE_CPU", None)  # the real start-up path, where device detection would want torch
    code = "import sys; from sketchface_desktop.__main__ import main; sys.exit(main([]))"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(probe.read_text())
    assert result["window"] == "MainWindow"
    loaded = [m for m in result["heavy_modules_loaded"] if m in FORBIDDEN]
    assert loaded == [], f"imported before the main window was shown: {loaded}"


def test_probe_reports_heavy_modules_when_they_are_loaded(tmp_path: Path, sketchface_home: Path) -> None:
    """The probe itself can fail: with onnxruntime imported first, it must say so."""
    probe = tmp_path / "probe.json"
    env = dict(os.environ, SKETCHFACE_STARTUP_PROBE=str(probe), QT_QPA_PLATFORM="offscreen")
    code = ("import sys, onnxruntime; from sketchface_desktop.__main__ import main; sys.exit(main([]))")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "onnxruntime" in json.loads(probe.read_text())["heavy_modules_loaded"]
