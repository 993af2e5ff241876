"""Attacks on a case's record by someone with write access to the case folder or to an archive.

Each test changes a claim the way an attacker would (straight SQL, swapped files, a rewritten archive
whose own hashes are fixed up) and shows that verification or import catches it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from engine.cases import import_case, list_attachments, open_case, record_decision
from engine.errors import CaseError
from engine.fsutil import sha256_bytes
from tests.security.test_case_support import exported, forget_locally, full_case, rewrite_archive_db


def _messages(case: object) -> list[str]:
    report = case.verify()  # type: ignore[attr-defined]
    assert not report.ok
    return [f.message for f in report.findings]


def test_control_an_untouched_full_case_verifies() -> None:
    with full_case() as case:
        report = case.verify()
        assert report.ok, [f.message for f in report.findings]


def test_forged_signoff_row_in_a_case_is_found() -> None:
    with full_case() as case:
        case.conn.execute("INSERT INTO signoffs (examiner, role, statement, search_id, audit_count, audit_head, "
                          "signed_at) SELECT 'Det. Carol', role, 'agreed', search_id, audit_count, audit_head, "
                          "signed_at FROM signoffs")
        assert any("Sign-off 2" in m and "no audit entry" in m for m in _messages(case))


def test_deleted_signoff_row_is_found_at_its_entry() -> None:
    with full_case() as case:
        seq = next(e.seq for e in case.audit_entries() if e.action == "signoff.record")
        case.conn.execute("DELETE FROM signoffs")
        findings = case.verify().findings
        assert any(f.seq == seq and "Sign-off 1" in f.message and "missing" in f.message for f in findings)


def test_each_case_details_field_edit_is_found_on_its_own() -> None:
    for column, value in (("title", "Nothing happened"), ("examiner", "Det. Mallory"), ("witnesses", "[]"),
                          ("incident_date", "1999-01-01"), ("status", "closed")):
        with full_case() as case:
            case.conn.execute(f"UPDATE case_info SET {column} = ?", (value,))
            assert any("Case details" in m and f"({column})" in m for m in _messages(case)), column
        forget_locally(case)


def test_attachment_swap_file_and_hash_is_found() -> None:
    with full_case() as case:
        a = list_attachments(case)[0]
        forged = b"witness statement: short, no cap"
        case.file(a.path).write_bytes(forged)
        case.conn.execute("UPDATE attachments SET sha256 = ?, size = ?", (sha256_bytes(forged), len(forged)))
        assert any("Attachment 1" in m for m in _messages(case))


def test_attachment_row_deleted_is_found() -> None:
    with full_case() as case:
        case.conn.execute("DELETE FROM attachments")
        assert any("Attachment 1" in m and "missing" in m for m in _messages(case))


def test_attachment_path_pointed_at_another_stored_file_is_found() -> None:
    with full_case() as case:
        other = case.conn.execute("SELECT path, sha256 FROM generated").fetchone()
        case.conn.execute("UPDATE attachments SET path = ?, sha256 = ?", (other[0], other[1]))
        assert any("Attachment 1" in m for m in _messages(case))


def test_trigger_planted_in_a_local_case_is_found() -> None:
    with full_case() as case:
        case.conn.execute("CREATE TRIGGER flip AFTER INSERT ON decisions BEGIN "
                          "UPDATE decisions SET decision = 'possible' WHERE id = new.id; END")
        assert any("trigger" in m for m in _messages(case))


def test_forged_signoff_row_in_an_archive_with_fixed_manifest_is_refused(tmp_path: Path) -> None:
    archive = exported(tmp_path)
    bad = rewrite_archive_db(archive, tmp_path / "bad.zip", lambda c: c.execute(
        "INSERT INTO signoffs (examiner, role, statement, search_id, audit_count, audit_head, signed_at) "
        "SELECT 'Det. Carol', role, 'agreed', search_id, audit_count, audit_head, signed_at FROM signoffs"))
    dest = tmp_path / "dest"
    with pytest.raises(CaseError, match="Sign-off 2"):
        import_case(bad, location=dest)
    assert [p for p in dest.iterdir() if not p.name.startswith(".")] == []
    control = import_case(archive, location=tmp_path / "ok")  # the untouched archive imports
    control.close()


def test_trigger_in_an_archive_is_refused(tmp_path: Path) -> None:
    archive = exported(tmp_path)
    bad = rewrite_archive_db(archive, tmp_path / "bad.zip", lambda c: c.execute(
        "CREATE TRIGGER flip AFTER INSERT ON decisions BEGIN "
        "UPDATE decisions SET decision = 'possible', note = 'match' WHERE id = new.id; END"))
    with pytest.raises(CaseError, match="trigger"):
        import_case(bad, location=tmp_path / "dest")


def test_view_replacing_a_table_in_an_archive_is_refused(tmp_path: Path) -> None:
    archive = exported(tmp_path)

    def swap(c: sqlite3.Connection) -> None:
        c.execute("ALTER TABLE signoffs RENAME TO signoffs_real")
        c.execute("CREATE VIEW signoffs AS SELECT * FROM signoffs_real UNION ALL SELECT 99, 'Det. Carol', "
                  "role, 'agreed', search_id, audit_count, audit_head, signed_at FROM signoffs_real")

    with pytest.raises(CaseError, match="refused"):
        import_case(rewrite_archive_db(archive, tmp_path / "bad.zip", swap), location=tmp_path / "dest")


def test_imported_case_carries_none_of_the_archive_schema(tmp_path: Path) -> None:
    """Copying rows, not the file: the imported database's schema is exactly a fresh case's."""
    from engine.cases import db

    archive = exported(tmp_path)
    with import_case(archive, location=tmp_path / "dest") as case:
        got = sorted(tuple(r) for r in case.conn.execute("SELECT type, name, sql FROM sqlite_master"))
        fresh = sqlite3.connect(":memory:")
        db.init_schema(fresh)
        want = sorted(tuple(r) for r in fresh.execute("SELECT type, name, sql FROM sqlite_master"))
        assert got == want
        case_id = case.case_id
    with open_case(case_id) as case:
        rec = case.conn.execute("SELECT search_id, face_id FROM results WHERE rank = 3").fetchone()
        record_decision(case, rec[0], rec[1], "excluded", note="no", user="bob")
        assert case.verify().ok



def test_report_file_replaced_in_the_case_folder_is_found() -> None:
    with full_case() as case:
        report = next((case.folder / "reports").iterdir())
        report.write_text("<html>another report</html>")
        assert any("Report reports/" in m and "replaced" in m for m in _messages(case))
