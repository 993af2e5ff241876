"""Strokes and the undoable edits of the sketch image.

The sketch is one raster image (what is searched is what is seen). Each stroke keeps its points and
the pixels it covered before it was drawn, so undo restores exactly those pixels and redo repaints the
stroke with the same operations in the same order as the live drawing: redo is bit-identical, and
memory grows with the strokes' areas, not with whole-image copies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRect, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPen, QUndoCommand

PAPER = QColor(255, 255, 255)
INK = QColor(24, 24, 24)
MOUSE_PRESSURE = 0.5  # a mouse draws at the nominal brush size
ERASER_FACTOR = 3.0  # the eraser is wider than the pen at the same size setting


@dataclass(frozen=True)
class StrokePoint:
    """A sample of a stroke in image pixels, with pen pressure in [0, 1]."""

    x: float
    y: float
    pressure: float = MOUSE_PRESSURE


def stroke_width(tool: str, size: float, pressure: float) -> float:
    """Line width in image pixels: pressure 0.5 (or a mouse) gives ``size``; the range is 0.3x to 1.7x."""
    width = size * (0.3 + 1.4 * max(0.0, min(1.0, pressure)))
    return width * ERASER_FACTOR if tool == "eraser" else width


def paint_segment(image: QImage, a: StrokePoint, b: StrokePoint, tool: str, size: float) -> QRect:
    """Paint one segment of a stroke into ``image``; returns the touched rectangle (image pixels)."""
    width = stroke_width(tool, size, (a.pressure + b.pressure) / 2)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    pen = QPen(PAPER if tool == "eraser" else INK, width, Qt.PenStyle.SolidLine,
               Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin)
    painter.setPen(pen)
    if a.x == b.x and a.y == b.y:
        painter.drawPoint(QPointF(a.x, a.y))
    else:
        painter.drawLine(QPointF(a.x, a.y), QPointF(b.x, b.y))
    painter.end()
    pad = width / 2 + 2
    return QRectF(min(a.x, b.x) - pad, min(a.y, b.y) - pad,
                  abs(a.x - b.x) + 2 * pad, abs(a.y - b.y) + 2 * pad).toAlignedRect()


def paint_stroke(image: QImage, points: Sequence[StrokePoint], tool: str, size: float) -> QRect:
    """Paint a whole stroke segment by segment (the same operations as live drawing)."""
    touched = QRect()
    if len(points) == 1:
        return paint_segment(image, points[0], points[0], tool, size)
    for a, b in zip(points, points[1:], strict=False):
        touched = touched.united(paint_segment(image, a, b, tool, size))
    return touched


def stroke_bounds(points: Sequence[StrokePoint], tool: str, size: float, image: QImage) -> QRect:
    """The image rectangle a stroke can touch (clipped to the image)."""
    width = max(stroke_width(tool, size, p.pressure) for p in points)
    pad = width / 2 + 2
    xs = [p.x for p in points]
    ys = [p.y for p in points]
    rect = QRectF(min(xs) - pad, min(ys) - pad, max(xs) - min(xs) + 2 * pad, max(ys) - min(ys) + 2 * pad)
    return rect.toAlignedRect().intersected(image.rect())


def _blit(image: QImage, patch: QImage, at: QRect) -> None:
    painter = QPainter(image)
    painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Source)
    painter.drawImage(at.topLeft(), patch)
    painter.end()


class StrokeCommand(QUndoCommand):
    """One pen or eraser stroke: undo puts back the covered pixels, redo repaints the stroke."""

    def __init__(self, canvas: object, image: QImage, before: QImage, points: Sequence[StrokePoint],
                 tool: str, size: float) -> None:
        super().__init__("Erase" if tool == "eraser" else "Stroke")
        self.canvas = canvas
        self.image = image
        self.points = tuple(points)
        self.tool = tool
        self.size = size
        self.rect = stroke_bounds(self.points, tool, size, image)
        self.before = before.copy(self.rect)

    def redo(self) -> None:
        _blit(self.image, self.before, self.rect)
        paint_stroke(self.image, self.points, self.tool, self.size)
        self.canvas.image_edited(self.rect)  # type: ignore[attr-defined]

    def undo(self) -> None:
        _blit(self.image, self.before, self.rect)
        self.canvas.image_edited(self.rect)  # type: ignore[attr-defined]


class ReplaceImageCommand(QUndoCommand):
    """Replace the whole sketch (clear, or an imported scan); keeps both images for undo/redo."""

    def __init__(self, canvas: object, image: QImage, new_image: QImage, text: str) -> None:
        super().__init__(text)
        self.canvas = canvas
        self.image = image
        self.before = image.copy()
        self.after = new_image.convertToFormat(image.format()).scaled(
            image.size(), Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.SmoothTransformation)

    def redo(self) -> None:
        _blit(self.image, self.after, self.image.rect())
        self.canvas.image_edited(self.image.rect())  # type: ignore[attr-defined]

    def undo(self) -> None:
        _blit(self.image, self.before, self.image.rect())
        self.canvas.image_edited(self.image.rect())  # type: ignore[attr-defined]


def blank_image(width: int, height: int) -> QImage:
    image = QImage(width, height, QImage.Format.Format_RGB32)
    image.fill(PAPER)
    return image


def fit_on_paper(source: QImage, width: int, height: int) -> QImage:
    """Scale ``source`` to fit a width x height sheet, centred on white paper (no distortion)."""
    sheet = blank_image(width, height)
    scaled = source.scaled(width, height, Qt.AspectRatioMode.KeepAspectRatio,
                           Qt.TransformationMode.SmoothTransformation)
    painter = QPainter(sheet)
    painter.drawImage((width - scaled.width()) // 2, (height - scaled.height()) // 2, scaled)
    painter.end()
    return sheet
