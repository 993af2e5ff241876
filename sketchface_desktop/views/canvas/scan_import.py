"""ScanImportDialog: bring a scanned or photographed sketch onto the sheet (crop, rotate, levels, threshold).

Witness sketches arrive on paper. A phone photo of a sketch has a grey, uneven background and is rarely
straight; levels and an optional threshold turn it into ink on white like a drawn sketch, so the
search sees the lines and not the paper.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QImageReader, QMouseEvent, QPainter, QPaintEvent, QPen, QTransform
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from sketchface_desktop.views import assets

WORK_MAX_SIDE = 1600  # decoded scans are reduced to this; the sheet is 640 x 800


def load_scan(path: str, max_side: int = WORK_MAX_SIDE) -> QImage:
    """Decode an image upright (EXIF) and at most ``max_side`` pixels on its long side (fast JPEG scaling)."""
    reader = QImageReader(path)
    reader.setAutoTransform(True)
    size = reader.size()
    if size.isValid() and max(size.width(), size.height()) > max_side:
        reader.setScaledSize(size.scaled(max_side, max_side, Qt.AspectRatioMode.KeepAspectRatio))
    image = reader.read()
    if image.isNull():
        raise ValueError(f"{path} could not be read as an image: {reader.errorString()}")
    return image


def rotate(image: QImage, degrees: float) -> QImage:
    """Rotate about the centre, filling the uncovered corners with paper white."""
    if abs(degrees) < 1e-3:
        return image.convertToFormat(QImage.Format.Format_RGB32)
    turned = image.convertToFormat(QImage.Format.Format_ARGB32).transformed(
        QTransform().rotate(degrees), Qt.TransformationMode.SmoothTransformation)
    sheet = QImage(turned.size(), QImage.Format.Format_RGB32)
    sheet.fill(QColor("white"))
    painter = QPainter(sheet)
    painter.drawImage(0, 0, turned)
    painter.end()
    return sheet


def to_gray(image: QImage) -> np.ndarray:
    gray = image.convertToFormat(QImage.Format.Format_Grayscale8)
    w, h, stride = gray.width(), gray.height(), gray.bytesPerLine()
    return np.frombuffer(gray.constBits(), dtype=np.uint8).reshape(h, stride)[:, :w].copy()


def from_gray(arr: np.ndarray) -> QImage:
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    h, w = arr.shape
    return QImage(arr.data, w, h, w, QImage.Format.Format_Grayscale8).copy()


def levels(gray: np.ndarray, black: int, white: int, threshold: int | None = None) -> np.ndarray:
    """Stretch [black, white] to [0, 255]; with ``threshold``, then binarise (ink below it)."""
    black, white = int(black), max(int(white), int(black) + 1)
    out = (gray.astype(np.float32) - black) * (255.0 / (white - black))
    out = np.clip(out, 0, 255).astype(np.uint8)
    if threshold is not None:
        out = np.where(out < threshold, 0, 255).astype(np.uint8)
    return out


def process(image: QImage, degrees: float, crop: QRectF | None, black: int, white: int,
            threshold: int | None) -> QImage:
    """The whole adjustment: rotate, crop (fractions of the rotated image), levels, threshold."""
    turned = rotate(image, degrees)
    if crop is not None and not crop.isEmpty():
        w, h = turned.width(), turned.height()
        rect = QRectF(crop.x() * w, crop.y() * h, crop.width() * w, crop.height() * h).toAlignedRect()
        turned = turned.copy(rect.intersected(turned.rect()))
    return from_gray(levels(to_gray(turned), black, white, threshold))


class CropPreview(QWidget):
    """Shows the adjusted scan and lets the user drag a crop rectangle over it.

    Signals:
        crop_changed(): the crop rectangle changed (fractions of the image, or none).
    """

    crop_changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(420, 420)
        self.image = QImage()
        self.crop: QRectF | None = None
        self._drag: QPointF | None = None
        self.setCursor(Qt.CursorShape.CrossCursor)

    def set_image(self, image: QImage) -> None:
        self.image = image
        self.update()

    def _image_rect(self) -> QRectF:
        if self.image.isNull():
            return QRectF()
        size = QSize(self.image.width(), self.image.height()).scaled(self.size() - QSize(16, 16),
                                                                      Qt.AspectRatioMode.KeepAspectRatio)
        return QRectF((self.width() - size.width()) / 2, (self.height() - size.height()) / 2,
                      size.width(), size.height())

    def _fraction(self, pos: QPointF) -> QPointF:
        r = self._image_rect()
        if r.isEmpty():
            return QPointF()
        return QPointF(min(1.0, max(0.0, (pos.x() - r.x()) / r.width())),
                       min(1.0, max(0.0, (pos.y() - r.y()) / r.height())))

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#d9dee4"))
        r = self._image_rect()
        if not r.isEmpty():
            painter.drawImage(r, self.image)
            if self.crop is not None and not self.crop.isEmpty():
                c = QRectF(r.x() + self.crop.x() * r.width(), r.y() + self.crop.y() * r.height(),
                           self.crop.width() * r.width(), self.crop.height() * r.height())
                shade = QColor(20, 30, 40, 110)
                for part in (QRectF(r.left(), r.top(), r.width(), c.top() - r.top()),
                             QRectF(r.left(), c.bottom(), r.width(), r.bottom() - c.bottom()),
                             QRectF(r.left(), c.top(), c.left() - r.left(), c.height()),
                             QRectF(c.right(), c.top(), r.right() - c.right(), c.height())):
                    painter.fillRect(part, shade)
                painter.setPen(QPen(QColor("#1f5fa8"), 2))
                painter.drawRect(c)
        painter.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self._drag = self._fraction(event.position())

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._drag is not None:
            rect = QRectF(self._drag, self._fraction(event.position())).normalized()
            self.crop = rect if rect.width() > 0.02 and rect.height() > 0.02 else None
            self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        self._drag = None
        self.crop_changed.emit()


class ScanImportDialog(QDialog):
    """Adjust a scanned sketch before it replaces the sheet; ``result_image()`` gives the adjusted image.

    Signals: none of its own (Qt's inherited ones only).
    """

    def __init__(self, image: QImage, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ScanImportDialog")
        self.setWindowTitle("Import scanned sketch")
        self.source = image
        # Live adjustments run on a reduced copy; the full image is processed once, on accept.
        self.preview_source = image if max(image.width(), image.height()) <= 800 else image.scaled(
            800, 800, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
        self.preview = CropPreview(self)
        self.angle = self._slider(-450, 450, 0)  # tenths of a degree
        self.black = self._slider(0, 254, 0)
        self.white = self._slider(1, 255, 255)
        self.threshold_on = QCheckBox("Threshold (pure ink on white)")
        self.threshold = self._slider(1, 254, 160)
        self.angle_label = QLabel("0.0°")
        turn_left = QPushButton(assets.icon("rotate"), "90° left")
        turn_right = QPushButton(assets.icon("rotate"), "90° right")
        turn_left.clicked.connect(lambda: self._quarter(-90))
        turn_right.clicked.connect(lambda: self._quarter(90))
        reset_crop = QPushButton(assets.icon("crop"), "Reset crop")
        reset_crop.clicked.connect(self._reset_crop)
        self._quarters = 0
        form = QFormLayout()
        angle_row = QHBoxLayout()
        angle_row.addWidget(self.angle, 1)
        angle_row.addWidget(self.angle_label)
        form.addRow("Straighten", angle_row)
        turns = QHBoxLayout()
        for w in (turn_left, turn_right, reset_crop):
            turns.addWidget(w)
        form.addRow("", turns)
        form.addRow("Black point", self.black)
        form.addRow("White point", self.white)
        form.addRow(self.threshold_on)
        form.addRow("Threshold", self.threshold)
        hint = QLabel("Drag over the preview to crop to the face. Levels make the paper white and the lines dark.")
        hint.setWordWrap(True)
        hint.setProperty("role", "subtle")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Place on sheet")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        side = QVBoxLayout()
        side.addLayout(form)
        side.addWidget(hint)
        side.addStretch(1)
        side.addWidget(buttons)
        layout = QHBoxLayout(self)
        layout.addWidget(self.preview, 1)
        layout.addLayout(side)
        for s in (self.angle, self.black, self.white, self.threshold):
            s.valueChanged.connect(self._refresh)
        self.threshold_on.toggled.connect(self._refresh)
        self.resize(900, 600)
        self._refresh()

    @staticmethod
    def _slider(lo: int, hi: int, value: int) -> QSlider:
        slider = QSlider(Qt.Orientation.Horizontal)
        slider.setRange(lo, hi)
        slider.setValue(value)
        slider.setMinimumWidth(200)
        return slider

    def _quarter(self, degrees: int) -> None:
        self._quarters = (self._quarters + degrees // 90) % 4
        self.preview.crop = None
        self._refresh()

    def _reset_crop(self) -> None:
        self.preview.crop = None
        self.preview.update()

    def degrees(self) -> float:
        return self._quarters * 90 + self.angle.value() / 10.0

    def _threshold(self) -> int | None:
        return self.threshold.value() if self.threshold_on.isChecked() else None

    def _refresh(self) -> None:
        self.angle_label.setText(f"{self.angle.value() / 10.0:+.1f}°")
        self.threshold.setEnabled(self.threshold_on.isChecked())
        self.preview.set_image(process(self.preview_source, self.degrees(), None, self.black.value(), self.white.value(),
                                       self._threshold()))

    def result_image(self) -> QImage:
        """The adjusted, cropped scan (grayscale), ready to be fitted on the sheet."""
        return process(self.source, self.degrees(), self.preview.crop, self.black.value(), self.white.value(),
                       self._threshold())
