"""Which exact software is running: the project's lock, its digest, and how the running environment differs.

Why: "which software produced this search" must have one answer a year later. The set-up
(``tools/dev.py``) installs exactly one hash-checked lock per platform (``locks/<platform>.txt``);
this module finds that lock, names it by its SHA-256, and compares it with the distributions that
are really installed, so ``doctor``, every run manifest, every case report and every re-run can say
whether the environment is the tested one, and list each package that differs.

Standard library only: ``tools/dev.py`` loads this same file before any environment exists, so
the lock's name and parsing have one definition.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from engine import __version__ as ENGINE_VERSION

LOCK_DIR_NAME = "locks"
# The project itself is installed from the working tree, never from the lock.
PROJECT = "sketchface"
_REQ_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def normalize(name: str) -> str:
    """A distribution name as PEP 503 compares it (case, '-', '_' and '.' folded)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_name(sys_platform: str | None = None, machine: str | None = None,
              version: tuple[int, int] | None = None) -> str:
    """The lock file for an interpreter, e.g. ``linux-x86_64-cp311.txt``."""
    plat = {"linux": "linux", "win32": "windows", "darwin": "macos"}.get(sys_platform or sys.platform,
                                                                        sys_platform or sys.platform)
    arch = (machine or platform.machine()).lower()
    arch = {"amd64": "x86_64", "x64": "x86_64", "aarch64": "arm64"}.get(arch, arch)
    major, minor = version or sys.version_info[:2]
    return f"{plat}-{arch}-cp{major}{minor}.txt"


def lock_dirs() -> list[Path]:
    """Where the locks lie: beside the packages in a checkout, or in the frozen bundle's data."""
    dirs = []
    if os.environ.get("SKETCHFACE_LOCK_DIR"):
        dirs.append(Path(os.environ["SKETCHFACE_LOCK_DIR"]))
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        dirs.append(Path(bundle) / LOCK_DIR_NAME)
    dirs.append(Path(__file__).resolve().parent.parent / LOCK_DIR_NAME)
    return dirs


def lock_path() -> Path | None:
    """This interpreter's lock file, or None where the platform has none."""
    for d in lock_dirs():
        p = d / lock_name()
        if p.is_file():
            return p
    return None


def parse_lock(text: str) -> dict[str, str]:
    """``{normalized name: exact version}`` of every pinned line of a pip requirements lock."""
    pins: dict[str, str] = {}
    for line in text.splitlines():
        m = _REQ_LINE.match(line.strip())
        if m:
            pins[normalize(m.group(1))] = m.group(2)
    return pins


def installed_distributions() -> dict[str, str]:
    """``{normalized name: version}`` of every distribution the running interpreter can import."""
    out: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            out.setdefault(normalize(name), dist.version)
    return out


@dataclass(frozen=True)
class Difference:
    """One package where the running environment is not the lock."""

    name: str
    locked: str | None  # None: not in the lock (an extra package)
    installed: str | None  # None: in the lock but not installed

    def describe(self) -> str:
        """One line a person can act on."""
        if self.installed is None:
            return f"{self.name}: locked {self.locked}, not installed"
        if self.locked is None:
            return f"{self.name}: {self.installed} installed, not in the lock"
        return f"{self.name}: locked {self.locked}, installed {self.installed}"


def differences(locked: dict[str, str], installed: dict[str, str]) -> list[Difference]:
    """Every package whose installed version is not the locked one, in name order (the project excluded)."""
    out = []
    for name in sorted(set(locked) | set(installed)):
        if name == PROJECT:
            continue
        want, have = locked.get(name), installed.get(name)
        if want != have:
            out.append(Difference(name, want, have))
    return out


@dataclass(frozen=True)
class EnvironmentRecord:
    """The software on the record: the project's version, the lock's name and digest, and the differences."""

    sketchface_version: str
    lock: str | None  # the lock file's name; None where this platform has no lock
    lock_digest: str | None  # SHA-256 of the lock file's bytes
    differences: tuple[Difference, ...] = field(default=())

    @property
    def matches(self) -> bool | None:
        """True when every installed package is the locked one; None where there is no lock to compare."""
        if self.lock_digest is None:
            return None
        return not self.differences

    def status(self) -> str:
        """A short phrase: matches the lock, differs in N packages, or no lock."""
        if self.matches is None:
            return "no lock for this platform (versions not pinned)"
        if self.matches:
            return "matches the lock"
        n = len(self.differences)
        return f"differs from the lock in {n} package{'s' if n != 1 else ''}"

    def to_dict(self) -> dict[str, Any]:
        return {"sketchface_version": self.sketchface_version, "lock": self.lock, "lock_digest": self.lock_digest,
                "matches_lock": self.matches, "differences": [d.describe() for d in self.differences]}


def record_for(lock_file: Path | None, installed: dict[str, str] | None = None) -> EnvironmentRecord:
    """The record of ``installed`` (default: the running interpreter) against ``lock_file``."""
    version = _project_version()
    if lock_file is None:
        return EnvironmentRecord(version, None, None)
    data = lock_file.read_bytes()
    have = installed_distributions() if installed is None else installed
    diffs = differences(parse_lock(data.decode("utf-8")), have)
    return EnvironmentRecord(version, lock_file.name, hashlib.sha256(data).hexdigest(), tuple(diffs))


@functools.lru_cache(maxsize=1)
def current() -> EnvironmentRecord:
    """The running environment's record (computed once per process: the installed set does not change)."""
    return record_for(lock_path())


def _project_version() -> str:
    try:
        return metadata.version(PROJECT)
    except metadata.PackageNotFoundError:
        return ENGINE_VERSION


def manifest_entry() -> dict[str, Any]:
    """What a run manifest records of the software: enough to rebuild the environment that ran it."""
    rec = current()
    entry: dict[str, Any] = {"sketchface": rec.sketchface_version, "lock": rec.lock, "lock_digest": rec.lock_digest,
                             "matches_lock": rec.matches}
    if rec.differences:
        entry["differences"] = [d.describe() for d in rec.differences]
    return entry


def describe_software(entry: Mapping[str, Any]) -> str:
    """A manifest's software entry as one line for a report or a terminal."""
    if not entry:
        return "not recorded (made by an earlier version)"
    lock, digest = entry.get("lock"), entry.get("lock_digest")
    text = f"sketchface {entry.get('sketchface', '?')}"
    if not digest:
        return text + ", no lock for its platform (versions not pinned)"
    text += f", lock {str(lock).removesuffix('.txt')} sha256 {digest}"
    match = entry.get("matches_lock")
    diffs = entry.get("differences") or []
    if match:
        return text + ", environment matched the lock"
    return text + f", environment DIFFERED from the lock in {len(diffs)} package(s)" + (
        ": " + "; ".join(map(str, diffs[:8])) + (" …" if len(diffs) > 8 else "") if diffs else "")
