"""The agency's search policy (supervisor approval refused without, recorded with) and a planted tattoo
annotation that filters the candidate list down to its face, through the real command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine import paths
from engine.cases import open_case
from engine.cases.authorization import authorization
from engine.cli import main
from tests.e2e.test_headless_case_flow import GUIDE, run, sketch
from tests.fixtures.photos import small_photo_folder

CASE = "2026-0022"
POLICY = """required = ["purpose", "supervisor_approval"]
max_candidates = 3
server_galleries_need_approval = true
"""


def _setup(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Path:
    small_photo_folder(tmp_path / "photos", 5, seed=7)
    run(capsys, "gallery", "create", "Mugshots")
    run(capsys, "gallery", "add", "Mugshots", str(tmp_path / "photos"))
    run(capsys, "case", "new", CASE, "--title", "Robbery", "--examiner", "Alice Examiner", "--witness", "W1")
    return sketch(tmp_path / "sketch.png")


def test_no_policy_file_changes_nothing(installed_models: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    drawn = _setup(capsys, tmp_path)
    run(capsys, "search", "--gallery", "Mugshots", "--sketch", str(drawn), "--face-box", GUIDE, "--case", CASE)
    with open_case(CASE) as case:
        assert authorization(case, 1) is None


def test_a_policy_requiring_supervisor_approval_refuses_without_and_records_with(
        installed_models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    drawn = _setup(capsys, tmp_path)
    paths.config_dir().mkdir(parents=True, exist_ok=True)
    (paths.config_dir() / "search_policy.toml").write_text(POLICY, encoding="utf-8")
    base = ["search", "--gallery", "Mugshots", "--sketch", str(drawn), "--face-box", GUIDE, "--case", CASE]

    assert main([*base, "--purpose", "robbery investigation"]) == 1
    err = capsys.readouterr().err
    assert "requires supervisor approval" in err and "--supervisor-approval" in err
    with open_case(CASE) as case:
        assert case.conn.execute("SELECT COUNT(*) FROM searches").fetchone()[0] == 0
    assert main([*base, "--purpose", "robbery", "--supervisor-approval", "Sgt. Dunn #17", "--top", "10"]) == 1
    assert "at most 3 candidates" in capsys.readouterr().err
    assert main(["search", "--gallery", "Mugshots", "--sketch", str(drawn), "--purpose", "x",
                 "--supervisor-approval", "y"]) == 1
    assert "--case" in capsys.readouterr().err

    doc = json.loads(run(capsys, *base, "--purpose", "robbery investigation", "--supervisor-approval",
                         "Sgt. Dunn #17", "--json"))
    assert len(doc["matches"]) == 3  # the default list is capped at the policy's longest
    with open_case(CASE) as case:
        auth = authorization(case, int(doc["search_id"]))
        assert auth is not None and auth["fields"] == {"purpose": "robbery investigation",
                                                       "supervisor_approval": "Sgt. Dunn #17"}
    run(capsys, "case", "verify", CASE)
    report = json.loads(Path(run(capsys, "case", "report", CASE, "--format", "json").strip()).read_text())
    assert report["examination"]["searches"][0]["authorization"]["fields"]["supervisor_approval"] == "Sgt. Dunn #17"


def test_a_planted_tattoo_annotation_filters_the_candidates_to_its_face(
        installed_models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    drawn = _setup(capsys, tmp_path)
    every = json.loads(run(capsys, "search", "--gallery", "Mugshots", "--sketch", str(drawn), "--face-box", GUIDE,
                           "--json"))["matches"]
    target = sorted((tmp_path / "photos").iterdir())[2]
    own = [m for m in every if Path(m["photo_path"]).name == target.name]  # metadata is per photo: its faces
    csv = tmp_path / "meta.csv"
    csv.write_text(f"path,subject_id,tattoos\n{target},S3,\"left forearm: rose @10,12,40,30\"\n", encoding="utf-8")
    run(capsys, "gallery", "import-metadata", "Mugshots", str(csv))
    doc = json.loads(run(capsys, "search", "--gallery", "Mugshots", "--sketch", str(drawn), "--face-box", GUIDE,
                         "--filter", "tattoo=rose", "--json"))
    assert own and [(m["gallery_id"], m["face_id"]) for m in doc["matches"]] == [
        (m["gallery_id"], m["face_id"]) for m in own]
    doc = json.loads(run(capsys, "search", "--gallery", "Mugshots", "--sketch", str(drawn), "--face-box", GUIDE,
                         "--filter", "tattoo=*", "--json"))
    assert len(doc["matches"]) == len(own)
    doc = json.loads(run(capsys, "search", "--gallery", "Mugshots", "--sketch", str(drawn), "--face-box", GUIDE,
                         "--filter", "tattoo=anchor", "--json"))
    assert doc["matches"] == []
    doc = json.loads(run(capsys, "search", "--gallery", "Mugshots", "--sketch", str(drawn), "--face-box", GUIDE,
                         "--filter", "tattoo!=rose", "--json"))
    assert target.name not in {Path(m["photo_path"]).name for m in doc["matches"]}
    assert len(doc["matches"]) == len(every) - len(own)
    bad = tmp_path / "bad.csv"
    bad.write_text(f"path,tattoos\n{target},: no location\n", encoding="utf-8")
    assert main(["gallery", "import-metadata", "Mugshots", str(bad)]) == 1
    assert "body location" in capsys.readouterr().err
