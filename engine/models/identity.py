"""One model-identity API: locate a model's files, require them verified, their cached digests, and what a task needs.

Why one place: a model file is trusted only after it is compared with its pin, either the publisher's
SHA-256 written in the manifest ("published") or the digest recorded when it was first imported
("pinned at first import", trust on first use). Every loader asks here, so a file changed after
installation is refused wherever it is loaded, with the fix in the message. Digests come from the one
stat-keyed cache (:mod:`engine.models.digests`), so a repeated load costs a ``stat``, and a rewritten
file (new size, mtime, ctime or inode) is hashed again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import paths
from engine.errors import ModelMissing, ModelTampered
from engine.models.manifest import MODELS, ModelSpec

log = logging.getLogger(__name__)

PUBLISHED = "published"
PINNED = "pinned at first import"
UNPINNED = "not pinned"

DETECTOR = "buffalo_l.det_10g"
RECOGNIZER = "buffalo_l.w600k_r50"
SKETCH_ENCODER = "sketch_encoder"

# Which models each task loads (the sketch encoder is optional: without it search uses the labelled baseline).
TASK_MODELS: dict[str, tuple[str, ...]] = {
    "ingest": (DETECTOR, RECOGNIZER),
    "photo-search": (DETECTOR, RECOGNIZER),
    "sketch-search": (DETECTOR, RECOGNIZER, SKETCH_ENCODER),
    "reconstruct": (DETECTOR, RECOGNIZER, "sd15.realistic_vision_v4", "sd15.vae_ft_mse", "ip_adapter.faceid_sd15"),
    "reconstruct-plus": (DETECTOR, RECOGNIZER, "sd15.realistic_vision_v4", "sd15.vae_ft_mse",
                         "ip_adapter.faceid_plusv2_sd15", "clip.vit_h_14_image_encoder"),
    "structure": ("controlnet.lineart_sd15",),
    "variations": ("instruct_pix2pix",),
    "attributes": ("open_clip.vit_b_32_laion2b",),
}


def get_spec(model_id: str) -> ModelSpec:
    """The manifest entry of a model, or :class:`ModelMissing` listing the known ids."""
    try:
        return MODELS[model_id]
    except KeyError:
        known = ", ".join(sorted(MODELS))
        raise ModelMissing(f"Unknown model {model_id!r}.", hint=f"Known models: {known}.") from None


def task_models(task: str) -> tuple[str, ...]:
    """Model ids a task loads (see :data:`TASK_MODELS`)."""
    try:
        return TASK_MODELS[task]
    except KeyError:
        raise ModelMissing(f"Unknown task {task!r}.", hint=f"Tasks: {', '.join(sorted(TASK_MODELS))}.") from None


def trust_label(origin: str | None) -> str:
    """What a digest's origin means for a reader: "published", "pinned at first import" or "not pinned"."""
    return {"manifest": PUBLISHED, "lock": PINNED}.get(origin or "", UNPINNED)


@dataclass(frozen=True)
class FileRef:
    """A verified model file as a run manifest records it: model id, relative path, SHA-256 and its trust."""

    model_id: str
    file: str
    sha256: str
    trust: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.model_id, "file": self.file, "sha256": self.sha256, "trust": self.trust}


def _fix(model_id: str) -> str:
    spec = get_spec(model_id)
    download = all(f.url or f.optional for f in spec.files)
    how = (f"'sketchface models import PATH' from a trusted copy, or 'sketchface models download {model_id}'"
           if download else f"'sketchface models import PATH' from a trusted copy (source: {spec.source})")
    return f"Re-import or re-download {spec.title}: {how}; in the app: Settings > Models."


class ModelLocator:
    """Finds models by manifest id and hands out only files that match their pin.

    Args:
        root: folder holding ``<model id>/`` folders; None for the user's models folder (read at call
            time, so a changed ``SKETCHFACE_MODELS_DIR`` is honoured). Pins recorded at import live with
            the models folder; under another root only published digests apply.
    """

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else None

    @property
    def base(self) -> Path:
        return self.root if self.root is not None else paths.models_dir()

    def _default(self) -> bool:
        return self.root is None or self.root.resolve() == paths.models_dir().resolve()

    def folder(self, model_id: str) -> Path:
        """The folder a model lives in (may not exist yet)."""
        get_spec(model_id)
        return self.base / model_id

    def missing(self, model_id: str) -> list[str]:
        """Relative paths of the model's required files that are not present."""
        base = self.folder(model_id)
        return [f.path for f in get_spec(model_id).files if not f.optional and not (base / f.path).is_file()]

    def available(self, model_id: str) -> bool:
        return not self.missing(model_id)

    def locate(self, model_id: str, file: str | None = None) -> Path:
        """Where a file of the model is or would be (its primary file by default); nothing is checked."""
        return self.folder(model_id) / (file or get_spec(model_id).primary.path)

    def require(self, model_id: str, purpose: str = "") -> Path:
        """The model's folder, every present file checked against its pin; ModelMissing / ModelTampered otherwise."""
        missing = self.missing(model_id)
        if missing:
            spec = get_spec(model_id)
            need = f" (needed for {purpose})" if purpose else ""
            download = all(f.url or f.optional for f in spec.files)
            get_it = (f"Import it with 'sketchface models import PATH' (a folder or zip), or download it with "
                      f"'sketchface models download {model_id}' on a machine with internet"
                      if download else
                      f"Import it with 'sketchface models import PATH' (a folder or zip holding a folder named "
                      f"{model_id}; source: {spec.source})")
            raise ModelMissing(
                f"{spec.title} is not installed{need} (looked for {', '.join(missing)} in {self.folder(model_id)}).",
                hint=f"{get_it}; in the app: Settings > Models. Licence: {spec.licence}")
        self.refs(model_id)
        return self.folder(model_id)

    def file(self, model_id: str, rel: str | None = None, purpose: str = "") -> Path:
        """One checked file of an installed model (its primary file by default)."""
        rel = rel or get_spec(model_id).primary.path
        path = self.folder(model_id) / rel
        if not path.is_file():
            self.require(model_id, purpose)  # says which files are missing and how to get them
            raise ModelMissing(f"{rel} of {get_spec(model_id).title} is not installed (looked in {path.parent}).",
                               hint=f"Import it with 'sketchface models import PATH' into {model_id}/.")
        self.check(model_id, rel)
        return path

    def check(self, model_id: str, rel: str) -> FileRef:
        """Compare one present file with its pin (published digest, else the import pin); pin it if it has none."""
        from engine.models.digests import Pin, expected_digest, sha256_cached, write_pins

        spec = get_spec(model_id)
        path = self.folder(model_id) / rel
        declared = next((f for f in spec.files if f.path == rel), None)
        size = path.stat().st_size
        if declared is not None and declared.size is not None and declared.size != size:
            raise ModelTampered(
                f"{model_id}/{rel} is {size} bytes, but its publisher states {declared.size}: it is not the "
                f"published file and was not loaded.", hint=_fix(model_id))
        if self._default():
            expected, origin = expected_digest(model_id, rel)
        else:
            published = declared.sha256.lower() if declared is not None and declared.sha256 else None
            expected, origin = published, ("manifest" if published else None)
        actual = sha256_cached(path)
        if expected is None:
            if self._default():  # placed by hand, never imported: trust on first use, from now on pinned
                write_pins([Pin(model_id, rel, actual, size, "first load (trust on first use)")])
                log.warning("%s/%s had no pinned digest; pinned it now (%s)", model_id, rel, actual)
                origin = "lock"
        elif actual != expected:
            where = "published by its publisher" if origin == "manifest" else "pinned when it was imported"
            raise ModelTampered(
                f"{model_id}/{rel} has changed: its SHA-256 is {actual[:16]}…, not the {expected[:16]}… "
                f"{where}. It was not loaded.", hint=_fix(model_id))
        return FileRef(model_id, rel, actual, trust_label(origin))

    def refs(self, model_id: str) -> list[FileRef]:
        """Checked references of every present file the manifest lists for the model."""
        base = self.folder(model_id)
        return [self.check(model_id, f.path) for f in get_spec(model_id).files if (base / f.path).is_file()]

    def digests(self, model_id: str) -> dict[str, str]:
        """SHA-256 of every present file of the model, by relative path (checked; for provenance records)."""
        return {ref.file: ref.sha256 for ref in self.refs(model_id)}


_DEFAULT = ModelLocator()


def locate(model_id: str, file: str | None = None) -> Path:
    """Where a model file is or would be in the models folder (nothing checked)."""
    return _DEFAULT.locate(model_id, file)


def require(model_id: str, file: str | None = None, purpose: str = "") -> Path:
    """A checked file of an installed model (primary by default): ModelMissing or ModelTampered say what to do."""
    return _DEFAULT.file(model_id, file, purpose)


def digest(model_id: str, file: str | None = None) -> str:
    """Checked SHA-256 of an installed model file (primary by default), from the stat-keyed cache."""
    rel = file or get_spec(model_id).primary.path
    if not _DEFAULT.locate(model_id, rel).is_file():
        _DEFAULT.file(model_id, rel)  # raises ModelMissing saying how to get it
    return _DEFAULT.check(model_id, rel).sha256


def refs_for(model_ids: tuple[str, ...] | list[str], locator: ModelLocator | None = None) -> list[FileRef]:
    """Checked references of every installed file of the given models (absent optional models are skipped)."""
    loc = locator or _DEFAULT
    return [ref for mid in model_ids if any((loc.folder(mid) / f.path).is_file() for f in get_spec(mid).files)
            for ref in loc.refs(mid)]


def ref_for_path(path: Path) -> FileRef | None:
    """The checked reference of a file if it is a manifest file inside the models folder, else None."""
    try:
        rel = Path(path).resolve().relative_to(paths.models_dir().resolve())
    except ValueError:
        return None
    if len(rel.parts) < 2 or rel.parts[0] not in MODELS:
        return None
    model_id, file = rel.parts[0], "/".join(rel.parts[1:])
    if not any(f.path == file for f in MODELS[model_id].files):
        return None
    return _DEFAULT.check(model_id, file)


def search_model_refs(pipeline: Any, sketch_embedder: Any = None) -> list[dict[str, Any]]:
    """Every model file a search used (detector, recognizer, trained sketch encoder), as run manifests record them."""
    refs = list(pipeline.model_refs()) if hasattr(pipeline, "model_refs") else []
    ckpt = getattr(sketch_embedder, "ckpt_dir", None)
    if ckpt is not None and not getattr(sketch_embedder, "is_baseline", False):
        for path in sorted(Path(ckpt).iterdir()):
            ref = ref_for_path(path)
            if ref is not None:
                refs.append(ref.to_dict())
    return refs
