"""OutputStrip: generated faces side by side, each stamped SYNTHETIC with its identity score.

Why the label is painted into the thumbnail itself rather than drawn as a separate caption: a
synthetic face must never be seen without it, whatever the item's size, selection colour, elided
text or a screenshot of just that cell.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QListView, QListWidget, QListWidgetItem, QWidget

if TYPE_CHECKING:
    from PIL import Image

    from sketchface_desktop.ops.generation import GeneratedOutput

THUMB = 120
SYNTHETIC_TEXT = "SYNTHETIC"


def pil_to_qimage(image: Image.Image) -> QImage:
    """A deep-copied RGB QImage of a PIL image (the PIL buffer may go away)."""
    rgb = image.convert("RGB")
    data = rgb.tobytes()
    return QImage(data, rgb.width, rgb.height, 3 * rgb.width, QImage.Format.Format_RGB888).copy()


def stamped_thumbnail(image: Image.Image, size: int = THUMB) -> QPixmap:
    """The image scaled to ``size`` with a red SYNTHETIC band across its top."""
    pix = QPixmap.fromImage(pil_to_qimage(image)).scaled(
        size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
    painter = QPainter(pix)
    band = max(16, pix.height() // 9)
    painter.fillRect(0, 0, pix.width(), band, QColor(176, 24, 32, 225))
    font = QFont()
    font.setBold(True)
    font.setPixelSize(int(band * 0.7))
    painter.setFont(font)
    painter.setPen(QColor("white"))
    painter.drawText(0, 0, pix.width(), band, Qt.AlignmentFlag.AlignCenter, SYNTHETIC_TEXT)
    painter.end()
    return pix


def caption(output: GeneratedOutput) -> str:
    """The one line under a thumbnail (identity score, what it is); SYNTHETIC is painted on the image."""
    score = "identity —" if output.identity_score is None else f"identity {output.identity_score:.3f}"
    return f"{score} · {output.label}"


class OutputStrip(QListWidget):
    """A horizontal strip of :class:`GeneratedOutput` thumbnails.

    Signals:
        current_output_changed(object): the selected GeneratedOutput, or None.
    """

    current_output_changed = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ReconstructStrip")
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(False)
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setIconSize(QSize(THUMB, THUMB))
        self.setGridSize(QSize(THUMB + 56, THUMB + 28))
        self.setSpacing(4)
        self.setMinimumHeight(THUMB + 44)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.outputs: list[GeneratedOutput] = []
        self.currentRowChanged.connect(lambda _r: self.current_output_changed.emit(self.current_output()))

    def add_output(self, output: GeneratedOutput) -> QListWidgetItem:
        """Append one output (as soon as the engine delivers it)."""
        item = QListWidgetItem(stamped_thumbnail(output.image), caption(output))
        item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        item.setToolTip(f"SYNTHETIC · {caption(output)}\nSynthetic image: an investigative aid, not a photograph of anyone.")
        item.setSizeHint(QSize(THUMB + 52, THUMB + 24))
        self.outputs.append(output)
        self.addItem(item)
        if self.currentRow() < 0:
            self.setCurrentRow(0)
        return item

    def replace_outputs(self, keep: list[GeneratedOutput], new: list[GeneratedOutput]) -> None:
        """Show ``keep`` (earlier outputs) followed by ``new`` (e.g. a run's candidates, best first)."""
        self.clear()
        self.outputs = []
        for output in (*keep, *new):
            self.add_output(output)

    def current_output(self) -> GeneratedOutput | None:
        row = self.currentRow()
        return self.outputs[row] if 0 <= row < len(self.outputs) else None
