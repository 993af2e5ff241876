"""``sketchface validate`` end to end on the tiny models: cases layout, both encoders, outputs, bad input."""

from __future__ import annotations

import io
import json
import shutil
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from engine.cli import main as sketchface
from engine.faces import FacePipeline
from engine.gallery import create_gallery
from engine.validate import read_cases
from engine.validate.cases import ValidationError
from tests.fixtures.photos import small_photo_folder


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = sketchface(list(argv))
    return code, out.getvalue(), err.getvalue()


def as_sketch(src: Path, dest: Path) -> None:
    """A drawing-like copy: grey, edges darkened."""
    gray = cv2.cvtColor(cv2.imread(str(src)), cv2.COLOR_BGR2GRAY)
    edges = cv2.Canny(gray, 60, 160)
    dest.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(dest), np.where(edges > 0, 0, np.clip(gray.astype(int) + 60, 0, 255)).astype(np.uint8))


@pytest.fixture
def cases(installed_models: Path, tmp_path: Path) -> dict[str, Any]:
    photos = small_photo_folder(tmp_path / "gallery", 12, seed=4)
    g = create_gallery("Mugshots")
    g.add([tmp_path / "gallery"], pipeline=FacePipeline.from_models("cpu"))
    rows = ["path,subject_id,sex,birth_year,region"]
    for i, p in enumerate(photos):
        rows.append(f"{p},S{i // 2},{'F' if i % 3 else 'M'},{1960 + 3 * i},{'north' if i < 6 else 'south'}")
    (tmp_path / "meta.csv").write_text("\n".join(rows) + "\n")
    g.import_metadata(tmp_path / "meta.csv")
    g.close()
    root = tmp_path / "cases"
    for i in (0, 3, 5, 8):  # truth by truth.csv
        as_sketch(photos[i], root / "sketches" / f"case{i}.png")
    (root / "truth.csv").write_text("case,subject_id\n" + "".join(f"case{i}.png,S{i // 2}\n" for i in (0, 3, 5, 8)))
    as_sketch(photos[10], root / "sketches" / "photo_case.png")  # truth by a gallery photo (SHA-256)
    (root / "photos").mkdir()
    shutil.copy(photos[10], root / "photos" / "photo_case.jpg")
    as_sketch(photos[6], root / "sketches" / "S3.png")  # truth by file stem
    as_sketch(photos[7], root / "sketches" / "nobody.png")  # no truth anywhere: listed, left out
    return {"root": root, "photos": photos}


def test_cases_layout_is_read_as_documented(cases: dict[str, Any]) -> None:
    found = {c.name: c for c in read_cases(cases["root"])}
    assert set(found) == {"case0", "case3", "case5", "case8", "photo_case", "S3", "nobody"}
    assert found["case3"].subject_id == "S1" and found["photo_case"].photo is not None
    assert found["S3"].subject_id is None and found["S3"].photo is None


def test_validate_cli_reports_both_encoders_groups_and_writes_outputs(cases: dict[str, Any], tmp_path: Path) -> None:
    code, out, err = run_cli("validate", str(cases["root"]), "--gallery", "Mugshots", "--group-by", "region",
                             "--json", "--out", str(tmp_path / "out"))
    assert code == 0, err
    doc = json.loads(out)
    assert doc["gallery"]["subjects"] == 6 and doc["gallery"]["faces"] >= 12  # some photos hold several faces
    assert doc["cases"]["found"] == 7 and doc["cases"]["validated"] == 6
    assert [u["case"] for u in doc["cases"]["unresolved"]] == ["nobody"]
    assert set(doc["encoders"]) == {"trained", "baseline"}
    assert doc["encoders"]["baseline"]["embedder"]["baseline"] is True
    assert doc["encoders"]["trained"]["embedder"]["baseline"] is False
    truth = {c["case"]: (c["truth"], c["subject"]) for c in doc["encoders"]["trained"]["cases"]}
    assert truth["photo_case"] == ("photo", "S5") and truth["S3"] == ("stem", "S3") and truth["case8"] == ("csv", "S4")
    assert doc["ranks"] == [1]  # 6 subjects: only rank 1 is within reach of the report ranks
    for enc in doc["encoders"].values():
        ranks = [c["rank"] for c in enc["cases"]]
        assert all(1 <= r <= 6 for r in ranks)
        assert enc["hit_rates"]["1"]["hits"] == sum(r == 1 for r in ranks)
        for key in ("sex", "age_band", "region"):
            assert sum(x["n"] for x in enc["groups"][key].values()) == 6
    files = doc["files"]
    for name in ("cmc", "groups", "scores", "pdf", "json"):
        assert Path(files[name]).is_file()
    assert Path(files["pdf"]).read_bytes()[:5] == b"%PDF-"
    assert json.loads(Path(files["json"]).read_text())["cases"]["validated"] == 6


def test_too_few_cases_for_a_calibration_is_one_clear_line(cases: dict[str, Any]) -> None:
    code, out, err = run_cli("validate", str(cases["root"]), "--gallery", "Mugshots", "--encoder", "baseline",
                             "--save-calibration", "baseline")
    assert code == 1 and err.strip().count("\n") == 0 and "at least 20 solved cases" in err


def test_bad_cases_input_fails_with_a_message(cases: dict[str, Any], tmp_path: Path) -> None:
    code, _, err = run_cli("validate", str(tmp_path / "missing"), "--gallery", "Mugshots")
    assert code == 1 and "No cases folder" in err
    (cases["root"] / "truth.csv").write_text("sketch,person\ncase0,S0\n")
    code, _, err = run_cli("validate", str(cases["root"]), "--gallery", "Mugshots")
    assert code == 1 and "case,subject_id" in err
    (cases["root"] / "truth.csv").write_text("case,subject_id\nghost,S0\n")
    with pytest.raises(ValidationError, match="without a sketch"):
        read_cases(cases["root"])
    (cases["root"] / "truth.csv").write_text("case,subject_id\ncase0,NOPE\n")
    shutil.rmtree(cases["root"] / "photos")
    for p in (cases["root"] / "sketches").iterdir():
        if p.stem != "case0":
            p.unlink()
    code, _, err = run_cli("validate", str(cases["root"]), "--gallery", "Mugshots", "--encoder", "baseline")
    assert code == 1 and "No solved case" in err and "NOPE" in err
