"""CaseDetailsDialog (new case / edit details), OpenCaseDialog (pick a case on this workstation) and
ArchiveImportDialog (what the sender reported about a case archive).

The case number is the agency's own and cannot change once created (the audit log names it); the
other details can be edited and every edit is audited by the engine.
"""

from __future__ import annotations

import re
from typing import Any

from PySide6.QtCore import QDate, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDateEdit,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QPlainTextEdit,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from sketchface_desktop.views.ui import label


def split_names(text: str) -> list[str]:
    """'W1, Ms Smith; W3' -> ['W1', 'Ms Smith', 'W3'] (commas or semicolons, blanks dropped)."""
    return [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]


class CaseDetailsDialog(QDialog):
    """Case number, title, examiner, witnesses, incident date and notes; ``values()`` gives them.

    Signals: none of its own (Qt's inherited ones only).
    """

    def __init__(self, parent: QWidget | None = None, info: Any = None, default_examiner: str = "") -> None:
        super().__init__(parent)
        self.setObjectName("CaseDetailsDialog")
        editing = info is not None
        self.setWindowTitle("Case details" if editing else "New case")
        self.number = QLineEdit(info.case_number if editing else "")
        self.number.setPlaceholderText("e.g. 2026-0042")
        self.number.setReadOnly(editing)
        self.title = QLineEdit(info.title if editing else "")
        self.title.setPlaceholderText("Short description, e.g. Robbery, Main St")
        self.examiner = QLineEdit(info.examiner if editing else default_examiner)
        self.examiner.setReadOnly(editing)
        self.witnesses = QLineEdit(", ".join(info.witnesses) if editing else "")
        self.witnesses.setPlaceholderText("Names or codes, separated by commas")
        self.date = QDateEdit()
        self.date.setCalendarPopup(True)
        self.date.setDisplayFormat("yyyy-MM-dd")
        self.date_known = QCheckBox("known")
        existing = QDate.fromString(info.incident_date, "yyyy-MM-dd") if editing and info.incident_date else QDate()
        self.date.setDate(existing if existing.isValid() else QDate.currentDate())
        self.date_known.setChecked(existing.isValid())  # a new case's incident date starts as unknown
        self.date_known.toggled.connect(self.date.setEnabled)
        self.date.setEnabled(self.date_known.isChecked())
        self.notes = QPlainTextEdit(info.notes if editing else "")
        self.notes.setPlaceholderText("Circumstances, instructions, anything the report should carry")
        self.notes.setFixedHeight(110)
        date_row = QHBoxLayout()
        date_row.addWidget(self.date)
        date_row.addWidget(self.date_known)
        date_row.addStretch(1)
        form = QFormLayout()
        form.addRow("Case number", self.number)
        form.addRow("Title", self.title)
        form.addRow("Examiner", self.examiner)
        form.addRow("Witnesses", self.witnesses)
        form.addRow("Incident date", date_row)
        form.addRow("Notes", self.notes)
        self.error = label("", "badge-missing", True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Save" if editing else "Create case")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self.resize(520, 420)

    def values(self) -> dict[str, Any]:
        return {"case_number": self.number.text().strip(), "title": self.title.text().strip(),
                "examiner": self.examiner.text().strip(), "witnesses": split_names(self.witnesses.text()),
                "incident_date": self.date.date().toString("yyyy-MM-dd") if self.date_known.isChecked() else "",
                "notes": self.notes.toPlainText().strip()}

    def accept(self) -> None:
        if not self.number.text().strip():
            self.error.setText("A case needs a case number.")
            return
        super().accept()


class OpenCaseDialog(QDialog):
    """The cases on this workstation, newest first; ``chosen()`` is the selected case id.

    Signals: none of its own (Qt's inherited ones only).
    """

    COLUMNS = ("Case number", "Title", "Examiner", "Status", "Created")

    def __init__(self, cases: list[dict[str, Any]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("OpenCaseDialog")
        self.setWindowTitle("Open case")
        self.cases = cases
        self.table = QTableWidget(len(cases), len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        for r, case in enumerate(cases):
            status = case.get("status", "") if case.get("available") else "not available"
            for c, value in enumerate((case.get("case_number", ""), case.get("title", ""), case.get("examiner", ""),
                                       status, str(case.get("created_at", ""))[:10])):
                item = QTableWidgetItem(str(value))
                if not case.get("available"):
                    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled)
                self.table.setItem(r, c, item)
        if cases:
            self.table.selectRow(0)
        self.table.doubleClicked.connect(lambda _i: self.accept())
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        if not cases:
            layout.addWidget(label("No cases on this workstation yet. Create one with Case > New case.",
                                   "placeholder", True))
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)
        self.resize(720, 420)

    def chosen(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        case = self.cases[rows[0].row()]
        return str(case["case_id"]) if case.get("available") else None


def normalise_hex(text: str) -> str:
    """A digest or fingerprint as typed or pasted (spaces, colons, upper case) in the engine's form."""
    return re.sub(r"[\s:]", "", text).lower()


class ArchiveImportDialog(QDialog):
    """What the sender reported: the archive's SHA-256 and, optionally, their workstation key's fingerprint.

    Both are optional (strongly advised): the SHA-256 catches a changed file, the pinned key also catches
    an archive rebuilt and re-signed elsewhere. Signals: none of its own (Qt's inherited ones only).
    """

    def __init__(self, archive: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ArchiveImportDialog")
        self.setWindowTitle("Import case archive")
        self.sha256 = QLineEdit()
        self.sha256.setObjectName("ArchiveSha256")
        self.sha256.setPlaceholderText("as the sender reported it (strongly advised)")
        self.key = QLineEdit()
        self.key.setObjectName("ArchiveExpectedKey")
        self.key.setPlaceholderText("the sender's 'sketchface case key' fingerprint (optional)")
        self.problem = label("", "badge-missing", True)
        self.problem.hide()
        form = QFormLayout()
        form.addRow("Archive", label(archive, "", True))
        form.addRow("SHA-256", self.sha256)
        form.addRow("Expected signing key (fingerprint)", self.key)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._check)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.problem)
        layout.addWidget(buttons)
        self.resize(640, 0)

    def values(self) -> tuple[str, str]:
        """The SHA-256 and the expected key fingerprint, normalised (empty when not given)."""
        return normalise_hex(self.sha256.text()), normalise_hex(self.key.text())

    def _check(self) -> None:
        sha, key = self.values()
        if sha and not re.fullmatch(r"[0-9a-f]{64}", sha):
            self._refuse("The SHA-256 has 64 hexadecimal digits; check what the sender gave you.")
        elif key and not re.fullmatch(r"[0-9a-f]{16,64}", key):
            self._refuse("The key fingerprint has 16 to 64 hexadecimal digits ('sketchface case key' prints it).")
        else:
            self.accept()

    def _refuse(self, text: str) -> None:
        self.problem.setText(text)
        self.problem.show()
