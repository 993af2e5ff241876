"""Stored searches, re-runs, decisions, blind review and second-examiner sign-off."""

from __future__ import annotations

import json
import sys
import types
from dataclasses import replace

import pytest

from engine.cases import (
    add_search,
    candidates,
    decision_history,
    get_search,
    list_searches,
    list_signoffs,
    load_engine_rerunner,
    query_images,
    record_decision,
    record_decisions,
    rerun_search,
    scores_hidden,
    sign_off,
    stored_matches,
)
from engine.cli import main
from engine.errors import CaseError
from engine.fsutil import sha256_bytes
from tests.engine.test_cases_support import FakeSearch, face_png, new_case, populated_case
from tests.examiner_helpers import acting_as


def test_search_is_stored_with_manifest_query_images_results_and_thumbnails() -> None:
    case, fs, rec = populated_case(k=8)
    with case:
        stored = get_search(case, rec.id)
        assert stored.manifest["k"] == 8 and stored.manifest["index"] == {"M": 16, "ef_construction": 200, "ef": 200}
        assert [q.sha256 for q in stored.queries] == [q["sha256"] for q in stored.manifest["query"]]
        assert query_images(case, rec.id) == [face_png(2, 128)]
        rows = candidates(case, rec.id)
        _, expected = fs.search([face_png(2, 128)], k=8)
        assert [(c.rank, c.face_id) for c in rows] == [(m.rank, m.face_id) for m in expected]
        assert all(abs(c.score - m.score) < 1e-12 for c, m in zip(rows, expected, strict=True))
        assert rows[0].thumbnail_sha256 == sha256_bytes(face_png(rows[0].face_id, 48))
        assert "thumbnail" not in rows[0].metadata and rows[0].metadata["source"] == "fake"
        entry = [e for e in case.audit_entries() if e.action == "search.add"][0]
        assert entry.inputs["query1"] == stored.queries[0].sha256
        back = stored_matches(case, rec.id)  # every Match field survives, thumbnails moved out of metadata
        assert [replace(m, metadata={}) for m in back] == [replace(m, metadata={}) for m in expected]
        assert rows[0].gallery_name == "Mugshots 2026" and back[0].bbox == (1.0, 2.0, 30.0, 40.0)
        assert entry.outputs["results"] == stored.results_sha256


def test_thumbnails_argument_is_used_when_matches_carry_none() -> None:
    with new_case() as case:
        fs = FakeSearch(thumbnails=False)
        q = face_png(3)
        manifest, matches = fs.search([q], k=3)
        rec = add_search(case, manifest, matches, [q],
                         thumbnails={(matches[1].gallery_id, matches[1].face_id): face_png(500, 40)})
        rows = candidates(case, rec.id)
        assert [r.thumbnail_sha256 is not None for r in rows] == [False, True, False]


def test_search_with_inconsistent_inputs_is_refused_and_leaves_nothing() -> None:
    with new_case() as case:
        fs = FakeSearch()
        q = face_png(3)
        manifest, matches = fs.search([q], k=3)
        with pytest.raises(CaseError, match="does not match the manifest"):
            add_search(case, manifest, matches, [face_png(4)])
        with pytest.raises(CaseError, match="query image"):
            add_search(case, manifest, matches, [])
        with pytest.raises(CaseError, match="lacks index"):
            add_search(case, {k: v for k, v in manifest.items() if k != "index"}, matches, [q])
        assert list_searches(case) == [] and case.verify().ok


def test_rerun_over_unchanged_gallery_is_identical() -> None:
    case, fs, rec = populated_case(k=10)
    with case:
        report = rerun_search(case, rec.id, fs, user="alice")
        assert report.identical and report.manifest_identical and report.changes == []
        assert not (report.added or report.removed or report.moved or report.rescored)
        rerun = get_search(case, report.new_search_id or -1)
        assert rerun.rerun_of == rec.id and rerun.rerun_report and rerun.rerun_report["identical"] is True
        assert rerun.results_sha256 == rec.results_sha256
        assert case.audit_entries()[-1].action == "search.rerun"


def test_rerun_after_adding_photos_reports_what_changed() -> None:
    case, fs, rec = populated_case(k=10)
    with case:
        new_faces = fs.add_faces_like(face_png(2, 128), n=3)
        report = rerun_search(case, rec.id, fs, store=False)
        assert not report.identical and not report.manifest_identical
        assert {a["face_id"] for a in report.added} == set(new_faces)
        assert len(report.removed) == 3 and report.moved
        fields = {c["field"] for c in report.manifest_changes}
        assert fields == {"galleries[g1].content_version", "galleries[g1].face_count"}
        text = "\n".join(report.changes)
        assert "face_count 40 → 43 (grew by 3 faces)" in text and "content_version 1 → 2" in text
        assert "3 new row(s)" in text and report.new_search_id is None
        assert len(list_searches(case)) == 1


def test_rerun_with_a_different_model_and_rescored_list_is_reported() -> None:
    case, fs, rec = populated_case(k=5)
    with case:
        fs.embedder_sha = "0" * 64

        def rescoring(manifest: dict, images: list[bytes]) -> tuple[dict, list]:
            new_manifest, matches = fs(manifest, images)
            return new_manifest, [replace(m, score=m.score + 0.01) for m in matches]

        report = rerun_search(case, rec.id, rescoring, store=False)
        assert not report.identical and len(report.rescored) == 5 and not report.added
        assert any("Embedder changed" in c and "model differs" in c for c in report.changes)


def test_rerun_refuses_when_a_stored_query_image_was_altered() -> None:
    case, fs, rec = populated_case(k=3)
    with case:
        case.file(get_search(case, rec.id).queries[0].path).write_bytes(face_png(77, 128))
        with pytest.raises(CaseError, match="changed after it was stored"):
            rerun_search(case, rec.id, fs)


def test_cli_rerun_explains_a_missing_search_engine_and_uses_it_when_present(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    case, fs, rec = populated_case(k=4)
    case_id = case.case_id
    case.close()
    monkeypatch.setitem(sys.modules, "engine.search", types.ModuleType("engine.search"))
    with pytest.raises(CaseError, match="needs the search engine"):
        load_engine_rerunner()
    assert main(["case", "rerun", case_id, str(rec.id)]) == 1
    assert "engine.search.rerun_for_case" in capsys.readouterr().err
    fake_module = types.ModuleType("engine.search")
    fake_module.rerun_for_case = fs  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "engine.search", fake_module)
    assert main(["case", "rerun", case_id, str(rec.id), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["identical"] is True
    fs.add_faces_like(face_png(2, 128), n=2)
    assert main(["case", "rerun", case_id, str(rec.id)]) == 3
    assert "grew by 2 faces" in capsys.readouterr().out


def test_decisions_keep_history_and_latest_counts() -> None:
    case, _, rec = populated_case(k=5)
    with case:
        face = candidates(case, rec.id)[0].face_id
        record_decision(case, rec.id, face, "excluded", note="tattoo absent", user="alice")
        current = next(c for c in candidates(case, rec.id) if c.face_id == face)
        assert (current.decision, current.note, current.decided_by) == ("excluded", "tattoo absent", "alice")
        history = decision_history(case, rec.id, face)
        assert [d.decision for d in history] == ["possible", "excluded"]
        last = [e for e in case.audit_entries() if e.action == "decision.record"][-1]
        assert last.details["previous"] == "possible" and last.details["decision"] == "excluded"
        with pytest.raises(CaseError, match="Unknown decision"):
            record_decision(case, rec.id, face, "maybe")
        with pytest.raises(CaseError, match="not a candidate"):
            record_decision(case, rec.id, 123456, "possible")


def test_blind_mode_hides_scores_until_every_candidate_is_decided() -> None:
    case, fs, rec = populated_case(k=6, blind=True)
    with case:
        rows = candidates(case, rec.id)
        assert scores_hidden(case, rec.id)
        assert all(c.hidden and c.score is None and c.rank is None for c in rows)
        _, true_order = fs.search([face_png(2, 128)], k=6)
        assert [c.face_id for c in rows] != [m.face_id for m in true_order]  # shuffled
        assert sorted(c.face_id for c in rows) == sorted(m.face_id for m in true_order)
        record_decisions(case, rec.id, [{"face_id": c.face_id, "decision": "excluded"} for c in rows[:5]])
        record_decision(case, rec.id, rows[5].face_id, "not_reviewed")
        assert all(c.score is None for c in candidates(case, rec.id))  # 'not reviewed' is no decision
        assert [c.position for c in candidates(case, rec.id)] == [c.position for c in rows]  # stable order
        record_decision(case, rec.id, rows[5].face_id, "possible", note="same ears")
        revealed = candidates(case, rec.id)
        assert not scores_hidden(case, rec.id)
        by_face = {m.face_id: m for m in true_order}
        assert all(c.rank == by_face[c.face_id].rank and abs(c.score - by_face[c.face_id].score) < 1e-12
                   for c in revealed)
        assert all(d.scores_hidden for d in decision_history(case, rec.id))
        actions = [e.action for e in case.audit_entries()]
        assert actions[-1] == "search.reveal_scores" and actions.count("search.reveal_scores") == 1


def test_second_examiner_signoff_is_audited_and_refused_when_invalid() -> None:
    case, _, rec = populated_case(k=3)
    with case:
        with pytest.raises(CaseError, match="another examiner's key"):
            sign_off(case, "det. alice", scope="all")
        with acting_as("Det. Bob", "B-2002"):
            so = sign_off(case, "Det. Bob", statement="Procedure followed.", search_id=rec.id, scope="all")
        entry = case.audit_entries()[-1]
        assert entry.action == "signoff.record" and entry.user == "Det. Bob"
        assert so.audit_count == entry.seq - 1 and entry.inputs["audit_head"] == so.audit_head
        assert list_signoffs(case) == [so]
        case.conn.execute("UPDATE audit SET user = 'x' WHERE seq = 2")
        with acting_as("Det. Carol", "C-3003"), pytest.raises(CaseError, match="does not verify"):
            sign_off(case, scope="all")
