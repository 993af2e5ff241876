"""How the workstation shows a failed job: the engine's own message in a dialog, cancellation in silence.

The engine owns the wording (each error says what happened and what to do); the GUI only decides the
form. Dialogs are opened window-modal but non-blocking (``open()``, not ``exec()``) so a failure in a
background job never stalls the event loop, and tests can find them by object name.
"""

from __future__ import annotations

import logging
import traceback

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

from engine.errors import Cancelled, EngineError, ModelMissing

log = logging.getLogger(__name__)


def describe_error(exc: BaseException) -> tuple[str, str, str]:
    """(title, message, details) for an exception: engine errors verbatim, others as unexpected."""
    if isinstance(exc, ModelMissing):
        return "Model not installed", exc.message, exc.hint
    if isinstance(exc, EngineError):
        title = {
            "BadImage": "Image could not be read",
            "NoFaceFound": "No face found",
            "IndexCorrupt": "Gallery index damaged",
            "GalleryError": "Gallery",
            "CaseError": "Case",
            "ConfigError": "Settings",
            "DiskFull": "Disk full",
            "ModelInvalid": "Model file problem",
        }.get(type(exc).__name__, exc.title)  # any other engine error carries its own heading ("Case is read-only")
        return title, exc.message, exc.hint
    details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return ("Unexpected error", f"{type(exc).__name__}: {exc}",
            "This is a bug in SketchFace; the details were written to the log file.\n\n" + details)


class ErrorPresenter:
    """Shows job failures to the user; remembers what it showed (for the status bar and tests)."""

    def __init__(self, parent: QWidget | None) -> None:
        self.parent = parent
        self.shown: list[str] = []
        self._open: list[QMessageBox] = []

    def show(self, exc: BaseException, context: str = "") -> QMessageBox | None:
        """Open a non-blocking dialog for ``exc``; returns None for cancellation (shown nowhere)."""
        if isinstance(exc, Cancelled):
            return None
        title, message, details = describe_error(exc)
        if not isinstance(exc, EngineError):
            log.error("Unexpected error%s:\n%s", f" in {context}" if context else "", details)
        text = f"{context}: {message}" if context else message
        self.shown.append(text)
        box = QMessageBox(QMessageBox.Icon.Warning if isinstance(exc, EngineError) else QMessageBox.Icon.Critical,
                          title, text, QMessageBox.StandardButton.Ok, self.parent)
        box.setObjectName("EngineErrorDialog")
        box.setTextFormat(Qt.TextFormat.PlainText)  # messages quote paths and case text: never markup
        if details and isinstance(exc, EngineError):
            box.setInformativeText(details)
        elif details:
            box.setDetailedText(details)
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
