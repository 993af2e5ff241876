"""SignOffDialog: a second examiner signs the case, or chosen searches, with role and statement.

The engine refuses a sign-off by the case's own examiner and over a record that does not verify;
the refusal is shown in the dialog, which stays open so nothing typed is lost. The sign-off is signed
with the acting examiner profile's key (named here with its fingerprint), and where that reviewer
decided blind first, the dialog lists every disagreement the sign-off will carry.
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
from sketchface_desktop.ops import settings as settings_ops
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
        acting = settings_ops.acting_examiner()
        self.examiner = QLineEdit(acting.name if acting is not None else "")
        self.examiner.setObjectName("SignOffExaminer")
        self.acting = label(f"Signed with the key of {acting.name} ({acting.identifier}), fingerprint "
                            f"{acting.fingerprint}. Another examiner signs under their own profile (status bar)."
                            if acting is not None else "No examiner profile is chosen: nothing can be signed.",
                            "subtle", True)
        self.acting.setObjectName("SignOffActing")
        self.disagreements = label("", "subtle", True)
        self.disagreements.setObjectName("SignOffDisagreements")
        self.blind_reviewed = False
        self.differ: list[dict[str, Any]] = []
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
        self.searches.itemChanged.connect(lambda _i: self.refresh_disagreements())
        self.whole.toggled.connect(lambda _on: self.refresh_disagreements())
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
        layout.addWidget(self.acting)
        layout.addLayout(form)
        layout.addWidget(label("Sign-off covers", "heading-small"))
        layout.addWidget(self.whole)
        layout.addWidget(self.chosen)
        layout.addWidget(self.searches, 1)
        layout.addWidget(self.disagreements)
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
        self.resize(600, 600)
        if info is not None and acting is not None:
            self.refresh_disagreements()

    def refresh_disagreements(self) -> None:
        """Read where the acting reviewer's blind decisions differ from the first examiner's, over the scope."""
        ids = self.search_ids()
        if ids is not None and not ids:
            return
        self.cases.reviewer_disagreements(ids, self._disagreements_read)

    def _disagreements_read(self, res: tuple[bool, list[dict[str, Any]]]) -> None:
        self.blind_reviewed, self.differ = res
        if not self.blind_reviewed:
            self.disagreements.setText("No blind review by you is recorded over this scope.")
            return
        lines = [f"search {d['search_id']}, face {d['gallery_id']}:{d['face_id']}: first examiner "
                 f"{d['first_examiner']}, you {d['reviewer']}" for d in self.differ]
        self.disagreements.setText("Your blind decisions " + (
            f"differ on {len(lines)} candidate(s); the sign-off and the report list them:\n" + "\n".join(lines)
            if lines else "agree with every decision of the first examiner."))

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
