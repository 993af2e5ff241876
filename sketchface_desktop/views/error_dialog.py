"""How the workstation shows a failed job: the engine's own message in a dialog, cancellation in silence.

The engine owns the wording (each error says what happened and what to do); the GUI only decides the
form. Dialogs are opened window-modal but non-blocking (``open()``, not ``exec()``) so a failure in a
background job never stalls the event loop, and tests can find them by object name.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

from sketchface_desktop.controllers.errors import error_text, is_silent

log = logging.getLogger(__name__)


class ErrorPresenter:
    """Shows job failures to the user; remembers what it showed (for the status bar and tests)."""

    def __init__(self, parent: QWidget | None) -> None:
        self.parent = parent
        self.shown: list[str] = []
        self._open: list[QMessageBox] = []

    def show(self, exc: BaseException, context: str = "") -> QMessageBox | None:
        """Open a non-blocking dialog for ``exc``; returns None for cancellation (shown nowhere)."""
        if is_silent(exc):
            return None
        described = error_text(exc)
        if not described.expected:
            log.error("Unexpected error%s:\n%s", f" in {context}" if context else "", described.details)
        text = f"{context}: {described.message}" if context else described.message
        self.shown.append(text)
        box = QMessageBox(QMessageBox.Icon.Warning if described.expected else QMessageBox.Icon.Critical,
                          described.title, text, QMessageBox.StandardButton.Ok, self.parent)
        box.setObjectName("EngineErrorDialog")
        box.setTextFormat(Qt.TextFormat.PlainText)  # messages quote paths and case text: never markup
        if described.details and described.expected:
            box.setInformativeText(described.details)
        elif described.details:
            box.setDetailedText(described.details)
        self._open.append(box)
        box.finished.connect(lambda _r, b=box: self._forget(b))
        box.open()
        return box

    def _forget(self, box: QMessageBox) -> None:
        if box in self._open:
            self._open.remove(box)
        box.deleteLater()

    def close_all(self) -> None:
        for box in list(self._open):
            box.close()
