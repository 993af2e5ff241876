"""Case reports: PDF text carries case number, every rank and decision and the synthetic stamp; edge sizes render."""

from __future__ import annotations

import io
import json
import re
from dataclasses import replace

import pytest
from pypdf import PdfReader

from engine.cases import (
    SYNTHETIC_STAMP,
    add_generated_image,
    add_search,
    build_report,
    candidates,
    export_report,
    list_sketches,
    record_decision,
    record_decisions,
    sign_off,
)
from engine.cli import main
from engine.fsutil import sha256_bytes
from tests.engine.test_cases_support import FakeSearch, face_png, new_case, populated_case
from tests.examiner_helpers import acting_as

FIXED = "2026-11-22T12:00:00Z"


def _pdf_text(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() or "" for page in reader.pages)


_ROW = re.compile(r"^(\d+)\s+(withheld|-?\d\.\d{4}) [^\n]*\s+face (\d+)$", re.M)


def _table_rows(text: str) -> dict[int, tuple[int, str, str]]:
    """face id -> (rank, score text, decision) for every candidate row found in the extracted text.

    A row's cells come out in drawing order (rank, score, gallery, face, ..., decision), so the
    decision is the first decision word after the row's start and before the next row.
    """
    starts = list(_ROW.finditer(text))
    out = {}
    for i, m in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(text)
        block = " ".join(text[m.end(): end].split())
        found = re.search(r"possible|excluded|not reviewed", block)
        out[int(m.group(3))] = (int(m.group(1)), m.group(2), found.group(0) if found else "")
    return out


def test_pdf_contains_case_number_every_rank_and_decision_and_synthetic_stamp() -> None:
    case, _, rec = populated_case(k=12)
    with case:
        sketch = list_sketches(case)[-1]
        add_generated_image(case, face_png(9, 128), {"seed": 1, "models": {
            "ip_adapter.faceid_sd15": {"ip-adapter-faceid_sd15.bin": "f" * 64},
            "sd15.realistic_vision_v4": {"unet/diffusion_pytorch_model.safetensors": "b" * 64}}}, parent=sketch)
        data = build_report(case, "pdf", generated_at=FIXED)
        text = _pdf_text(data)
        rows = _table_rows(text)
        assert "2026-0042" in text and "Robbery at Main Street" in text
        assert SYNTHETIC_STAMP in text
        label = {"possible": "possible", "excluded": "excluded", "not_reviewed": "not reviewed"}
        shown = candidates(case, rec.id)
        assert len(rows) == len(shown) == 12
        for c in shown:
            assert rows[c.face_id] == (c.rank, f"{c.score:.4f}", label[c.decision]), c
        assert "Open review" in text and "INTACT" in text
        assert "non-commercial research use" in text  # model licences from the manifest
        assert "CreativeML Open RAIL-M" in text and "ip-adapter-faceid_sd15.bin" in text
        assert "not identifications" in text  # limitations statement


def test_pdf_bytes_are_deterministic_and_fonts_are_embedded() -> None:
    case, _, _ = populated_case(k=4)
    with case:
        a = build_report(case, "pdf", generated_at=FIXED)
        b = build_report(case, "pdf", generated_at=FIXED)
        assert a == b and a.startswith(b"%PDF-")
        reader = PdfReader(io.BytesIO(a))
        fonts = {str(f["/BaseFont"]) for p in reader.pages for f in p["/Resources"]["/Font"].values()}
        assert fonts and all("DejaVu" in f for f in fonts)
        for p in reader.pages:
            for f in p["/Resources"]["/Font"].values():
                descendant = f["/DescendantFonts"][0].get_object()
                assert "/FontFile2" in descendant["/FontDescriptor"]  # embedded, not referenced
        assert reader.metadata and reader.metadata.creation_date.year == 2026


def test_blind_report_says_so_and_withholds_scores_until_revealed() -> None:
    case, fs, rec = populated_case(k=5, blind=True)
    with case:
        text = _pdf_text(build_report(case, "pdf", generated_at=FIXED))
        assert "Blind review" in text
        blind_rows = _table_rows(text)
        assert len(blind_rows) == 5 and {r[1:] for r in blind_rows.values()} == {("withheld", "not reviewed")}
        _, true = fs.search([face_png(2, 128)], k=5)
        assert not any(f"{m.score:.4f}" in text for m in true)
        record_decisions(case, rec.id, [{"face_id": m.face_id, "decision": "excluded"} for m in true])
        text = _pdf_text(build_report(case, "pdf", generated_at=FIXED))
        assert "scores revealed" in text and all(f"{m.score:.4f}" in text for m in true)


def test_case_with_no_search_renders_in_every_format() -> None:
    with new_case("2026-0001", title="Empty case") as case:
        pdf = build_report(case, "pdf", generated_at=FIXED)
        assert "No search has been run" in _pdf_text(pdf)
        html = build_report(case, "html", generated_at=FIXED).decode()
        assert "No search has been run" in html and "2026-0001" in html
        data = json.loads(build_report(case, "json", generated_at=FIXED))
        assert data["searches"] == [] and data["audit"]["ok"] and data["case"]["case_number"] == "2026-0001"


def test_case_with_200_candidates_and_thumbnails_renders_every_row() -> None:
    with new_case("2026-0200") as case:
        fs = FakeSearch(n=260)
        q = face_png(5, 128)
        manifest, matches = fs.search([q], k=200)
        rec = add_search(case, manifest, matches, [q])
        record_decisions(case, rec.id, [{"face_id": m.face_id, "decision": "excluded" if i % 3 else "possible",
                                         "note": f"n{i}"} for i, m in enumerate(matches)])
        pdf = build_report(case, "pdf", generated_at=FIXED)
        reader = PdfReader(io.BytesIO(pdf))
        assert len(reader.pages) > 10
        rows = _table_rows("\n".join(p.extract_text() or "" for p in reader.pages))
        assert len(rows) == 200
        for i, m in enumerate(matches):
            assert rows[m.face_id] == (m.rank, f"{m.score:.4f}", "excluded" if i % 3 else "possible")
        images = sum(len(p.images) for p in reader.pages)
        assert images >= 200  # a thumbnail per candidate
        top = json.loads(build_report(case, "json", top_n=20, generated_at=FIXED))
        assert top["searches"][0]["shown_candidates"] == 20 and top["searches"][0]["total_candidates"] == 200


def test_html_report_escapes_case_text_and_embeds_stamped_images() -> None:
    with new_case("2026-0003", title="<script>alert(1)</script>") as case:
        v = list_sketches(case)
        assert v == []
        add_generated_image(case, face_png(4, 64), {"prompt": "<b>x</b>"})
        html = build_report(case, "html", generated_at=FIXED).decode()
        assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
        assert SYNTHETIC_STAMP in html and html.count("data:image/png;base64,") == 1


def test_export_report_writes_file_and_audits_its_hash(capsys: pytest.CaptureFixture[str]) -> None:
    case, _, rec = populated_case(k=3)
    with case:
        with acting_as("Det. Bob", "B-2002"):
            sign_off(case, "Det. Bob", scope="the decided candidates only")
        record_decision(case, rec.id, candidates(case, rec.id)[2].face_id, "excluded")
        path = export_report(case, "pdf", user="alice")
        assert path.parent == case.folder / "reports"
        entry = case.audit_entries()[-1]
        assert entry.action == "report.export" and entry.outputs["report"] == sha256_bytes(path.read_bytes())
        text = _pdf_text(path.read_bytes())
        assert "Det. Bob" in text and "Changed after this sign-off" in text
        case_id = case.case_id
    assert main(["case", "report", case_id, "--format", "json", "--out", str(path.with_suffix(".json"))]) == 0
    assert json.loads(path.with_suffix(".json").read_text())["case"]["case_id"] == case_id


def test_report_of_a_tampered_case_says_broken_and_where() -> None:
    case, _, _ = populated_case(k=3)
    with case:
        case.conn.execute("UPDATE audit SET user = 'mallory' WHERE seq = 3")
        text = _pdf_text(build_report(case, "pdf", generated_at=FIXED))
        assert "BROKEN" in text and "INTACT" not in text
        assert "Entry #3" in " ".join(text.split())
        data = json.loads(build_report(case, "json", generated_at=FIXED))
        assert data["audit"]["ok"] is False and data["audit"]["findings"][0]["seq"] == 3


def test_baseline_search_is_labelled_as_such_in_the_report() -> None:
    with new_case("2026-0004") as case:
        fs = FakeSearch(n=10, thumbnails=False)
        q = face_png(3)
        manifest, matches = fs.search([q], k=3)
        manifest["embedder"] = {"kind": "arcface_baseline", "sha256": fs.arcface_sha}
        add_search(case, manifest, [replace(m, baseline=True) for m in matches], [q])
        text = " ".join(_pdf_text(build_report(case, "pdf", generated_at=FIXED)).split())
        assert "weak baseline" in text and text.count("ArcFace baseline") == 3
