"""Line-ups on the record: blind administration material, the sealed key in the report, tamper found by
verify, the witness's response, and fairness warnings for a planted stand-out suspect."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pypdf
import pytest

from engine.cases import build_report, records
from engine.cases import lineup as lineup_records
from engine.errors import CaseError
from engine.workstation import Workstation
from engine.workstation.lineup import (
    LineupRules,
    build_lineup,
    lineup_material,
    record_response,
    swap_filler,
)
from tests.engine.test_lineup_support import BANDS, build_gallery, case_with_candidate

SHOTS = Path("/tmp/shots")
STAMP = "2026-12-04T10:00:00+00:00"


@pytest.fixture
def ws() -> Iterator[Workstation]:
    w = Workstation()
    yield w
    w.close()


@pytest.fixture
def built(ws: Workstation) -> tuple[Any, Any, Any]:
    g = build_gallery(ws)
    case, sid, fid = case_with_candidate(g)
    return g, case, build_lineup(ws, case, sid, g.id, fid, LineupRules(seed=42))


def _text_and_meta(pdf: bytes) -> tuple[list[str], str]:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    meta = " ".join(str(v) for v in (reader.metadata or {}).values())
    return [p.extract_text() or "" for p in reader.pages], meta


def suspect_markers(pdf: bytes, lu: Any) -> list[str]:
    """What in a PDF could tell a reader which photo is the suspect: the word, any member's subject, face or
    photo digest, and which position is the suspect's (a word or caption only that position has)."""
    pages, meta = _text_and_meta(pdf)
    text = "\n".join(pages) + "\n" + meta
    found = [w for w in ("suspect", "SUSPECT", "Suspect", "filler", "FILLER") if w in text]
    for m in lu.members:
        found += [x for x in (m.subject_id, m.photo_sha256[:16], f"{m.gallery_id}:{m.face_id}") if x in text]
    return found


def test_the_administration_pdf_carries_no_suspect_marker(ws: Workstation, built: Any, tmp_path: Path) -> None:
    g, case, lu = built
    for mode in ("simultaneous", "sequential"):
        pdf = lineup_material(ws, case, lu.id, mode=mode, generated_at=STAMP)
        assert suspect_markers(pdf, lu) == []
        pages, meta = _text_and_meta(pdf)
        text = "\n".join(pages)
        assert "may or may not be in this set" in text and "does not know which person" in text
        assert "Confidence statement" in text
        assert "Photo line-up" in meta and case.info.case_number not in meta
        reader = pypdf.PdfReader(io.BytesIO(pdf))
        sizes = {(im.image.width, im.image.height) for p in reader.pages for im in p.images}  # type: ignore[union-attr]
        assert sizes == {(320, 320)}  # every photo drawn the same way
        if mode == "sequential":
            photo_pages = [p for p in pages if "Photograph " in p and " of 6" in p]
            assert len(photo_pages) == 6
            # the pages differ only in their number: no caption singles out the suspect's page
            normal = {re.sub(r"\d+", "#", p) for p in photo_pages}
            assert len(normal) == 1
        assert pdf == lineup_material(ws, case, lu.id, mode=mode, generated_at=STAMP)  # same key, same bytes
        if shutil.which("pdftoppm") and SHOTS.is_dir() and os.access(SHOTS, os.W_OK):
            (tmp_path / "l.pdf").write_bytes(pdf)
            subprocess.run(["pdftoppm", "-r", "60", "-png", str(tmp_path / "l.pdf"), str(SHOTS / f"lineup_{mode}")],
                           check=True)
    # negative control: the case report's sealed section does carry the key, and the check finds it
    report = build_report(case, "pdf", generated_at=STAMP)
    assert "SUSPECT" in suspect_markers(report, lu) and lu.suspect.subject_id in suspect_markers(report, lu)
    if shutil.which("pdftoppm") and SHOTS.is_dir() and os.access(SHOTS, os.W_OK):
        (tmp_path / "r.pdf").write_bytes(report)
        subprocess.run(["pdftoppm", "-r", "60", "-png", str(tmp_path / "r.pdf"), str(SHOTS / "lineup_case_report")],
                       check=True)


def test_a_tampered_lineup_member_is_found_by_verify(built: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    g, case, lu = built
    assert case.verify().ok
    filler = next(m for m in lu.members if m.role == "filler")
    case.conn.execute("UPDATE lineup_members SET face_id = ? WHERE lineup_id = ? AND position = ?",
                      (filler.face_id + 1, lu.id, filler.position))
    case.conn.commit()
    report = case.verify()
    assert not report.ok
    assert any(f"Members of line-up {lu.id}" in f.message for f in report.findings)
    # negative control: without the line-up tables registered, the altered member would go unseen
    for t in ("lineups", "lineup_members", "lineup_fairness", "lineup_swaps", "lineup_responses"):
        monkeypatch.delitem(records.RECORD_TABLES, t)
    assert any("does not match its audit entry" in f.message for f in report.findings)
    assert not any("does not match" in f.message for f in case.verify().findings)


def test_a_deleted_response_is_found_and_responses_are_recorded(ws: Workstation, built: Any) -> None:
    g, case, lu = built
    with pytest.raises(CaseError, match="positions 1–6"):
        record_response(case, lu.id, 9, "sure")
    with pytest.raises(CaseError, match="confidence"):
        record_response(case, lu.id, 2, " ")
    pdf = lineup_material(ws, case, lu.id)
    r = record_response(case, lu.id, lu.suspect.position, "I am fairly sure, about 80 percent", administrator="Off. B",
                        material=pdf)
    none = record_response(case, lu.id, None, "He is not there, I think")
    again = lineup_records.get_lineup(case, lu.id)
    assert again.outcome(r) == "suspect identified" and again.outcome(none) == "no identification"
    with pytest.raises(CaseError, match="already shown to a witness"):
        swap_filler(ws, case, lu.id, next(m for m in lu.members if m.role == "filler").position, "late change")
    assert case.verify().ok
    report_html = build_report(case, "html", generated_at=STAMP).decode()
    assert "Photo line-ups" in report_html and "SEALED" in report_html and "suspect identified" in report_html
    assert "Tredoux 1998" in report_html and "R = D_s / D_f" in report_html
    case.conn.execute("DELETE FROM lineup_responses WHERE id = ?", (r.id,))
    case.conn.commit()
    assert any("Line-up response" in f.message for f in case.verify().findings)


def test_a_planted_stand_out_suspect_is_warned_about(ws: Workstation, built: Any) -> None:
    """Default rules: no warning. Every filler swapped for a man of another age band: both measures warn."""
    g, case, lu = built
    assert lu.warning == ""
    assert lu.fairness["distinctiveness"]["ratio"] < 1.2
    assert lu.fairness["mock_witness"]["suspect_share"] < 2 / 6
    infos = g.store.face_infos(g.store.face_ids().tolist())
    taken = {m.subject_id for m in lu.members} | lineup_records.case_subjects(case)
    older: list[int] = []
    seen: set[str | None] = set()
    for f, i in sorted(infos.items()):
        if i.metadata.get("sex") == "M" and i.metadata.get("birth_year") == BANDS["50-59"] \
                and i.subject_id not in taken | seen:
            seen.add(i.subject_id)
            older.append(f)
    current = lu
    for m, f in zip([m for m in lu.members if m.role == "filler"], older, strict=False):
        current = swap_filler(ws, case, lu.id, m.position, "planted: older filler", replacement=(g.id, f))
    assert all(not m.metadata.get("fits_description", True) for m in current.members if m.role == "filler")
    assert current.fairness["distinctiveness"]["ratio"] >= 1.2
    assert current.fairness["mock_witness"]["suspect_share"] >= 2 / 6
    assert current.warning.startswith("The suspect stands out") and "face space" in current.warning
    assert "mock witnesses" in current.warning
    assert case.verify().ok


def test_an_older_case_without_lineup_tables_verifies_and_gets_them_with_its_first_lineup(ws: Workstation) -> None:
    g = build_gallery(ws)
    case, sid, fid = case_with_candidate(g)
    for table in ("lineup_responses", "lineup_swaps", "lineup_fairness", "lineup_members", "lineups"):
        case.conn.execute(f"DROP TABLE {table}")  # as a case made before line-ups existed
    case.conn.commit()
    assert case.verify().ok and lineup_records.list_lineups(case) == []
    lu = build_lineup(ws, case, sid, g.id, fid, LineupRules(seed=1))
    assert lineup_records.list_lineups(case)[0].id == lu.id
    assert case.verify().ok
