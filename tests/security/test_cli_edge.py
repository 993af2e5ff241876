"""The command line's edge: OS and database errors are one line and a non-zero exit, tracebacks go to the log file,
and no Hugging Face hub traffic happens unless the user asked for a download."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from engine import cli, paths
from engine.errors import EngineError

REPO = Path(__file__).resolve().parents[2]


def _sketchface(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("error", [PermissionError(13, "Permission denied", "/evidence/locked.csv"),
                                   sqlite3.DatabaseError("database disk image is malformed")])
def test_os_and_database_errors_are_one_line_and_the_traceback_goes_to_the_log(
        error: Exception, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import engine.models.store as store

    def fail(*_a: object, **_k: object) -> None:
        raise error

    monkeypatch.setattr(store, "status", fail)
    assert cli.main(["models", "status"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    if isinstance(error, OSError):
        assert "Permission denied" in err and "/evidence/locked.csv" in err
    else:
        assert "malformed" in err
    log = paths.log_dir() / cli.LOG_NAME
    assert str(log) in err
    text = log.read_text("utf-8")
    assert "Traceback" in text and type(error).__name__ in text


def test_a_real_user_mistake_reading_a_folder_as_a_file_is_one_line(tmp_path: Path) -> None:
    done = _sketchface("models", "import", str(tmp_path / "missing" / "bundle.zip"))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    folder = tmp_path / "a_folder.csv"
    folder.mkdir()
    done = _sketchface("gallery", "create", "g")
    assert done.returncode == 0, done.stderr
    done = _sketchface("gallery", "import-metadata", "g", str(folder))
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_hub_is_offline_and_telemetry_off_unless_a_download_was_asked(monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    for var in ("HF_HUB_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
        monkeypatch.delenv(var, raising=False)
    cli.main(["models", "status"])
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["HF_HUB_DISABLE_TELEMETRY"] == "1"
    monkeypatch.delenv("HF_HUB_OFFLINE")
    cli.main(["-v", "models", "download", "no.such.model"])  # refused (unknown id), but it was a download
    assert os.environ.get("HF_HUB_OFFLINE") != "1"
    capsys.readouterr()


def test_a_user_choice_of_hub_offline_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    cli.main(["models", "status"])
    assert os.environ["HF_HUB_OFFLINE"] == "0"


def test_a_reader_that_closes_the_pipe_early_is_not_an_error(tmp_path: Path) -> None:
    """``sketchface models status | head -1`` exits quietly; a closed pipe is not reported as a failure."""
    env = {**os.environ, "SKETCHFACE_HOME": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "models", "status"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.close()  # the reader is gone before the command writes, as with ``| head -0``
    err = proc.stderr.read().decode() if proc.stderr else ""
    assert proc.wait(timeout=120) == 0, err
    assert "error" not in err.lower() and "Traceback" not in err, err


def test_a_closed_pipe_met_inside_a_command_that_words_its_own_errors_is_not_an_error(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A command that turns an OSError into its own one-line error must not report the reader going away.

    Negative control: an EngineError from any other OSError is still reported, with exit 1.
    """
    def handler_for(cause: OSError):
        def run(_args: object) -> int:
            try:
                raise cause
            except OSError as exc:
                raise EngineError(f"A file: {exc.strerror}") from exc
        return run

    real = cli.build_parser

    def parser_with(cause: OSError):
        def build():  # type: ignore[no-untyped-def]
            parser = real()
            parser.set_defaults(func=handler_for(cause))
            return parser
        return build

    monkeypatch.setattr(cli, "build_parser", parser_with(BrokenPipeError(32, "Broken pipe")))
    assert cli.main([]) == 0
    assert "error" not in capsys.readouterr().err
    monkeypatch.setattr(cli, "build_parser", parser_with(PermissionError(13, "Permission denied")))
    assert cli.main([]) == 1
    assert "error: A file: Permission denied" in capsys.readouterr().err
