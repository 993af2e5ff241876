"""The desktop's layering holds in the source: every module sits in a layer folder, only ops choose lanes,
and only the job hub runs them."""

from __future__ import annotations

import re
from pathlib import Path

DESKTOP = Path(__file__).resolve().parents[2] / "sketchface_desktop"
OPS = DESKTOP / "ops"
# The job hub itself and the op runner.
ALLOWED = {DESKTOP / "workers.py", OPS / "base.py"}
# A lane chosen outside ops. ``lane="process"`` is not one: it labels a subprocess job (the trainer) that
# the hub adopts with ``start_process``; no thread of the hub runs it.
PICKS_A_LANE = r"\blane=(?![\"']process[\"'])"


def test_no_module_outside_ops_submits_work_or_picks_a_lane() -> None:
    offenders = []
    for path in DESKTOP.rglob("*.py"):
        if path in ALLOWED:
            continue
        text = path.read_text(encoding="utf-8")
        if re.search(r"\.submit\(", text):
            offenders.append(f"{path.relative_to(DESKTOP)}: calls submit (build an op in sketchface_desktop/ops)")
        if path.parent != OPS and re.search(PICKS_A_LANE, text):
            offenders.append(f"{path.relative_to(DESKTOP)}: picks a lane (only ops do)")
    assert offenders == []


def test_the_check_sees_a_submit_call() -> None:
    """Negative control: the pattern used above matches the call it must forbid."""
    assert re.search(r"\.submit\(", 'self.hub.submit("title", fn, lane="io")')


def test_the_check_sees_a_lane_pick_but_not_a_subprocess_label() -> None:
    """Negative control: a hub lane chosen outside ops is caught; the subprocess job's label is not a lane."""
    assert re.search(PICKS_A_LANE, 'Op("t", fn, lane="engine")')
    assert not re.search(PICKS_A_LANE, 'super().__init__(title, fn, lane="process")')


# The import contracts (pyproject.toml, run by CI's lint-imports) name the desktop's layers by folder:
# app -> views -> controllers -> ops -> workers/engine_session, and views never import the engine. A
# module put anywhere else at the top of the package would sit in no layer, so neither contract would see
# it; only the start-up plumbing lives there.
LAYER_PACKAGES = {"views", "controllers", "ops"}
TOP_LEVEL_MODULES = {"__init__", "__main__", "app", "crash", "qt_fixes", "engine_session", "workers"}


def _outside_the_layers(root: Path) -> list[str]:
    """Top-level modules and packages of ``root`` that are neither a layer folder nor start-up plumbing."""
    modules = {p.stem for p in root.glob("*.py")}
    packages = {p.name for p in root.iterdir() if (p / "__init__.py").exists()}
    return sorted((modules - TOP_LEVEL_MODULES) | (packages - LAYER_PACKAGES))


def test_every_desktop_module_lives_in_a_layer_folder() -> None:
    """A new view, controller or op cannot escape the import contracts by being put at the package's top."""
    assert _outside_the_layers(DESKTOP) == []


def test_the_layer_check_sees_a_module_outside_the_layers(tmp_path: Path) -> None:
    """Negative control: a dialog at the top of the package, or a new package beside the layers, is reported."""
    (tmp_path / "app.py").write_text("")
    (tmp_path / "a_new_dialog.py").write_text("")
    (tmp_path / "views").mkdir()
    (tmp_path / "views" / "__init__.py").write_text("")
    (tmp_path / "widgets").mkdir()
    (tmp_path / "widgets" / "__init__.py").write_text("")
    assert _outside_the_layers(tmp_path) == ["a_new_dialog", "widgets"]
