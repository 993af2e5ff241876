"""AuditPanel: the case record's chain status, its entries, and a check against a head printed earlier.

It follows every change the case controller broadcasts; "Verify" re-checks the chain, every record
against it and the workstation's signed anchor, optionally against ``COUNT:HASH`` from a report. During
a blind review the case controller's reading comes without entries (they carry the first examiner's
decisions) and says so; the panel shows what it is given.
"""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QListWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from sketchface_desktop.controllers.case_controller import CaseController
from sketchface_desktop.ops.cases import AuditView
from sketchface_desktop.views.ui import button, label, plain_tip

COLUMNS = ("#", "Time (UTC)", "Examiner", "Action", "Object")


def parse_head(text: str) -> tuple[int, str] | None:
    """``COUNT:HASH`` as printed on a report, or None when empty; ValueError when malformed."""
    text = text.strip()
    if not text:
        return None
    count, sep, head = text.partition(":")
    head = head.strip().lower()
    if not sep or not count.strip().isdigit() or len(head) != 64 or any(c not in "0123456789abcdef" for c in head):
        raise ValueError("Type the head as printed on the report: COUNT:HASH (a number, a colon, 64 hex digits).")
    return int(count), head


class AuditPanel(QWidget):
    """The Audit dock.

    Signals: none of its own (it listens to the case controller).
    """

    def __init__(self, cases: CaseController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("AuditPanel")
        self.cases = cases
        self.view: AuditView | None = None
        self.status = label("No case open.", "subtle", True)
        self.status.setObjectName("AuditStatus")
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.findings = QListWidget()
        self.findings.setObjectName("AuditFindings")
        self.findings.setMaximumHeight(90)
        self.findings.hide()
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("AuditEntries")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.setMinimumHeight(20)
        self.expected = QLineEdit()
        self.expected.setObjectName("ExpectedHead")
        self.expected.setPlaceholderText("Head printed on a report: COUNT:HASH")
        self.expected.setToolTip("Paste the audit head printed on an earlier report to check that this record "
                                 "still contains it (COUNT:HASH)")
        self.verify_button = button("Verify", "verify")
        self.verify_button.setObjectName("VerifyAudit")
        self.verify_button.clicked.connect(lambda: self.refresh())
        self.copy_button = button("Copy head", "export")
        self.copy_button.setObjectName("CopyHead")
        self.copy_button.setToolTip("Copy COUNT:HASH of the verified record, e.g. to compare with a report")
        self.copy_button.setEnabled(False)
        self.copy_button.clicked.connect(self.copy_head)
        check = QHBoxLayout()
        check.addWidget(self.expected, 1)
        check.addWidget(self.verify_button)
        check.addWidget(self.copy_button)
        side = QVBoxLayout()  # a bottom dock is wide and low: state and check left, the entries right
        side.setSpacing(4)
        side.addWidget(self.status)
        side.addWidget(self.findings)
        side.addLayout(check)
        side.addStretch(1)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.addLayout(side, 2)
        layout.addWidget(self.table, 3)
        cases.case_changed.connect(lambda _info: self.refresh(quiet=True))
        cases.changed.connect(lambda _what: self.refresh(quiet=True))
        cases.blind_review_changed.connect(self._blind_review_changed)
        self.verify_button.setEnabled(False)

    def refresh(self, quiet: bool = False) -> Any:
        """Verify and re-read the record; ``quiet`` (after a change) ignores the typed head."""
        if not self.cases.is_open:
            self.view = None
            self.status.setText("No case open.")
            self._style("subtle")
            self.table.setRowCount(0)
            self.findings.hide()
            self.verify_button.setEnabled(False)
            self.copy_button.setEnabled(False)
            return None
        self.verify_button.setEnabled(True)
        try:
            expected = None if quiet else parse_head(self.expected.text())
        except ValueError as exc:
            self.status.setText(str(exc))
            self._style("audit-broken")
            return None
        return self.cases.audit(lambda view: self.show_view(view, expected), expected, self._failed)

    def _blind_review_changed(self, search_id: int | None) -> None:
        """A blind review began or ended: the entries shown now were read before, so they go at once
        when one begins; the controller's next reading says what may be shown."""
        if search_id is not None:
            self.table.setRowCount(0)
        self.refresh(quiet=True)

    def _failed(self, exc: BaseException) -> None:
        self.status.setText(f"The record could not be read: {getattr(exc, 'message', None) or exc}")
        self._style("audit-broken")

    def show_view(self, view: AuditView, expected: tuple[int, str] | None = None) -> None:
        self.view = view
        rep = view.report
        anchors = ", ".join(rep.anchors_checked) or "none"
        against = f" · matches the printed head {expected[0]}:{expected[1][:12]}…" if expected and rep.ok else ""
        if rep.ok:
            self.status.setText(f"INTACT — {rep.count} entries{against}.\nHead {rep.count}:{rep.head[:16]}…"
                                f"{rep.head[-8:]} · sign-offs: {len(view.signoffs)}\nAnchors checked: {anchors}.")
            self._style("audit-ok")
        else:
            self.status.setText(f"NOT INTACT — {len(rep.findings)} finding(s) in {rep.count} entries. Do not rely on "
                                f"this record until the findings are explained. Anchors checked: {anchors}")
            self._style("audit-broken")
        if view.withheld:
            self.status.setText(f"{self.status.text()}\n{view.withheld}")
        self.status.setToolTip(f"Head {rep.count}:{rep.head}")
        self.copy_button.setEnabled(rep.ok)
        self.findings.clear()
        for f in rep.findings:
            where = f"entry {f.seq}: " if f.seq is not None else ""
            self.findings.addItem(f"{where}{f.message}")
        self.findings.setVisible(bool(rep.findings))
        self.table.setRowCount(len(view.entries))
        for r, e in enumerate(reversed(view.entries)):  # newest first
            details = {k: v for k, v in (("inputs", e.inputs), ("outputs", e.outputs), ("details", e.details)) if v}
            cells = (str(e.seq), e.ts.replace("T", " ")[:19], e.user, e.action, e.object)
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(plain_tip(json.dumps(details, indent=1, sort_keys=True, ensure_ascii=False)[:2000])
                                if details else "")
                self.table.setItem(r, c, item)

    def head_text(self) -> str:
        """COUNT:HASH of the last verification ("" before one)."""
        return f"{self.view.report.count}:{self.view.report.head}" if self.view is not None else ""

    def copy_head(self) -> None:
        QGuiApplication.clipboard().setText(self.head_text())

    def _style(self, role: str) -> None:
        self.status.setProperty("role", role)
        self.status.style().polish(self.status)
