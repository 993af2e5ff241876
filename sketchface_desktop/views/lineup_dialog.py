"""LineupDialog: review a built line-up — its photos and key, the band, the fairness figures — swap fillers
with a reason, and save the administration material (which carries no mark of the suspect)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from sketchface_desktop.views.ui import button, label, primary_button

THUMB = 112


class LineupDialog(QDialog):
    """Shows one line-up (a LineupShown) for the examiner who built it.

    Signals:
        swap_requested(int, str): position of a filler and the reason to swap it.
        material_requested(str, str): presentation mode and the PDF path to write.
    """

    swap_requested = Signal(int, str)
    material_requested = Signal(str, str)

    def __init__(self, shown: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("LineupDialog")
        self.setWindowTitle(f"Line-up {shown.lineup_id}")
        self.grid = QGridLayout()
        self.info = label("", "subtle", True)
        self.info.setObjectName("LineupInfo")
        self.warning = label("", "bad", True)
        self.warning.setObjectName("LineupWarning")
        self.message = label("", "subtle", True)
        self.message.setObjectName("LineupMessage")
        self.mode = QComboBox()
        self.mode.addItems(["simultaneous", "sequential"])
        self.save = primary_button("Save administration PDF…")
        self.save.setObjectName("LineupSave")
        self.save.clicked.connect(self._save)
        close = button("Close")
        close.clicked.connect(self.accept)
        bottom = QHBoxLayout()
        bottom.addWidget(QLabel("Presentation:"))
        bottom.addWidget(self.mode)
        bottom.addStretch(1)
        bottom.addWidget(self.save)
        bottom.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.info)
        layout.addLayout(self.grid)
        layout.addWidget(self.warning)
        layout.addWidget(self.message)
        layout.addLayout(bottom)
        self.swap_buttons: dict[int, Any] = {}
        self.show_lineup(shown)

    def show_lineup(self, shown: Any) -> None:
        """Draw (or redraw after a swap) the members, the band and the fairness figures."""
        self.shown = shown
        while self.grid.count():
            item = self.grid.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        self.swap_buttons = {}
        for i, m in enumerate(shown.members):
            pix = QPixmap()
            pix.loadFromData(shown.thumbnails.get(m["position"], b""))
            img = QLabel()
            if not pix.isNull():
                img.setPixmap(pix.scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio,
                                         Qt.TransformationMode.SmoothTransformation))
            role = "SUSPECT" if m["role"] == "suspect" else "filler"
            text = label(f"{m['position']} · {role}\n{m['subject_id']} · cos {m['similarity']:.3f}", "subtle", True)
            self.grid.addWidget(img, 0, i)
            self.grid.addWidget(text, 1, i)
            if m["role"] == "filler":
                b = button("Swap…")
                b.setObjectName(f"LineupSwap{m['position']}")
                b.clicked.connect(lambda _=False, p=m["position"]: self._swap(p))
                self.grid.addWidget(b, 2, i)
                self.swap_buttons[m["position"]] = b
        f = shown.fairness
        desc = ", ".join(f"{k}={v}" for k, v in shown.description.items()) or "none"
        figures = ("" if f.get("suspect_share") is None else
                   f" Distinctiveness R = {'undefined' if f['ratio'] is None else format(f['ratio'], '.2f')}; "
                   f"mock witnesses pick the suspect "
                   f"{100 * f['suspect_share']:.0f} % (fair {100 * f['fair_share']:.0f} %), E' "
                   f"{f['effective_size']:.1f}.")
        self.info.setText(f"Description fitted: {desc}. Similarity band [{shown.band[0]:.3f}, {shown.band[1]:.3f}] "
                          f"({shown.band_source}). Seed {shown.seed}.{figures}"
                          + (" Swaps: " + "; ".join(shown.swaps) if shown.swaps else ""))
        self.warning.setText(shown.warning)
        self.warning.setVisible(bool(shown.warning))

    def _swap(self, position: int) -> None:
        reason, ok = QInputDialog.getText(self, "Swap filler", f"Why swap the filler at position {position}?")
        if ok and reason.strip():
            self.swap_requested.emit(position, reason.strip())

    def _save(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save line-up material", f"lineup-{self.shown.lineup_id}.pdf",
                                              "PDF (*.pdf)")
        if path:
            self.material_requested.emit(self.mode.currentText(), path)

    def show_message(self, text: str) -> None:
        self.message.setText(text)

    def material_saved(self, path: object) -> None:
        self.message.setText(f"Saved the administration material to {path}")


class LineupOptionsDialog(QDialog):
    """Before a build: how many fillers, and which description fields they must fit (the ticked ones)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("LineupOptionsDialog")
        self.setWindowTitle("Build line-up")
        self.fillers = QSpinBox()
        self.fillers.setRange(2, 11)
        self.fillers.setValue(5)
        self.sex = QCheckBox("Sex")
        self.sex.setChecked(True)
        self.age = QCheckBox("Age band")
        self.age.setChecked(True)
        self.other = QLineEdit()
        self.other.setPlaceholderText("Other metadata fields, comma-separated (e.g. source)")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        row = QHBoxLayout()
        row.addWidget(QLabel("Fillers:"))
        row.addWidget(self.fillers)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(label("Fillers must fit the witness's description in these fields (values: the suspect's "
                               "recorded ones):", "subtle", True))
        layout.addWidget(self.sex)
        layout.addWidget(self.age)
        layout.addWidget(self.other)
        layout.addWidget(buttons)

    def options(self) -> tuple[int, tuple[str, ...]]:
        """(fillers, ticked fields)."""
        fields = [k for k, box in (("sex", self.sex), ("age_band", self.age)) if box.isChecked()]
        fields += [f.strip() for f in self.other.text().split(",") if f.strip()]
        return self.fillers.value(), tuple(fields)


def ask_lineup_options(parent: QWidget | None = None) -> tuple[int, tuple[str, ...]] | None:
    """Ask for the build options; None when cancelled."""
    dialog = LineupOptionsDialog(parent)
    return dialog.options() if dialog.exec() == QDialog.DialogCode.Accepted else None


def open_lineup_dialog(controller: Any, shown: Any, parent: QWidget | None = None) -> LineupDialog:
    """The window's dialog factory: a non-modal dialog wired to ``controller``'s signals and requests."""
    dialog = LineupDialog(shown, parent)
    dialog.swap_requested.connect(controller.swap)
    dialog.material_requested.connect(controller.write_material)
    wired = ((controller.lineup_shown, dialog.show_lineup), (controller.failed, dialog.show_message),
             (controller.material_written, dialog.material_saved))
    for signal, slot in wired:
        signal.connect(slot)

    def unwire(_result: int) -> None:
        for signal, slot in wired:
            signal.disconnect(slot)

    dialog.finished.connect(unwire)
    dialog.show()
    return dialog
