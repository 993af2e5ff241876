"""CompareDialog: the sketch and a candidate side by side, or overlaid with an opacity slider, plus the decision.

Examiners compare features, not scores: side by side shows proportions, the overlay (sketch over the
candidate's aligned face, same size) shows whether eyes, nose and mouth line up. A recorded search's
candidate also gets its comparison sheet beside the images
(:class:`~sketchface_desktop.views.comparison_sheet.ComparisonSheet`); a click on either image places a
mark, drawn at the same place on both (the crops are aligned, so the same fraction is the same spot).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen, QPixmap
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

from sketchface_desktop.views.results_view import DECISION_TEXT, ResultRow
from sketchface_desktop.views.ui import button, label


class ComparePane(QWidget):
    """Paints the two images side by side, or the sketch over the candidate at ``opacity``, with the marks.

    Signals:
        mark_placed(float, float): a click on an image, as fractions (x, y) of that image's width and height.
    """

    mark_placed = Signal(float, float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(560, 320)
        self.sketch = QImage()
        self.candidate = QImage()
        self.overlay = False
        self.opacity = 0.5
        self.marks: list[tuple[float, float]] = []

    def set_marks(self, marks: list[tuple[float, float]]) -> None:
        self.marks = list(marks)
        self.update()

    def image_boxes(self) -> list[QRectF]:
        """Where the images are drawn now: one square in overlay mode, else the sketch's and the candidate's."""
        r = QRectF(self.rect()).adjusted(12, 12, -12, -12)
        if self.overlay:
            side = min(r.width(), r.height())
            return [QRectF(r.center().x() - side / 2, r.center().y() - side / 2, side, side)]
        half = QRectF(r.left(), r.top(), r.width() / 2 - 6, r.height())
        return [self._fit(self.sketch, half), self._fit(self.candidate, half.translated(r.width() / 2 + 6, 0))]

    def mousePressEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        for box in self.image_boxes():
            if box.contains(pos) and box.width() > 0 and box.height() > 0:
                self.mark_placed.emit((pos.x() - box.left()) / box.width(), (pos.y() - box.top()) / box.height())
                return
        super().mousePressEvent(event)

    def _paint_marks(self, p: QPainter) -> None:
        if not self.marks:
            return
        p.setOpacity(1.0)
        p.setPen(QPen(QColor("#e0115f"), 2.5))
        for box in self.image_boxes():
            radius = max(5.0, box.width() * 0.03)
            for i, (x, y) in enumerate(self.marks, 1):
                centre = QPointF(box.left() + x * box.width(), box.top() + y * box.height())
                p.drawEllipse(centre, radius, radius)
                p.drawText(centre + QPointF(radius + 2, -radius), str(i))

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
        self._paint_marks(p)
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
        self.pane.sketch = QImage.fromData(sketch_png)  # the whole sheet until the engine's crop arrives
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
        facts = label(f"{row.gallery_name} · subject {row.subject_id or '—'} · score {score}"
                      + (" · baseline (no trained sketch encoder)" if row.baseline else "")
                      + f"\n{row.photo_path}", "subtle", wrap=True)
        facts.setObjectName("CompareFacts")
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
        self.sheet: Any = None
        left = QVBoxLayout()
        left.addLayout(modes)
        left.addWidget(self.pane, 1)
        left.addWidget(facts)
        left.addWidget(self.state)
        left.addLayout(decide)
        if not can_decide:
            left.addWidget(label("Open or create a case to record decisions.", "subtle"))
        self.body = QHBoxLayout(self)
        self.body.addLayout(left, 1)
        self.resize(900, 620)

    def attach_sheet(self, sheet: Any) -> None:
        """Show a comparison sheet beside the images; marks placed on the pane go to it and back."""
        self.sheet = sheet
        self.body.addWidget(sheet, 1)
        self.pane.mark_placed.connect(sheet.add_mark)
        sheet.marks_changed.connect(self.pane.set_marks)
        self.resize(1500, 860)

    def set_sketch(self, png: bytes) -> None:
        """Show the square of the sketch the encoder sees (the engine's crop), framed like the face crop."""
        image = QImage.fromData(png)
        if not image.isNull():
            self.pane.sketch = image
            self.pane.update()

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


def pixmap_of(data: Any) -> QPixmap:
    pixmap = QPixmap()
    if data:
        pixmap.loadFromData(bytes(data))
    return pixmap
