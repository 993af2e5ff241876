"""The sketch canvas: strokes by mouse and tablet, pressure, eraser, undo/redo, clear, guide, zoom, PNG export."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QImage, QInputDevice, QMouseEvent, QPointingDevice, QTabletEvent
from PySide6.QtWidgets import QApplication

from sketchface_desktop.views.canvas.scan_import import levels, process
from sketchface_desktop.views.canvas.sketch_canvas import SketchCanvas
from sketchface_desktop.views.canvas.strokes import stroke_width

pytestmark = pytest.mark.gui


def pixels(image: QImage) -> np.ndarray:
    gray = image.convertToFormat(QImage.Format.Format_Grayscale8)
    arr = np.frombuffer(gray.constBits(), np.uint8).reshape(gray.height(), gray.bytesPerLine())
    return arr[:, : gray.width()].copy()


@pytest.fixture
def canvas(qtbot) -> SketchCanvas:  # type: ignore[no-untyped-def]
    c = SketchCanvas()
    qtbot.addWidget(c)
    c.resize(640, 800)
    c.show()
    qtbot.waitExposed(c)
    return c


def drag(canvas: SketchCanvas, points: list[tuple[float, float]]) -> None:
    """A real left-button drag through widget coordinates (press, moves with the button held, release)."""
    def send(kind: QMouseEvent.Type, x: float, y: float, buttons: Qt.MouseButton) -> None:
        pos = QPointF(x, y)
        ev = QMouseEvent(kind, pos, canvas.mapToGlobal(pos), Qt.MouseButton.LeftButton, buttons,
                         Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(canvas, ev)

    send(QMouseEvent.Type.MouseButtonPress, *points[0], Qt.MouseButton.LeftButton)
    for x, y in points[1:]:
        send(QMouseEvent.Type.MouseMove, x, y, Qt.MouseButton.LeftButton)
    send(QMouseEvent.Type.MouseButtonRelease, *points[-1], Qt.MouseButton.NoButton)


def test_mouse_drag_draws_ink_and_undo_restores_every_pixel(canvas: SketchCanvas) -> None:
    blank = pixels(canvas.image)
    drag(canvas, [(200, 200), (260, 240), (320, 300)])
    drawn = pixels(canvas.image)
    assert (drawn < 128).sum() > 50, "the drag left no ink"
    assert canvas.undo_stack.count() == 1
    canvas.undo_stack.undo()
    assert np.array_equal(pixels(canvas.image), blank)
    canvas.undo_stack.redo()
    assert np.array_equal(pixels(canvas.image), drawn), "redo must repaint the stroke exactly as drawn"
    assert not canvas.is_blank()


def test_eraser_removes_ink_and_clear_is_undoable(canvas: SketchCanvas) -> None:
    canvas.draw_stroke([(100, 400), (500, 400)], size=6)
    inked = int((pixels(canvas.image) < 128).sum())
    canvas.draw_stroke([(250, 400), (350, 400)], tool="eraser", size=6)
    assert int((pixels(canvas.image) < 128).sum()) < inked * 0.85
    canvas.clear()
    assert canvas.is_blank()
    canvas.undo_stack.undo()
    assert not canvas.is_blank()


def test_pressure_widens_the_line(canvas: SketchCanvas) -> None:
    assert stroke_width("pen", 4, 1.0) > stroke_width("pen", 4, 0.5) > stroke_width("pen", 4, 0.1)
    canvas.draw_stroke([(100, 200, 0.1), (500, 200, 0.1)], size=6)
    light = int((pixels(canvas.image) < 200).sum())
    canvas.draw_stroke([(100, 500, 1.0), (500, 500, 1.0)], size=6)
    heavy = int((pixels(canvas.image) < 200).sum()) - light
    assert heavy > 2.5 * light


def test_tablet_events_draw_with_pressure(canvas: SketchCanvas) -> None:
    pen = QPointingDevice("test pen", 4242, QInputDevice.DeviceType.Stylus, QPointingDevice.PointerType.Pen,
                          QInputDevice.Capability.Position | QInputDevice.Capability.Pressure, 1, 2)

    def tablet(kind: QTabletEvent.Type, x: float, y: float, pressure: float) -> QTabletEvent:
        pos = QPointF(x, y)
        buttons = Qt.MouseButton.NoButton if kind == QTabletEvent.Type.TabletRelease else Qt.MouseButton.LeftButton
        return QTabletEvent(kind, pen, pos, canvas.mapToGlobal(pos), pressure, 0, 0, 0, 0, 0,
                            Qt.KeyboardModifier.NoModifier, Qt.MouseButton.LeftButton, buttons)

    for kind, x, p in ((QTabletEvent.Type.TabletPress, 150, 0.9), (QTabletEvent.Type.TabletMove, 300, 0.9),
                       (QTabletEvent.Type.TabletMove, 450, 0.9), (QTabletEvent.Type.TabletRelease, 450, 0.0)):
        ev = tablet(kind, x, 300, p)
        QApplication.sendEvent(canvas, ev)
        assert ev.isAccepted()
    assert canvas.undo_stack.count() == 1
    assert not canvas.is_blank()


def test_png_export_round_trips(canvas: SketchCanvas) -> None:
    canvas.draw_stroke([(100, 100), (300, 500)])
    data = canvas.to_png_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = QImage.fromData(data)
    assert (image.width(), image.height()) == (canvas.image.width(), canvas.image.height())
    assert np.array_equal(pixels(image), pixels(canvas.image))


def test_face_guide_is_the_face_box_only_when_shown(canvas: SketchCanvas) -> None:
    assert canvas.face_box() is None
    canvas.set_guide_visible(True)
    x1, y1, x2, y2 = canvas.face_box()
    assert 0 <= x1 < x2 <= canvas.image.width() and 0 <= y1 < y2 <= canvas.image.height()
    canvas.set_tool("guide")
    scale, off = canvas.scale, canvas.transform().map(QPointF(0, 0))
    drag(canvas, [(off.x() + 100 * scale, off.y() + 150 * scale), (off.x() + 400 * scale, off.y() + 550 * scale)])
    bx1, by1, bx2, by2 = canvas.face_box()
    assert abs(bx1 - 100) < 2 and abs(by1 - 150) < 2 and abs(bx2 - 400) < 2 and abs(by2 - 550) < 2
    assert canvas.is_blank(), "placing the guide must not draw"


def test_zoom_keeps_the_point_under_the_cursor(canvas: SketchCanvas) -> None:
    anchor = QPointF(320, 400)
    before = canvas.to_image(anchor)
    canvas.zoom_by(2.0, anchor)
    after = canvas.to_image(anchor)
    assert abs(before.x() - after.x()) < 1e-6 and abs(before.y() - after.y()) < 1e-6
    canvas.fit_to_window()
    assert canvas.scale < 2.0


def test_scan_levels_and_threshold_make_ink_on_white() -> None:
    gray = np.array([[40, 120, 200, 250]], np.uint8)
    assert levels(gray, 40, 200).tolist() == [[0, 127, 255, 255]]
    assert levels(gray, 0, 255, threshold=128).tolist() == [[0, 0, 255, 255]]
    src = QImage(200, 100, QImage.Format.Format_RGB32)
    src.fill(Qt.GlobalColor.gray)
    out = process(src, 90.0, None, 0, 255, None)
    assert (out.width(), out.height()) == (100, 200), "a quarter turn swaps width and height"
