"""Finding 12 (key and case store): the workstation key's rights, its loss, folder rights, key prefixes."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from engine import paths
from engine import workstation_key as wk
from engine.errors import CaseError
from tests.engine.test_cases_support import new_case
from tests.examiner_helpers import ensure_profile
from tests.security.case_forgery import cli
from tests.security.test_case_support import exported


def test_failed_chmod_on_the_key_file_is_reported_as_failed(monkeypatch: pytest.MonkeyPatch,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    wk.public_key_hex()
    path = wk.key_file()
    path.chmod(0o644)
    wk._cache.clear()

    def refuse(*_a: object, **_k: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(wk.os, "chmod", refuse)
    with caplog.at_level(logging.WARNING, logger="engine.workstation_key"):
        wk.public_key_hex()
    text = caplog.text
    assert "could not" in text and "Operation not permitted" in text, text
    assert "restricting it" not in text


def test_control_a_chmod_that_works_says_it_restricted_the_key(caplog: pytest.LogCaptureFixture) -> None:
    wk.public_key_hex()
    wk.key_file().chmod(0o644)
    wk._cache.clear()
    with caplog.at_level(logging.WARNING, logger="engine.workstation_key"):
        wk.public_key_hex()
    assert "restricted it to its owner" in caplog.text
    assert stat.S_IMODE(wk.key_file().stat().st_mode) == 0o600


def test_deleted_key_is_not_silently_replaced(capsys: pytest.CaptureFixture[str]) -> None:
    with new_case():
        pass
    old = wk.key_fingerprint(wk.public_key_hex())
    wk.key_file().unlink()
    wk._cache.clear()
    code, _, err = cli(capsys, "case", "update", "2026-0042", "--notes", "x", "--user", "alice")
    assert code == 1 and "missing" in err and old in err and "case key --new" in err, err
    assert not wk.key_file().exists()  # nothing minted behind the examiner's back
    code, _, err = cli(capsys, "case", "key")
    assert code == 1 and "missing" in err
    # A new key only on purpose, and on record; the old cases then name the old key.
    code, out, err = cli(capsys, "case", "key", "--new")
    assert code == 0 and "new workstation key" in out.lower(), err
    history = wk.key_history()
    assert [h["fingerprint"] for h in history][0] == old and history[-1]["replaces"] == [old]
    code, out, _ = cli(capsys, "case", "verify", "2026-0042")
    assert code == 3 and "ANOTHER workstation" in out


def test_control_first_use_on_a_fresh_workstation_makes_a_key() -> None:
    assert not wk.key_file().exists()
    pub = wk.public_key_hex()
    assert wk.key_history()[0]["fingerprint"] == wk.key_fingerprint(pub)


def test_new_key_is_refused_while_the_key_is_there(capsys: pytest.CaptureFixture[str]) -> None:
    wk.public_key_hex()
    code, _, err = cli(capsys, "case", "key", "--new")
    assert code == 1 and "already" in err


def test_folders_are_owner_only_under_umask_000(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKETCHFACE_HOME", str(tmp_path / "fresh_home"))
    old = os.umask(0)
    try:
        ensure_profile("A. Examiner", "A-1001")  # the examiner of this fresh workstation
        with new_case() as case:
            folders = [paths.data_dir(), paths.config_dir(), paths.log_dir(), paths.cases_dir(), case.folder,
                       *[p for p in case.folder.iterdir() if p.is_dir()], tmp_path / "fresh_home"]
    finally:
        os.umask(old)
    for f in folders:
        mode = stat.S_IMODE(f.stat().st_mode)
        assert mode & 0o077 == 0, (f, oct(mode))


def test_short_expect_key_prefix_says_what_is_wrong(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    archive = exported(tmp_path)
    fp = wk.key_fingerprint(wk.public_key_hex())
    code, _, err = cli(capsys, "case", "import", str(archive), "--expect-key", fp[:15])
    assert code == 1 and "at least 16" in err and "15" in err, err
    assert "not the" not in err  # it does not claim the archive is signed by another key
    code, _, err = cli(capsys, "case", "import", str(archive), "--expect-key", "zz" + fp[2:20])
    assert code == 1 and "hex" in err, err
    code, _, err = cli(capsys, "case", "import", str(archive), "--expect-key", fp[:16])
    assert code == 0, err  # control: 16 digits of the right key import


def test_wrong_key_is_still_refused(tmp_path: Path) -> None:
    from engine.cases import import_case

    archive = exported(tmp_path)
    with pytest.raises(CaseError, match="not the"):
        import_case(archive, expected_key="0" * 64)
