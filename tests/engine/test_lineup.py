"""Photo line-ups built from the gallery: fillers fit the description, are other people, sit in the band,
the suspect's position follows the recorded seed, and a gallery that cannot supply fillers builds nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from engine.cases import lineup as lineup_records
from engine.workstation import Workstation
from engine.workstation.lineup import LineupError, LineupRules, age_band, build_lineup, suspect_position
from tests.engine.test_lineup_support import build_gallery, case_with_candidate


@pytest.fixture
def ws() -> Iterator[Workstation]:
    w = Workstation()
    yield w
    w.close()


@pytest.fixture
def setting(ws: Workstation) -> tuple[Any, Any, int, int]:
    g = build_gallery(ws)
    case, sid, fid = case_with_candidate(g)
    return g, case, sid, fid


def test_fillers_fit_the_description_are_other_people_and_sit_in_the_band(ws: Workstation, setting: Any) -> None:
    g, case, sid, fid = setting
    lu = build_lineup(ws, case, sid, g.id, fid, LineupRules(seed=42))
    assert len(lu.members) == 6 and [m.position for m in lu.members] == [1, 2, 3, 4, 5, 6]
    suspect = lu.suspect
    assert (suspect.gallery_id, suspect.face_id) == (g.id, fid)
    assert lu.description == {"sex": "M", "age_band": "30-39"}
    assert lu.params["description_sources"] == {"sex": "suspect's gallery record", "age_band": "suspect's gallery record"}
    infos = g.store.face_infos([m.face_id for m in lu.members])
    lo, hi = lu.params["band"]
    assert lo < hi and "quantiles 0.50–0.99" in lu.params["band_source"]
    q = g.store.embeddings([fid])[0]
    case_subjects = lineup_records.case_subjects(case)
    assert len(case_subjects) == 3
    for m in lu.members:
        info = infos[m.face_id]
        assert info.metadata["sex"] == "M" and age_band(info.metadata) == "30-39"  # fits, read from the gallery
        assert m.subject_id == info.subject_id
        if m.role == "filler":
            sim = float(g.store.embeddings([m.face_id])[0] @ q)
            assert lo <= sim <= hi and abs(sim - m.similarity) < 1e-5
            assert m.subject_id not in case_subjects
    subjects = [m.subject_id for m in lu.members]
    assert len(set(subjects)) == len(subjects)  # one row per subject: the suspect's second photo never a filler
    assert lu.warning == ""
    assert case.verify().ok


def test_witness_description_values_win_and_are_recorded_as_such(ws: Workstation, setting: Any) -> None:
    g, case, sid, fid = setting
    lu = build_lineup(ws, case, sid, g.id, fid, LineupRules(seed=5, match=("sex",), description={"sex": "m"}))
    assert lu.description == {"sex": "m"} and lu.params["description_sources"] == {"sex": "witness description"}
    infos = g.store.face_infos([m.face_id for m in lu.members])
    assert {i.metadata["sex"] for i in infos.values()} == {"M"}


def test_suspect_position_follows_the_recorded_seed(ws: Workstation, setting: Any) -> None:
    g, case, sid, fid = setting
    positions = set()
    for seed in (1, 2, 3, 4, 11, 12):
        lu = build_lineup(ws, case, sid, g.id, fid, LineupRules(seed=seed))
        assert lu.seed == seed and lu.suspect.position == suspect_position(seed, 6)
        positions.add(lu.suspect.position)
    assert len(positions) > 1  # negative control: the position does change with the seed
    again = build_lineup(ws, case, sid, g.id, fid, LineupRules(seed=3))
    first = next(x for x in lineup_records.list_lineups(case) if x.seed == 3)
    assert [(m.face_id, m.role) for m in again.members] == [(m.face_id, m.role) for m in first.members]
    drawn = build_lineup(ws, case, sid, g.id, fid)  # no seed given: one is drawn and recorded
    assert drawn.suspect.position == suspect_position(drawn.seed, 6)


def test_a_gallery_too_small_or_too_narrow_builds_nothing(ws: Workstation) -> None:
    g = build_gallery(ws, per_group=3, groups=(("M", "30-39"), ("F", "20-29")))
    case, sid, fid = case_with_candidate(g, k=1)
    before = len(case.audit_entries())
    with pytest.raises(LineupError, match="at least 20 are needed"):
        build_lineup(ws, case, sid, g.id, fid, LineupRules(seed=1))
    with pytest.raises(LineupError, match=r"Only \d+ subject\(s\) fit the description .*needs 5 fillers"):
        build_lineup(ws, case, sid, g.id, fid, LineupRules(seed=1, band=(-1.0, 1.0)))
    assert len(case.audit_entries()) == before and lineup_records.list_lineups(case) == []


def test_a_narrow_band_gives_the_counts_and_builds_nothing(ws: Workstation, setting: Any) -> None:
    g, case, sid, fid = setting
    with pytest.raises(LineupError) as err:
        build_lineup(ws, case, sid, g.id, fid, LineupRules(seed=1, quantiles=(0.995, 0.999)))
    assert "non-mates" in err.value.message and "Nothing was built" in err.value.message
    assert lineup_records.list_lineups(case) == []


def test_a_swap_is_recorded_with_its_reason_and_the_fairness_recomputed(ws: Workstation, setting: Any) -> None:
    g, case, sid, fid = setting
    lu = build_lineup(ws, case, sid, g.id, fid, LineupRules(seed=7))
    filler = next(m for m in lu.members if m.role == "filler")
    from engine.workstation.lineup import swap_filler

    with pytest.raises(Exception, match="Say why"):
        swap_filler(ws, case, lu.id, filler.position, "  ")
    swapped = swap_filler(ws, case, lu.id, filler.position, "tattoo on the neck makes him distinctive")
    new = next(m for m in swapped.members if m.position == filler.position)
    assert new.subject_id not in {m.subject_id for m in lu.members}
    assert new.metadata["fits_description"] and new.metadata["in_band"]
    assert swapped.swaps[0].reason == "tattoo on the neck makes him distinctive"
    assert swapped.swaps[0].old == (filler.gallery_id, filler.face_id)
    with pytest.raises(Exception, match="only fillers"):
        swap_filler(ws, case, lu.id, lu.suspect.position, "no")
    assert case.verify().ok


def test_fairness_figures_stay_recordable_when_no_mock_witness_picks_the_suspect() -> None:
    """When no mock witness picks the suspect, functional size is undefined (None), never infinity, which the
    record's canonical JSON refuses."""
    from engine.cases.db import canonical_json
    from engine.cases.lineup_fairness import mock_witnesses

    members = [{"sex": "F"}] + [{"sex": "M"}] * 5  # the suspect fits nothing the witness said
    figures = mock_witnesses(members, {"sex": "M"}, 0, seed=3, m=3)
    assert figures["counts"][0] == 0 and figures["functional_size"] is None
    canonical_json(figures)  # recordable
    assert mock_witnesses(members, {"sex": "M"}, 0, seed=3, m=3) == figures  # the seed fixes the simulation
