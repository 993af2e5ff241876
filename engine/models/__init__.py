"""Model manifest, locating and verifying installed models, offline import and download.

Everything that loads a model asks :func:`model_path` for it, so a missing model is always reported
the same way: which model, where it was looked for, and how to get it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import paths
from engine.errors import ModelMissing
from engine.models.manifest import MODELS, ModelFile, ModelSpec

__all__ = [
    "MODELS", "BadBundle", "DownloadFailed", "FileCheck", "FileState", "ModelFile", "ModelSpec", "ModelStatus",
    "ModelVerification", "download", "file_sha256", "get_spec", "import_bundle", "installed", "missing_files",
    "model_dir", "model_path", "status", "verify",
]

if TYPE_CHECKING:  # what the lazy names below resolve to, for type checkers
    from engine.models.bundle import BadBundle, import_bundle
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
    "download": "engine.models.fetch", "DownloadFailed": "engine.models.fetch",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def get_spec(model_id: str) -> ModelSpec:
    try:
        return MODELS[model_id]
    except KeyError:
        known = ", ".join(sorted(MODELS))
        raise ModelMissing(f"Unknown model {model_id!r}.", hint=f"Known models: {known}.") from None


def model_dir(model_id: str) -> Path:
    """The folder a model lives in (may not exist yet)."""
    get_spec(model_id)
    return paths.models_dir() / model_id


def missing_files(model_id: str) -> list[str]:
    """Relative paths of the model's required files that are not present."""
    spec = get_spec(model_id)
    base = model_dir(model_id)
    return [f.path for f in spec.files if not f.optional and not (base / f.path).is_file()]


def installed(model_id: str) -> bool:
    return not missing_files(model_id)


def model_path(model_id: str, file: str | None = None) -> Path:
    """Path of a model's file (its primary file by default), or :class:`ModelMissing` saying what to do.

    Args:
        model_id: a key of :data:`MODELS`.
        file: a relative file path of that model; None for its primary file.
    """
    spec = get_spec(model_id)
    base = model_dir(model_id)
    missing = missing_files(model_id)
    if missing:
        downloadable = all(f.url or f.optional for f in spec.files)
        get_it = (f"Import it with 'sketchface models import PATH' (a folder or zip), or download it with "
                  f"'sketchface models download {model_id}' on a machine with internet"
                  if downloadable else
                  f"Import it with 'sketchface models import PATH' (a folder or zip holding a folder named "
                  f"{model_id}; source: {spec.source})")
        raise ModelMissing(
            f"{spec.title} is not installed (looked for {', '.join(missing)} in {base}).",
            hint=f"{get_it}; in the app: Settings > Models. Licence: {spec.licence}",
        )
    return base / (file or spec.primary.path)
