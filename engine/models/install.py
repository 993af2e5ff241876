"""Putting model files in place: stage, check every file, then move them all in (import and download share it).

Why: a model is several files and a bundle often several models; a wrong digest or signature in any
of them must leave the models folder exactly as it was. So files are first copied to a staging folder
on the same volume, all checked, and only then renamed into place (each rename atomic) and pinned.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

from engine import paths
from engine.errors import ModelInvalid
from engine.fsutil import fsync_dir
from engine.models import get_spec, model_dir
from engine.models.digests import Pin, expected_digest, remember, write_pins
from engine.models.signature import check_onnx_signature
from engine.progress import CancelToken, Reporter, check

_CHUNK = 1 << 20
_STALE_S = 24 * 3600


@dataclass(frozen=True)
class Staged:
    """A candidate model file, complete on disk, waiting to be checked and moved into place.

    Attributes:
        model_id: the model it belongs to.
        rel: its path inside the model folder (POSIX separators, no ``..``).
        tmp: where its bytes are now (same volume as the models folder).
        sha256: digest of those bytes.
        size: their length.
        source: where it came from, recorded in the lock file.
    """

    model_id: str
    rel: str
    tmp: Path
    sha256: str
    size: int
    source: str


class Staging:
    """A private staging folder under the models folder, removed on exit whatever happened."""

    def __init__(self) -> None:
        self.root = paths.models_dir() / ".staging"
        self.dir = self.root / f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._n = 0

    def __enter__(self) -> Staging:
        self.dir.mkdir(parents=True, exist_ok=False)
        _remove_stale(self.root, keep=self.dir)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        with contextlib.suppress(OSError):  # only succeeds when no other import is staging
            self.root.rmdir()

    def new_path(self, name: str) -> Path:
        self._n += 1
        return self.dir / f"{self._n:04d}-{Path(name).name}"


def _remove_stale(root: Path, keep: Path) -> None:
    """Remove staging folders left by a crashed import (older than a day, so never a live one)."""
    now = time.time()
    for child in root.iterdir():
        try:
            if child != keep and now - child.stat().st_mtime > _STALE_S:
                shutil.rmtree(child, ignore_errors=True)
        except OSError:
            continue


def stepper(report: Reporter, label: str) -> Callable[[int], None]:
    """A bytes callback that advances ``report`` with ``label`` as the message."""
    def on_bytes(n: int) -> None:
        report.step(n, label)
    return on_bytes


def copy_stream(src: IO[bytes], dst: Path, on_bytes: Callable[[int], None] | None = None,
                cancel: CancelToken | None = None, limit: int | None = None) -> tuple[str, int]:
    """Copy a stream to ``dst`` (fsynced), hashing as it goes; returns (sha256, size).

    ``limit``: the size the source announced; a source that yields more is refused (a file that grew, a
    lying archive member) before it can fill the disk.
    """
    h = hashlib.sha256()
    size = 0
    with open(dst, "wb") as out:
        while chunk := src.read(_CHUNK):
            check(cancel)
            if limit is not None and size + len(chunk) > limit:
                raise ModelInvalid(f"{dst.name} yields more than the {limit} bytes it announced; refused.",
                                   hint="Nothing was installed. Get the files again from their source.")
            out.write(chunk)
            h.update(chunk)
            size += len(chunk)
            if on_bytes is not None:
                on_bytes(len(chunk))
        out.flush()
        os.fsync(out.fileno())
    return h.hexdigest(), size


def problems(staged: list[Staged], replace: bool = False) -> list[str]:
    """Everything wrong with the staged files (empty when all may be installed).

    A digest from the manifest must match. A digest pinned in the lock file must match too unless
    ``replace`` is set (a deliberate replacement, e.g. a newly trained sketch encoder). ONNX files of
    detection and recognition models must have the right signature.
    """
    found: list[str] = []
    for item in staged:
        spec = get_spec(item.model_id)
        expected, origin = expected_digest(item.model_id, item.rel)
        if expected and expected != item.sha256 and (origin == "manifest" or not replace):
            found.append(f"{item.model_id}/{item.rel}: SHA-256 mismatch (expected {expected} from the "
                         f"{origin}, got {item.sha256})")
            continue
        declared = next((f.size for f in spec.files if f.path == item.rel), None)
        if declared is not None and declared != item.size:
            found.append(f"{item.model_id}/{item.rel}: size {item.size} bytes, expected {declared}")
            continue
        try:
            check_onnx_signature(spec, item.rel, item.tmp)
        except ModelInvalid as exc:
            found.append(f"{item.model_id}/{exc.message}")
    return found


def raise_problems(found: list[str]) -> None:
    """Raise one :class:`ModelInvalid` listing every problem (nothing has been installed)."""
    if found:
        pinned = any("from the lock" in p for p in found)
        hint = ("Nothing was installed. Get the files again from their source"
                + ("; to replace a pinned file on purpose, import it with --replace." if pinned else "."))
        raise ModelInvalid("Refused: " + "; ".join(p.rstrip(".") for p in found) + ".", hint=hint)


def commit(staged: list[Staged]) -> None:
    """Move checked files into their model folders (atomic renames), cache and pin their digests."""
    for item in staged:
        base = model_dir(item.model_id).resolve()
        target = (base / item.rel).resolve()
        if not target.is_relative_to(base):  # defence in depth: bundles are checked already
            raise ModelInvalid(f"Refused to write {item.rel} outside {base}.")
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(item.tmp, target)
        fsync_dir(target.parent)
        remember(target, item.sha256)
    write_pins(Pin(s.model_id, s.rel, s.sha256, s.size, s.source) for s in staged)
