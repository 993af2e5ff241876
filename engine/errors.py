"""Engine errors: each carries a title, a message a person can act on, and a hint; front-ends show them.

Every error the engine raises on purpose is an :class:`EngineError`. ``title`` (a class attribute) is
the short heading of a dialog, ``message`` what happened, ``hint`` what to do about it. A front-end
shows those three and decides only the form; anything else that escapes the engine is a bug.
"""

from __future__ import annotations


class EngineError(Exception):
    """Base of every error the engine raises on purpose.

    Attributes:
        title: short heading for a dialog ("Model not installed"); each subclass sets its own.
        message: what happened, in words a person can act on (``str(err)`` is message + hint).
        hint: what to do about it; may be empty.
    """

    title = "SketchFace"

    def __init__(self, message: str, *, hint: str = "", title: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if title is not None:
            self.title = title

    def __str__(self) -> str:
        return f"{self.message} {self.hint}".strip() if self.hint else self.message


class Cancelled(EngineError):
    """The user cancelled the operation; front-ends show nothing for it."""

    title = "Cancelled"

    def __init__(self, message: str = "Cancelled.") -> None:
        super().__init__(message)


class ModelMissing(EngineError):
    """A model file the operation needs is not installed."""

    title = "Model not installed"


class ModelInvalid(EngineError):
    """A model file is present but is not the expected one (wrong checksum, wrong signature)."""

    title = "Model file problem"


class ModelTampered(ModelInvalid):
    """An installed model file no longer matches its pinned or published SHA-256: it is refused at load."""

    title = "Model file changed since it was installed"


class BadImage(EngineError):
    """An image could not be decoded (corrupt, truncated, not an image, too large)."""

    title = "Image could not be read"


class NoFaceFound(EngineError):
    """An image decoded fine but contains no detectable face."""

    title = "No face found"


class IndexCorrupt(EngineError):
    """A gallery's vector index or store is inconsistent or unreadable; rebuilding fixes it."""

    title = "Gallery index damaged"


class GalleryError(EngineError):
    """A gallery operation failed (unknown gallery, duplicate name, bad metadata file)."""

    title = "Gallery"


class CaseError(EngineError):
    """A case operation failed (unknown case, bad archive, integrity failure)."""

    title = "Case"


class ConfigError(EngineError):
    """Settings or a configuration file is invalid."""

    title = "Settings"


class DiskFull(EngineError):
    """A write failed for lack of space; nothing already stored was lost."""

    title = "Disk full"


class InvalidRequest(EngineError, ValueError):
    """A request's parameters are out of range (user input: sizes, counts, strengths, attribute values).

    Also a ``ValueError``, so callers that validated with ``except ValueError`` keep working.
    """

    title = "Invalid settings"
