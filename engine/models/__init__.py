"""Model manifest, locating and verifying installed models, offline import and download.

Everything that loads a model asks :func:`require` (or a :class:`ModelLocator`) for it, so a missing
model is always reported the same way (which model, where it was looked for, how to get it) and a file
that changed since it was installed is refused at load (:mod:`engine.models.identity`).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.models.identity import (
    PINNED,
    PUBLISHED,
    FileRef,
    ModelLocator,
    digest,
    get_spec,
    locate,
    refs_for,
    require,
    task_models,
)
from engine.models.manifest import MODELS, ModelFile, ModelSpec

__all__ = [
    "MODELS", "PINNED", "PUBLISHED", "BadBundle", "FileRef", "ModelLocator", "digest", "locate", "refs_for",
    "require", "task_models", "DownloadFailed", "FileCheck", "FileState", "ModelFile", "ModelSpec", "ModelStatus",
    "ModelVerification", "download", "file_sha256", "get_spec", "import_bundle", "import_bundle_report",
    "ImportReport", "installed", "missing_files",
    "model_dir", "model_path", "status", "verify",
]

if TYPE_CHECKING:  # what the lazy names below resolve to, for type checkers
    from engine.models.bundle import BadBundle, ImportReport, import_bundle, import_bundle_report
    from engine.models.fetch import DownloadFailed, download
    from engine.models.store import (
        FileCheck,
        FileState,
        ModelStatus,
        ModelVerification,
        file_sha256,
        status,
        verify,
    )

# Re-exported lazily: `import engine.models` stays light (no onnx, no httpx) for the app's fast start.
_LAZY = {
    "status": "engine.models.store", "verify": "engine.models.store", "file_sha256": "engine.models.store",
    "ModelStatus": "engine.models.store", "ModelVerification": "engine.models.store",
    "FileCheck": "engine.models.store", "FileState": "engine.models.store",
    "import_bundle": "engine.models.bundle", "BadBundle": "engine.models.bundle",
    "import_bundle_report": "engine.models.bundle", "ImportReport": "engine.models.bundle",
    "download": "engine.models.fetch", "DownloadFailed": "engine.models.fetch",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

    return getattr(importlib.import_module(module), name)


def model_dir(model_id: str) -> Path:
    """The folder a model lives in (may not exist yet)."""
    return ModelLocator().folder(model_id)


def missing_files(model_id: str) -> list[str]:
    """Relative paths of the model's required files that are not present."""
    return ModelLocator().missing(model_id)


def installed(model_id: str) -> bool:
    return not missing_files(model_id)


def model_path(model_id: str, file: str | None = None) -> Path:
    """Path of a model's file (its primary file by default), checked against its pin.

    ``ModelMissing`` says how to get a model that is not installed; ``ModelTampered`` refuses a file
    that changed since it was installed. Same as :func:`engine.models.identity.require`.

    Args:
        model_id: a key of :data:`MODELS`.
        file: a relative file path of that model; None for its primary file.
    """
    return require(model_id, file)
