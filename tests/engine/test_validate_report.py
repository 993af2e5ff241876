"""Case reports show the score calibration when the search's encoder has one, and say so when it has none."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
from pypdf import PdfReader

from engine.cases.report import build_report
from engine.validate import Calibration, save
from engine.validate.calibration import NO_CALIBRATION
from tests.engine.test_cases_support import populated_case

SHOTS = Path("/work/notes/shots")


def calibration(sha: str, n: int = 25) -> Calibration:
    rng = np.random.default_rng(0)
    return Calibration("sketch_encoder", sha, "a" * 64, "2026-11-20T09:00:00+00:00", n,
                       {"id": "g1", "name": "Mugshots 2026", "subjects": 5000},
                       [round(float(x), 4) for x in rng.uniform(0.0, 0.8, n)], [int(x) for x in rng.integers(1, 300, n)],
                       [round(float(x), 4) for x in rng.uniform(0.0, 0.5, n)])


def pdf_text(data: bytes) -> str:
    return " ".join(p.extract_text() or "" for p in PdfReader(io.BytesIO(data)).pages).replace("\n", " ")


def test_report_without_calibration_makes_no_claim_then_shows_shares(sketchface_home: Path, tmp_path: Path) -> None:
    case, fs, _rec = populated_case(k=6)
    before = build_report(case, "json", generated_at="2026-11-29T10:00:00Z")
    search = json.loads(before)["searches"][0]
    assert search["calibration"] == NO_CALIBRATION
    assert all(c["calibration_share"] is None for c in search["candidates"])
    assert "No score calibration is in use" in pdf_text(build_report(case, "pdf", generated_at="2026-11-29T10:00:00Z"))
    cal = calibration(fs.embedder_sha)
    save(cal)
    data = json.loads(build_report(case, "json", generated_at="2026-11-29T10:00:00Z"))["searches"][0]
    assert data["calibration"].startswith("Score calibration:") and "25 solved cases" in data["calibration"]
    for c in data["candidates"]:
        assert c["calibration_share"] == cal.share_scored_at_least(c["score"])
    pdf = build_report(case, "pdf", generated_at="2026-11-29T10:00:00Z")
    text = pdf_text(pdf)
    assert "Score calibration:" in text and "No score calibration" not in text
    first = data["candidates"][0]
    assert f"({100 * first['calibration_share']:.0f} %)" in text
    html = build_report(case, "html", generated_at="2026-11-29T10:00:00Z").decode()
    assert f"({100 * first['calibration_share']:.0f} %)" in html and "Score calibration:" in html
    if shutil.which("pdftoppm") and SHOTS.is_dir() and os.access(SHOTS, os.W_OK):
        (tmp_path / "r.pdf").write_bytes(pdf)
        subprocess.run(["pdftoppm", "-r", "70", "-png", "-f", "1", "-l", "3", str(tmp_path / "r.pdf"),
                        str(SHOTS / "validation_case_report")], check=True)


def test_another_encoders_calibration_is_not_used(sketchface_home: Path) -> None:
    save(calibration("f" * 64))  # not the encoder of this search
    case, _fs, _rec = populated_case(k=4)
    data = json.loads(build_report(case, "json"))["searches"][0]
    assert data["calibration"] == NO_CALIBRATION and all(c["calibration_share"] is None for c in data["candidates"])


def test_a_blind_review_shows_no_shares(sketchface_home: Path) -> None:
    case, fs, _rec = populated_case(k=4, blind=True)
    save(calibration(fs.embedder_sha))
    data = json.loads(build_report(case, "json"))["searches"][0]
    assert data["scores_hidden"] and all(c["calibration_share"] is None for c in data["candidates"])
