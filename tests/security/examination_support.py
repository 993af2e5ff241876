"""A case with a stored sketch, its intake and one recorded sketch search, made through the real command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.test_headless_case_flow import GUIDE, run, sketch
from tests.fixtures.photos import small_photo_folder

CASE = "2026-0022"


def examined_case(capsys: pytest.CaptureFixture[str], tmp_path: Path, *, photos: int = 5,
                  intake: bool = True) -> tuple[int, list[tuple[str, int]]]:
    """Gallery "Mugshots", case CASE with sketch 1 (intake: limited), and search 1 by that sketch.

    Returns the search id and its candidates as (gallery id, face id), best first.
    """
    small_photo_folder(tmp_path / "photos", photos, seed=7)
    run(capsys, "gallery", "create", "Mugshots")
    run(capsys, "gallery", "add", "Mugshots", str(tmp_path / "photos"))
    run(capsys, "case", "new", CASE, "--title", "Robbery, Main St", "--examiner", "Alice Examiner", "--witness", "W1")
    drawn = sketch(tmp_path / "sketch.png")
    run(capsys, "case", "add-sketch", CASE, str(drawn), "--witness", "W1")
    if intake:
        run(capsys, "case", "intake", CASE, "1", "--source", "artist-sketch", "--artist", "Officer Bell",
            "--delay", "2 days", "--suitability", "limited", "--reason", "drawn from a brief glimpse at night")
    out = run(capsys, "search", "--gallery", "Mugshots", "--sketch", str(drawn), "--face-box", GUIDE, "--case", CASE,
              "--json")
    doc = json.loads(out)
    return int(doc["search_id"]), [(m["gallery_id"], int(m["face_id"])) for m in doc["matches"]]
