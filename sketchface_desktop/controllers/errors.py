"""What a failure says to the examiner: the engine's own wording, sorted into expected errors and bugs.

The engine owns the words (each error says what happened and what to do); this module reads them off
the engine's error types so that the views that show a failure (the error dialog, the first-run
guide) never need to know those types themselves.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass

from engine.errors import Cancelled, EngineError, ModelMissing
from engine.examiners import NoExaminer

# Headings for the engine's common error kinds; any other engine error carries its own ("Case is read-only").
TITLES = {
    "BadImage": "Image could not be read",
    "NoFaceFound": "No face found",
    "IndexCorrupt": "Gallery index damaged",
    "GalleryError": "Gallery",
    "CaseError": "Case",
    "ConfigError": "Settings",
    "DiskFull": "Disk full",
    "ModelInvalid": "Model file problem",
}
# The engine's hint for a write with no examiner profile names the command line; the window has its own way.
NO_EXAMINER_HINT = ("Choose who is working in the examiner switcher at the right of the status bar, or add your "
                    "profile there (\"Add examiner…\") or in Tools > Settings > Examiners; then do it again.")


@dataclass(frozen=True)
class ErrorText:
    """A failure as the examiner reads it.

    ``expected`` is True for an engine error (a condition the examiner can act on, shown as a warning
    with its hint); False for anything else, which is a bug: shown as critical, with the traceback as
    details, and logged.
    """

    title: str
    message: str
    details: str
    expected: bool


def describe_error(exc: BaseException) -> tuple[str, str, str]:
    """(title, message, details) for an exception: engine errors verbatim, others as unexpected."""
    text = error_text(exc)
    return text.title, text.message, text.details


def error_text(exc: BaseException) -> ErrorText:
    """The wording of ``exc`` (see :class:`ErrorText`)."""
    if isinstance(exc, ModelMissing):
        return ErrorText("Model not installed", exc.message, exc.hint, True)
    if isinstance(exc, NoExaminer):
        return ErrorText(exc.title, exc.message, NO_EXAMINER_HINT, True)
    if isinstance(exc, EngineError):
        return ErrorText(TITLES.get(type(exc).__name__, exc.title), exc.message, exc.hint, True)
    details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return ErrorText("Unexpected error", f"{type(exc).__name__}: {exc}",
                     "This is a bug in SketchFace; the details were written to the log file.\n\n" + details, False)


def is_silent(exc: BaseException) -> bool:
    """True for a cancellation: the examiner asked for it, so it is shown nowhere."""
    return isinstance(exc, Cancelled)


def missing_model_message(exc: BaseException) -> str | None:
    """The engine's message when ``exc`` is a missing model (the first-run guide opens instead of an error)."""
    return exc.message if isinstance(exc, ModelMissing) else None
