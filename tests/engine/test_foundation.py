"""Paths, settings, progress and atomic writes: the contracts every other module relies on."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from engine import paths, settings
from engine.errors import Cancelled, ConfigError, DiskFull
from engine.fsutil import atomic_path, atomic_write_text, sha256_file
from engine.progress import CancelToken, ProgressEvent, Reporter, check


def test_sketchface_home_relocates_everything(sketchface_home: Path) -> None:
    for p in (paths.data_dir(), paths.config_dir(), paths.log_dir(), paths.models_dir(),
              paths.galleries_dir(), paths.cases_dir()):
        assert sketchface_home in p.parents
        assert p.is_dir()


def test_explicit_override_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKETCHFACE_CASES_DIR", str(tmp_path / "encrypted" / "cases"))
    assert paths.cases_dir() == tmp_path / "encrypted" / "cases"


def test_settings_round_trip_keeps_unknown_keys() -> None:
    s = settings.load()
    assert s.device == "auto"
    s.device = "cpu"
    s.extra["future_option"] = 3
    settings.save(s)
    again = settings.load()
    assert again.device == "cpu" and again.extra == {"future_option": 3}


def test_bad_settings_are_refused_with_a_message() -> None:
    settings.settings_path().write_text("device = 'tpu'\n")
    with pytest.raises(ConfigError, match="Unknown device"):
        settings.load()
    settings.settings_path().write_text("device = [\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        settings.load()


def test_cancel_token_and_reporter() -> None:
    token = CancelToken()
    check(token)
    events: list[ProgressEvent] = []
    rep = Reporter(events.append, total=3, interval=3600)
    rep.step()  # first call always reports (nothing sent yet within the interval? it is rate limited)
    rep.step()
    rep.step()
    assert events[-1] == ProgressEvent(3, 3, "")
    assert len(events) <= 2
    threading.Thread(target=token.cancel).start()
    token._event.wait(1)
    with pytest.raises(Cancelled):
        check(token)


def test_atomic_write_leaves_old_file_on_error(tmp_path: Path) -> None:
    target = tmp_path / "store" / "index.bin"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half written")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in target.parent.iterdir()] == ["index.bin"]


def test_disk_full_becomes_a_clear_error(tmp_path: Path) -> None:
    import errno

    target = tmp_path / "big.bin"
    with pytest.raises(DiskFull, match="full"), atomic_path(target):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert not target.exists()


def test_sha256_file(tmp_path: Path) -> None:
    p = tmp_path / "f"
    p.write_bytes(b"abc")
    assert sha256_file(p) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
