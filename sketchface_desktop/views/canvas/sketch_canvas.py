"""SketchCanvas: a raster drawing surface with pen pressure, eraser, undo/redo, zoom/pan and the face guide.

A custom QWidget rather than a QGraphicsScene: the sketch is one image that is searched as drawn, and
repainting only the dirty rectangle of that image keeps drawing smooth at any zoom.
"""

from __future__ import annotations

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QPointF, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QPointingDevice,
    QResizeEvent,
    QTabletEvent,
    QTransform,
    QUndoStack,
    QWheelEvent,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

from sketchface_desktop.views.canvas import face_guide
from sketchface_desktop.views.canvas.strokes import (
    MOUSE_PRESSURE,
    ReplaceImageCommand,
    StrokeCommand,
    StrokePoint,
    blank_image,
    paint_segment,
)

SHEET_SIZE = QSize(640, 800)
TOOLS = ("pen", "eraser", "guide", "pan")
BACKDROP = QColor("#d9dee4")


class SketchCanvas(QWidget):
    """The drawing surface of one sketch.

    Signals:
        changed(): the sketch's pixels changed (stroke, undo/redo, clear, import).
        zoom_changed(float): the view scale changed (1.0 = one image pixel per screen pixel).
        guide_changed(): the face guide was shown, hidden or moved.
        tool_changed(str): the active tool changed.
    """

    changed = Signal()
    zoom_changed = Signal(float)
    guide_changed = Signal()
    tool_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None, size: QSize = SHEET_SIZE) -> None:
        super().__init__(parent)
        self.setObjectName("SketchCanvas")
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setAttribute(Qt.WidgetAttribute.WA_TabletTracking)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(240, 300)
        self.image = blank_image(size.width(), size.height())
        self.undo_stack = QUndoStack(self)
        self.undo_stack.setUndoLimit(500)
        self.tool = "pen"
        self.brush_size = 4.0
        self.guide_visible = False
        self.guide_rect = face_guide.default_guide(size.width(), size.height())
        self._scale = 1.0
        self._offset = QPointF(0, 0)
        self._fit = True
        self._points: list[StrokePoint] = []
        self._stroke_tool = "pen"
        self._before: QImage | None = None
        self._drag_origin: QPointF | None = None
        self._pan_origin: tuple[QPointF, QPointF] | None = None
        self._space_down = False
        self.undo_stack.indexChanged.connect(self._history_moved)

    def _history_moved(self, _index: int) -> None:
        self.changed.emit()

    # -- public API ---------------------------------------------------------------------------
    def set_tool(self, tool: str) -> None:
        if tool not in TOOLS:
            raise ValueError(f"unknown tool {tool!r}")
        self.tool = tool
        self.setCursor(Qt.CursorShape.OpenHandCursor if tool == "pan" else Qt.CursorShape.CrossCursor)
        self.tool_changed.emit(tool)

    def set_brush_size(self, size: float) -> None:
        self.brush_size = float(max(1.0, min(64.0, size)))

    def set_guide_visible(self, visible: bool) -> None:
        self.guide_visible = bool(visible)
        self.update()
        self.guide_changed.emit()

    def face_box(self) -> tuple[float, float, float, float] | None:
        """The guide's rectangle in image pixels when the guide is shown, else None (preprocessing decides)."""
        return face_guide.as_box(self.guide_rect) if self.guide_visible else None

    def draw_stroke(self, points: list[tuple[float, float]] | list[tuple[float, float, float]],
                    tool: str = "pen", size: float | None = None) -> None:
        """Draw a stroke through image-pixel points (x, y[, pressure]); undoable like a drawn one."""
        samples = [StrokePoint(p[0], p[1], p[2] if len(p) > 2 else MOUSE_PRESSURE) for p in points]  # type: ignore[misc]
        if not samples:
            return
        before = self.image.copy()
        self.undo_stack.push(StrokeCommand(self, self.image, before, samples, tool, size or self.brush_size))

    def clear(self) -> None:
        if not self.is_blank():
            blank = blank_image(self.image.width(), self.image.height())
            self.undo_stack.push(ReplaceImageCommand(self, self.image, blank, "Clear"))

    def load_image(self, image: QImage, text: str = "Import sketch") -> None:
        """Replace the sketch with ``image`` (already fitted to the sheet); undoable."""
        self.undo_stack.push(ReplaceImageCommand(self, self.image, image, text))

    def reset(self, image: QImage | None = None) -> None:
        """Start afresh (new case or sketch version): new pixels and an empty undo history."""
        self.undo_stack.clear()
        fresh = blank_image(self.image.width(), self.image.height())
        if image is not None:
            painter = QPainter(fresh)
            painter.drawImage(fresh.rect(), image.convertToFormat(fresh.format()))
            painter.end()
        self.image.swap(fresh)
        self.update()
        self.changed.emit()

    def is_modified(self) -> bool:
        """The drawing changed since it was last stored (or loaded)."""
        return not self.undo_stack.isClean()

    def mark_saved(self) -> None:
        self.undo_stack.setClean()

    def load_png(self, png: bytes | None) -> None:
        """Show a stored sheet (None: an empty sheet) with a fresh history."""
        self.reset(QImage.fromData(png) if png else None)

    def is_blank(self) -> bool:
        """True when the sheet has no ink (every pixel white)."""
        import numpy as np  # not at module level: numpy is not needed for the first paint

        gray = self.image.convertToFormat(QImage.Format.Format_Grayscale8)  # keep a reference while reading
        rows = np.frombuffer(gray.constBits(), np.uint8).reshape(gray.height(), gray.bytesPerLine())
        return bool(rows[:, : gray.width()].min() == 255)

    def to_png_bytes(self) -> bytes:
        """The sketch as PNG bytes (what is stored in the case and searched)."""
        data = QByteArray()
        buf = QBuffer(data)
        buf.open(QIODevice.OpenModeFlag.WriteOnly)
        self.image.save(buf, "PNG")  # type: ignore[call-overload]  # the stubs want bytes; Qt takes the str
        buf.close()
        return bytes(data.data())

    def image_edited(self, rect: QRect) -> None:
        """Called by undo commands after they changed ``rect`` of the image."""
        self.update(self._to_widget_rect(QRectF(rect)))

    # -- zoom / pan ---------------------------------------------------------------------------
    @property
    def scale(self) -> float:
        return self._scale

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        anchor = anchor or QPointF(self.width() / 2, self.height() / 2)
        image_pt = self.to_image(anchor)
        self._scale = max(0.1, min(16.0, self._scale * factor))
        self._offset = anchor - image_pt * self._scale
        self._fit = False
        self.update()
        self.zoom_changed.emit(self._scale)

    def fit_to_window(self) -> None:
        self._fit = True
        self._apply_fit()
        self.update()
        self.zoom_changed.emit(self._scale)

    def _apply_fit(self) -> None:
        margin = 16
        w, h = max(1, self.width() - 2 * margin), max(1, self.height() - 2 * margin)
        self._scale = min(w / self.image.width(), h / self.image.height())
        self._offset = QPointF((self.width() - self.image.width() * self._scale) / 2,
                               (self.height() - self.image.height() * self._scale) / 2)

    def transform(self) -> QTransform:
        return QTransform(self._scale, 0, 0, self._scale, self._offset.x(), self._offset.y())

    def to_image(self, pos: QPointF) -> QPointF:
        return (pos - self._offset) / self._scale

    def _to_widget_rect(self, rect: QRectF) -> QRect:
        return self.transform().mapRect(rect).toAlignedRect().adjusted(-2, -2, 2, 2)

    # -- events -------------------------------------------------------------------------------
    def resizeEvent(self, event: QResizeEvent) -> None:
        if self._fit:
            self._apply_fit()
        super().resizeEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(event.rect(), BACKDROP)
        painter.setTransform(self.transform())
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self._scale < 1.0)
        sheet = QRectF(self.image.rect())
        painter.setPen(QPen(QColor("#b9c2cc"), 1 / self._scale))
        painter.drawRect(sheet.adjusted(-0.5, -0.5, 0.5, 0.5))
        painter.drawImage(QPointF(0, 0), self.image)
        if self.guide_visible and not self.guide_rect.isEmpty():
            face_guide.paint_guide(painter, self.guide_rect, self._scale)
        painter.end()

    def _begin(self, pos: QPointF, pressure: float, button: Qt.MouseButton, eraser_tip: bool = False) -> None:
        if button == Qt.MouseButton.MiddleButton or self.tool == "pan" or self._space_down:
            self._pan_origin = (pos, QPointF(self._offset))
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
            return
        if self.tool == "guide":
            self._drag_origin = self.to_image(pos)
            return
        self._stroke_tool = "eraser" if eraser_tip or self.tool == "eraser" else "pen"
        self._before = self.image.copy()
        pt = self.to_image(pos)
        self._points = [StrokePoint(pt.x(), pt.y(), pressure)]
        self.image_edited(paint_segment(self.image, self._points[0], self._points[0], self._stroke_tool,
                                        self.brush_size))

    def _extend(self, pos: QPointF, pressure: float) -> None:
        if self._pan_origin is not None:
            start, offset = self._pan_origin
            self._offset = offset + (pos - start)
            self._fit = False
            self.update()
            return
        if self._drag_origin is not None:
            rect = face_guide.normalised(self._drag_origin, self.to_image(pos), QRectF(self.image.rect()))
            if not rect.isEmpty():
                self.guide_rect = rect
                self.guide_visible = True
                self.update()
            return
        if not self._points:
            return
        pt = self.to_image(pos)
        point = StrokePoint(pt.x(), pt.y(), pressure)
        self.image_edited(paint_segment(self.image, self._points[-1], point, self._stroke_tool, self.brush_size))
        self._points.append(point)

    def _finish(self) -> None:
        if self._pan_origin is not None:
            self._pan_origin = None
            self.setCursor(Qt.CursorShape.OpenHandCursor if self.tool == "pan" else Qt.CursorShape.CrossCursor)
            return
        if self._drag_origin is not None:
            self._drag_origin = None
            self.guide_changed.emit()
            return
        if self._points and self._before is not None:
            self.undo_stack.push(StrokeCommand(self, self.image, self._before, self._points, self._stroke_tool,
                                               self.brush_size))
        self._points = []
        self._before = None

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() in (Qt.MouseButton.LeftButton, Qt.MouseButton.MiddleButton):
            self._begin(event.position(), MOUSE_PRESSURE, event.button())

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if event.buttons() & (Qt.MouseButton.LeftButton | Qt.MouseButton.MiddleButton):
            self._extend(event.position(), MOUSE_PRESSURE)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        self._finish()

    def tabletEvent(self, event: QTabletEvent) -> None:
        """Pen input with pressure; accepting it stops Qt from also sending synthetic mouse events."""
        pressure = float(event.pressure())
        kind = event.type()
        if kind == QTabletEvent.Type.TabletPress:
            eraser = event.pointerType() == QPointingDevice.PointerType.Eraser
            self._begin(event.position(), pressure, Qt.MouseButton.LeftButton, eraser_tip=eraser)
        elif kind == QTabletEvent.Type.TabletMove and (self._points or self._pan_origin or self._drag_origin):
            self._extend(event.position(), pressure)
        elif kind == QTabletEvent.Type.TabletRelease:
            self._finish()
        event.accept()

    def wheelEvent(self, event: QWheelEvent) -> None:
        delta = event.angleDelta()
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.zoom_by(1.0015 ** delta.y(), event.position())
        else:
            self._offset += QPointF(delta.x(), delta.y()) / 2
            self._fit = False
            self.update()
        event.accept()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_down = True
            self.setCursor(Qt.CursorShape.OpenHandCursor)
        else:
            super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_down = False
            self.set_tool(self.tool)
        else:
            super().keyReleaseEvent(event)

    def sizeHint(self) -> QSize:
        return QSize(520, 640)
