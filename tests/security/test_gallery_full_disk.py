"""Full, read-only and forbidden disks under a gallery import and under the log file.

On a real small tmpfs where this machine allows mounting one (root on Linux), else skipped with the
reason; the fault-injection tests at the end run everywhere and check the same messages.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import cli
from engine.gallery import create_gallery, open_gallery
from engine.gallery.store import GalleryStore
from tests.fixtures.photos import small_photo_folder

REPO = Path(__file__).resolve().parents[2]
DESTRUCTIVE_ADVICE = ("delete", "schema rules", "damaged")


def _mount(where: Path, size: str) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    if sys.platform != "linux" or os.geteuid() != 0:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True)
    return done.returncode == 0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs, unmounted afterwards."""
    disk = tmp_path / "disk"
    if not _mount(disk, "4m"):
        pytest.skip("a tmpfs cannot be mounted here (needs root on Linux); the fault-injection tests cover this")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def _fill(disk: Path, leave: int) -> Path:
    """Take all but ``leave`` bytes of the disk with one file (removed to free the space again)."""
    filler = disk / "filler"
    free = shutil.disk_usage(disk).free
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, free - leave))
    return filler


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env={**os.environ, **env})


def _one_clear_line(stderr: str, *words: str) -> None:
    assert "Traceback" not in stderr and "Logging error" not in stderr, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr[-3000:]
    assert all(w in errors[0] for w in words), errors[0]
    assert not any(bad in errors[0].lower() for bad in DESTRUCTIVE_ADVICE), errors[0]


def test_a_full_disk_during_import_is_named_and_the_rerun_finishes(installed_models: Path, tmp_path: Path,
                                                                   small_disk: Path) -> None:
    env = {"SKETCHFACE_DATA_DIR": str(small_disk / "data"), "SKETCHFACE_MODELS_DIR": str(installed_models)}
    photos = small_photo_folder(tmp_path / "photos", 24, seed=31)
    assert _cli(env, "gallery", "create", "g").returncode == 0
    filler = _fill(small_disk, 160_000)

    full = _cli(env, "gallery", "add", "g", str(tmp_path / "photos"))
    assert full.returncode == 1
    _one_clear_line(full.stderr, "full", "ENOSPC")

    filler.unlink()
    again = _cli(env, "gallery", "add", "g", str(tmp_path / "photos"))
    assert again.returncode == 0, again.stderr[-3000:]
    os.environ["SKETCHFACE_DATA_DIR"] = env["SKETCHFACE_DATA_DIR"]
    try:
        with open_gallery("g") as g:
            assert len(g.store.photo_paths()) == len(photos) and g.verify().ok
    finally:
        del os.environ["SKETCHFACE_DATA_DIR"]


def test_a_read_only_disk_is_named_and_nothing_is_lost(installed_models: Path, tmp_path: Path,
                                                       small_disk: Path) -> None:
    env = {"SKETCHFACE_DATA_DIR": str(small_disk / "data"), "SKETCHFACE_MODELS_DIR": str(installed_models)}
    small_photo_folder(tmp_path / "a", 3, seed=32)
    small_photo_folder(tmp_path / "b", 3, seed=33)
    assert _cli(env, "gallery", "create", "g").returncode == 0
    assert _cli(env, "gallery", "add", "g", str(tmp_path / "a")).returncode == 0
    assert subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], capture_output=True).returncode == 0

    ro = _cli(env, "gallery", "add", "g", str(tmp_path / "b"))
    assert ro.returncode == 1
    _one_clear_line(ro.stderr, "read-only", "EROFS")

    assert subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], capture_output=True).returncode == 0
    assert _cli(env, "gallery", "add", "g", str(tmp_path / "b")).returncode == 0
    assert '"photos": 6' in _cli(env, "gallery", "info", "g", "--json").stdout


def test_a_full_log_disk_costs_one_line_not_tracebacks(tmp_path: Path, small_disk: Path) -> None:
    logs = small_disk / "logs"
    logs.mkdir()
    _fill(small_disk, 0)
    done = _cli({"SKETCHFACE_LOG_DIR": str(logs)}, "gallery", "info", "no-such-gallery")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "Logging error" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) <= 2 and lines[-1].startswith("error:"), lines
    assert all(line.startswith(("error:", "warning: the log file")) for line in lines), lines


def test_a_read_only_log_folder_costs_one_line_not_tracebacks(tmp_path: Path, small_disk: Path) -> None:
    logs = small_disk / "logs"
    logs.mkdir()
    assert subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], capture_output=True).returncode == 0
    done = _cli({"SKETCHFACE_LOG_DIR": str(logs)}, "gallery", "info", "no-such-gallery")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "Logging error" not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) <= 2, done.stderr


# -- fault injection: the same messages wherever no tmpfs can be mounted ---------------------------------

def _sqlite_error(message: str, code: int) -> sqlite3.OperationalError:
    exc = sqlite3.OperationalError(message)
    exc.sqlite_errorcode = code  # type: ignore[attr-defined]
    return exc


@pytest.mark.parametrize("message,code,folder,words", [
    ("database or disk is full", 13, None, ("full", "ENOSPC")),
    ("attempt to write a readonly database", 8, errno.EROFS, ("read-only", "EROFS")),
    ("disk I/O error", 10, errno.ENOSPC, ("full", "ENOSPC")),
    ("disk I/O error", 10, errno.EACCES, ("may not write", "EACCES")),
    ("unable to open database file", 14, errno.EROFS, ("read-only", "EROFS")),
])
def test_disk_errors_during_import_are_named_by_injection(
        installed_models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        message: str, code: int, folder: int | None, words: tuple[str, ...]) -> None:
    small_photo_folder(tmp_path / "photos", 2, seed=34)
    create_gallery("g").close()

    def fail(self: GalleryStore, *args: object, **kwargs: object) -> None:
        raise self.damaged(_sqlite_error(message, code))

    monkeypatch.setattr(GalleryStore, "record_photo", fail)
    monkeypatch.setattr("engine.gallery.store.folder_write_problem", lambda where: folder)
    assert cli.main(["gallery", "add", "g", str(tmp_path / "photos")]) == 1
    _one_clear_line(capsys.readouterr().err, *words)


def test_real_damage_is_still_called_damage_without_advising_deletion(tmp_path: Path) -> None:
    create_gallery("g").close()
    with open_gallery("g") as g:
        err = g.store.damaged(_sqlite_error("database disk image is malformed", 11))
    text = str(err)
    assert "damaged" in text and "backup" in text and "delete" not in text.lower()


def test_a_log_handler_whose_disk_fails_says_so_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    from engine.logfile import rotating_log

    handler = rotating_log(tmp_path / "x.log")

    def full(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    handler._open = full  # type: ignore[method-assign,assignment]
    log = logging.getLogger("sketchface.test.fulllog")
    log.propagate = False
    log.addHandler(handler)
    try:
        for _ in range(5):
            log.error("something")
    finally:
        log.removeHandler(handler)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ENOSPC" in err and "Traceback" not in err, err
