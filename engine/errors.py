"""Engine errors: each carries a message a person can act on; front-ends decide how to show them."""

from __future__ import annotations


class EngineError(Exception):
    """Base of every error the engine raises on purpose.

    ``str(err)`` is the message to show a person; ``hint`` (optional) says what to do about it.
    """

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}".strip() if self.hint else self.message


class Cancelled(EngineError):
    """The user cancelled the operation; front-ends show nothing for it."""

    def __init__(self, message: str = "Cancelled.") -> None:
        super().__init__(message)


class ModelMissing(EngineError):
    """A model file the operation needs is not installed."""


class ModelInvalid(EngineError):
    """A model file is present but is not the expected one (wrong checksum, wrong signature)."""


class BadImage(EngineError):
    """An image could not be decoded (corrupt, truncated, not an image, too large)."""


class NoFaceFound(EngineError):
    """An image decoded fine but contains no detectable face."""


class IndexCorrupt(EngineError):
    """A gallery's vector index or store is inconsistent or unreadable; rebuilding fixes it."""


class GalleryError(EngineError):
    """A gallery operation failed (unknown gallery, duplicate name, bad metadata file)."""


class CaseError(EngineError):
    """A case operation failed (unknown case, bad archive, integrity failure)."""


class ConfigError(EngineError):
    """Settings or a configuration file is invalid."""


class DiskFull(EngineError):
    """A write failed for lack of space; nothing already stored was lost."""
