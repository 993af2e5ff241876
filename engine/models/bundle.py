"""Offline model bundles: install models from a folder, a .zip or a single file (air-gapped workstations).

Files are recognised by their path against the manifest. A bundle laid out as ``<model id>/<files>``
installs that model's files; otherwise a file is matched by its name or trailing path
(``buffalo_l/det_10g.onnx`` -> ``buffalo_l.det_10g``) when exactly one model claims it. A bundle with a
member that would escape its folder (``../``, an absolute name, an escaping symlink) is refused as a
whole, before anything is written.

What may be installed: only the files the manifest lists, nothing else. Why: a model folder is read by
loaders that pick up whatever they find there (diffusers and transformers fall back to pickled
``.bin`` weights, open_clip and torch unpickle ``.bin``/``.pt``), and a pickle runs code when loaded.
So a bundle carrying code (``.py``, a native library, an executable) or a pickle (by name or by its
first bytes) anywhere is refused as a whole; the only pickles accepted are manifest files whose
publisher's SHA-256 the manifest carries (checked before they are installed). Other files that are not
the manifest's (a README, a landmark model from buffalo_l) are not installed and are listed as such.
The result (:class:`ImportReport`) says, per file, what was installed, and which models are still
incomplete.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from engine.errors import DiskFull, EngineError
from engine.models.identity import ModelLocator
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
# Formats that can carry code: never installed unless the manifest publishes the file's SHA-256.
CODE_SUFFIXES = frozenset({".py", ".pyc", ".pyo", ".pyw", ".pyd", ".pyz", ".so", ".dll", ".dylib", ".exe",
                           ".bat", ".cmd", ".com", ".sh", ".bash", ".ps1", ".psm1", ".vbs", ".js", ".jar",
                           ".msi", ".scr", ".ipynb"})
PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib", ".npy", ".npz",
                             ".dill", ".mar", ".tar"})
# First bytes of pickles (protocol 2-5), zip archives (torch's own format holds a pickle), ELF and Mach-O
# binaries, and scripts.
_MAGIC = ((b"\x80\x02", "a pickle"), (b"\x80\x03", "a pickle"), (b"\x80\x04", "a pickle"),
          (b"\x80\x05", "a pickle"), (b"PK\x03\x04", "an archive (torch checkpoints are pickles in a zip)"),
          (b"\x7fELF", "a native executable"), (b"\xcf\xfa\xed\xfe", "a native executable"),
          (b"#!", "a script"))


@dataclass(frozen=True)
class InstalledFile:
    """One file a bundle installed: its model, its path in the model folder and its SHA-256."""

    model_id: str
    file: str
    sha256: str

    def to_dict(self) -> dict[str, str]:
        return {"model": self.model_id, "file": self.file, "sha256": self.sha256}


@dataclass(frozen=True)
class ImportReport:
    """What an import did: the files installed, the files left out (and why), the models still incomplete."""

    files: tuple[InstalledFile, ...]
    not_installed: tuple[tuple[str, str], ...] = ()  # (name in the bundle, why it was not installed)
    incomplete: dict[str, tuple[str, ...]] = field(default_factory=dict)  # model id -> required files missing

    @property
    def models(self) -> list[str]:
        """Ids of the models that received files."""
        return sorted({f.model_id for f in self.files})

    def to_dict(self) -> dict[str, object]:
        return {"installed": self.models, "files": [f.to_dict() for f in self.files],
                "incomplete": {k: list(v) for k, v in self.incomplete.items()},
                "not_installed": [{"path": p, "reason": r} for p, r in self.not_installed]}


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


def _plan(entries: list[_Entry]) -> tuple[dict[tuple[str, str], _Entry], list[tuple[str, str]]]:
    """Map bundle entries to the (model id, rel) manifest files they are; also the entries left out, and why."""
    plan: dict[tuple[str, str], _Entry] = {}
    left_out: list[tuple[str, str]] = []
    for entry in entries:
        if _skipped(entry.parts[1:]):
            continue
        name = "/".join(entry.parts[1:])
        target = _by_model_folder(entry.parts)
        if target is not None and not any(f.path == target[1] for f in MODELS[target[0]].files):
            left_out.append((name, f"not a file of {target[0]} (only the manifest's files are installed)"))
            continue
        if target is None:
            matches, is_ambiguous = _by_name(entry.parts)
            if is_ambiguous:
                left_out.append((name, "could belong to several models: put it under a <model id>/ folder"))
                continue
            target = matches[0] if matches else None
        if target is None:
            log.info("bundle: %s matches no model; skipped", "/".join(entry.parts))
            left_out.append((name, "not a file of any model"))
            continue
        if target in plan:
            raise BadBundle(f"The bundle holds two files for {target[0]}/{target[1]}: "
                            f"{plan[target].origin} and {entry.origin}.",
                            hint="Keep one of them and import again.")
        plan[target] = entry
    return plan, left_out


def _published(model_id: str, rel: str) -> bool:
    return any(f.path == rel and f.sha256 for f in MODELS[model_id].files)


def _code_or_pickle(entry: _Entry) -> str | None:
    """What makes an entry able to run code when loaded (by its name or first bytes), or None."""
    suffix = Path(entry.parts[-1]).suffix.lower()
    if suffix in CODE_SUFFIXES:
        return "code"
    if suffix in PICKLE_SUFFIXES:
        return f"a {suffix} file (a pickle format)"
    try:
        with entry.open() as f:
            head = f.read(8)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BadBundle(f"Could not read {entry.origin} ({exc}); nothing was installed.") from exc
    return next((what for magic, what in _MAGIC if head.startswith(magic)), None)


def _refuse_code_and_pickles(entries: list[_Entry], plan: dict[tuple[str, str], _Entry]) -> None:
    """Refuse the whole bundle when any file in it can run code, unless it is a manifest file with a published digest."""
    vouched = {id(entry) for (model_id, rel), entry in plan.items() if _published(model_id, rel)}
    found = []
    for entry in entries:
        if _skipped(entry.parts[1:]) or id(entry) in vouched:
            continue
        what = _code_or_pickle(entry)
        if what is not None:
            found.append(f"{'/'.join(entry.parts[1:])} ({what})")
    if found:
        raise BadBundle(
            "Refused, nothing was installed: this bundle carries files that can run code when loaded, which a "
            f"model bundle never needs: {', '.join(found)}.",
            hint="Model files are safetensors, ONNX and JSON (pickled weights only where the manifest publishes "
                 "their SHA-256). Get the bundle again from a trusted source, or remove those files if you know "
                 "where they came from.")


def import_bundle(path: str | os.PathLike[str], progress: ProgressCallback | None = None,
                  cancel: CancelToken | None = None, *, replace: bool = False) -> list[str]:
    """Install the models found in a folder, a .zip or a single file; returns the ids of models that received files.

    See :func:`import_bundle_report` (what was installed, per file).
    """
    return import_bundle_report(path, progress, cancel, replace=replace).models


def import_bundle_report(path: str | os.PathLike[str], progress: ProgressCallback | None = None,
                         cancel: CancelToken | None = None, *, replace: bool = False) -> ImportReport:
    """Install the manifest files found in a folder, a .zip or a single file; say what was installed, per file.

    Every file is copied to a staging folder, hashed and checked (manifest digest, pinned digest,
    ONNX signature) before any is moved into place, so a refused bundle installs nothing. Digests not
    known in advance are pinned (trust on first use). A bundle carrying code or a pickle is refused
    (see the module docstring); other files that are not the manifest's are left out and listed.

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
        plan, left_out = _plan(entries)
        _refuse_code_and_pickles(entries, plan)
        if not plan:
            known = sorted({f.path.rsplit("/", 1)[-1] for s in MODELS.values() for f in s.files})
            ambiguous = [name for name, why in left_out if why.startswith("could belong")]
            extra = f" Ambiguous names skipped: {', '.join(ambiguous)}." if ambiguous else ""
            raise BadBundle(f"No model files recognised in {bundle}.{extra}",
                            hint=f"Expected files named like {', '.join(known[:8])}…, or folders named "
                                 f"after a model id ({', '.join(sorted(MODELS)[:3])}, …).")
        _check_sizes(plan)
        for name, why in left_out:
            if why.startswith("could belong"):
                log.warning("bundle: %s could belong to several models; put it under a <model id>/ folder", name)
        report = Reporter(progress, total=sum(e.size for e in plan.values()))
        staged = _stage_all(plan, report, cancel, stack)
        raise_problems(problems(staged, replace=replace))
        check(cancel)
        commit(staged)
    locator = ModelLocator()
    incomplete = {mid: tuple(missing) for mid in sorted({m for m, _ in plan}) if (missing := locator.missing(mid))}
    files = tuple(InstalledFile(s.model_id, s.rel, s.sha256) for s in sorted(staged, key=lambda s: (s.model_id, s.rel)))
    return ImportReport(files, tuple(left_out), incomplete)


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
