"""AuthorizationDialog and AuthorizationPrompt: the agency's search authorization, asked before a search runs.

When the administrator's search policy names fields a search needs (purpose, offence or legal basis,
requesting officer, supervisor approval), the search controller asks for them here before it submits
the search; what the engine refuses is said in the form, which stays open, and nothing is submitted.
The fields are prefilled from the case's last authorized search, except the supervisor approval, which
is given for one search. The window offers no switch for the policy itself: it is the agency's file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QLabel, QLineEdit, QVBoxLayout, QWidget

from sketchface_desktop.controllers.search_controller import AuthorizationAsk
from sketchface_desktop.views.ui import label

PLACEHOLDERS = {"purpose": "Why this search is made, e.g. identify the suspect of a street robbery",
                "legal_basis": "The offence or legal basis, e.g. robbery, s. 8 Theft Act 1968",
                "requesting_officer": "Who asked for the search (name, rank or number)",
                "supervisor_approval": "The approving supervisor (name and reference)"}


class AuthorizationDialog(QDialog):
    """The authorization form of one search; ``submit`` returns the engine's refusal, or None once submitted."""

    def __init__(self, ask: AuthorizationAsk, submit: Callable[[dict[str, str]], str | None],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("AuthorizationDialog")
        self.setWindowTitle("Search authorization")
        self.send_fields = submit
        self.edits: dict[str, QLineEdit] = {}
        form = QFormLayout()
        for key, words in ask.fields:
            edit = QLineEdit(ask.prefill.get(key, ""))
            edit.setObjectName(f"Authorization_{key}")
            edit.setPlaceholderText(PLACEHOLDERS.get(key, ""))
            self.edits[key] = edit
            form.addRow(words[:1].upper() + words[1:], edit)
        self.note = label(ask.note, "subtle", True)
        self.note.setObjectName("AuthorizationNote")
        self.note.setVisible(bool(ask.note))
        self.error = label("", "error", True)
        self.error.setObjectName("AuthorizationError")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        ok = buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setText("Search")
        ok.setObjectName("AuthorizationOk")
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(label(f"{ask.title}: the agency's search policy asks for these before the search runs. "
                               "They are recorded with the search in the case and printed in its report.",
                               "subtle", True))
        layout.addLayout(form)
        layout.addWidget(self.note)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self.resize(560, 260)

    def values(self) -> dict[str, str]:
        return {k: e.text().strip() for k, e in self.edits.items()}

    def _accept(self) -> None:
        refused = self.send_fields(self.values())
        if refused:
            self.error.setText(refused)  # the engine's reason; the form stays open, nothing was submitted
            return
        self.accept()


class AuthorizationPrompt:
    """The window's side of the search controller's policy step (its AuthorizationPort).

    Args:
        parent: the window (the dialogs' parent).
        ask_intake_form: opens the probe intake form (the intake prompt's ``ask``).
        notice: where a refusal is said when no form is open (the label above the results).
    """

    def __init__(self, parent: QWidget, ask_intake_form: Callable[[], Any], notice: QLabel) -> None:
        self.parent = parent
        self.ask_intake_form = ask_intake_form
        self.notice = notice
        self.dialog: AuthorizationDialog | None = None

    def ask_authorization(self, ask: AuthorizationAsk, submit: Callable[[dict[str, str]], str | None]) -> None:
        """Open the form (window-modal, non-blocking: the event loop runs on)."""
        if self.dialog is not None:
            self.dialog.close()
        self.dialog = dialog = AuthorizationDialog(ask, submit, self.parent)
        dialog.open()

    def ask_intake(self, text: str) -> None:
        """The policy needs the sketch's intake before it is searched: say so and open the intake form."""
        self.notice.setText(text)
        self.notice.show()
        self.ask_intake_form()
