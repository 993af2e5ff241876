"""The examination end to end through the command line: intake (limited, with a reason) -> search -> sheets
for two candidates -> a conclusion for one -> sign-off -> PDF, read back through pypdf's text."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from engine.cli import main
from tests.e2e.test_headless_case_flow import pdf_text, run
from tests.security.examination_support import CASE, examined_case


def test_intake_sheets_conclusion_signoff_and_the_pdf_says_them(
        installed_models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sid, cands = examined_case(capsys, tmp_path)
    (g1, f1), (g2, f2) = cands[:2]
    run(capsys, "case", "examine", CASE, str(sid), f"{g1}:{f1}", "--feature", "nose=similar", "--feature",
        "ears=not-assessable:hidden by hair", "--feature", "eyebrows=dissimilar", "--note", "nose=broad bridge")
    run(capsys, "case", "examine", CASE, str(sid), f"{g2}:{f2}", "--feature", "face-outline=dissimilar")
    run(capsys, "case", "conclude", CASE, str(sid), f"{g1}:{f1}", "--level", "lead", "--note", "worth a photo check")
    run(capsys, "examiner", "add", "--name", "Bob Reviewer", "--identifier", "B-2002", "--no-use")
    run(capsys, "case", "signoff", CASE, "--examiner", "Bob Reviewer", "--scope",
        "reviewed the examined candidates only", "--statement", "I reviewed the sheets and the conclusion")
    run(capsys, "case", "verify", CASE)
    pdf = Path(run(capsys, "case", "report", CASE).strip())
    text = " ".join(pdf_text(pdf).split())
    for needle in ("Intake 1", "suitability LIMITED", "drawn from a brief glimpse at night",
                   "recorded before its first search", "Nose: similar — broad bridge", "Ears: not-assessable (hidden by hair)",
                   "Face/head outline: dissimilar", "Conclusion: A lead worth pursuing", "No score calibration",
                   "a sketch search yields leads, not identifications", "No validation exists",
                   "FISWG Facial Image Comparison Feature List", "Bob Reviewer"):
        assert needle.lower() in text.lower(), needle
    if importlib.util.find_spec("fitz") is not None:  # render the examination page to look at it
        import fitz

        doc = fitz.open(pdf)
        page = next(p for p in doc if "Comparison sheets" in p.get_text() or "comparison sheets" in p.get_text())
        page.get_pixmap(dpi=80).save(str(tmp_path / "examination_page.png"))


def test_a_generated_probe_is_non_evidential_in_the_report(
        installed_models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    examined_case(capsys, tmp_path)
    from engine.cases import add_generated_image, open_case

    with open_case(CASE) as case:
        png = (tmp_path / "sketch.png").read_bytes()
        g = add_generated_image(case, png + b"", {"kind": "reconstruction", "seed": 1})
    run(capsys, "case", "intake", CASE, f"generated:{g.id}", "--source", "photo", "--suitability", "suitable")
    assert main(["case", "verify", CASE]) == 0
    capsys.readouterr()
    pdf = Path(run(capsys, "case", "report", CASE).strip())
    text = " ".join(pdf_text(pdf).split())
    assert "NON-EVIDENTIAL: generated image" in text and "(generated probe)" in text
