"""The desktop's layering holds in the source: only ops choose lanes, and only the job hub runs them."""

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


# Desktop modules that are not views: the package's own files, the job hub and its engine session, and the
# start-up plumbing (crash hook, Qt workarounds). Every other module is a view and must be in the contract.
NOT_VIEWS = {"__init__", "__main__", "crash", "engine_session", "qt_fixes", "workers", "controllers", "ops"}


def _views_forbidden_to_controllers() -> set[str]:
    import tomllib

    config = tomllib.loads((DESKTOP.parent / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    forbidden = next(c for c in contracts if c["name"].startswith("Controllers and ops import no view"))
    return {m.removeprefix("sketchface_desktop.") for m in forbidden["forbidden_modules"]}


def test_every_view_is_in_the_import_contract() -> None:
    """A new view module cannot slip past the layers contract by being left off its list."""
    modules = {p.stem for p in DESKTOP.glob("*.py")} | {p.name for p in DESKTOP.iterdir() if (p / "__init__.py").exists()}
    unlisted = sorted(modules - NOT_VIEWS - _views_forbidden_to_controllers())
    assert unlisted == []


def test_the_view_list_check_sees_an_unlisted_view() -> None:
    """Negative control: a module off the contract's list is reported."""
    assert "validate_dialog" in _views_forbidden_to_controllers()
    assert "a_new_dialog" not in _views_forbidden_to_controllers() | NOT_VIEWS
