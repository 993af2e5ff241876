"""Model manifest, locating and verifying installed models, offline import and download.

Everything that loads a model asks :func:`model_path` for it, so a missing model is always reported
the same way: which model, where it was looked for, and how to get it.
"""

from __future__ import annotations

from pathlib import Path

from engine import paths
from engine.errors import ModelMissing
from engine.models.manifest import MODELS, ModelFile, ModelSpec

__all__ = ["MODELS", "ModelFile", "ModelSpec", "get_spec", "installed", "model_dir", "model_path"]


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
        raise ModelMissing(
            f"{spec.title} is not installed (looked for {', '.join(missing)} in {base}).",
            hint=(f"Import it with 'sketchface models import PATH' (a folder or zip), or download it with "
                  f"'sketchface models download {model_id}' on a machine with internet; "
                  f"in the app: Settings > Models. Licence: {spec.licence}"),
        )
    return base / (file or spec.primary.path)
