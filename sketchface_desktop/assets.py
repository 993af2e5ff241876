"""Icons and the style sheet from ``resources/``, found the same way in a checkout, a wheel or a frozen app.

``resources`` is a plain folder at the repository root (shared with the report template and fonts),
so it is not always importable: an editable install maps only our three packages. We therefore ask
``importlib.resources`` first (installed or frozen layouts that ship ``resources`` as a package) and
fall back to the folder beside the package (checkout), then to PyInstaller's unpack dir.
"""

from __future__ import annotations

import functools
import importlib.resources
import sys
from pathlib import Path

from PySide6.QtCore import QByteArray, QRectF, QSize, Qt
from PySide6.QtGui import QIcon, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer

# The one ink colour of the line icons (``currentColor`` in the SVG files) and the disabled variant.
ICON_COLOUR = "#33414f"
ICON_DISABLED_COLOUR = "#a9b3bd"
ICON_ACTIVE_COLOUR = "#1f5fa8"


@functools.lru_cache(maxsize=1)
def resources_dir() -> Path:
    """The ``resources`` folder (raises FileNotFoundError with the places looked at)."""
    candidates: list[Path] = []
    try:
        spec_root = importlib.resources.files("resources")
        candidates.append(Path(str(spec_root)))
    except (ModuleNotFoundError, TypeError):
        pass
    candidates.append(Path(__file__).resolve().parent.parent / "resources")
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        candidates.append(Path(frozen) / "resources")
    for path in candidates:
        if (path / "icons").is_dir():
            return path
    raise FileNotFoundError("SketchFace resources not found; looked in " + ", ".join(map(str, candidates)))


def resource_path(*parts: str) -> Path:
    return resources_dir().joinpath(*parts)


@functools.lru_cache(maxsize=256)
def _svg_text(name: str) -> str:
    return resource_path("icons", f"{name}.svg").read_text(encoding="utf-8")


def svg_pixmap(name: str, size: int, colour: str = ICON_COLOUR, ratio: float = 1.0) -> QPixmap:
    """Render icon ``name`` at ``size`` logical pixels with its ``currentColor`` set to ``colour``."""
    data = QByteArray(_svg_text(name).replace("currentColor", colour).encode("utf-8"))
    renderer = QSvgRenderer(data)
    px = max(1, round(size * ratio))
    pixmap = QPixmap(QSize(px, px))
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter, QRectF(0, 0, px, px))
    painter.end()
    pixmap.setDevicePixelRatio(ratio)
    return pixmap


@functools.lru_cache(maxsize=256)
def icon(name: str) -> QIcon:
    """A QIcon with normal, active (checked tool) and disabled variants of the SVG icon ``name``."""
    result = QIcon()
    for size in (16, 20, 24, 32, 48):
        result.addPixmap(svg_pixmap(name, size), QIcon.Mode.Normal, QIcon.State.Off)
        result.addPixmap(svg_pixmap(name, size, ICON_ACTIVE_COLOUR), QIcon.Mode.Normal, QIcon.State.On)
        result.addPixmap(svg_pixmap(name, size, ICON_DISABLED_COLOUR), QIcon.Mode.Disabled, QIcon.State.Off)
    return result


def app_icon() -> QIcon:
    """The application icon (its SVG has fixed colours, so it is rendered as drawn)."""
    result = QIcon()
    for size in (16, 32, 48, 64, 128, 256):
        result.addPixmap(svg_pixmap("app", size))
    return result


def stylesheet() -> str:
    """The application style sheet, with ``url(icons:NAME)`` resolved to files in ``resources/icons``."""
    text = resource_path("style", "sketchface.qss").read_text(encoding="utf-8")
    icons = resource_path("icons").as_posix()
    return text.replace("url(icons:", f"url({icons}/")


@functools.lru_cache(maxsize=512)
def pixmap(name: str, size: int, colour: str = ICON_COLOUR) -> QPixmap:
    """A cached rendering of an icon, for delegates that paint the same glyph in many cells."""
    return svg_pixmap(name, size, colour)
