"""IntakeDialog and IntakePrompt: the probe's intake before it is searched, and where the window shows its absence.

The ENFSI initial assessment: where the probe came from (artist sketch, composite software, witness
drawing, scan or photo), the witness and the delay since the event, the artist and known alterations,
and whether it is suitable to search with (limited and unsuitable need reasons). The window asks for it
from Sketch > Probe intake… and, while the sketch on the sheet has none, says so above the results and
marks it in the navigator; a search made without it is listed as "searched before intake" in the
record, and a generated probe as non-evidential, in every list.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from sketchface_desktop.controllers.exam_controller import ExamController
from sketchface_desktop.ops import exam as exam_ops
from sketchface_desktop.ops.exam import ProbeStatus
from sketchface_desktop.views.ui import label

ItemRole = Qt.ItemDataRole.UserRole
NON_EVIDENTIAL_TAG = "NON-EVIDENTIAL (generated probe)"
BEFORE_INTAKE_TAG = "searched before intake"
MISSING_TAG = "no intake"


class IntakeDialog(QDialog):
    """The intake form for the sketch on the sheet.

    Signals:
        intake_given(object): a dict of source, software, witness, delay, artist, alterations,
            suitability, reasons and marks ("KIND:LOCATION[:DESCRIPTION]" strings).
    """

    intake_given = Signal(object)

    def __init__(self, choices: dict[str, tuple[str, ...]], witness: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("IntakeDialog")
        self.setWindowTitle("Probe intake")
        self.source = QComboBox()
        self.source.addItems([s for s in choices["sources"] if s != "generated"])
        self.software = QLineEdit()
        self.software.setPlaceholderText("Which composite software (for a composite)")
        self.witness = QLineEdit(witness)
        self.delay = QLineEdit()
        self.delay.setPlaceholderText("Time between the event and the description, e.g. 3 days")
        self.artist = QLineEdit()
        self.alterations = QLineEdit()
        self.alterations.setPlaceholderText("Known alterations of the image (none if empty)")
        self.suitability = QComboBox()
        self.suitability.addItems(list(choices["suitability"]))
        self.reasons = QPlainTextEdit()
        self.reasons.setPlaceholderText("Why limited or unsuitable (required then), e.g. profile view only")
        self.reasons.setFixedHeight(64)
        self.marks = QLineEdit()
        self.marks.setPlaceholderText("Scars, marks, tattoos the witness described: tattoo:left forearm:rose; "
                                      "scar:chin")
        self.error = label("", "error", True)
        self.error.setObjectName("IntakeError")
        form = QFormLayout()
        for text, widget in (("Source", self.source), ("Software", self.software), ("Witness", self.witness),
                             ("Delay since the event", self.delay), ("Artist", self.artist),
                             ("Known alterations", self.alterations), ("Suitability", self.suitability),
                             ("Reasons", self.reasons), ("Marks described", self.marks)):
            form.addRow(text, widget)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        ok = buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setText("Record intake")
        ok.setObjectName("IntakeOk")
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(label("The initial assessment of the sketch on the sheet, recorded in the case (audited) "
                               "before it is searched.", "subtle", True))
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self.resize(560, 480)

    def values(self) -> dict[str, Any]:
        marks = [m.strip() for m in self.marks.text().split(";") if m.strip()]
        return {"source": self.source.currentText(), "software": self.software.text().strip(),
                "witness": self.witness.text().strip(), "delay": self.delay.text().strip(),
                "artist": self.artist.text().strip(), "alterations": self.alterations.text().strip(),
                "suitability": self.suitability.currentText(), "reasons": self.reasons.toPlainText().strip(),
                "marks": marks}

    def _accept(self) -> None:
        v = self.values()
        if v["suitability"] != "suitable" and not v["reasons"]:
            self.error.setText(f"A probe assessed as {v['suitability']} needs the reasons.")
            return
        if v["source"] == "composite-software" and not v["software"]:
            self.error.setText("Name the composite software.")
            return
        self.accept()
        self.intake_given.emit(v)


def _tag(text: str, tags: list[str]) -> str:
    base = text.split("  [", 1)[0]
    return base + (f"  [{'; '.join(tags)}]" if tags else "")


def mark_search_list(widget: QListWidget, status: ProbeStatus) -> None:
    """Tag the navigator's searches: non-evidential (generated probe) and searched before intake."""
    for i in range(widget.count()):
        item = widget.item(i)
        record = item.data(ItemRole)
        flags = status.searches.get(getattr(record, "id", -1), {})
        tags = ([NON_EVIDENTIAL_TAG] if flags.get("non_evidential") else []) + (
            [BEFORE_INTAKE_TAG] if flags.get("before_intake") else [])
        item.setText(_tag(item.text(), tags))


def mark_sketch_list(widget: QListWidget, status: ProbeStatus) -> None:
    """Tag the navigator's sketch versions with their intake's suitability, or that none is recorded."""
    for i in range(widget.count()):
        item = widget.item(i)
        version = item.data(ItemRole)
        if version is None:
            continue
        suitability = status.sketch_intake.get(getattr(version, "id", -1), "")
        item.setText(_tag(item.text(), [f"intake: {suitability}" if suitability else MISSING_TAG]))


class IntakePrompt:
    """The window's intake: the dialog, the Probe intake action's handler, and the lists' tags.

    Args:
        exam: the examination controller (records the intake, reports the probe status).
        parent: the window (the dialog's parent).
        default_witness: the case's first witness (the dialog's default).
        notice: where the intake state of the sheet and the shown search is said (a QLabel).
        lists: the navigator's sketch and search lists, tagged after each change.
        shown_search: the id of the search on show, or None.
    """

    def __init__(self, exam: ExamController, parent: QWidget, default_witness: Callable[[], str], notice: QLabel,
                 lists: tuple[QListWidget, QListWidget], shown_search: Callable[[], int | None]) -> None:
        self.exam = exam
        self.parent = parent
        self.default_witness = default_witness
        self.notice = notice
        self.sketch_list, self.search_list = lists
        self.shown_search = shown_search
        self.dialog: IntakeDialog | None = None
        self._settle = QTimer(parent)  # the drawing changed: say whether it has an intake once strokes pause
        self._settle.setSingleShot(True)
        self._settle.setInterval(700)
        self._settle.timeout.connect(lambda: self.show_status(self.exam.status))
        exam.status_changed.connect(self.show_status)
        exam.intake_failed.connect(self._failed)

    def sheet_changed(self) -> None:
        """The drawing changed: its intake state is said again shortly (not on every stroke)."""
        self._settle.start()

    def ask(self) -> IntakeDialog:
        """Open the intake form for the sketch on the sheet (non-modal to the work behind it)."""
        if self.dialog is not None:
            self.dialog.close()
        self.dialog = dialog = IntakeDialog(exam_ops.intake_choices(), self.default_witness(), self.parent)
        dialog.intake_given.connect(self.exam.record_intake)
        dialog.open()
        return dialog

    def _failed(self, text: str) -> None:
        """The engine refused (nothing recorded): said in the open form, else above the results."""
        if self.dialog is not None and self.dialog.isVisible():
            self.dialog.error.setText(text)
            return
        self.notice.setText(f"Not recorded: {text}")
        self.notice.show()

    def show_status(self, status: ProbeStatus) -> None:
        """Tag the lists, and say above the results what the sheet and the shown search lack."""
        mark_sketch_list(self.sketch_list, status)
        mark_search_list(self.search_list, status)
        lines = []
        shown = status.searches.get(self.shown_search() or -1, {})
        if shown.get("non_evidential"):
            lines.append("NON-EVIDENTIAL: this search's probe is a generated image (investigative aid only); "
                         "conclusions are limited to investigative-lead outcomes.")
        if shown.get("before_intake"):
            lines.append("This search ran before its probe's intake was recorded: the record lists it as "
                         "searched before intake.")
        if self.exam.sheet_has_intake() is False:
            lines.append("No intake is recorded for the sketch on the sheet: record it (Sketch > Probe intake…) "
                         "before searching, or the search is listed as searched before intake.")
        self.notice.setText("\n".join(lines))
        self.notice.setVisible(bool(lines))
