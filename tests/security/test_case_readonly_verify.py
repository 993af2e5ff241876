"""Finding 11 (case part): a write-protected case can still be verified, and refuses writes clearly.

An examiner receives a case on write-protected media (or a folder whose rights forbid writing) and
must be able to verify it without copying it first. The case folder is made read-only by a read-only
bind mount in a private mount namespace (``unshare``), which holds even for root; where that is not
available and the tests do not run as root, by taking the write bits away.
"""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.engine.test_cases_support import new_case, populated_case

ROOT = Path(__file__).resolve().parents[2]


def _can_unshare() -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    return probe.returncode == 0


def _run_read_only(folder: Path, home: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run ``sketchface ARGV`` with ``folder`` write-protected (its database, WAL files and subfolders)."""
    env = {**os.environ, "SKETCHFACE_HOME": str(home)}
    cmd = [sys.executable, "-m", "engine.cli", *argv]
    if _can_unshare():
        q = shlex.quote(str(folder))
        script = (f"mount --bind {q} {q} && mount -o remount,bind,ro {q} && "
                  f"touch {q}/probe 2>/dev/null && exit 99; exec {shlex.join(cmd)}")
        return subprocess.run(["unshare", "-rm", "sh", "-c", script], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=120)
    if os.geteuid() == 0:
        pytest.skip("no way to write-protect a folder for root here (unshare unavailable)")
    modes = {p: stat.S_IMODE(p.stat().st_mode) for p in [folder, *folder.rglob("*")]}
    try:
        for p, m in modes.items():
            p.chmod(m & ~0o222)
        return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    finally:
        for p, m in modes.items():
            p.chmod(m)


def test_write_protected_case_verifies(sketchface_home: Path) -> None:
    case, _fs, _rec = populated_case(k=4)
    folder = case.folder
    case.close()
    res = _run_read_only(folder, sketchface_home, "case", "verify", "2026-0042")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "intact" in res.stdout and "Traceback" not in res.stderr
    assert "write-protected" in res.stdout  # says how it was opened


def test_write_protected_case_with_tampering_still_reports_it(sketchface_home: Path) -> None:
    with new_case() as case:
        case.conn.execute("UPDATE case_info SET title = 'Nothing happened'")
        folder = case.folder
    res = _run_read_only(folder, sketchface_home, "case", "verify", "2026-0042")
    assert res.returncode == 3 and "Case details" in res.stdout, res.stdout + res.stderr


def test_write_protected_case_refuses_a_write_in_one_line(sketchface_home: Path) -> None:
    with new_case() as case:
        folder = case.folder
    res = _run_read_only(folder, sketchface_home, "case", "update", "2026-0042", "--notes", "x", "--user", "a")
    assert res.returncode == 1 and "write-protected" in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert res.stderr.count("error:") == 1
