"""The face guide: an oval with eye and mouth lines that helps drawing and tells preprocessing where the face is.

The guide's rectangle (image pixels) is the sketch's face box: with the guide shown, the search crops
and aligns on it instead of guessing, so an examiner who draws inside the guide gets the same framing
the encoder was trained on.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen

# Proportions inside the guide box (fractions of its height), after the usual facial canons:
# eyes a little above the middle of the head oval, mouth about three quarters down.
EYE_LINE = 0.44
NOSE_LINE = 0.62
MOUTH_LINE = 0.76
GUIDE_COLOUR = QColor(31, 95, 168, 150)
MIN_SIDE = 24.0


def default_guide(width: int, height: int) -> QRectF:
    """A centred face box covering the middle of the sheet, with a 3:4 (w:h) face."""
    box_h = height * 0.62
    box_w = min(width * 0.7, box_h * 0.75)
    return QRectF((width - box_w) / 2, height * 0.16, box_w, box_h)


def normalised(a: QPointF, b: QPointF, bounds: QRectF) -> QRectF:
    """The rectangle spanned by two drag points, clipped to the sheet and at least MIN_SIDE wide."""
    rect = QRectF(a, b).normalized().intersected(bounds)
    if rect.width() < MIN_SIDE or rect.height() < MIN_SIDE:
        return QRectF()
    return rect


def paint_guide(painter: QPainter, rect: QRectF, scale: float) -> None:
    """Draw the guide (oval, eye, nose and mouth lines) in image coordinates."""
    pen = QPen(GUIDE_COLOUR, 1.6 / max(scale, 1e-6), Qt.PenStyle.DashLine)
    pen.setCosmetic(False)
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(pen)
    painter.setBrush(Qt.BrushStyle.NoBrush)
    painter.drawEllipse(rect)
    x1, x2 = rect.left(), rect.right()
    inset = rect.width() * 0.08
    for frac, shrink in ((EYE_LINE, inset), (NOSE_LINE, rect.width() * 0.3), (MOUTH_LINE, rect.width() * 0.22)):
        y = rect.top() + rect.height() * frac
        painter.drawLine(QPointF(x1 + shrink, y), QPointF(x2 - shrink, y))
    painter.drawLine(QPointF(rect.center().x(), rect.top() + rect.height() * 0.3),
                     QPointF(rect.center().x(), rect.top() + rect.height() * 0.9))
    painter.restore()


def as_box(rect: QRectF) -> tuple[float, float, float, float]:
    """(x1, y1, x2, y2) in image pixels: the form the engine's preprocessing takes a face box in."""
    return (float(rect.left()), float(rect.top()), float(rect.right()), float(rect.bottom()))
