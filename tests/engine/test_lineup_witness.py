"""The witness's description as a case record: line-ups take their description from it, verify finds a
changed description, an older case without the table still verifies, and the command line drives it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from engine.cases import lineup_report, open_case, records
from engine.cases import witness as witness_records
from engine.cases.lineup import list_lineups
from engine.cli import main
from engine.errors import CaseError
from engine.workstation import Workstation
from engine.workstation.lineup import LineupError, LineupRules, age_band, build_lineup
from tests.engine.test_lineup_support import build_gallery, case_with_candidate


@pytest.fixture
def ws() -> Iterator[Workstation]:
    w = Workstation()
    yield w
    w.close()


@pytest.fixture
def setting(ws: Workstation) -> tuple[Any, Any, int, int]:
    g = build_gallery(ws)
    case, sid, fid = case_with_candidate(g)  # the suspect is M, 30-39
    return g, case, sid, fid


def _fits(g: Any, lu: Any, sex: str, band: str) -> bool:
    infos = g.store.face_infos([m.face_id for m in lu.members if m.role == "filler"])
    return all(i.metadata["sex"] == sex and age_band(i.metadata) == band for i in infos.values())


def test_the_description_comes_from_the_witness_record(ws: Workstation, setting: Any) -> None:
    g, case, sid, fid = setting
    w1 = witness_records.record_witness(case, "W-01", {"sex": "M", "age_band": "30-39", "hair": "short dark"},
                                        taken_on="2026-12-01", taken_by="PC Smith")
    w2 = witness_records.record_witness(case, "W-02", {"sex": "F", "age_band": "20-29"}, taken_on="2026-12-02")
    w3 = witness_records.record_witness(case, "W-03", {"sex": "M", "age_band": "40-49"})
    lu1 = build_lineup(ws, case, sid, g.id, fid, LineupRules(seed=7, witness="W-01"))
    assert lu1.description == {"sex": "M", "age_band": "30-39"} and _fits(g, lu1, "M", "30-39")
    assert lu1.params["witness"] == {"id": w1.id, "reference": "W-01", "taken_on": "2026-12-01", "taken_by": "PC Smith"}
    assert set(lu1.params["description_sources"].values()) == {f"witness record {w1.id}"}
    section = lineup_report.html_section({"lineups": lineup_report.lineup_data(case)})
    assert f"witness record {w1.id}: W-01, taken 2026-12-01 by PC Smith" in section
    # control: same seed, another witness's record gives other fillers (all F, 20-29: none sit in the
    # default band around an M 30-39 suspect, so the band is opened) ...
    lu2 = build_lineup(ws, case, sid, g.id, fid, LineupRules(seed=7, witness=str(w2.id), band=(-1.0, 1.0)))
    assert lu2.description == {"sex": "F", "age_band": "20-29"} and _fits(g, lu2, "F", "20-29")
    assert {m.subject_id for m in lu1.members if m.role == "filler"}.isdisjoint(
        {m.subject_id for m in lu2.members if m.role == "filler"})
    assert lu2.warning  # ... around an M suspect, who then stands out
    # ... and one the gallery cannot fit is "too narrow", with nothing built
    with pytest.raises(LineupError, match=r"fit the description \(sex=M, age_band=40-49\).*Nothing was built"):
        build_lineup(ws, case, sid, g.id, fid, LineupRules(seed=7, witness="W-03"))
    assert [lu.id for lu in list_lineups(case)] == [lu1.id, lu2.id] and w3.id == 3
    # a typed value overrides the record, and the line-up says it was typed
    lu4 = build_lineup(ws, case, sid, g.id, fid, LineupRules(seed=7, witness="W-03",
                                                             description={"age_band": "30-39"}))
    assert lu4.description == {"sex": "M", "age_band": "30-39"}
    assert lu4.params["description_sources"] == {"sex": f"witness record {w3.id}",
                                                 "age_band": "typed (overrides the witness record)"}
    # a ticked field the witness record lacks is refused rather than filled from the suspect
    with pytest.raises(LineupError, match="gives no value for 'source'"):
        build_lineup(ws, case, sid, g.id, fid, LineupRules(seed=7, witness="W-01", match=("sex", "source")))
    with pytest.raises(CaseError, match="no witness description 'W-09'"):
        build_lineup(ws, case, sid, g.id, fid, LineupRules(seed=7, witness="W-09"))
    assert case.verify().ok


def test_bad_witness_input_is_refused_and_nothing_stored(setting: Any) -> None:
    _g, case, _sid, _fid = setting
    for ref, fields, day, msg in (("", {"sex": "M"}, None, "Name the witness"),
                                  ("W", {}, None, "at least one described field"),
                                  ("W", {"hair colour": "red"}, None, "letters, digits"),
                                  ("W", {"sex": "M"}, "01/12/2026", "YYYY-MM-DD"),
                                  ("W", {"sex": "M"}, "2999-01-01", "still to come")):
        with pytest.raises(CaseError, match=msg):
            witness_records.record_witness(case, ref, fields, taken_on=day)
    assert witness_records.list_witnesses(case) == []


def test_a_tampered_witness_description_is_found_by_verify(setting: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _g, case, _sid, _fid = setting
    w = witness_records.record_witness(case, "W-01", {"sex": "M", "age_band": "30-39"})
    assert case.verify().ok
    case.conn.execute("UPDATE witness_descriptions SET fields = ? WHERE id = ?",
                      (json.dumps({"sex": "M", "age_band": "50-59"}), w.id))
    case.conn.commit()
    report = case.verify()
    assert not report.ok
    assert any(f"Witness description {w.id}" in f.message for f in report.findings)
    # negative control: without the table registered, the changed description would go unseen
    monkeypatch.delitem(records.RECORD_TABLES, "witness_descriptions")
    assert not any("does not match" in f.message for f in case.verify().findings)


def test_an_older_case_without_the_witness_table_verifies_and_gets_it_with_its_first_record(setting: Any) -> None:
    _g, case, _sid, _fid = setting
    case.conn.execute("DROP TABLE witness_descriptions")  # as a case made before witness records existed
    case.conn.commit()
    assert case.verify().ok and witness_records.list_witnesses(case) == []
    w = witness_records.record_witness(case, "W-01", {"sex": "M"})
    assert witness_records.get_witness(case, "w-01").id == w.id
    assert case.verify().ok


def test_cli_records_a_witness_and_builds_from_it(capsys: pytest.CaptureFixture[str]) -> None:
    with Workstation() as ws:
        g = build_gallery(ws)
        case, sid, fid = case_with_candidate(g)
        case_id, name = case.case_id, g.name
        case.close()
    assert main(["case", "witness", case_id, "--name", "W-01", "--describe", "sex=M", "--describe",
                 "age_band=30-39", "--describe", "build=slim", "--taken-on", "2026-12-01",
                 "--taken-by", "PC Smith"]) == 0
    assert "Witness description 1 (W-01)" in capsys.readouterr().out
    assert main(["case", "witness", case_id, "--name", "W-02", "--describe", "sex"]) == 1
    assert "FIELD=VALUE" in capsys.readouterr().err
    assert main(["case", "witnesses", case_id]) == 0
    listed = capsys.readouterr().out
    assert "W-01" in listed and "build=slim" in listed and "PC Smith" in listed
    assert main(["lineup", "build", case_id, str(sid), f"{name}:{fid}", "--witness", "W-01", "--seed", "3",
                 "--describe", "age_band=30-39", "--json"]) == 0
    printed = capsys.readouterr().out
    summary = json.loads(printed[:printed.rindex("}") + 1])
    assert summary["witness"] == "1 · W-01 (taken 2026-12-01)"
    with open_case(case_id) as c:
        lu = list_lineups(c)[0]
        assert lu.params["witness"]["id"] == 1
        assert lu.params["description_sources"] == {"sex": "witness record 1",
                                                    "age_band": "typed (overrides the witness record)"}
        assert c.verify().ok
    assert main(["lineup", "build", case_id, str(sid), f"{name}:{fid}", "--witness", "W-07"]) == 1
    assert "no witness description 'W-07'" in capsys.readouterr().err
