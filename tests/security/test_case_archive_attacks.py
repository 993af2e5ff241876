"""Attacks through a case archive: odd member names, planted files, bombs, another workstation's key."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from engine.cases import anchor, build_report, import_case, open_case
from engine.cases.archive import MANIFEST_NAME
from engine.cases.archive_members import MAX_RATIO, RATIO_FLOOR_BYTES
from engine.cases.db import canonical_json
from engine.cli import main
from engine.errors import CaseError
from tests.examiner_helpers import ensure_profile
from tests.security.test_case_support import exported, rewrite_archive, rewrite_archive_db


def _no_case_left(dest: Path) -> None:
    assert not dest.exists() or [p.name for p in dest.iterdir()] == []


def test_file_no_record_refers_to_is_refused_even_when_listed(tmp_path: Path) -> None:
    archive = exported(tmp_path)
    bad = rewrite_archive(archive, tmp_path / "bad.zip", add={"case/attachments/planted.txt": b"planted"})
    with pytest.raises(CaseError, match="no record of the case refers to"):
        import_case(bad, location=tmp_path / "dest")
    _no_case_left(tmp_path / "dest")


def test_wal_file_beside_the_database_is_refused(tmp_path: Path) -> None:
    archive = exported(tmp_path)
    bad = rewrite_archive(archive, tmp_path / "bad.zip", add={"case/case.sqlite-wal": b"\0" * 64})
    with pytest.raises(CaseError, match="no record of the case refers to"):
        import_case(bad, location=tmp_path / "dest")


@pytest.mark.parametrize(("name", "why"), [
    ("case/sketches", "also a folder"),
    ("case/Case.sqlite", "letter case"),
    ("case/.hidden", "hidden"),
    ("case/a\x01b.png", "control characters"),
])
def test_odd_member_names_give_a_clear_error(tmp_path: Path, name: str, why: str) -> None:
    archive = exported(tmp_path)
    bad = rewrite_archive(archive, tmp_path / "bad.zip", add={name: b"x"})
    with pytest.raises(CaseError, match=why):
        import_case(bad, location=tmp_path / "dest")
    _no_case_left(tmp_path / "dest")


def test_non_utf8_member_name_gives_a_clear_error(tmp_path: Path) -> None:
    archive = exported(tmp_path)
    bad = tmp_path / "bad.zip"
    rewrite_archive(archive, bad)
    with zipfile.ZipFile(bad, "a") as zf:
        info = zipfile.ZipInfo("case/attachments/x.txt")
        zf.writestr(info, b"x")
    raw = bad.read_bytes().replace(b"case/attachments/x.txt", b"case/attachments/\xe9.txt")
    bad.write_bytes(raw)
    with pytest.raises(CaseError, match="not UTF-8"):
        import_case(bad, location=tmp_path / "dest")
    assert main(["case", "import", str(bad), "--location", str(tmp_path / "dest")]) == 1


def test_compression_bomb_member_is_refused_before_extraction(tmp_path: Path) -> None:
    archive = exported(tmp_path)
    size = max(RATIO_FLOOR_BYTES * 2, 8 * 2**20)
    bad = rewrite_archive(archive, tmp_path / "bad.zip", add={"case/attachments/bomb.bin": b"\0" * size})
    with zipfile.ZipFile(bad) as zf:
        info = zf.getinfo("case/attachments/bomb.bin")
        assert info.file_size > MAX_RATIO * info.compress_size  # the control: it really is a bomb
    with pytest.raises(CaseError, match="compression bomb"):
        import_case(bad, location=tmp_path / "dest")
    _no_case_left(tmp_path / "dest")


def test_stale_staging_folder_of_a_killed_import_is_removed(tmp_path: Path) -> None:
    archive = exported(tmp_path)
    dest = tmp_path / "dest"
    dest.mkdir()
    code = ("import os, sys; from engine.cases import staging; from pathlib import Path; "
            "p = staging.make(Path(sys.argv[1])); (p / 'case.sqlite').write_bytes(b'half'); os._exit(9)")
    subprocess.run([sys.executable, "-c", code, str(dest / ".import-deadbeef")], check=False,
                   env={**os.environ}, cwd=Path(__file__).resolve().parents[2])
    assert (dest / ".import-deadbeef" / "case.sqlite").exists()
    live = dest / ".import-cafef00d"
    from engine.cases import staging

    staging.make(live)  # this process is alive: its staging folder stays
    with import_case(archive, location=dest):
        pass
    assert not (dest / ".import-deadbeef").exists() and live.exists()


def test_archive_signed_by_another_workstation_is_reported_with_its_key(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    archive = exported(tmp_path)
    sender = anchor.public_key_hex()
    monkeypatch.setenv("SKETCHFACE_CONFIG_DIR", str(tmp_path / "receiver_config"))  # another workstation's key
    assert anchor.public_key_hex() != sender
    ensure_profile("B. Receiver", "B-2002")  # and its examiner
    with pytest.raises(CaseError, match="not the"):
        import_case(archive, location=tmp_path / "d0", expected_key="0" * 64)
    with import_case(archive, location=tmp_path / "d1", expected_key=anchor.key_fingerprint(sender)[:16]) as case:
        entry = case.audit_entries()[-1]
        signed = entry.details["archive_signature"]
        assert signed["public_key"] == sender and signed["this_workstation"] is False
        report = case.verify()
        assert report.ok and report.signature and report.signature["this_workstation"]
        html_text = build_report(case, "html").decode()
        assert anchor.key_fingerprint(sender) in html_text and "signed by another workstation" in html_text
        case_id = case.case_id
    assert main(["case", "show", case_id]) == 0


def test_archive_rebuilt_and_resigned_with_another_key_is_refused_when_the_key_is_pinned(tmp_path: Path) -> None:
    archive = exported(tmp_path)
    sender = anchor.key_fingerprint(anchor.public_key_hex())

    def forge(c):  # type: ignore[no-untyped-def]
        c.execute("INSERT INTO signoffs (examiner, role, statement, search_id, audit_count, audit_head, signed_at) "
                  "SELECT 'Det. Carol', role, 'agreed', search_id, audit_count, audit_head, signed_at FROM signoffs")
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        row = json.loads(c.execute("SELECT value FROM meta WHERE key = 'audit_signature'").fetchone()[0])
        key = Ed25519PrivateKey.generate()  # the attacker's own key
        msg = anchor.head_message(row["case_id"], row["count"], row["head"])
        row["signature"] = key.sign(msg).hex()
        row["public_key"] = key.public_key().public_bytes_raw().hex()
        c.execute("UPDATE meta SET value = ? WHERE key = 'audit_signature'", (canonical_json(row),))

    bad = rewrite_archive_db(archive, tmp_path / "bad.zip", forge)
    with pytest.raises(CaseError):  # the forged row has no entry, whatever key signed the head
        import_case(bad, location=tmp_path / "dest")
    with pytest.raises(CaseError, match="another head signature|not the"):
        import_case(rewrite_archive_db(archive, tmp_path / "bad2.zip", lambda c: forge(c) or c.execute(
            "DELETE FROM signoffs WHERE examiner = 'Det. Carol'")), location=tmp_path / "d2", expected_key=sender)


def test_manifest_hash_list_is_checked_against_the_member_bytes(tmp_path: Path) -> None:
    archive = exported(tmp_path)
    with zipfile.ZipFile(archive) as zf:
        manifest = json.loads(zf.read(MANIFEST_NAME))
    db_entry = next(f for f in manifest["files"] if f["path"] == "case/case.sqlite")
    with zipfile.ZipFile(archive) as zf:
        assert hashlib.sha256(zf.read("case/case.sqlite")).hexdigest() == db_entry["sha256"]
    assert manifest["audit"]["signature"]["valid"] is True
    with import_case(archive, location=tmp_path / "dest") as case, open_case(case.case_id) as again:
        assert again.case_id == case.case_id


def test_report_in_the_archive_must_be_the_one_its_audit_entry_names(tmp_path: Path) -> None:
    archive = exported(tmp_path)
    with zipfile.ZipFile(archive) as zf:
        report = next(n for n in zf.namelist() if n.startswith("case/reports/"))
    forged = b"<html>a different report</html>"
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive) as zin, zipfile.ZipFile(bad, "w") as zout:
        manifest = json.loads(zin.read(MANIFEST_NAME))
        for f in manifest["files"]:
            if f["path"] == report:
                f["sha256"], f["size"] = hashlib.sha256(forged).hexdigest(), len(forged)
        zout.writestr(MANIFEST_NAME, json.dumps(manifest))
        for info in zin.infolist():
            if info.filename != MANIFEST_NAME:
                zout.writestr(info.filename, forged if info.filename == report else zin.read(info.filename))
    with pytest.raises(CaseError, match="not the one its case record names"):
        import_case(bad, location=tmp_path / "dest")


def test_member_count_is_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.cases import archive_members

    archive = exported(tmp_path)
    with zipfile.ZipFile(archive) as zf:
        n = len(zf.infolist())
    monkeypatch.setattr(archive_members, "MAX_MEMBERS", n - 1)  # the cap, lowered to this small archive
    with pytest.raises(CaseError, match="members, more than"):
        import_case(archive, location=tmp_path / "dest")
    monkeypatch.setattr(archive_members, "MAX_MEMBERS", n)
    with import_case(archive, location=tmp_path / "dest"):
        pass
