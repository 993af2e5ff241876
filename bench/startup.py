"""Start-up time of the desktop app: process start to the main window's first paint.

    python bench/startup.py [--json] [--runs N] [--home DIR]

Each run starts the real entry point (``sketchface`` with no arguments, i.e. ``sketchface_desktop.app.run``)
in a fresh Python process with ``SKETCHFACE_STARTUP_PROBE`` set; the app writes the monotonic time of
its first paint and the heavy ML modules present in ``sys.modules`` at that moment, then quits.
``startup_s`` is the median over the runs of (first paint - the moment just before the process was
spawned), so interpreter start-up and every import are included. Goal: <= 2 s on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOAL_S = 2.0


def one_run(home: Path, platform: str) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="sketchface-startup-") as tmp:
        probe = Path(tmp) / "probe.json"
        env = dict(os.environ, SKETCHFACE_STARTUP_PROBE=str(probe), SKETCHFACE_HOME=str(home))
        env.setdefault("QT_QPA_PLATFORM", platform)
        code = "import sys; from sketchface_desktop.__main__ import main; sys.exit(main([]))"
        started = time.monotonic()
        proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                              timeout=120)
        if proc.returncode != 0 or not probe.exists():
            raise SystemExit(f"the app did not start (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
        result = json.loads(probe.read_text())
    return {"startup_s": float(result["first_paint_monotonic"]) - started,
            "heavy_modules_loaded": list(result["heavy_modules_loaded"])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--runs", type=int, default=3, help="number of cold starts (median reported)")
    parser.add_argument("--home", type=Path, default=None,
                        help="SKETCHFACE_HOME to start with (default: a fresh empty one)")
    parser.add_argument("--platform", default="offscreen", help="QT_QPA_PLATFORM when not set (default offscreen)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sketchface-home-") as fresh:
        home = args.home or Path(fresh)
        one_run(home, args.platform)  # warm the OS file cache once, as a second launch would find it
        runs = [one_run(home, args.platform) for _ in range(max(1, args.runs))]
    times = [float(r["startup_s"]) for r in runs]  # type: ignore[arg-type]
    heavy = sorted({m for r in runs for m in r["heavy_modules_loaded"]})  # type: ignore[attr-defined]
    out = {"startup_s": round(statistics.median(times), 3), "runs_s": [round(t, 3) for t in times],
           "heavy_modules_loaded": heavy, "goal_s": GOAL_S, "meets_goal": statistics.median(times) <= GOAL_S,
           "python": sys.version.split()[0], "cpu_count": os.cpu_count(),
           "qt_platform": os.environ.get("QT_QPA_PLATFORM", args.platform)}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"start-up to first paint: {out['startup_s']:.2f} s (median of {len(times)}: "
              f"{', '.join(f'{t:.2f}' for t in times)}); goal {GOAL_S:.1f} s")
        print(f"heavy modules loaded at first paint: {', '.join(heavy) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
