"""Staging folders for case creation and import: owned by one process, removed when that process is gone.

A case is built in a hidden folder beside its final place and renamed into place when complete, so
a crash never leaves half a case. The folder names its owner (pid, host, start time); the next
create or import in the same parent removes staging folders whose owner has died.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import time
from pathlib import Path

from engine.fsutil import PRIVATE_DIR_MODE, private_dir

log = logging.getLogger(__name__)

OWNER_FILE = ".owner.json"
MAX_AGE_S = 24 * 3600  # whatever its owner, no staging folder lives longer than a day
NO_OWNER_GRACE_S = 120  # a folder whose owner file is not written yet is left alone this long


def is_staging(name: str) -> bool:
    """True for the hidden folder names create and import use."""
    return name.startswith(".import-") or (name.startswith(".") and name.endswith(".creating"))


def make(folder: Path) -> Path:
    """Create ``folder`` (must not exist) and record this process as its owner."""
    private_dir(folder.parent)
    folder.mkdir(mode=PRIVATE_DIR_MODE)  # must not exist: a staging folder belongs to one process
    if os.name == "posix":
        os.chmod(folder, PRIVATE_DIR_MODE)  # exactly owner-only, whatever the umask
    owner = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
    (folder / OWNER_FILE).write_text(json.dumps(owner), encoding="utf-8")
    return folder


def _pid_alive(pid: int) -> bool:
    if os.name != "posix":
        return True  # no safe liveness probe here: the age limit decides
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale(folder: Path) -> bool:
    """Whether a staging folder was left by a process that no longer runs (or is older than a day)."""
    try:
        owner = json.loads((folder / OWNER_FILE).read_text(encoding="utf-8"))
        pid, host, started = int(owner["pid"]), str(owner["host"]), float(owner["started"])
    except (OSError, ValueError, KeyError, TypeError):
        with contextlib.suppress(OSError):
            return time.time() - folder.stat().st_mtime > NO_OWNER_GRACE_S
        return False
    if time.time() - started > MAX_AGE_S:
        return True
    return host == socket.gethostname() and pid != os.getpid() and not _pid_alive(pid)


def clean_stale(parent: Path) -> list[Path]:
    """Remove the stale staging folders in ``parent``; return what was removed."""
    removed: list[Path] = []
    try:
        children = list(parent.iterdir())
    except OSError:
        return removed
    for child in children:
        if child.is_dir() and not child.is_symlink() and is_staging(child.name) and stale(child):
            shutil.rmtree(child, ignore_errors=True)
            if not child.exists():
                log.warning("Removed %s, left by an import or case creation that did not finish.", child)
                removed.append(child)
    return removed
