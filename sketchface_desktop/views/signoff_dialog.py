"""SignOffDialog: a second examiner signs the case, or chosen searches, with role and statement.

The engine refuses a sign-off by the case's own examiner and over a record that does not verify;
the refusal is shown in the dialog, which stays open so nothing typed is lost.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from sketchface_desktop.controllers.case_controller import CaseController
from sketchface_desktop.views.ui import button, label, primary_button

ROLES = ("second examiner", "supervisor", "technical reviewer")
STATEMENT_HINT = "What you reviewed and what you found, in your own words."


class SignOffDialog(QDialog):
    """Who signs, in what role, with which statement, over the whole case or the searches ticked.

    Signals: the QDialog set (``accepted`` once the sign-off is recorded).
    """

    def __init__(self, cases: CaseController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("SignOffDialog")
        self.setWindowTitle("Second-examiner sign-off")
        self.cases = cases
        self.signoffs: list[Any] = []
        info = cases.info
        self.examiner = QLineEdit()
        self.examiner.setObjectName("SignOffExaminer")
        self.examiner.setPlaceholderText("Full name of the second examiner")
        self.role = QComboBox()
        self.role.setObjectName("SignOffRole")
        self.role.setEditable(True)
        self.role.addItems(ROLES)
        self.statement = QPlainTextEdit()  # never pre-filled: the reviewer states what they found
        self.statement.setPlaceholderText(STATEMENT_HINT)
        self.statement.setObjectName("SignOffStatement")
        self.statement.setFixedHeight(90)
        self.whole = QRadioButton("The whole case")
        self.whole.setObjectName("ScopeWholeCase")
        self.chosen = QRadioButton("The searches ticked below")
        self.chosen.setObjectName("ScopeSearches")
        self.whole.setChecked(True)
        self.searches = QListWidget()
        self.searches.setObjectName("SignOffSearches")
        for rec in cases.searches:
            item = QListWidgetItem(f"Search {rec.id} — {rec.label or 'search'} · {rec.n_results} candidates"
                                   + (" · blind" if rec.blind else "") + f" · {rec.created_at[:16]}")
            item.setData(Qt.ItemDataRole.UserRole, rec.id)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked)
            self.searches.addItem(item)
        self.searches.itemChanged.connect(lambda _i: self.chosen.setChecked(True))
        self.error = label("", "badge-missing", True)
        self.error.setObjectName("SignOffError")
        form = QFormLayout()
        form.addRow("Signed by", self.examiner)
        form.addRow("Role", self.role)
        form.addRow("Statement", self.statement)
        self.scope = QLineEdit()
        self.scope.setObjectName("SignOffScope")
        self.scope.setPlaceholderText("needed while candidates are undecided, e.g. "
                                      "'reviewed the 2 decided candidates only'")
        form.addRow("Scope", self.scope)
        layout = QVBoxLayout(self)
        layout.addWidget(label(f"Case {info.case_number} — examiner {info.examiner or 'not named'}" if info else
                               "No case open", "heading"))
        layout.addWidget(label("The sign-off records the audit head as it is now: any later change to the record "
                               "shows that it happened after this signature.", "subtle", True))
        layout.addLayout(form)
        layout.addWidget(label("Sign-off covers", "heading-small"))
        layout.addWidget(self.whole)
        layout.addWidget(self.chosen)
        layout.addWidget(self.searches, 1)
        layout.addWidget(self.error)
        self.sign_button = primary_button("Sign off", "verify")
        self.sign_button.setObjectName("SignOffButton")
        self.sign_button.clicked.connect(self.sign)
        cancel = button("Cancel")
        cancel.clicked.connect(self.reject)
        foot = QHBoxLayout()
        foot.addStretch(1)
        foot.addWidget(self.sign_button)
        foot.addWidget(cancel)
        layout.addLayout(foot)
        self.resize(600, 560)

    def search_ids(self) -> list[int] | None:
        """None for the whole case, else the ticked searches."""
        if self.whole.isChecked():
            return None
        return [int(self.searches.item(i).data(Qt.ItemDataRole.UserRole)) for i in range(self.searches.count())
                if self.searches.item(i).checkState() == Qt.CheckState.Checked]

    def sign(self) -> Any:
        name, ids = self.examiner.text().strip(), self.search_ids()
        if not name:
            self.error.setText("Enter the name of the examiner who signs.")
            return None
        if ids is not None and not ids:
            self.error.setText("Tick the searches this sign-off covers, or choose the whole case.")
            return None
        self.error.setText("")
        self.sign_button.setEnabled(False)
        return self.cases.sign_off(name, self.role.currentText().strip() or ROLES[0],
                                   self.statement.toPlainText().strip(), ids, self._signed, self._refused,
                                   scope=self.scope.text().strip())

    def _signed(self, signoffs: list[Any]) -> None:
        self.signoffs = signoffs
        self.accept()

    def _refused(self, exc: BaseException) -> None:
        self.sign_button.setEnabled(True)
        self.error.setText(f"Not signed: {getattr(exc, 'message', None) or exc}")
