"""What the window remembers between runs (QSettings INI in the SketchFace config dir), and where it logs.

Stored beside ``settings.toml`` rather than in Qt's default per-user location, so a relocated
``SKETCHFACE_HOME`` (a portable install, a test) carries its window layout and nothing leaks between them.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

from engine import paths


def window_settings() -> QSettings:
    return QSettings(str(paths.config_dir() / "window.ini"), QSettings.Format.IniFormat)


def guide_dismissed() -> bool:
    """True when the examiner ticked "Don't show this at start-up" in the first-run guide."""
    return bool(window_settings().value("guide_dismissed", False, bool))


def set_guide_dismissed(dismissed: bool) -> None:
    s = window_settings()
    s.setValue("guide_dismissed", bool(dismissed))
    s.sync()


def log_folder() -> Path:
    """Where the workstation writes its logs and crash reports (Help > Open log folder)."""
    return paths.log_dir()
