"""Offline model bundles: install models from a folder, a .zip or a single file (air-gapped workstations).

Files are recognised by their path against the manifest. A bundle laid out as ``<model id>/<files>``
installs whole model folders (diffusers-style directories, extra files included); otherwise a file is
matched by its name or trailing path (``buffalo_l/det_10g.onnx`` -> ``buffalo_l.det_10g``) when exactly
one model claims it. A bundle with a member that would escape its folder (``../``, an absolute name,
an escaping symlink) is refused as a whole, before anything is written.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import stat
import zipfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from engine.errors import DiskFull, EngineError
from engine.models.install import Staged, Staging, commit, copy_stream, problems, raise_problems, stepper
from engine.models.manifest import MODELS
from engine.progress import CancelToken, ProgressCallback, Reporter, check

log = logging.getLogger(__name__)

_SKIP_NAMES = {"__MACOSX", ".DS_Store", "Thumbs.db", "desktop.ini"}
# Caps on what a bundle may install, checked from the zip's directory before a byte is inflated: a file
# the manifest gives a size for must have exactly that size; any other at most MAX_MEMBER_BYTES (the
# largest real model file is ~4.3 GB). Model weights barely compress (ratio ~1.1, JSON ~5), so a member
# over 1 MiB that inflates more than MAX_RATIO times is a decompression bomb, not a model.
MAX_MEMBER_BYTES = 8 << 30
MAX_RATIO = 50
MAX_MEMBERS = 20_000
_RATIO_FLOOR = 1 << 20
_DRIVE = re.compile(r"^[A-Za-z]:")


class BadBundle(EngineError):
    """A model bundle is unusable or unsafe (path traversal, links, unreadable zip, nothing recognised)."""


@dataclass(frozen=True)
class _Entry:
    """A file inside a bundle: its path parts (the bundle's own name first), size and how to read it."""

    parts: tuple[str, ...]
    size: int
    open: Callable[[], IO[bytes]]
    origin: str
    packed: int | None = None  # compressed size in a zip


def _file_opener(path: Path) -> Callable[[], IO[bytes]]:
    def opener() -> IO[bytes]:
        return path.open("rb")
    return opener


def _member_opener(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Callable[[], IO[bytes]]:
    def opener() -> IO[bytes]:
        return zf.open(info)
    return opener


def _skipped(parts: tuple[str, ...]) -> bool:
    return any(p in _SKIP_NAMES or p.startswith(".") for p in parts)


def _zip_parts(info: zipfile.ZipInfo, bundle: Path) -> tuple[str, ...] | None:
    """Safe path parts of a zip member, None for a directory; :class:`BadBundle` for a dangerous one."""
    name = info.filename
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise BadBundle(f"{bundle.name} contains a symbolic link ({name}); refused.",
                        hint="Rebuild the bundle with the real files instead of links.")
    norm = name.replace("\\", "/")
    if norm.startswith("/") or _DRIVE.match(norm):
        raise BadBundle(f"{bundle.name} contains an absolute path ({name}); refused, nothing was installed.")
    parts = tuple(p for p in norm.split("/") if p not in ("", "."))
    if ".." in parts or any(":" in p or "\x00" in p for p in parts):
        raise BadBundle(f"{bundle.name} contains a path that escapes its folder ({name}); refused, "
                        "nothing was installed.")
    if info.is_dir() or not parts:
        return None
    if info.flag_bits & 0x1:
        raise BadBundle(f"{bundle.name} is encrypted ({name}).", hint="Use an unencrypted zip.")
    return parts


def _zip_entries(zf: zipfile.ZipFile, bundle: Path) -> list[_Entry]:
    entries = []
    if len(zf.infolist()) > MAX_MEMBERS:
        raise BadBundle(f"{bundle.name} holds {len(zf.infolist())} members, more than the {MAX_MEMBERS} a model "
                        "bundle can have; refused, nothing was installed.")
    for info in zf.infolist():  # every member is checked, even ones we would not install
        parts = _zip_parts(info, bundle)
        if parts is None:
            continue
        entries.append(_Entry((bundle.stem, *parts), info.file_size,
                              _member_opener(zf, info),
                              f"import:{bundle}!{info.filename}", info.compress_size))
    return entries


def _folder_entries(root: Path) -> list[_Entry]:
    real_root = root.resolve()
    entries = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        for name in [*dirnames, *filenames]:
            item = here / name
            if item.is_symlink() and not item.resolve().is_relative_to(real_root):
                raise BadBundle(f"{item} is a link to {item.resolve()}, outside the bundle; refused.",
                                hint="Copy the real files into the bundle folder.")
        for name in filenames:
            item = here / name
            if not item.is_file():
                continue
            rel = item.relative_to(root).parts
            entries.append(_Entry((root.name, *rel), item.stat().st_size,
                                  _file_opener(item),
                                  f"import:{item}"))
    return entries


def _by_model_folder(parts: tuple[str, ...]) -> tuple[str, str] | None:
    """``…/<model id>/<rel>``: prefer the folder whose rest is a manifest file, else the innermost."""
    hits = [i for i in range(len(parts) - 1) if parts[i] in MODELS]
    for i in reversed(hits):
        rel = "/".join(parts[i + 1:])
        if any(f.path == rel for f in MODELS[parts[i]].files):
            return parts[i], rel
    if hits:
        i = hits[-1]
        return parts[i], "/".join(parts[i + 1:])
    return None


def _by_name(parts: tuple[str, ...]) -> tuple[list[tuple[str, str]], bool]:
    """Manifest files whose path is a suffix of ``parts``, longest suffix only; (matches, ambiguous)."""
    best: list[tuple[str, str]] = []
    best_len = 0
    for spec in MODELS.values():
        for f in spec.files:
            fparts = tuple(f.path.split("/"))
            if len(fparts) <= len(parts) and parts[-len(fparts):] == fparts:
                if len(fparts) > best_len:
                    best, best_len = [], len(fparts)
                if len(fparts) == best_len:
                    best.append((spec.id, f.path))
    return best, len(best) > 1


def _plan(entries: list[_Entry]) -> tuple[dict[tuple[str, str], _Entry], list[str]]:
    """Map bundle entries to (model id, rel) targets; also return names skipped as ambiguous."""
    plan: dict[tuple[str, str], _Entry] = {}
    ambiguous: list[str] = []
    for entry in entries:
        if _skipped(entry.parts[1:]):
            continue
        target = _by_model_folder(entry.parts)
        if target is None:
            matches, is_ambiguous = _by_name(entry.parts)
            if is_ambiguous:
                ambiguous.append("/".join(entry.parts[1:]))
                continue
            target = matches[0] if matches else None
        if target is None:
            log.info("bundle: %s matches no model; skipped", "/".join(entry.parts))
            continue
        if target in plan:
            raise BadBundle(f"The bundle holds two files for {target[0]}/{target[1]}: "
                            f"{plan[target].origin} and {entry.origin}.",
                            hint="Keep one of them and import again.")
        plan[target] = entry
    return plan, ambiguous


def import_bundle(path: str | os.PathLike[str], progress: ProgressCallback | None = None,
                  cancel: CancelToken | None = None, *, replace: bool = False) -> list[str]:
    """Install the models found in a folder, a .zip or a single file; returns the model ids installed.

    Every file is copied to a staging folder, hashed and checked (manifest digest, pinned digest,
    ONNX signature) before any is moved into place, so a refused bundle installs nothing. Digests not
    known in advance are pinned in the lock file (trust on first use).

    Args:
        path: the bundle.
        progress: receives bytes copied of the total.
        cancel: stops the copy; nothing is installed.
        replace: allow replacing a file whose pinned digest differs (the old pin is kept as history).
    """
    bundle = Path(path).expanduser()
    if not bundle.exists():
        raise BadBundle(f"{bundle} does not exist.")
    with ExitStack() as stack:
        if bundle.is_dir():
            entries = _folder_entries(bundle)
        elif bundle.suffix.lower() == ".zip":
            try:
                zf = stack.enter_context(zipfile.ZipFile(bundle))
            except (zipfile.BadZipFile, OSError) as exc:
                raise BadBundle(f"{bundle.name} is not a readable zip file ({exc}).") from exc
            entries = _zip_entries(zf, bundle)
        else:
            entries = [_Entry((bundle.resolve().parent.name, bundle.name), bundle.stat().st_size,
                              _file_opener(bundle), f"import:{bundle}")]
        plan, ambiguous = _plan(entries)
        if not plan:
            known = sorted({f.path.rsplit("/", 1)[-1] for s in MODELS.values() for f in s.files})
            extra = f" Ambiguous names skipped: {', '.join(ambiguous)}." if ambiguous else ""
            raise BadBundle(f"No model files recognised in {bundle}.{extra}",
                            hint=f"Expected files named like {', '.join(known[:8])}…, or folders named "
                                 f"after a model id ({', '.join(sorted(MODELS)[:3])}, …).")
        _check_sizes(plan)
        for name in ambiguous:
            log.warning("bundle: %s could belong to several models; put it under a <model id>/ folder", name)
        report = Reporter(progress, total=sum(e.size for e in plan.values()))
        staged = _stage_all(plan, report, cancel, stack)
        raise_problems(problems(staged, replace=replace))
        check(cancel)
        commit(staged)
    return sorted({model_id for model_id, _ in plan})


def _check_sizes(plan: dict[tuple[str, str], _Entry]) -> None:
    """Refuse members whose size differs from the manifest's, that are too large, or that inflate like a bomb."""
    for (model_id, rel), entry in sorted(plan.items()):
        declared = next((f.size for f in MODELS[model_id].files if f.path == rel), None)
        name = f"{entry.origin} ({model_id}/{rel})"
        if declared is not None and entry.size != declared:
            raise BadBundle(f"{name} is {entry.size} bytes, but its publisher states {declared}; refused, "
                            "nothing was installed.", hint="Get the file again from its source.")
        if entry.size > MAX_MEMBER_BYTES:
            raise BadBundle(f"{name} is {entry.size / 2**30:.1f} GiB, larger than any model file "
                            f"({MAX_MEMBER_BYTES >> 30} GiB at most); refused, nothing was installed.")
        if entry.packed is not None and entry.size > _RATIO_FLOOR and entry.size > MAX_RATIO * max(entry.packed, 1):
            raise BadBundle(f"{name} would inflate from {entry.packed} to {entry.size} bytes (compressed "
                            f"{entry.size // max(entry.packed, 1)}:1, model files compress less than {MAX_RATIO}:1): "
                            "a decompression bomb, not a model; refused, nothing was installed.")


def _stage_all(plan: dict[tuple[str, str], _Entry], report: Reporter, cancel: CancelToken | None,
               stack: ExitStack) -> list[Staged]:
    staging = stack.enter_context(Staging())
    staged = []
    for (model_id, rel), entry in sorted(plan.items()):
        check(cancel)
        dst = staging.new_path(rel)
        try:
            with entry.open() as src:
                digest, size = copy_stream(src, dst, stepper(report, f"{model_id}/{rel}"), cancel,
                                           limit=entry.size)
        except (zipfile.BadZipFile, OSError) as exc:  # CRC error, truncated member, unreadable file
            if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
                raise DiskFull(f"The disk holding {dst.parent} is full; nothing was installed.",
                               hint="Free some space and import again.") from exc
            raise BadBundle(f"Could not read {entry.origin} ({exc}); nothing was installed.") from exc
        staged.append(Staged(model_id, rel, dst, digest, size, entry.origin))
    report.emit("done", force=True)
    return staged
