"""``sketchface case ...`` end to end: new, add-sketch, attach, list, show, decide, signoff, report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cases import add_search, open_case
from engine.cli import main
from tests.engine.test_cases_support import FakeSearch, face_png


def _out(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().out


def test_case_workflow_through_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["case", "new", "2026-0777", "--title", "Burglary", "--examiner", "Det. Alice", "--witness", "W1",
                 "--location", str(tmp_path / "vol"), "--json", "--user", "alice"]) == 0
    info = json.loads(_out(capsys))
    case_id = info["case_id"]
    assert Path(info["folder"]).parent == tmp_path / "vol"
    sketch = tmp_path / "sketch.png"
    sketch.write_bytes(face_png(1, 64))
    assert main(["case", "add-sketch", "2026-0777", str(sketch), "--witness", "W1", "--user", "alice"]) == 0
    assert "version 1" in _out(capsys)
    assert main(["case", "add-sketch", "2026-0777", str(sketch), "--sketch", "1", "--note", "v2"]) == 0
    assert "version 2" in _out(capsys)
    note = tmp_path / "statement.txt"
    note.write_text("the man wore a cap")
    assert main(["case", "attach", case_id, str(note)]) == 0
    _out(capsys)

    fs = FakeSearch(n=12)
    with open_case(case_id) as case:
        manifest, matches = fs.search([sketch.read_bytes()], k=4)
        rec = add_search(case, manifest, matches, [sketch.read_bytes()], blind=True, user="alice")
    assert main(["case", "list", "--json"]) == 0
    assert [r["case_id"] for r in json.loads(_out(capsys))] == [case_id]
    assert main(["case", "show", case_id, "--search", str(rec.id)]) == 0
    shown = _out(capsys)
    assert "blind, scores hidden" in shown and not any(f"{m.score:.4f}" in shown for m in matches)
    for m in matches:
        assert main(["case", "decide", case_id, str(rec.id), f"g1:{m.face_id}", "--decision", "excluded",
                     "--note", "no", "--user", "alice"]) == 0
        assert f"face g1:{m.face_id}: excluded" in _out(capsys)
    assert main(["case", "show", case_id, "--search", str(rec.id), "--json"]) == 0
    data = json.loads(_out(capsys))
    assert all(c["score"] is not None and c["decision"] == "excluded" for c in data["candidates"])
    assert main(["case", "decide", case_id, str(rec.id), "nonsense", "--decision", "excluded"]) == 1
    assert main(["case", "signoff", case_id, "--examiner", "Det. Alice"]) == 1
    assert "another examiner's key" in capsys.readouterr().err
    assert main(["examiner", "add", "--name", "Det. Bob", "--identifier", "B-2002", "--no-use"]) == 0
    assert main(["case", "signoff", case_id, "--examiner", "Det. Bob", "--statement", "ok"]) == 0
    assert main(["case", "show", case_id]) == 0
    text = _out(capsys)
    assert "Burglary" in text and "1 sign-off(s)" in text and "sketch 1 v2" in text
    assert main(["case", "report", case_id, "--format", "html"]) == 0
    report = Path(_out(capsys).strip())
    assert report.parent.name == "reports" and "Det. Bob" in report.read_text()
    assert main(["case", "verify", case_id]) == 0
