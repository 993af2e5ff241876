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

from PySide6.QtCore import QByteArray, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QIcon, QIconEngine, QPainter, QPixmap
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
    candidates.append(Path(__file__).resolve().parents[2] / "resources")  # beside the sketchface_desktop package
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


class SvgIconEngine(QIconEngine):
    """Renders one of our line icons on demand, in the colour of its mode and state.

    Rendering every icon at every size up front cost about half a second of start-up; Qt asks an
    engine only for the sizes it actually paints.

    Signals: none of its own (Qt's inherited ones only).
    """

    def __init__(self, name: str, colour: str = ICON_COLOUR) -> None:
        super().__init__()
        self.name = name
        self.colour = colour

    def _colour(self, mode: QIcon.Mode, state: QIcon.State) -> str:
        if mode == QIcon.Mode.Disabled:
            return ICON_DISABLED_COLOUR if self.colour == ICON_COLOUR else self.colour
        return ICON_ACTIVE_COLOUR if state == QIcon.State.On and self.colour == ICON_COLOUR else self.colour

    def pixmap(self, size: QSize, mode: QIcon.Mode, state: QIcon.State) -> QPixmap:
        return pixmap(self.name, max(1, min(size.width(), size.height())), self._colour(mode, state))

    def scaledPixmap(self, size: QSize, mode: QIcon.Mode, state: QIcon.State, scale: float) -> QPixmap:
        side = max(1, min(size.width(), size.height()))
        return svg_pixmap(self.name, round(side / max(scale, 1e-6)), self._colour(mode, state), scale)

    def paint(self, painter: QPainter, rect: QRect, mode: QIcon.Mode, state: QIcon.State) -> None:
        side = min(rect.width(), rect.height())
        painter.drawPixmap(rect.x() + (rect.width() - side) // 2, rect.y() + (rect.height() - side) // 2,
                           self.pixmap(QSize(side, side), mode, state))

    def actualSize(self, size: QSize, mode: QIcon.Mode, state: QIcon.State) -> QSize:
        side = min(size.width(), size.height())
        return QSize(side, side)

    def clone(self) -> QIconEngine:
        return SvgIconEngine(self.name, self.colour)


@functools.lru_cache(maxsize=256)
def icon(name: str, colour: str = ICON_COLOUR) -> QIcon:
    """A QIcon of the SVG icon ``name``: normal, active (checked tool) and disabled colours, any size.

    A ``colour`` other than the default ink is used in every mode (e.g. white on a primary button).
    """
    _svg_text(name)  # fail now, not at first paint, if the file is missing
    return QIcon(SvgIconEngine(name, colour))


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
