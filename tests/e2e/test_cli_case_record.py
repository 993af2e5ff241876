"""What the examiner reads of a search recorded from the command line, through ``sketchface`` only:
the report shows the image that was searched, a re-run keeps its candidates' faces, ``case show
--search`` is a table with headers, gallery names and file names, ``case decide`` takes a gallery's
name, ``case export --out`` takes a folder, and a re-run on a workstation without the gallery names
the gallery it needs. No output prints a program's raw dict."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest

from engine.cli import main
from tests.e2e.test_headless_case_flow import GUIDE, run, sketch
from tests.examiner_helpers import ensure_profile
from tests.fixtures.photos import small_photo_folder

RAW_DICT = re.compile(r"\{'|': ")  # Python's dict repr: {'key': value}


def _recorded_case(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> tuple[int, Path]:
    small_photo_folder(tmp_path / "photos", 7, seed=5)
    run(capsys, "gallery", "create", "Mugshots")
    run(capsys, "gallery", "add", "Mugshots", str(tmp_path / "photos"))
    run(capsys, "case", "new", "2026-0042", "--title", "Robbery, Main St", "--examiner", "Alice Examiner",
        "--witness", "W1")
    drawn = sketch(tmp_path / "sketch.png")
    out = run(capsys, "search", "--gallery", "Mugshots", "--sketch", str(drawn), "--face-box", GUIDE, "--case",
              "2026-0042")
    return int(out.split("Recorded as search ", 1)[1].split()[0]), drawn


def test_report_rerun_show_decide_and_export_as_the_examiner_reads_them(
        installed_models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from engine.cases import build_report, candidates, open_case
    from engine.cases.images import display_copy
    from tests.desktop.test_recorded_faces import pdf_images

    sid, drawn = _recorded_case(capsys, tmp_path)

    # The report shows the sketch that was searched (pixels of its display copy), not "no sketch".
    with open_case("2026-0042") as case:
        pdf = build_report(case, "pdf")
    shown = np.asarray(display_copy(drawn.read_bytes(), 520))
    assert any(im.shape == shown.shape and np.array_equal(im, shown) for im in pdf_images(pdf))
    text = " ".join(pdf_text_bytes(pdf).split())
    assert "No sketch is stored in this case" not in text and "Query image 1 of search" in text

    # A stored re-run keeps every candidate's thumbnail, as the original does.
    out = run(capsys, "case", "rerun", "2026-0042", str(sid))
    assert "identical result list" in out and not RAW_DICT.search(out)
    new_sid = int(out.split("stored as search ", 1)[1].split()[0])
    with open_case("2026-0042") as case:
        again = candidates(case, new_sid)
    assert again and all(c.thumbnail_path for c in again), "a stored re-run keeps its candidates' faces"

    # `case show --search`: headers, gallery names, photo file names.
    shown_text = run(capsys, "case", "show", "2026-0042", "--search", str(sid))
    header = next(line for line in shown_text.splitlines() if "Rank" in line)
    for column in ("Rank", "Score", "Gallery", "Face", "Photo file", "Decision"):
        assert column in header
    with open_case("2026-0042") as case:
        rows = candidates(case, sid)
    second = rows[1]
    assert "Mugshots" in shown_text and Path(second.photo_path).name in shown_text
    assert not RAW_DICT.search(shown_text)

    # `case decide` takes the gallery's name (case-insensitive) as well as its id.
    out = run(capsys, "case", "decide", "2026-0042", str(sid), f"mugshots:{second.face_id}", "--decision",
              "possible")
    assert f"face {second.gallery_id}:{second.face_id}: possible (gallery Mugshots" in out
    run(capsys, "case", "decide", "2026-0042", str(sid), f"{second.gallery_id}:{second.face_id}", "--decision",
        "excluded")
    assert main(["case", "decide", "2026-0042", str(sid), f"Elsewhere:{second.face_id}", "--decision",
                 "possible"]) == 1
    assert "did not search a gallery called 'Elsewhere'" in capsys.readouterr().err

    # `case export --out FOLDER` writes case_NUMBER.zip into the folder; a file name is used as given.
    folder = tmp_path / "exports"
    folder.mkdir()
    out = run(capsys, "case", "export", "2026-0042", "--out", str(folder))
    assert (folder / "case_2026-0042.zip").is_file() and "case_2026-0042.zip" in out
    run(capsys, "case", "export", "2026-0042", "--out", str(folder / "named.zip"))
    assert (folder / "named.zip").is_file()


def pdf_text_bytes(data: bytes) -> str:
    from pypdf import PdfReader

    return " ".join((page.extract_text() or "") for page in PdfReader(io.BytesIO(data)).pages)


def test_decide_refuses_a_gallery_name_two_searched_galleries_share(
        installed_models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two galleries may share a name only if one is renamed; here two galleries of one search are named
    alike in its manifest (as when the same name is reused on two workstations), so the name is refused."""
    from engine.cases import add_search, candidates, get_search, open_case, stored_matches
    from engine.cases import query_images as stored_queries

    sid, _ = _recorded_case(capsys, tmp_path)
    with open_case("2026-0042") as case:
        face = candidates(case, sid)[0]
        manifest = get_search(case, sid).manifest
    twin = dict(manifest["galleries"][0], id="0" * 12)
    assert main(["case", "decide", "2026-0042", str(sid), f"Mugshots:{face.face_id}", "--decision",
                     "possible"]) == 0
    capsys.readouterr()
    with open_case("2026-0042") as case:
        both = {**manifest, "galleries": [*manifest["galleries"], twin]}
        matches = stored_matches(case, sid)
        rec = add_search(case, both, matches, stored_queries(case, sid))
    assert main(["case", "decide", "2026-0042", str(rec.id), f"Mugshots:{face.face_id}", "--decision",
                     "possible"]) == 1
    err = capsys.readouterr().err
    assert "several galleries called 'Mugshots'" in err and "0" * 12 in err


def test_a_rerun_on_a_workstation_without_the_gallery_names_the_gallery_it_needs(
        installed_models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.cases import get_search, open_case

    sid, _ = _recorded_case(capsys, tmp_path)
    with open_case("2026-0042") as case:
        [gallery] = get_search(case, sid).manifest["galleries"]
    archive = tmp_path / "case.zip"
    run(capsys, "case", "export", "2026-0042", "--out", str(archive))

    receiving = tmp_path / "receiving_home"
    receiving.mkdir()
    monkeypatch.setenv("SKETCHFACE_HOME", str(receiving))  # another workstation: no galleries
    ensure_profile("B. Receiver", "B-2002")  # its examiner
    run(capsys, "case", "import", str(archive))
    assert main(["case", "rerun", "2026-0042", str(sid)]) == 1
    err = capsys.readouterr().err
    assert "needs gallery 'Mugshots'" in err and gallery["id"] in err
    assert f"content version {gallery['content_version']}" in err
    assert "create one" not in err.lower()
