"""ReportDialog: export the open case as a PDF, HTML or JSON report, with progress and "Show in folder".

The report is written by the engine (and its SHA-256 audited) through the case controller; the
dialog only chooses the format and place and shows the outcome.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLineEdit,
    QProgressBar,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from sketchface_desktop.controllers.case_controller import CaseController
from sketchface_desktop.views.ui import button, label, primary_button

FORMATS = (("pdf", "PDF — for the file and for print"), ("html", "HTML — opens in any browser"),
           ("json", "JSON — every value, for other programs"))


class ReportDialog(QDialog):
    """Choose a format and place, export, then open the folder.

    Signals:
        exported(object): the Path of the written report.
    """

    exported = Signal(object)

    def __init__(self, cases: CaseController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ReportDialog")
        self.setWindowTitle("Export case report")
        self.cases = cases
        self.path: Path | None = None
        self.job: Any = None
        info = cases.info
        self.formats = QButtonGroup(self)
        layout = QVBoxLayout(self)
        layout.addWidget(label(f"Report of case {info.case_number if info else ''}", "heading"))
        layout.addWidget(label("The report lists the sketches, every search with its run manifest, each decision "
                               "with its examiner and time, sign-offs and the audit head to check it against later. "
                               "Its SHA-256 is recorded in the case's audit log.", "subtle", True))
        for fmt, text in FORMATS:
            radio = QRadioButton(text)
            radio.setObjectName(f"Format:{fmt}")
            radio.setProperty("fmt", fmt)
            self.formats.addButton(radio)
            layout.addWidget(radio)
        self.formats.buttons()[0].setChecked(True)
        self.target = QLineEdit()
        self.target.setObjectName("ReportTarget")
        self.target.setPlaceholderText("the case's reports folder")
        browse = button("Choose…", "open")
        browse.clicked.connect(self._browse)
        where = QHBoxLayout()
        where.addWidget(label("Save to:"))
        where.addWidget(self.target, 1)
        where.addWidget(browse)
        layout.addLayout(where)
        self.progress = QProgressBar()
        self.progress.setObjectName("ReportProgress")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setTextVisible(False)
        layout.addWidget(self.progress)
        self.outcome = label("", "subtle", True)
        self.outcome.setObjectName("ReportOutcome")
        layout.addWidget(self.outcome)
        layout.addStretch(1)
        self.export_button = primary_button("Export", "export")
        self.export_button.setObjectName("ExportReport")
        self.export_button.clicked.connect(self.export)
        self.show_button = button("Show in folder", "open")
        self.show_button.setObjectName("ShowInFolder")
        self.show_button.setEnabled(False)
        self.show_button.clicked.connect(self.show_in_folder)
        close = button("Close")
        close.clicked.connect(self.accept)
        foot = QHBoxLayout()
        foot.addWidget(self.show_button)
        foot.addStretch(1)
        foot.addWidget(self.export_button)
        foot.addWidget(close)
        layout.addLayout(foot)
        self.setMinimumSize(600, 400)

    def fmt(self) -> str:
        checked = self.formats.checkedButton()
        return str(checked.property("fmt")) if checked is not None else "pdf"

    def set_format(self, fmt: str) -> None:
        for b in self.formats.buttons():
            b.setChecked(b.property("fmt") == fmt)

    def _browse(self) -> None:
        fmt = self.fmt()
        path, _ = QFileDialog.getSaveFileName(self, "Save report as", "", f"{fmt.upper()} (*.{fmt})")
        if path:
            self.target.setText(path if path.lower().endswith(f".{fmt}") else f"{path}.{fmt}")

    def export(self) -> Any:
        """Start the export (case lane); the progress bar runs until the report is written."""
        if not self.cases.is_open:
            self.outcome.setText("No case is open.")
            return None
        self.export_button.setEnabled(False)
        self.show_button.setEnabled(False)
        self.progress.setRange(0, 0)
        self.outcome.setText(f"Writing the {self.fmt().upper()} report…")
        self.job = self.cases.export_report(self.fmt(), self.target.text().strip() or None, self._done, self._failed)
        self.job.progress.connect(self._progress)
        return self.job

    def _progress(self, done: int, total: int, _message: str) -> None:
        if total:
            self.progress.setRange(0, total)
            self.progress.setValue(done)

    def _done(self, path: Path) -> None:
        self.path = Path(path)
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.outcome.setText(f"Written: {self.path}")
        self.export_button.setEnabled(True)
        self.show_button.setEnabled(True)
        self.exported.emit(self.path)

    def _failed(self, exc: BaseException) -> None:
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.outcome.setText(f"Not exported: {getattr(exc, 'message', None) or exc}")
        self.export_button.setEnabled(True)

    def show_in_folder(self) -> None:
        if self.path is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.path.parent)))
