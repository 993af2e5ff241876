"""The desktop's layering holds in the source: only ops choose lanes, and only the job hub runs them."""

from __future__ import annotations

import re
from pathlib import Path

DESKTOP = Path(__file__).resolve().parents[2] / "sketchface_desktop"
OPS = DESKTOP / "ops"
# The job hub itself and the op runner.
ALLOWED = {DESKTOP / "workers.py", OPS / "base.py"}
# Known exceptions, each with its reason. The trainer runs as a subprocess job ("process" lane, adopted
# with start_process); its dataset check still submits directly and is to move into an op.
KNOWN = {DESKTOP / "training_run.py"}


def test_no_module_outside_ops_submits_work_or_picks_a_lane() -> None:
    offenders = []
    for path in DESKTOP.rglob("*.py"):
        if path in ALLOWED or path in KNOWN:
            continue
        text = path.read_text(encoding="utf-8")
        if re.search(r"\.submit\(", text):
            offenders.append(f"{path.relative_to(DESKTOP)}: calls submit (build an op in sketchface_desktop/ops)")
        if path.parent != OPS and re.search(r"\blane=", text):
            offenders.append(f"{path.relative_to(DESKTOP)}: picks a lane (only ops do)")
    assert offenders == []


def test_the_check_sees_a_submit_call() -> None:
    """Negative control: the pattern used above matches the call it must forbid."""
    assert re.search(r"\.submit\(", 'self.hub.submit("title", fn, lane="io")')
