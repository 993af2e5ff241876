"""DialogPrompter: the controllers' questions and messages, asked with the workstation's dialogs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox, QWidget

from sketchface_desktop.views.case_dialogs import CaseDetailsDialog, OpenCaseDialog


class DialogPrompter(QObject):
    """Implements :class:`sketchface_desktop.controllers.ports.Prompter` with dialogs over ``window``.

    Signals: none of its own; ``guide`` calls the function the window gave it.
    """

    def __init__(self, window: QWidget, show_guide: Callable[[str], Any]) -> None:
        super().__init__(window)
        self.window = window
        self._show_guide = show_guide

    def case_details(self, info: Any | None, default_examiner: str) -> dict[str, Any] | None:
        dialog = (CaseDetailsDialog(self.window, info) if info is not None
                  else CaseDetailsDialog(self.window, default_examiner=default_examiner))
        return dialog.values() if dialog.exec() == CaseDetailsDialog.DialogCode.Accepted else None

    def choose_case(self, cases: list[dict[str, Any]]) -> str | None:
        dialog = OpenCaseDialog(cases, self.window)
        return dialog.chosen() if dialog.exec() == OpenCaseDialog.DialogCode.Accepted else None

    def choose_witness(self, known: list[str]) -> str | None:
        witness, ok = QInputDialog.getItem(self.window, "New sketch", "Witness whose description this records:",
                                           known or [""], 0, True)
        return witness if ok else None

    def choose_photo(self) -> str | None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Search with a photo", "",
                                              "Images (*.jpg *.jpeg *.png *.bmp)")
        return path or None

    def tell(self, title: str, text: str) -> None:
        QMessageBox.information(self.window, title, text)

    def guide(self, reason: str) -> None:
        self._show_guide(reason)

    def confirm(self, name: str, title: str, text: str, informative: str, accept: str,
                on_accept: Callable[[], Any], on_closed: Callable[[Any], None] | None = None,
                accept_name: str = "Confirm") -> QMessageBox:
        """A non-blocking question box (plain text); ``accept_name`` names the accept button."""
        box = QMessageBox(QMessageBox.Icon.Question, title, text, QMessageBox.StandardButton.NoButton, self.window)
        box.setObjectName(name)
        box.setTextFormat(Qt.TextFormat.PlainText)
        if informative:
            box.setInformativeText(informative)
        yes = box.addButton(accept, QMessageBox.ButtonRole.AcceptRole)
        yes.setObjectName(accept_name)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.buttonClicked.connect(lambda b: on_accept() if b is yes else None)

        def closed(_r: int) -> None:
            if on_closed is not None:
                on_closed(box)
            box.deleteLater()

        box.finished.connect(closed)
        box.open()
        return box
