"""The workstation key that signs every case's audit head: where it lives, its rights, one key per workstation."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from engine import paths
from engine import workstation_key as wk
from engine.cases import anchor, build_report, open_case
from engine.cli import main
from tests.engine.test_cases_support import new_case, populated_case

ROOT = Path(__file__).resolve().parents[2]


def test_key_file_lives_in_the_config_dir_outside_every_case_with_owner_only_rights() -> None:
    with new_case() as case:
        key = anchor.key_file()
        assert key.parent == paths.config_dir() and not key.is_relative_to(case.folder)
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert key.read_text().strip() not in (case.folder / "case.sqlite").read_bytes().hex()
        sig = anchor.read_signature(case.conn)
        assert sig is not None and sig.valid() and sig.public_key == anchor.public_key_hex()


def test_missing_signature_is_a_finding_not_a_silent_skip() -> None:
    with new_case() as case:
        case.conn.execute("DELETE FROM meta WHERE key = 'audit_signature'")
        report = case.verify()
        assert not report.ok and [f.kind for f in report.findings] == ["signature"]
        assert "no workstation signature" in report.findings[0].message


def test_case_signed_with_another_key_names_that_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with new_case() as case:
        folder = case.folder
        ours = anchor.key_fingerprint(anchor.public_key_hex())
    monkeypatch.setenv("SKETCHFACE_CONFIG_DIR", str(tmp_path / "other_workstation"))
    with open_case(folder) as case:
        report = case.verify()
        assert not report.ok and ours in report.findings[0].message and "not by this workstation" in \
            report.findings[0].message
        assert report.signature and report.signature["this_workstation"] is False


def test_concurrent_first_use_makes_one_key(tmp_path: Path, sketchface_home: Path) -> None:
    code = ("import sys, os, time\nfrom engine.cases import anchor\n"
            "while not os.path.exists(sys.argv[1]): time.sleep(0.001)\nprint(anchor.public_key_hex())")
    env = {**os.environ, "SKETCHFACE_HOME": str(sketchface_home)}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "go")], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, text=True) for _ in range(4)]
    import time

    time.sleep(2.5)
    (tmp_path / "go").write_text("go")
    keys = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert len(keys) == 1 and anchor.public_key_hex() in keys


def test_keyring_is_used_when_a_usable_backend_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    import keyring
    from keyring.backend import KeyringBackend

    class MemoryKeyring(KeyringBackend):
        priority = 1  # type: ignore[assignment]
        store: dict[tuple[str, str], str] = {}

        def get_password(self, service: str, username: str) -> str | None:
            return self.store.get((service, username))

        def set_password(self, service: str, username: str, password: str) -> None:
            self.store[(service, username)] = password

        def delete_password(self, service: str, username: str) -> None:
            self.store.pop((service, username), None)

    previous = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    try:
        monkeypatch.setenv("SKETCHFACE_KEY_STORE", "keyring")
        pub = anchor.public_key_hex()
        assert list(MemoryKeyring.store) == [(anchor.KEYRING_SERVICE, str(paths.config_dir()))]
        assert not anchor.key_file().exists()
        with new_case() as case:
            assert case.verify().ok and case.verify().signature["public_key"] == pub  # type: ignore[index]
    finally:
        keyring.set_keyring(previous)
        wk._cache.clear()


def test_report_prints_head_signature_public_key_and_the_command_that_checks_it(
        capsys: pytest.CaptureFixture[str]) -> None:
    case, _, _ = populated_case(k=3)
    with case:
        html_text = build_report(case, "html").decode()
        report = case.verify()
        case_id = case.case_id
    assert report.signature is not None
    for value in (report.head, report.signature["signature"], report.signature["public_key"],
                  report.signature["fingerprint"]):
        assert value in html_text
    command = f"sketchface case verify {case_id} --head {report.count}:{report.head}"
    assert command in html_text
    assert main(command.split()[1:]) == 0  # the printed command works as printed
    assert main(["case", "key", "--json"]) == 0
    assert report.signature["fingerprint"] in capsys.readouterr().out
