"""LineupDialog: review a built line-up — its photos and key, the band, the fairness figures — swap fillers
with a reason, save the administration material (which carries no mark of the suspect), and record the
witness's response. LineupOptionsDialog: before a build, the fillers, the ticked description fields and the
case's witness description the values come from."""

from __future__ import annotations

from collections.abc import Sequence
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

from sketchface_desktop.ops.lineups import LineupOptions
from sketchface_desktop.views.ui import button, label, primary_button

THUMB = 112


class LineupDialog(QDialog):
    """Shows one line-up (a LineupShown) for the examiner who built it.

    Signals:
        swap_requested(int, str): position of a filler and the reason to swap it.
        material_requested(str, str): presentation mode and the PDF path to write.
        response_requested(object, str, str): the witness's choice (a position, or None), the confidence
            statement in their words, and the administrator.
    """

    swap_requested = Signal(int, str)
    material_requested = Signal(str, str)
    response_requested = Signal(object, str, str)

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
        self.respond = button("Record witness response…")
        self.respond.setObjectName("LineupRecordResponse")
        self.respond.clicked.connect(self._record_response)
        close = button("Close")
        close.clicked.connect(self.accept)
        bottom = QHBoxLayout()
        bottom.addWidget(QLabel("Presentation:"))
        bottom.addWidget(self.mode)
        bottom.addStretch(1)
        bottom.addWidget(self.save)
        bottom.addWidget(self.respond)
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
                b.setEnabled(not shown.responses)  # shown to a witness: the members can no longer change
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
                          + (" Swaps: " + "; ".join(shown.swaps) if shown.swaps else "")
                          + (" Witness responses: " + "; ".join(shown.responses) if shown.responses else ""))
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

    def _record_response(self) -> None:
        dialog = WitnessResponseDialog(len(self.shown.members), self)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        choice, confidence, administrator = dialog.response()
        if not confidence:
            self.message.setText("Nothing recorded: write down the witness's confidence statement in their own "
                                 "words.")
            return
        self.response_requested.emit(choice, confidence, administrator)

    def show_message(self, text: str) -> None:
        self.message.setText(text)

    def material_saved(self, path: object) -> None:
        self.message.setText(f"Saved the administration material to {path}")


class WitnessResponseDialog(QDialog):
    """The witness's response to a line-up: the position chosen (or nobody) and the confidence statement."""

    def __init__(self, positions: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("WitnessResponseDialog")
        self.setWindowTitle("Record witness response")
        self.choice = QComboBox()
        self.choice.addItem("Nobody chosen (not present / not sure)", None)
        for p in range(1, positions + 1):
            self.choice.addItem(f"Photograph {p}", p)
        self.confidence = QLineEdit()
        self.confidence.setPlaceholderText("The witness's confidence, in their own words, taken at once")
        self.administrator = QLineEdit()
        self.administrator.setPlaceholderText("Who showed the line-up (should not know the suspect's position)")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Witness's choice:"))
        layout.addWidget(self.choice)
        layout.addWidget(QLabel("Confidence statement:"))
        layout.addWidget(self.confidence)
        layout.addWidget(QLabel("Administrator:"))
        layout.addWidget(self.administrator)
        layout.addWidget(buttons)

    def response(self) -> tuple[int | None, str, str]:
        """(position chosen or None, confidence statement, administrator)."""
        data = self.choice.currentData()
        return (int(data) if data is not None else None, self.confidence.text().strip(),
                self.administrator.text().strip())


class LineupOptionsDialog(QDialog):
    """Before a build: how many fillers, which description fields they must fit (the ticked ones), and the
    case's witness description their values come from (a value typed over it is recorded as typed)."""

    def __init__(self, witnesses: Sequence[Any] = (), parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("LineupOptionsDialog")
        self.setWindowTitle("Build line-up")
        self.witnesses = list(witnesses)
        self.fillers = QSpinBox()
        self.fillers.setRange(2, 11)
        self.fillers.setValue(5)
        self.witness = QComboBox()
        self.witness.setObjectName("LineupWitness")
        self.witness.addItem("No witness record (values: the suspect's recorded ones, or typed)", None)
        for w in self.witnesses:
            self.witness.addItem(w.label, w.id)
        self.described = label("", "subtle", True)
        self.sex = QCheckBox("Sex")
        self.sex.setChecked(True)
        self.sex_value = QLineEdit()
        self.age = QCheckBox("Age band")
        self.age.setChecked(True)
        self.age_value = QLineEdit()
        self.other = QLineEdit()
        self.other.setPlaceholderText("Other fields, comma-separated: FIELD (value from the record) or FIELD=VALUE")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        row = QHBoxLayout()
        row.addWidget(QLabel("Fillers:"))
        row.addWidget(self.fillers)
        row.addStretch(1)
        grid = QGridLayout()
        for i, (box, value) in enumerate(((self.sex, self.sex_value), (self.age, self.age_value))):
            grid.addWidget(box, i, 0)
            grid.addWidget(value, i, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(QLabel("Witness description:"))
        layout.addWidget(self.witness)
        layout.addWidget(self.described)
        layout.addWidget(label("Fillers must fit the witness's description in the ticked fields:", "subtle", True))
        layout.addLayout(grid)
        layout.addWidget(self.other)
        layout.addWidget(buttons)
        self.witness.currentIndexChanged.connect(self._fill)
        self._fill()

    def _chosen(self) -> Any:
        wid = self.witness.currentData()
        return next((w for w in self.witnesses if w.id == wid), None)

    def _fill(self, _index: int = 0) -> None:
        """Fill the values from the chosen witness record (empty without one: the suspect's values are used)."""
        w = self._chosen()
        fields = w.fields if w is not None else {}
        self.sex_value.setText(fields.get("sex", ""))
        self.age_value.setText(fields.get("age_band", ""))
        self.described.setText("" if w is None else "Described: " + ", ".join(f"{k}={v}" for k, v in fields.items())
                               + f" (taken by {w.taken_by})")

    def options(self) -> LineupOptions:
        """The fillers, the ticked fields, the chosen witness record and the values typed over it."""
        w = self._chosen()
        recorded = w.fields if w is not None else {}
        match: list[str] = []
        typed: dict[str, str] = {}
        for key, box, edit in (("sex", self.sex, self.sex_value), ("age_band", self.age, self.age_value)):
            if box.isChecked():
                match.append(key)
                value = edit.text().strip()
                if value and value != recorded.get(key, ""):
                    typed[key] = value
        for item in (f.strip() for f in self.other.text().split(",")):
            key, sep, value = item.partition("=")
            if key.strip():
                match.append(key.strip())
                if sep and value.strip():
                    typed[key.strip()] = value.strip()
        return LineupOptions(self.fillers.value(), tuple(match), None if w is None else int(w.id), typed)


def ask_lineup_options(parent: QWidget | None = None, witnesses: Sequence[Any] = ()) -> LineupOptions | None:
    """Ask for the build options, listing the case's ``witnesses``; None when cancelled."""
    dialog = LineupOptionsDialog(witnesses, parent)
    return dialog.options() if dialog.exec() == QDialog.DialogCode.Accepted else None


def open_lineup_dialog(controller: Any, shown: Any, parent: QWidget | None = None) -> LineupDialog:
    """The window's dialog factory: a non-modal dialog wired to ``controller``'s signals and requests."""
    dialog = LineupDialog(shown, parent)
    dialog.swap_requested.connect(controller.swap)
    dialog.material_requested.connect(controller.write_material)
    dialog.response_requested.connect(controller.record_response)
    wired = ((controller.lineup_shown, dialog.show_lineup), (controller.failed, dialog.show_message),
             (controller.material_written, dialog.material_saved),
             (controller.response_recorded, dialog.show_message))
    for signal, slot in wired:
        signal.connect(slot)

    def unwire(_result: int) -> None:
        for signal, slot in wired:
            signal.disconnect(slot)

    dialog.finished.connect(unwire)
    dialog.show()
    return dialog
