"""Installed models: status for the Models page and the CLI, full SHA-256 verification, cached file digests.

Why: the examiner must be able to see which models are present, which are missing and what to do
about it, and to prove that the files used are the ones that were installed (forensic integrity).
``status`` is cheap (it hashes nothing unless asked) and says of every file whether its digest is
*published* (the publisher's, in the manifest) or only *pinned at first import* (trust on first use):
a pin proves the file has not changed since import, not that it is the publisher's file.
``verify`` always reads every byte.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from engine.errors import ModelMissing
from engine.models import MODELS, get_spec, missing_files, model_dir
from engine.models.digests import (
    UNTRUSTED,
    PinBook,
    cached_digest,
    expected_digest,
    hash_file,
    load_pins,
    pinned_files,
    remember,
    sha256_cached,
)
from engine.models.identity import PINNED, PUBLISHED, UNPINNED, ModelLocator, digest, trust_label
from engine.models.install import stepper
from engine.progress import CancelToken, ProgressCallback, Reporter, check


class FileState(StrEnum):
    """The state of one model file against its expected digest."""

    OK = "ok"
    MISMATCH = "mismatch"
    MISSING = "missing"
    UNPINNED = "unpinned"  # present, but no digest is known for it (neither manifest nor lock file)
    UNCHECKED = "unchecked"  # status only: a digest is known but the file has not been hashed yet
    UNTRUSTED = "pin not authentic"  # only a pin vouches for it, and the pin file fails its signature check


@dataclass(frozen=True)
class FileCheck:
    """One file's verification result (``expected_from``: "manifest", "lock" or None)."""

    model_id: str
    path: str
    state: FileState
    expected: str | None
    actual: str | None
    expected_from: str | None
    optional: bool = False
    size: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "state": str(self.state)}


@dataclass(frozen=True)
class ModelVerification:
    """A model's verification: its files, and an overall state."""

    model_id: str
    title: str
    files: tuple[FileCheck, ...]

    @property
    def present(self) -> bool:
        return any(f.state is not FileState.MISSING for f in self.files)

    @property
    def state(self) -> str:
        """"mismatch", "pins not authentic", "not installed", "incomplete", "unpinned" or "ok" (worst first)."""
        states = {f.state for f in self.files if not (f.optional and f.state is FileState.MISSING)}
        if FileState.MISMATCH in states:
            return "mismatch"
        if FileState.UNTRUSTED in states:
            return "pins not authentic"
        if not self.present:
            return "not installed"
        if FileState.MISSING in states:
            return "incomplete"
        return "unpinned" if FileState.UNPINNED in states else "ok"

    @property
    def ok(self) -> bool:
        """No file differs from its expected digest and nothing required is missing."""
        return self.state in ("ok", "unpinned")

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.model_id, "title": self.title, "state": self.state, "ok": self.ok,
                "files": [f.to_dict() for f in self.files]}


@dataclass(frozen=True)
class FileTrust:
    """One installed file as ``models status`` shows it: where its digest comes from, and whether it matches."""

    path: str
    trust: str  # "published", "pinned at first import", "pin not authentic" or "not pinned"
    state: str  # "ok", "mismatch", "untrusted" or "unchecked" (the digest cache has no entry for the file yet)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ModelStatus:
    """What the Models page and ``sketchface models status`` show for one model.

    ``verified`` is "published" (every file matches its publisher's SHA-256 from the manifest),
    "pinned at first import" (some file is only compared with the digest it had when it was imported:
    trust on first use, not a verification), "mismatch", "unchecked", "not pinned" or "not installed".
    It comes from the digest cache (import, download, load and verify fill it), so it costs no hashing
    unless asked for. ``files`` gives the same per file. ``hint`` says what to do when it is not installed.
    """

    id: str
    title: str
    task: str
    installed: bool
    missing: tuple[str, ...]
    verified: str
    licence: str
    required_for: tuple[str, ...]
    path: str
    source: str
    downloadable: bool
    hint: str
    files: tuple[FileTrust, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["missing"], d["required_for"] = list(self.missing), list(self.required_for)
        d["files"] = [f.to_dict() for f in self.files]
        return d


def _files_of(model_id: str) -> list[tuple[str, bool]]:
    """(relative path, optional) of the manifest's files, then of extra files pinned for the model."""
    spec = get_spec(model_id)
    listed = [(f.path, f.optional) for f in spec.files]
    known = {p for p, _ in listed}
    return listed + [(p, True) for p in pinned_files(model_id) if p not in known]


def _file_trust(model_id: str, rel: str, path: Path, deep: bool) -> FileTrust:
    expected, origin = expected_digest(model_id, rel)
    trust = trust_label(origin)
    if origin == UNTRUSTED:
        return FileTrust(rel, trust, "untrusted")
    if expected is None:
        return FileTrust(rel, trust, "unchecked")
    actual = sha256_cached(path) if deep else cached_digest(path)
    if actual is None:
        return FileTrust(rel, trust, "unchecked")
    return FileTrust(rel, trust, "ok" if actual == expected else "mismatch")


def _summary(files: list[FileTrust]) -> str:
    """The weakest claim over a model's files: a mismatch, then unpinned, unchecked, pinned, published."""
    if not files:
        return "not installed"
    if any(f.state == "mismatch" for f in files):
        return "mismatch"
    if any(f.state == "untrusted" for f in files):
        return PINS_NOT_AUTHENTIC
    if any(f.trust == UNPINNED for f in files):
        return UNPINNED
    if any(f.state == "unchecked" for f in files):
        return "unchecked"
    return PINNED if any(f.trust == PINNED for f in files) else PUBLISHED


def model_status(model_id: str, deep: bool = False) -> ModelStatus:
    """Status of one model; ``deep`` hashes files whose digest is not cached yet."""
    spec = get_spec(model_id)
    base = model_dir(model_id)
    missing = tuple(missing_files(model_id))
    files = [_file_trust(model_id, rel, base / rel, deep) for rel, _ in _files_of(model_id) if (base / rel).is_file()]
    hint = ""
    if missing:
        try:
            ModelLocator().require(model_id)
        except ModelMissing as exc:
            hint = exc.hint
    downloadable = all(f.url or f.optional or f.path not in missing for f in spec.files)
    return ModelStatus(spec.id, spec.title, spec.task, not missing, missing, _summary(files), spec.licence,
                       spec.required_for, str(base), spec.source, downloadable, hint, tuple(files))


PINS_NOT_AUTHENTIC = "pins not authentic"


def pins() -> PinBook:
    """The pin file of the current models folder and whether its signature verifies (for verify and status)."""
    return load_pins()


def status(deep: bool = False) -> list[ModelStatus]:
    """Status of every model in the manifest, in manifest order (no network, no hashing unless ``deep``)."""
    return [model_status(model_id, deep) for model_id in MODELS]


def verify(model_id: str | None = None, progress: ProgressCallback | None = None,
           cancel: CancelToken | None = None) -> list[ModelVerification]:
    """Hash every present file of one model (or all) and compare with the manifest or the pinned digest.

    Always reads the bytes (the digest cache is refreshed, never trusted here), so a file altered
    in place with its timestamps restored is still caught.

    Args:
        model_id: one model, or None for every model in the manifest.
        progress: receives bytes hashed of the total.
        cancel: stops between chunks.
    """
    ids = [get_spec(model_id).id] if model_id else list(MODELS)
    todo = [(mid, rel, opt, model_dir(mid) / rel) for mid in ids for rel, opt in _files_of(mid)]
    report = Reporter(progress, total=sum(p.stat().st_size for *_, p in todo if p.is_file()))
    checks: dict[str, list[FileCheck]] = {mid: [] for mid in ids}
    for mid, rel, optional, path in todo:
        check(cancel)
        expected, origin = expected_digest(mid, rel)
        if not path.is_file():
            checks[mid].append(FileCheck(mid, rel, FileState.MISSING, expected, None, origin, optional))
            continue
        size = path.stat().st_size
        actual = hash_file(path, stepper(report, f"{mid}/{rel}"), cancel)
        remember(path, actual)
        if origin == UNTRUSTED:
            state = FileState.UNTRUSTED
        elif expected is None:
            state = FileState.UNPINNED
        else:
            state = FileState.OK if actual == expected else FileState.MISMATCH
        checks[mid].append(FileCheck(mid, rel, state, expected, actual, origin, optional, size))
    report.emit("done", force=True)
    return [ModelVerification(mid, get_spec(mid).title, tuple(checks[mid])) for mid in ids]


def file_sha256(model_id: str, file: str | None = None) -> str:
    """SHA-256 of an installed model file (its primary file by default), checked against its pin.

    The same as :func:`engine.models.identity.digest`: cached by the file's size, mtime, ctime and
    inode, so repeated calls cost a ``stat``. Raises ``ModelMissing`` (with what to do) when absent and
    ``ModelTampered`` when the file no longer matches its pin.
    """

    return digest(model_id, file)
