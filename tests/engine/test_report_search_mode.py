"""The case report names the search mode that ran (read from the manifest), in HTML and PDF alike."""

from __future__ import annotations

import io
from pathlib import Path

from pypdf import PdfReader

from engine.cases import list_searches, open_case
from engine.cases.report_data import search_mode
from engine.cli import main
from tests.engine.test_cases_support import new_case
from tests.fixtures.photos import small_photo_folder


def _pdf_text(path: Path) -> str:
    return " ".join(" ".join((p.extract_text() or "") for p in PdfReader(io.BytesIO(path.read_bytes())).pages).split())


def test_exact_and_hnsw_runs_are_reported_as_what_ran(installed_models: Path, tmp_path: Path) -> None:
    small_photo_folder(tmp_path / "photos", 6, seed=3)
    assert main(["gallery", "create", "Mugs"]) == 0
    assert main(["gallery", "add", "Mugs", str(tmp_path / "photos")]) == 0
    with new_case() as case:
        case_id = case.case_id
    query = str(sorted((tmp_path / "photos").iterdir())[0])
    for mode in ("exact", "hnsw"):
        assert main(["search", "--photo", query, "--gallery", "Mugs", "--mode", mode, "--case", case_id,
                     "--label", mode]) == 0
    html_out, pdf_out = tmp_path / "r.html", tmp_path / "r.pdf"
    assert main(["case", "report", case_id, "--format", "html", "--out", str(html_out)]) == 0
    assert main(["case", "report", case_id, "--format", "pdf", "--out", str(pdf_out)]) == 0
    html, pdf = html_out.read_text(), _pdf_text(pdf_out)
    for text in (html, pdf):
        assert "Search mode" in text and "Exact scan: every stored face scored" in text
        assert "HNSW (M=" in text and "with exact re-rank" in text
    with open_case(case_id) as case:
        modes = {s.label: s.manifest["index"]["mode"] for s in list_searches(case)}
    assert modes == {"exact": "exact", "hnsw": "hnsw"}
    # negative control: before, both runs printed "HNSW M=..." whatever ran; an exact run must not say HNSW
    exact_block = html.split("Search 1")[1].split("Search 2")[0]
    assert "Exact scan" in exact_block and "HNSW" not in exact_block


def test_every_mode_reads_from_the_manifest_in_one_place() -> None:
    base = {"M": 16, "ef_construction": 200, "ef": 64}
    assert search_mode({"index": base, "galleries": [{"id": "a", "index": {**base}}]}).startswith("HNSW (M=16")
    assert search_mode({"index": {**base, "mode": "exact"}, "galleries": []}).startswith("Exact scan")
    compact = {**base, "mode": "hnsw", "kind": "usearch_i8", "recall": {"rerank": 50, "k": 10}}
    assert search_mode({"galleries": [{"id": "a", "index": compact}]}) == (
        "Compact index (int8 HNSW, M=16, ef_construction=200, ef=64) with exact re-rank, 50 candidates per top-10")
    mixed = search_mode({"galleries": [{"id": "a", "name": "Local", "index": {**base, "mode": "exact"}},
                                       {"id": "b", "name": "HQ", "server": "hq", "index": {**base, "mode": "hnsw"}}]})
    assert mixed == ("Local: Exact scan: every stored face scored (float32), no index\n"
                     "HQ: Server pgvector HNSW (M=16, ef_construction=200, ef=64) with exact re-rank")
