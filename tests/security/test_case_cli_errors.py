"""User mistakes and damaged files in case commands: one clear line and exit status 1, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.cli import main
from tests.engine.test_cases_support import populated_case


def _one_line_error(capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: "), err
    assert "Traceback" not in err and all(n in err for n in needles), err
    return err


@pytest.mark.parametrize("command", ["add-sketch", "attach"])
def test_missing_file_or_folder_given_to_a_case_command(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        command: str) -> None:
    case, _, _ = populated_case(k=3)
    case_id = case.case_id
    case.close()
    extra = ["--witness", "W1"] if command == "add-sketch" else []
    assert main(["case", command, case_id, str(tmp_path / "nope.png"), *extra]) == 1
    _one_line_error(capsys, "nope.png")
    assert main(["case", command, case_id, str(tmp_path), *extra]) == 1
    _one_line_error(capsys, "folder")


def test_import_of_a_missing_path_or_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["case", "import", str(tmp_path / "case.zip")]) == 1
    _one_line_error(capsys, "case.zip", "not there")
    assert main(["case", "import", str(tmp_path)]) == 1
    _one_line_error(capsys, "folder")


def test_damaged_sqlite_pages_give_one_message_naming_the_file(capsys: pytest.CaptureFixture[str]) -> None:
    case, _, _ = populated_case(k=8)
    case_id, dbp = case.case_id, case.folder / "case.sqlite"
    case.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    case.close()
    data = bytearray(dbp.read_bytes())
    page = 4096
    assert len(data) > 4 * page
    for start in range(2 * page, len(data), page):  # keep the header page, garble every page after it
        data[start + 8:start + page] = bytes((i * 151 + 7) % 256 for i in range(page - 8))
    dbp.write_bytes(bytes(data))
    for args in (["case", "show", case_id], ["case", "verify", case_id]):
        assert main(args) == 1
        _one_line_error(capsys, str(dbp), "Restore")
