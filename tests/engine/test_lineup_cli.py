"""``sketchface lineup build | record``: the command line builds, writes blind material and records responses."""

from __future__ import annotations

import json
from pathlib import Path

import pypdf
import pytest

from engine.cases import open_case
from engine.cases.lineup import list_lineups
from engine.cli import main
from engine.workstation import Workstation
from tests.engine.test_lineup_support import build_gallery, case_with_candidate


def test_cli_builds_writes_material_and_records_the_response(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Workstation() as ws:
        g = build_gallery(ws)
        case, sid, fid = case_with_candidate(g)
        case_id, name = case.case_id, g.name
        case.close()
    out = tmp_path / "lineup.pdf"
    assert main(["lineup", "build", case_id, str(sid), f"{name}:{fid}", "--fillers", "5", "--match", "sex,age_band",
                 "--seed", "9", "--out", str(out), "--json"]) == 0
    printed = capsys.readouterr().out
    summary = json.loads(printed[:printed.rindex("}") + 1])
    assert summary["photos"] == 6 and summary["warning"] == "" and summary["seed"] == "9"
    text = "".join(p.extract_text() or "" for p in pypdf.PdfReader(str(out)).pages)
    assert "may or may not be in this set" in text and "suspect" not in text.lower()
    with open_case(case_id) as c:
        members = list_lineups(c)[0].members
    for m in members:  # neither the printout nor the material names a member (the key stays sealed)
        assert m.subject_id not in printed + text and f":{m.face_id}" not in printed + text
    assert main(["lineup", "record", case_id, str(summary["lineup"]), "--choice", "none", "--confidence",
                 "I don't think he is there", "--material", str(out)]) == 0
    assert "nobody chosen" in capsys.readouterr().out
    assert main(["lineup", "list", case_id]) == 0
    assert "SUSPECT" not in capsys.readouterr().out  # the key only on request
    assert main(["lineup", "list", case_id, "--key"]) == 0
    assert "SUSPECT" in capsys.readouterr().out
    with open_case(case_id) as c:
        lu = list_lineups(c)[0]
        assert lu.responses[0].choice is None and lu.responses[0].material_sha256
        assert c.verify().ok


def test_cli_refuses_bad_input_with_a_clear_message(capsys: pytest.CaptureFixture[str]) -> None:
    with Workstation() as ws:
        g = build_gallery(ws, per_group=3, groups=(("M", "30-39"),))
        case, sid, fid = case_with_candidate(g, k=1)
        case_id, name = case.case_id, g.name
        case.close()
    assert main(["lineup", "build", case_id, str(sid), f"{name}:{fid}", "--band=-1:1"]) == 1
    err = capsys.readouterr().err
    assert "fit the description" in err and "Nothing was built" in err
    assert main(["lineup", "build", case_id, str(sid), "nocolon"]) == 1
    assert "GALLERY:FACE" in capsys.readouterr().err
    assert main(["lineup", "record", case_id, "1", "--choice", "x", "--confidence", "sure"]) == 1
    assert "--choice is the position the witness chose" in capsys.readouterr().err
    assert main(["lineup", "record", case_id, "1", "--choice", "2", "--confidence", "sure"]) == 1
    assert "has no line-up 1" in capsys.readouterr().err
    with open_case(case_id) as c:
        assert list_lineups(c) == []
