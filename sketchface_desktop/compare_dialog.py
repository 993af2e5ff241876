"""CompareDialog: the sketch and a candidate side by side, or overlaid with an opacity slider, plus the decision.

Examiners compare features, not scores: side by side shows proportions, the overlay (sketch over the
candidate's aligned face, same size) shows whether eyes, nose and mouth line up.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPaintEvent, QPixmap
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QHBoxLayout,
    QLineEdit,
    QRadioButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from sketchface_desktop.results_view import DECISION_TEXT, ResultRow
from sketchface_desktop.ui import button, label


class ComparePane(QWidget):
    """Paints the two images side by side, or the sketch over the candidate at ``opacity``.

    Signals: none of its own (Qt's inherited ones only).
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(560, 320)
        self.sketch = QImage()
        self.candidate = QImage()
        self.overlay = False
        self.opacity = 0.5

    def _fit(self, image: QImage, box: QRectF) -> QRectF:
        if image.isNull():
            return box
        size = QSize(image.width(), image.height()).scaled(box.size().toSize(), Qt.AspectRatioMode.KeepAspectRatio)
        return QRectF(box.center().x() - size.width() / 2, box.center().y() - size.height() / 2,
                      size.width(), size.height())

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        p.fillRect(self.rect(), QColor("#d9dee4"))
        r = QRectF(self.rect()).adjusted(12, 12, -12, -12)
        if self.overlay:
            side = min(r.width(), r.height())
            box = QRectF(r.center().x() - side / 2, r.center().y() - side / 2, side, side)
            if not self.candidate.isNull():
                p.drawImage(box, self.candidate)
            if not self.sketch.isNull():
                p.setOpacity(self.opacity)
                p.drawImage(box, self.sketch)
        else:
            half = QRectF(r.left(), r.top(), r.width() / 2 - 6, r.height())
            for image, area in ((self.sketch, half), (self.candidate, half.translated(r.width() / 2 + 6, 0))):
                p.fillRect(area, QColor("#ffffff"))
                if not image.isNull():
                    p.drawImage(self._fit(image, area), image)
        p.end()


class CompareDialog(QDialog):
    """Sketch versus one candidate, with the examiner's decision and note.

    Signals:
        decision_made(object, str, str): the ResultRow, decision ("possible", "excluded", "not_reviewed"), note.
    """

    decision_made = Signal(object, str, str)

    def __init__(self, row: ResultRow, sketch_png: bytes, candidate: bytes | QImage | None,
                 can_decide: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("CompareDialog")
        self.setWindowTitle(f"Compare — candidate #{row.rank if row.rank is not None else row.position}")
        self.row = row
        self.pane = ComparePane(self)
        self.pane.sketch = _square_sketch(QImage.fromData(sketch_png))
        self.set_candidate(candidate)
        side = QRadioButton("Side by side")
        over = QRadioButton("Overlay")
        side.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(side)
        group.addButton(over)
        over.toggled.connect(self._mode)
        self.overlay_button = over
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setObjectName("OverlayOpacity")
        self.opacity.setRange(0, 100)
        self.opacity.setValue(50)
        self.opacity.setEnabled(False)
        self.opacity.setFixedWidth(200)
        self.opacity.valueChanged.connect(self._opacity)
        modes = QHBoxLayout()
        modes.addWidget(side)
        modes.addWidget(over)
        modes.addSpacing(16)
        modes.addWidget(label("Sketch opacity", "subtle"))
        modes.addWidget(self.opacity)
        modes.addStretch(1)
        score = f"{row.score:.3f}" if row.score is not None else "hidden (blind review)"
        facts = label(f"<b>{row.gallery_name}</b> · subject {row.subject_id or '—'} · score {score}"
                      + (" · <span style='color:#8a6d1a'><b>baseline</b></span>" if row.baseline else "")
                      + f"<br><span style='color:#5d6b79'>{row.photo_path}</span>", wrap=True)
        self.note = QLineEdit(row.note)
        self.note.setPlaceholderText("Note on this candidate (kept in the case with the decision)")
        self.state = label(f"Decision: {DECISION_TEXT[row.decision]}", "subtle")
        decide = QHBoxLayout()
        decide.addWidget(self.note, 1)
        for key, icon in (("possible", "possible"), ("excluded", "excluded"), ("not_reviewed", "not-reviewed")):
            b = button(DECISION_TEXT[key], icon)
            b.setObjectName(f"Decide:{key}")
            b.setEnabled(can_decide)
            b.clicked.connect(lambda _=False, k=key: self._decide(k))
            decide.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addLayout(modes)
        layout.addWidget(self.pane, 1)
        layout.addWidget(facts)
        layout.addWidget(self.state)
        layout.addLayout(decide)
        if not can_decide:
            layout.addWidget(label("Open or create a case to record decisions.", "subtle"))
        self.resize(900, 620)

    def set_candidate(self, candidate: bytes | QImage | None) -> None:
        if isinstance(candidate, QImage):
            self.pane.candidate = candidate
        elif candidate:
            self.pane.candidate = QImage.fromData(candidate)
        self.pane.update()

    def _mode(self, overlay: bool) -> None:
        self.pane.overlay = overlay
        self.opacity.setEnabled(overlay)
        self.pane.update()

    def _opacity(self, value: int) -> None:
        self.pane.opacity = value / 100.0
        self.pane.update()

    def _decide(self, decision: str) -> None:
        self.state.setText(f"Decision: {DECISION_TEXT[decision]} (saving…)")
        self.decision_made.emit(self.row, decision, self.note.text().strip())


def _square_sketch(image: QImage, margin: float = 0.12) -> QImage:
    """The sketch's drawn region as a square on white paper, framed like the candidate's face crop.

    The candidate is cut around its detected face box; the sketch is cut around its ink the same way,
    so in the overlay eyes, nose and mouth of both sit at comparable places.
    """
    if image.isNull():
        return image
    import numpy as np

    gray = image.convertToFormat(QImage.Format.Format_Grayscale8)
    arr = np.frombuffer(gray.constBits(), np.uint8).reshape(gray.height(), gray.bytesPerLine())[:, : gray.width()]
    ys, xs = np.nonzero(arr < 200)
    if len(xs) < 20:
        x1, y1, x2, y2 = 0, 0, image.width(), image.height()
    else:
        x1, x2 = np.quantile(xs, [0.002, 0.998])
        y1, y2 = np.quantile(ys, [0.002, 0.998])
    side = int(max(x2 - x1, y2 - y1) * (1 + 2 * margin)) + 1
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    sheet = QImage(side, side, QImage.Format.Format_RGB32)
    sheet.fill(QColor("white"))
    p = QPainter(sheet)
    p.drawImage(int(round(side / 2 - cx)), int(round(side / 2 - cy)), image)
    p.end()
    return sheet


def face_crop(photo_path: str, bbox: tuple[float, float, float, float] | None, margin: float = 0.25) -> QImage | None:
    """The candidate's face from the original photo (larger than the 112 px thumbnail), or None (io lane)."""
    from PySide6.QtGui import QImageReader

    reader = QImageReader(photo_path)
    reader.setAutoTransform(True)
    image = reader.read()
    if image.isNull():
        return None
    if bbox is None:
        return image
    x1, y1, x2, y2 = bbox
    side = max(x2 - x1, y2 - y1) * (1 + 2 * margin)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    rect = QRectF(cx - side / 2, cy - side / 2, side, side).toAlignedRect().intersected(image.rect())
    return image.copy(rect)


def pixmap_of(data: Any) -> QPixmap:
    pixmap = QPixmap()
    if data:
        pixmap.loadFromData(bytes(data))
    return pixmap
