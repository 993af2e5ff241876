"""Attacks on the examination record: an edited comparison-sheet row, and a conclusion above the sketch
scale's ceiling (refused by the command line, and found by verify when written into the database)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.cases import open_case
from engine.cli import main
from tests.e2e.test_headless_case_flow import run
from tests.security.examination_support import CASE, examined_case


def _findings(capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["case", "verify", CASE]) == 3
    return capsys.readouterr().out


def test_a_sheet_row_edited_in_the_database_is_found_by_verify(
        installed_models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sid, cands = examined_case(capsys, tmp_path)
    gallery, face = cands[0]
    out = run(capsys, "case", "examine", CASE, str(sid), f"Mugshots:{face}", "--feature", "nose=dissimilar",
              "--feature", "ears=not-assessable:hidden by hair")
    assert "Nose" in out and "hidden by hair" in out
    run(capsys, "case", "verify", CASE)
    with open_case(CASE) as case:
        case.conn.execute("UPDATE comparison_rows SET assessment = 'similar' WHERE component = 'nose'")
    assert "Comparison sheet row 1" in _findings(capsys)
    # and the tampered case is read-only: nothing more is written on top of it
    assert main(["case", "examine", CASE, str(sid), f"{gallery}:{face}", "--feature", "eyes=similar"]) == 1
    assert "read-only" in capsys.readouterr().err


def test_a_deleted_sheet_row_is_found_by_verify(
        installed_models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sid, cands = examined_case(capsys, tmp_path)
    run(capsys, "case", "examine", CASE, str(sid), f"Mugshots:{cands[0][1]}", "--feature", "nose=similar")
    with open_case(CASE) as case:
        case.conn.execute("DELETE FROM comparison_rows")
    assert "Comparison sheet row 1" in _findings(capsys)


def test_a_conclusion_above_the_sketch_ceiling_is_refused(
        installed_models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sid, cands = examined_case(capsys, tmp_path)
    face = f"Mugshots:{cands[0][1]}"
    assert main(["case", "conclude", CASE, str(sid), face, "--level", "strong-support-same"]) == 1
    err = capsys.readouterr().err
    assert "sketch probe" in err and "A lead worth pursuing" in err
    with open_case(CASE) as case:
        assert case.conn.execute("SELECT COUNT(*) FROM conclusions").fetchone()[0] == 0
    out = run(capsys, "case", "conclude", CASE, str(sid), face, "--level", "lead")
    assert "A lead worth pursuing" in out
    run(capsys, "case", "verify", CASE)


def test_a_conclusion_above_the_ceiling_written_into_the_database_is_found(
        installed_models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sid, cands = examined_case(capsys, tmp_path)
    gallery, face = cands[0]
    run(capsys, "case", "conclude", CASE, str(sid), f"{gallery}:{face}", "--level", "lead")
    with open_case(CASE) as case:  # the forger even claims the probe was a photo
        case.conn.execute("UPDATE conclusions SET level = 'strong-support-same', probe_type = 'photo', "
                          "scale_id = 'enfsi-support', level_text = 'strong support'")
    out = _findings(capsys)
    assert "stronger than a sketch probe allows" in out and "Conclusion 1" in out


def test_a_photo_search_takes_the_support_scale_and_a_generated_probe_does_not(
        installed_models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Control: the ceiling depends on the probe, not on a blanket ban."""
    from tests.fixtures.photos import small_photo_folder

    examined_case(capsys, tmp_path)
    small_photo_folder(tmp_path / "probe", 1, seed=99)
    photo = next((tmp_path / "probe").iterdir())
    out = run(capsys, "search", "--gallery", "Mugshots", "--photo", str(photo), "--case", CASE)
    sid = int(out.split("Recorded as search ", 1)[1].split()[0])
    with open_case(CASE) as case:
        face = case.conn.execute("SELECT face_id FROM results WHERE search_id = ? AND rank = 1", (sid,)).fetchone()[0]
    out = run(capsys, "case", "conclude", CASE, str(sid), f"Mugshots:{face}", "--level", "moderate-support-same")
    assert "moderate support" in out
    run(capsys, "case", "verify", CASE)
