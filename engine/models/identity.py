"""One model-identity API: locate a model's files, require them verified, their cached digests, and what a task needs.

Why one place: a model file is trusted only after it is compared with its pin, either the publisher's
SHA-256 written in the manifest ("published") or the digest recorded when it was first imported
("pinned at first import", trust on first use). Every loader asks here, so a file changed after
installation is refused wherever it is loaded, with the fix in the message. Digests come from the one
stat-keyed cache (:mod:`engine.models.digests`), so a repeated check costs a ``stat``, and a rewritten
file (new size, mtime, ctime or inode) is hashed again.

Trust on first use covers a model placed wholly by hand. An unpinned file that appears in a model whose
other files came from an import (or ``sketch install``) is refused instead: its origin is unknown while
theirs is known, and pinning it on first load would let anyone who can write the models folder add a
file (say an ONNX export the sketch loader prefers) that then runs as if it had been imported.

Loading: :meth:`ModelLocator.load` reads a file once, hashes those bytes, compares them with the pin and
hands back the bytes, so the loader runs exactly what was checked (a file or symlink swapped after the
check changes nothing). Every ONNX and safetensors model the product loads itself goes through it. A
symlinked file is read from its resolved path, and that path is recorded in its :class:`FileRef`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import paths
from engine.errors import ModelMissing, ModelTampered
from engine.fsutil import sha256_bytes
from engine.models.manifest import MODELS, ModelSpec

log = logging.getLogger(__name__)

PUBLISHED = "published"
PINNED = "pinned at first import"
UNPINNED = "not pinned"
NOT_AUTHENTIC = "pin not authentic"

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
    return {"manifest": PUBLISHED, "lock": PINNED, "untrusted": NOT_AUTHENTIC}.get(origin or "", UNPINNED)


@dataclass(frozen=True)
class FileRef:
    """A verified model file as a run manifest records it: model id, relative path, SHA-256 and its trust.

    ``resolved_path``: where the bytes were read from, when that is not the file's place in the model
    folder (a symbolic link); None otherwise.
    """

    model_id: str
    file: str
    sha256: str
    trust: str
    resolved_path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {"id": self.model_id, "file": self.file, "sha256": self.sha256, "trust": self.trust}
        if self.resolved_path is not None:
            d["resolved_path"] = self.resolved_path
        return d


@dataclass(frozen=True)
class LoadedFile:
    """A model file's bytes, read once, with the checked reference of exactly these bytes.

    Loaders take :attr:`data` (onnxruntime and safetensors load from memory), never the path again.
    """

    ref: FileRef
    data: bytes
    path: Path
    resolved: Path


def _fix(model_id: str) -> str:
    spec = get_spec(model_id)
    download = all(f.url or f.optional for f in spec.files)
    how = (f"'sketchface models import PATH' from a trusted copy, or 'sketchface models download {model_id}'"
           if download else f"'sketchface models import PATH' from a trusted copy (source: {spec.source})")
    return f"Re-import or re-download {spec.title}: {how}; in the app: Settings > Models."


def _add_properly(model_id: str, rel: str) -> str:
    """How to add a file to an imported model so that it is pinned (what to do instead of copying it in)."""
    name = rel.rsplit("/", 1)[-1]
    how = (f"import it with 'sketchface models import PATH', PATH being a folder that holds {model_id}/{rel}"
           f" from a trusted copy")
    if model_id == SKETCH_ENCODER and name == "model.onnx":
        how = "export it with 'sketchface sketch export-onnx' (it is made from the pinned weights), or " + how
    return f"If you meant to add it, {how}; otherwise remove it."


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
        """Compare one present file with its pin (published digest, else the import pin); pin it if it has none.

        Hashes by path (through the stat-keyed cache): right for reporting and for loaders that can only
        take a path; a loader that can take bytes uses :meth:`load` instead.
        """
        from engine.models.digests import sha256_cached  # lazy: tests swap digests.sha256_cached at runtime

        path = self.folder(model_id) / rel
        return self._judge(model_id, rel, sha256_cached(path), path.stat().st_size)

    def load(self, model_id: str, rel: str | None = None, purpose: str = "") -> LoadedFile:
        """Read one file of an installed model once, check those bytes against its pin, and return them.

        ModelMissing says how to get a missing file; ModelTampered refuses bytes that differ from the
        pin. The bytes returned are the ones hashed, so nothing swapped in afterwards can be loaded.
        """
        from engine.models.digests import read_once, remember  # lazy: tests swap digests.read_once at runtime

        rel = rel or get_spec(model_id).primary.path
        path = self.folder(model_id) / rel
        if not path.is_file():
            self.file(model_id, rel, purpose)  # raises ModelMissing saying what to do
        data, resolved, ident = read_once(path)
        actual = sha256_bytes(data)
        linked = resolved != Path(os.path.realpath(self.base)) / model_id / rel
        if linked:
            log.warning("%s/%s is a symbolic link to %s; loaded from there, and that path is recorded",
                        model_id, rel, resolved)
        ref = self._judge(model_id, rel, actual, len(data), resolved if linked else None)
        remember(resolved, actual, ident)
        return LoadedFile(ref, data, path, resolved)

    def _judge(self, model_id: str, rel: str, actual: str, size: int, resolved: Path | None = None) -> FileRef:
        """The reference of a file whose bytes have digest ``actual``, or ModelTampered when they are not the pinned ones."""
        from engine.models.digests import (  # lazy: cycle, digests imports engine.models
            FIRST_LOAD_SOURCE,
            UNTRUSTED,
            Pin,
            expected_digest,
            imported_files,
            load_pins,
            write_pins,
        )

        spec = get_spec(model_id)
        declared = next((f for f in spec.files if f.path == rel), None)
        if declared is not None and declared.size is not None and declared.size != size:
            raise ModelTampered(
                f"{model_id}/{rel} is {size} bytes, but its publisher states {declared.size}: it is not the "
                f"published file and was not loaded.", hint=_fix(model_id))
        if self._default():
            expected, origin = expected_digest(model_id, rel)
        else:
            published = declared.sha256.lower() if declared is not None and declared.sha256 else None
            expected, origin = published, ("manifest" if published else None)
        if origin == UNTRUSTED:
            raise load_pins().refuse()
        if expected is None:
            if self._default():  # placed by hand, never imported: trust on first use, from now on pinned
                imported = imported_files(model_id)
                if imported:  # the rest came through an import: a file added by hand beside it is not trusted
                    raise ModelTampered(
                        f"{model_id}/{rel} is not pinned, but {', '.join(imported)} of {get_spec(model_id).title} "
                        f"came from an import: a file added to an imported model by hand is not loaded.",
                        hint=_add_properly(model_id, rel))
                write_pins([Pin(model_id, rel, actual, size, FIRST_LOAD_SOURCE)])
                log.warning("%s/%s had no pinned digest; pinned it now (%s)", model_id, rel, actual)
                origin = "lock"
        elif actual != expected:
            where = "published by its publisher" if origin == "manifest" else "pinned when it was imported"
            raise ModelTampered(
                f"{model_id}/{rel} has changed: its SHA-256 is {actual[:16]}…, not the {expected[:16]}… "
                f"{where}. It was not loaded.", hint=_fix(model_id))
        return FileRef(model_id, rel, actual, trust_label(origin), str(resolved) if resolved else None)

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


def model_file_of(path: Path) -> tuple[str, str] | None:
    """(model id, relative path) when ``path`` names a manifest file in the models folder, else None.

    Compared by the path as given (made absolute), not by where a symlink leads: a model file that is
    a link is still that model's file, checked against its pin.
    """
    given = Path(os.path.abspath(path))
    rel: Path | None = None
    for base in (Path(os.path.abspath(paths.models_dir())), paths.models_dir().resolve()):
        try:
            rel = given.relative_to(base)
            break
        except ValueError:
            continue
    if rel is None or len(rel.parts) < 2 or rel.parts[0] not in MODELS:
        return None
    model_id, file = rel.parts[0], "/".join(rel.parts[1:])
    if not any(f.path == file for f in MODELS[model_id].files):
        return None
    return model_id, file


def ref_for_path(path: Path) -> FileRef | None:
    """The checked reference of a file if it is a manifest file inside the models folder, else None."""
    found = model_file_of(path)
    return None if found is None else _DEFAULT.check(*found)


def load_path(path: Path, model_id: str) -> LoadedFile:
    """A model file read once and checked: against its pin when it lies in the models folder, else only hashed.

    For loaders given a path (tests, benchmarks, a model outside the models folder): the bytes returned
    are the ones hashed and recorded either way.
    """
    from engine.models.digests import read_once  # lazy: tests swap digests.read_once at runtime

    found = model_file_of(path)
    if found is not None:
        return _DEFAULT.load(*found)
    data, resolved, _ = read_once(path)
    linked = resolved != Path(os.path.abspath(path))
    return LoadedFile(FileRef(model_id, str(path), sha256_bytes(data), UNPINNED, str(resolved) if linked else None),
                      data, Path(path), resolved)


def search_model_refs(pipeline: Any, sketch_embedder: Any = None) -> list[dict[str, Any]]:
    """Every model file a search used (detector, recognizer, trained sketch encoder), as run manifests record them."""
    refs = list(pipeline.model_refs()) if hasattr(pipeline, "model_refs") else []
    loaded = getattr(sketch_embedder, "model_files", None)
    if loaded and not getattr(sketch_embedder, "is_baseline", False):  # the files it loaded, as loaded
        return refs + [ref.to_dict() for ref in loaded]
    ckpt = getattr(sketch_embedder, "ckpt_dir", None)
    if ckpt is not None and not getattr(sketch_embedder, "is_baseline", False):
        for path in sorted(Path(ckpt).iterdir()):
            ref = ref_for_path(path)
            if ref is not None:
                refs.append(ref.to_dict())
    return refs
