"""``run()``: start the workstation — crash handling first, then Qt, the style, and the main window.

Start-up does only what the first paint needs: no model, no torch, no database scan. Device
detection, model status and the gallery list are started from the window once it has painted.

``SKETCHFACE_STARTUP_PROBE=PATH`` makes the app write ``{"first_paint_monotonic", "heavy_modules_loaded"}``
to PATH at its first paint and quit: ``bench/startup.py`` measures the real entry point with it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from sketchface_desktop import crash

GIL_SWITCH_INTERVAL_S = 0.001
OPEN_CASE_ENV = "SKETCHFACE_OPEN_CASE"  # a case to open at start (the demo workstation opens its DEMO case)
HEAVY_MODULES = ("torch", "diffusers", "onnxruntime", "open_clip", "insightface", "transformers")


def heavy_modules_loaded() -> list[str]:
    """Which of the heavy ML packages are imported in this process right now."""
    return [m for m in HEAVY_MODULES if m in sys.modules]


def create_application(argv: list[str] | None = None):  # type: ignore[no-untyped-def]
    """The QApplication with our name, icon and style sheet (reused if one exists, e.g. under pytest-qt)."""
    from PySide6.QtWidgets import QApplication

    from sketchface_desktop.views import assets

    # Background jobs are Python threads: a shorter GIL switch interval (default 5 ms) lets the GUI thread
    # take the interpreter back sooner from a busy import, at a negligible cost in throughput.
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(argv if argv is not None else sys.argv)
    app.setApplicationName("SketchFace Workstation")
    app.setOrganizationName("SketchFace")
    app.setApplicationDisplayName("SketchFace Workstation")
    app.setWindowIcon(assets.app_icon())
    app.setStyle("Fusion")
    app.setStyleSheet(assets.stylesheet())
    return app


def _probe(window, path: str) -> None:  # type: ignore[no-untyped-def]
    """Write the start-up probe at first paint, then quit (used by bench/startup.py and tests)."""
    from PySide6.QtWidgets import QApplication

    def painted(at: float) -> None:
        Path(path).write_text(json.dumps({"first_paint_monotonic": at, "heavy_modules_loaded": heavy_modules_loaded(),
                                          "window": window.objectName()}), encoding="utf-8")
        window.setProperty("confirm_close", False)
        window.close()
        QApplication.quit()

    window.first_painted.connect(painted)


def run(argv: list[str] | None = None) -> int:
    """Start the desktop app and return its exit code."""
    started = time.monotonic()
    crash.install()
    from engine.models.fetch import hub_offline

    hub_offline()  # no silent hub traffic; model downloads from the Models page do not use the hub
    app = create_application(argv)
    from sketchface_desktop.views.main_window import MainWindow

    probe = os.environ.get("SKETCHFACE_STARTUP_PROBE")
    window = MainWindow(show_guide=not probe and not os.environ.get(OPEN_CASE_ENV))
    if probe:
        _probe(window, probe)
    elif case_ref := os.environ.get(OPEN_CASE_ENV):
        window.flow.open_case(case_ref)
    window.show()
    crash.log.info("main window shown after %.2f s", time.monotonic() - started)
    return int(app.exec())
