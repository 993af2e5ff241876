"""``sketchface case export`` never replaces an archive that already exists unless told to.

An archive handed over with its SHA-256 is evidence; a second export to the same name must not silently
replace it. Walked through the real command line: the second export is refused (naming the file and its
current SHA-256) and the first archive stays byte-identical, both for a file name and for a folder that
already holds ``case_NUMBER.zip``; ``--overwrite`` replaces it (the control that the refusal is not luck).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.cli import main
from engine.fsutil import sha256_file
from tests.e2e.test_headless_case_flow import run

CASE = "2026-0077"


def _new_case(capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "case", "new", CASE, "--title", "Overwrite", "--examiner", "A. Examiner")


def test_second_export_to_same_file_is_refused_and_overwrite_replaces(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _new_case(capsys)
    target = tmp_path / "handed.zip"
    run(capsys, "case", "export", CASE, "--out", str(target))
    first = target.read_bytes()
    digest = sha256_file(target)

    rc = main(["case", "export", CASE, "--out", str(target)])
    out, err = capsys.readouterr()
    assert rc == 1
    assert str(target) in err and digest in err and "--overwrite" in err, err
    assert target.read_bytes() == first

    # Control: with --overwrite the same command replaces it (the case log grew, so the archive differs).
    out = run(capsys, "case", "export", CASE, "--out", str(target), "--overwrite")
    assert target.read_bytes() != first
    assert sha256_file(target) in out


def test_existing_default_name_in_folder_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _new_case(capsys)
    folder = tmp_path / "exports"
    folder.mkdir()
    run(capsys, "case", "export", CASE, "--out", str(folder))
    target = folder / f"case_{CASE}.zip"
    first = target.read_bytes()

    rc = main(["case", "export", CASE, "--out", str(folder)])
    _, err = capsys.readouterr()
    assert rc == 1, err
    assert str(target) in err and sha256_file(target) in err, err
    assert target.read_bytes() == first
    assert sorted(p.name for p in folder.iterdir()) == [target.name]  # no temporary file left behind

    run(capsys, "case", "export", CASE, "--out", str(folder), "--overwrite")
    assert target.read_bytes() != first
