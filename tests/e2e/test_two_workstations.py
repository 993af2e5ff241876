"""The peer review across two workstations with the real command line: two homes (two SKETCHFACE_HOME
folders, each with its own workstation key and examiner), export the case archive from A's, review it
blind on B's under B's profile, return the signed review file, import it on A's, and verify. An altered
review file is refused (the negative control)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from engine import examiners
from tests.conftest import TEST_EXAMINER
from tests.engine.test_cases_support import populated_case
from tests.security.case_forgery import cli

B = ("B. Reviewer", "B-2002")


def _ok(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code, out, err = cli(capsys, *argv)
    assert code == 0, f"sketchface {' '.join(argv)} -> {code}: {err}"
    return out


def _pdf_text(path: Path) -> str:
    from pypdf import PdfReader

    return re.sub(r"\s+", " ", " ".join(page.extract_text() or "" for page in PdfReader(str(path)).pages))


@pytest.fixture
def two_homes(tmp_path: Path, sketchface_home: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A's home (the test's own, with A's profile) and B's home, switched like two machines' environments."""
    home_b = tmp_path / "workstation_b"
    home_b.mkdir()

    def at(which: str) -> None:
        monkeypatch.setenv("SKETCHFACE_HOME", str(sketchface_home if which == "A" else home_b))

    return {"A": sketchface_home, "B": home_b, "at": at}


def _case_decided_on_a(capsys: pytest.CaptureFixture[str]) -> tuple[str, int, list[Any]]:
    """On A: a case with one search of 3 candidates, every one decided by A (two by the helper, one here)."""
    case, _, rec = populated_case(k=3)
    with case:
        from engine.cases import candidates

        case_id, rows = case.case_id, candidates(case, rec.id)
    last = next(c for c in rows if c.decision == "not_reviewed")
    _ok(capsys, "case", "decide", case_id, str(rec.id), str(last.face_id), "--decision", "excluded")
    return case_id, rec.id, rows


def _review_on_b(capsys: pytest.CaptureFixture[str], homes: dict[str, Any], tmp_path: Path, case_id: str,
                 search_id: int, rows: list[Any]) -> tuple[Path, Path]:
    """Export on A; on B: examiner profile, import, blind review (one disagreement), review file, key export."""
    homes["at"]("A")
    archive = Path(json.loads(_ok(capsys, "case", "export", case_id, "--out", str(tmp_path / "out"), "--json"))
                   ["path"])
    homes["at"]("B")
    examiners.act_as(None)
    _ok(capsys, "examiner", "add", "--name", B[0], "--identifier", B[1])
    assert examiners.require_current().identifier == B[1]
    _ok(capsys, "case", "import", str(archive))
    blind = json.loads(_ok(capsys, "case", "review-blind", case_id, str(search_id), "--json"))["candidates"]
    assert all("decision" not in c and "score" not in c for c in blind), "B sees no decision of A's"
    possible = next(c for c in rows if c.decision == "possible")
    decide = [f"{c['face_id']}=excluded" for c in blind]  # B excludes all: differs on A's one "possible"
    _ok(capsys, "case", "review-blind", case_id, str(search_id), *[x for d in decide for x in ("--decide", d)])
    # Having seen A's decisions since, B cannot record a second, agreeing "blind" batch to hide the disagreement.
    agree = f"{possible.face_id}=possible"
    code, _, err = cli(capsys, "case", "review-blind", case_id, str(search_id), "--decide", agree)
    assert code == 1 and "would not be blind" in err, err
    review = tmp_path / "review.json"
    out = _ok(capsys, "case", "review-file", case_id, "--out", str(review), "--statement",
              "Reviewed blind on my own workstation; I exclude the candidate A found possible.")
    assert "1 disagreement(s)" in out
    data = json.loads(review.read_text())
    assert data["disagreements"][0]["face_id"] == possible.face_id
    key = tmp_path / "b.key.json"
    _ok(capsys, "examiner", "export-key", "--out", str(key))
    homes["at"]("A")
    return review, key


def test_review_on_a_second_workstation_is_returned_imported_and_verifies(
        two_homes: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case_id, search_id, rows = _case_decided_on_a(capsys)
    review, key = _review_on_b(capsys, two_homes, tmp_path, case_id, search_id, rows)
    assert examiners.require_current().identifier == TEST_EXAMINER[1], "back on A's workstation, as A"
    _ok(capsys, "examiner", "trust", "accept", str(key))
    out = _ok(capsys, "case", "review-import", case_id, str(review))
    assert f"{B[0]} ({B[1]})" in out and "[known examiner" in out
    out = _ok(capsys, "case", "verify", case_id)
    assert "B. Reviewer (B-2002)" in out
    pdf = tmp_path / "report.pdf"
    _ok(capsys, "case", "report", case_id, "--format", "pdf", "--out", str(pdf))
    text = _pdf_text(pdf)
    compact = re.sub(r"\s+", "", text)
    a_fp, b_fp = examiners.require_current().fingerprint, json.loads(key.read_text())["fingerprint"]
    assert f"{TEST_EXAMINER[0]} ({TEST_EXAMINER[1]})" in text and a_fp in compact
    assert f"{B[0]} ({B[1]})" in text and b_fp in compact
    assert "with a review file returned from their workstation" in text
    assert "first examiner possible, reviewer excluded" in text


@pytest.mark.parametrize("field", ["statement", "disagreements", "audit_head"])
def test_an_altered_review_file_is_refused_and_nothing_is_recorded(
        field: str, two_homes: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case_id, search_id, rows = _case_decided_on_a(capsys)
    review, key = _review_on_b(capsys, two_homes, tmp_path, case_id, search_id, rows)
    _ok(capsys, "examiner", "trust", "accept", str(key))
    data = json.loads(review.read_text())
    data[field] = {"statement": "I agree with everything.", "disagreements": [],
                   "audit_head": "0" * 64}[field]
    review.write_text(json.dumps(data))
    code, _, err = cli(capsys, "case", "review-import", case_id, str(review))
    assert code == 1 and "Refused" in err, err
    shown = json.loads(_ok(capsys, "case", "show", case_id, "--json"))
    assert shown["signoffs"] == []
    _ok(capsys, "case", "verify", case_id)
