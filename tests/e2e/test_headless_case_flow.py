"""The examiner's whole workflow headless, through the ``sketchface`` command line only:
gallery -> case -> sketch search recorded in the case -> two decisions -> second-examiner sign-off ->
PDF report whose text (read back with pypdf) holds the decisions and the sign-off."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.cli import main
from tests.fixtures.photos import small_photo_folder

GUIDE = "150,90,410,420"


def run(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 0) -> str:
    """Run one ``sketchface`` command; check its exit status; return its stdout."""
    rc = main(list(argv))
    out, err = capsys.readouterr()
    assert rc == code, f"sketchface {' '.join(argv)} exited {rc}: {err}"
    return out


def sketch(path: Path) -> Path:
    page = np.full((640, 560, 3), 255, np.uint8)
    cv2.ellipse(page, (280, 250), (110, 150), 0, 0, 360, (30, 30, 30), 3)
    for x in (235, 325):
        cv2.circle(page, (x, 215), 14, (20, 20, 20), 2)
    cv2.line(page, (280, 230), (268, 290), (40, 40, 40), 2)
    cv2.imwrite(str(path), page)
    return path


def pdf_text(path: Path) -> str:
    from pypdf import PdfReader

    return " ".join((page.extract_text() or "") for page in PdfReader(io.BytesIO(path.read_bytes())).pages)


def test_search_decide_sign_off_and_report_headless(installed_models: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    small_photo_folder(tmp_path / "photos", 8, seed=5)
    run(capsys, "gallery", "create", "Mugshots")
    run(capsys, "gallery", "add", "Mugshots", str(tmp_path / "photos"))
    run(capsys, "case", "new", "2026-0101", "--title", "Robbery, Main St", "--examiner", "Alice Examiner",
        "--witness", "W1")
    drawn = sketch(tmp_path / "sketch.png")

    found = json.loads(run(capsys, "search", "--gallery", "Mugshots", "--sketch", str(drawn), "--face-box", GUIDE,
                           "-k", "5", "--case", "2026-0101", "--label", "Witness 1 sketch", "--user",
                           "Alice Examiner", "--json"))
    sid = found["search_id"]
    assert found["manifest"]["query"][0]["face_box"] == [150.0, 90.0, 410.0, 420.0]
    shown = json.loads(run(capsys, "case", "show", "2026-0101", "--search", str(sid), "--json"))
    assert shown["search"]["label"] == "Witness 1 sketch" and shown["search"]["n_results"] == 5
    cands = shown["candidates"]
    assert all(c["thumbnail_sha256"] for c in cands)  # candidate thumbnails stored with the search
    first, second = cands[0], cands[1]
    run(capsys, "case", "decide", "2026-0101", str(sid), f"{first['gallery_id']}:{first['face_id']}",
        "--decision", "possible", "--note", "jawline and eyes consistent", "--user", "Alice Examiner")
    run(capsys, "case", "decide", "2026-0101", str(sid), f"{second['gallery_id']}:{second['face_id']}",
        "--decision", "excluded", "--note", "ear shape differs", "--user", "Alice Examiner")
    run(capsys, "examiner", "add", "--name", "Bob Reviewer", "--identifier", "B-2002", "--no-use")
    run(capsys, "case", "signoff", "2026-0101", "--examiner", "Bob Reviewer", "--role", "second examiner",
        "--scope", "reviewed the 2 decided candidates only",
        "--statement", "I reviewed both decisions and agree")
    audit = run(capsys, "case", "audit", "2026-0101")
    assert "search.add" in audit and "signoff.record" in audit and "Audit chain intact" in audit

    out = tmp_path / "report.pdf"
    run(capsys, "case", "report", "2026-0101", "--format", "pdf", "--out", str(out))
    text = " ".join(pdf_text(out).split())
    for expected in ("jawline and eyes consistent", "ear shape differs", "Bob Reviewer",
                     "I reviewed both decisions and agree", "Witness 1 sketch"):
        assert expected in text, f"{expected!r} missing from the PDF report"
    assert "possible" in text.lower() and "excluded" in text.lower()
    assert "a note nobody wrote" not in text  # the reader does not find just anything


def test_a_blind_search_from_the_command_line_prints_no_ranking(installed_models: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    small_photo_folder(tmp_path / "photos", 5, seed=6)
    run(capsys, "gallery", "create", "G")
    run(capsys, "gallery", "add", "G", str(tmp_path / "photos"))
    run(capsys, "case", "new", "2026-0102", "--title", "Blind", "--examiner", "Alice")
    drawn = sketch(tmp_path / "s.png")
    out = run(capsys, "search", "--gallery", "G", "--sketch", str(drawn), "--case", "2026-0102", "--blind", "-k", "3")
    assert "Recorded blind search" in out and "0." not in out  # no scores printed
    shown = json.loads(run(capsys, "case", "show", "2026-0102", "--search", "1", "--json"))
    assert shown["search"]["blind"] is True and all(c["score"] is None for c in shown["candidates"])
    run(capsys, "search", "--gallery", "G", "--sketch", str(drawn), "--case", "NO-SUCH-CASE", code=1)
    run(capsys, "search", "--gallery", "G", "--sketch", str(drawn), "--blind", code=1)  # blind needs a case


def test_generated_images_and_case_details_have_command_line_twins(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    from engine.generate.provenance import build_record, png_bytes

    run(capsys, "case", "new", "2026-0103", "--title", "Twins", "--examiner", "Alice")
    drawn = sketch(tmp_path / "s.png")
    run(capsys, "case", "add-sketch", "2026-0103", str(drawn), "--witness", "W1")
    record = build_record("reconstruction", parameters={"prompt": "a face", "steps": 30}, seed=7,
                          models={"sd15.realistic_vision_v4": {"unet.safetensors": "b" * 64}},
                          sources={"sketch_sha256": hashlib.sha256(drawn.read_bytes()).hexdigest()})
    out = tmp_path / "candidate.png"
    out.write_bytes(png_bytes(Image.new("RGB", (64, 64), "gray"), record))
    said = run(capsys, "case", "add-generated", "2026-0103", str(out), "--note", "candidate 1")
    assert "made from sketch 1 v1" in said
    shown = json.loads(run(capsys, "case", "show", "2026-0103", "--json"))
    gen = shown["generated_images"][0]
    assert gen["params"]["seed"] == 7 and gen["params"]["synthetic"] is True and gen["parent"]
    plain = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(plain)
    run(capsys, "case", "add-generated", "2026-0103", str(plain), code=1)  # no provenance: refused
    run(capsys, "case", "update", "2026-0103", "--status", "closed", "--title", "Twins (closed)")
    audit = json.loads(run(capsys, "case", "audit", "2026-0103", "--json", "--last", "2"))
    assert audit["ok"] and [e["action"] for e in audit["entries"]][-1] == "case.update"
