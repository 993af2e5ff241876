"""Finding 1: an ordinary write must never launder a tampered case.

The attacker rewrites a decision in ``case.sqlite`` and rebuilds the chain without the key: ``verify``
exits 3. The examiner then runs any writing command. Each command must refuse (exit 1, one message
that says the case is read-only, why, and how to export it for examination), nothing is added to
the log, and ``verify`` still exits 3. A case folder planted from another workstation is refused
the same way: only ``case import`` accepts a case from elsewhere.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from engine import paths
from engine.cases import audit, ledger, open_case
from engine.cases.store import CaseReadOnly
from engine.errors import CaseError
from tests.engine.test_cases_support import face_png, new_case, populated_case
from tests.examiner_helpers import ensure_profile
from tests.security.case_forgery import cli, copy_case, forge_decision, stored_decision

NUMBER = "2026-0042"


def _forged_case() -> tuple[Path, str, int]:
    """A populated case with a forged decision and a rebuilt chain; its folder, id and entry count."""
    case, _fs, rec = populated_case(k=5)
    folder, case_id, sid = case.folder, case.case_id, rec.id
    case.close()
    forge_decision(folder)
    return folder, case_id, sid


def _entries(folder: Path) -> int:
    with open_case(folder) as case:
        return len(case.audit_entries())


def _assert_refused(code: int, err: str, case_id: str) -> None:
    assert code == 1, err
    assert "read-only" in err and case_id in err
    assert "case export" in err and "--allow-broken" in err  # how to hand it over for examination
    assert err.count("error:") == 1 and "Traceback" not in err


def _assert_still_broken(capsys: pytest.CaptureFixture[str], folder: Path, count: int) -> None:
    code, out, _ = cli(capsys, "case", "verify", NUMBER)
    assert code == 3 and "intact" not in out.lower().replace("not intact", ""), out
    assert _entries(folder) == count
    assert stored_decision(folder)[0] == "possible"  # the forgery stays visible; it was not signed over


@pytest.fixture
def forged(capsys: pytest.CaptureFixture[str]) -> tuple[Path, str, int, int]:
    folder, case_id, sid = _forged_case()
    code, out, _ = cli(capsys, "case", "verify", NUMBER)
    assert code == 3, out  # the forgery is caught before any write
    return folder, case_id, sid, _entries(folder)


def test_update_notes_does_not_launder(forged: tuple[Path, str, int, int],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    folder, case_id, _sid, count = forged
    code, _, err = cli(capsys, "case", "update", NUMBER, "--notes", "x", "--user", "alice")
    _assert_refused(code, err, case_id)
    _assert_still_broken(capsys, folder, count)


def test_decide_does_not_launder(forged: tuple[Path, str, int, int], capsys: pytest.CaptureFixture[str]) -> None:
    folder, case_id, sid, count = forged
    with open_case(folder) as case:
        face = case.conn.execute("SELECT face_id FROM results WHERE search_id = ? ORDER BY rank DESC",
                                 (sid,)).fetchone()[0]
    code, _, err = cli(capsys, "case", "decide", NUMBER, str(sid), str(face), "--decision", "excluded",
                       "--user", "alice")
    _assert_refused(code, err, case_id)
    _assert_still_broken(capsys, folder, count)


def test_attach_does_not_launder(forged: tuple[Path, str, int, int], tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    folder, case_id, _sid, count = forged
    doc = tmp_path / "statement.txt"
    doc.write_text("second statement")
    code, _, err = cli(capsys, "case", "attach", NUMBER, str(doc), "--user", "alice")
    _assert_refused(code, err, case_id)
    _assert_still_broken(capsys, folder, count)
    assert not any((folder / "attachments").iterdir())  # no unrecorded file left behind either


def test_add_sketch_does_not_launder(forged: tuple[Path, str, int, int], tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    folder, case_id, _sid, count = forged
    png = tmp_path / "s.png"
    png.write_bytes(face_png(33, 96))
    code, _, err = cli(capsys, "case", "add-sketch", NUMBER, str(png), "--witness", "W2", "--user", "alice")
    _assert_refused(code, err, case_id)
    _assert_still_broken(capsys, folder, count)


def test_report_does_not_launder(forged: tuple[Path, str, int, int], tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    folder, case_id, _sid, count = forged
    code, _, err = cli(capsys, "case", "report", NUMBER, "--format", "json", "--user", "alice")
    _assert_refused(code, err, case_id)
    _assert_still_broken(capsys, folder, count)
    assert not any((folder / "reports").iterdir())  # the report of a broken case is not left in the case


def test_search_with_case_does_not_launder(installed_models: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    from tests.fixtures.photos import small_photo_folder

    photos = small_photo_folder(tmp_path / "photos", 4, seed=3)
    assert cli(capsys, "gallery", "create", "G")[0] == 0
    assert cli(capsys, "gallery", "add", "G", str(tmp_path / "photos"))[0] == 0
    folder, case_id, _sid = _forged_case()
    count = _entries(folder)
    code, _, err = cli(capsys, "search", "--gallery", "G", "--photo", str(photos[0]), "-k", "2", "--case", NUMBER,
                       "--user", "alice")
    _assert_refused(code, err, case_id)
    _assert_still_broken(capsys, folder, count)


def test_export_of_a_broken_case_for_examination_still_works_and_changes_nothing(
        forged: tuple[Path, str, int, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder, _case_id, _sid, count = forged
    code, out, err = cli(capsys, "case", "export", NUMBER, "--out", str(tmp_path / "exam.zip"), "--allow-broken")
    assert code == 0, err
    assert (tmp_path / "exam.zip").is_file() and "not recorded" in out
    _assert_still_broken(capsys, folder, count)


def test_control_an_intact_case_takes_every_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case, _fs, rec = populated_case(k=5)
    folder = case.folder
    face = case.conn.execute("SELECT face_id FROM results WHERE search_id = ? ORDER BY rank DESC",
                             (rec.id,)).fetchone()[0]
    case.close()
    doc = tmp_path / "statement.txt"
    doc.write_text("statement")
    for argv in (("update", NUMBER, "--notes", "x"), ("decide", NUMBER, str(rec.id), str(face), "--decision",
                 "excluded"), ("attach", NUMBER, str(doc)), ("report", NUMBER, "--format", "json")):
        code, _, err = cli(capsys, "case", *argv, "--user", "alice")
        assert code == 0, (argv, err)
    code, out, _ = cli(capsys, "case", "verify", NUMBER)
    assert code == 0 and "intact" in out
    assert ledger.lookup(_id(folder)) is not None  # the last verified head is kept outside the case


def _id(folder: Path) -> str:
    with open_case(folder) as case:
        return case.case_id


def test_planted_case_signed_by_another_key_is_refused_until_imported(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    ours = paths.cases_dir()
    monkeypatch.setenv("SKETCHFACE_HOME", str(tmp_path / "elsewhere"))
    ensure_profile("C. Elsewhere", "C-3003")  # the examiner of that other workstation
    with new_case("2026-0099") as other:
        src = other.folder
    archive = tmp_path / "planted.zip"
    assert cli(capsys, "case", "export", "2026-0099", "--out", str(archive))[0] == 0
    monkeypatch.setenv("SKETCHFACE_HOME", str(ours.parents[1]))
    planted = copy_case(src, ours)
    code, _, err = cli(capsys, "case", "update", str(planted), "--notes", "planted", "--user", "alice")
    assert code == 1 and "read-only" in err and "case import" in err, err
    code, out, _ = cli(capsys, "case", "verify", str(planted))
    assert code == 3 and "ANOTHER workstation" in out
    # The sanctioned way in: import (after removing the planted copy), then writes are ours.
    import shutil

    shutil.rmtree(planted)
    from engine.cases import registry

    cases = registry.load()
    cases.pop(planted.name, None)
    registry._save(cases)
    assert cli(capsys, "case", "import", str(archive))[0] == 0
    assert cli(capsys, "case", "update", "2026-0099", "--notes", "ours now", "--user", "alice")[0] == 0
    assert cli(capsys, "case", "verify", "2026-0099")[0] == 0


def test_verified_head_record_altered_makes_the_case_read_only(capsys: pytest.CaptureFixture[str]) -> None:
    with new_case() as case:
        case_id = case.case_id
    path = ledger.ledger_path()
    data = json.loads(path.read_text())
    data["cases"][case_id]["count"] = 7
    path.write_text(json.dumps(data))
    code, _, err = cli(capsys, "case", "update", NUMBER, "--notes", "x", "--user", "alice")
    assert code == 1 and "read-only" in err and "altered" in err, err


def test_refused_write_raises_one_typed_error_in_the_engine() -> None:
    folder, case_id, _sid = _forged_case()
    from engine.cases import update_case

    with open_case(folder) as case, pytest.raises(CaseReadOnly) as caught:
        update_case(case, notes="x", user="alice")
    assert isinstance(caught.value, CaseError) and case_id in str(caught.value)
    assert caught.value.title == "Case is read-only"


def test_write_after_another_process_wrote_checks_only_the_new_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Incremental: entries up to the verified head are not re-hashed on every write."""
    case, _fs, _rec = populated_case(k=5)
    calls: list[int] = []
    real = audit.entry_hash

    def counting(*a: object, **kw: object) -> str:
        calls.append(1)
        return real(*a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(audit, "entry_hash", counting)
    from engine.cases import update_case

    update_case(case, notes="one", user="alice")
    n = len(case.audit_entries())
    assert len(calls) < n, (len(calls), n)
    case.close()
    assert os.environ.get("SKETCHFACE_HOME")
