"""Audit chain: edits, deletions, reorders and truncation are detected and located; records are covered too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cases import add_sketch, audit, ledger, registry
from engine.cases.db import canonical_json
from engine.cases.store import SIDECAR_ANCHOR, Case
from engine.cli import main
from tests.engine.test_cases_support import face_png, new_case, populated_case


def _case_with_entries(n_sketches: int = 8) -> Case:
    case = new_case()
    for i in range(n_sketches):
        add_sketch(case, face_png(i, 32), witness="W1", user=f"user{i}")
    return case  # entries: #1 case.create, #2..#(n+1) sketch versions


def _kinds(case: Case) -> list[tuple[str, int | None]]:
    return [(f.kind, f.seq) for f in case.verify().findings]


def test_intact_chain_verifies_against_all_anchors() -> None:
    with _case_with_entries() as case:
        report = case.verify()
        assert report.ok and report.count == 9 and not report.findings
        assert report.anchors_checked == ["case meta record", f"anchor file {SIDECAR_ANCHOR}",
                                          "workstation case registry", "verified-head record (config folder)"]
        assert report.head == case.audit_entries()[-1].hash


def test_edited_entry_is_located() -> None:
    with _case_with_entries() as case:
        case.conn.execute("UPDATE audit SET user = 'mallory' WHERE seq = 4")
        report = case.verify()
        assert not report.ok
        assert [(f.kind, f.seq, f.position) for f in report.findings] == [("edited", 4, 4)]
        assert "Entry #4" in report.findings[0].message


def test_edited_entry_with_recomputed_hash_is_located_by_the_next_link() -> None:
    with _case_with_entries() as case:
        e = case.audit_entries()[4]  # entry #5
        forged_details = dict(e.details, witness="W9")
        h = audit.entry_hash(case.case_id, e.seq, e.ts, e.user, e.action, e.object, e.inputs, e.outputs,
                             forged_details, e.prev_hash)
        case.conn.execute("UPDATE audit SET details = ?, hash = ? WHERE seq = 5", (json.dumps(forged_details), h))
        assert _kinds(case) == [("replaced", 5)]


def test_deleted_entry_is_located() -> None:
    with _case_with_entries() as case:
        case.conn.execute("DELETE FROM audit WHERE seq = 6")
        findings = case.verify().findings
        assert ("deleted", 6) in [(f.kind, f.seq) for f in findings]
        assert all(f.seq == 6 or f.kind == "record" for f in findings)


def test_deleted_entry_with_later_entries_renumbered_is_still_located() -> None:
    with _case_with_entries() as case:
        case.conn.execute("DELETE FROM audit WHERE seq = 3")
        case.conn.execute("UPDATE audit SET seq = seq - 1 WHERE seq > 3")
        kinds = _kinds(case)
        assert ("deleted", 3) in kinds
        assert ("reordered", 4) in kinds  # entry #4 now stored under number 3, found by its own hash


def test_reordered_entries_are_located_when_rows_swap_places() -> None:
    with _case_with_entries() as case:
        c = case.conn
        c.execute("UPDATE audit SET pos = -1 WHERE seq = 3")
        c.execute("UPDATE audit SET pos = 3 WHERE seq = 4")
        c.execute("UPDATE audit SET pos = 4 WHERE seq = 3 AND pos = -1")
        findings = case.verify().findings
        assert sorted((f.kind, f.seq, f.position) for f in findings) == [("reordered", 3, 4), ("reordered", 4, 3)]


def test_reordered_entries_are_located_when_contents_swap_but_numbers_stay() -> None:
    with _case_with_entries() as case:
        cols = "ts, user, action, object, inputs, outputs, details, prev_hash, hash"
        r3 = case.conn.execute(f"SELECT {cols} FROM audit WHERE seq = 3").fetchone()
        r4 = case.conn.execute(f"SELECT {cols} FROM audit WHERE seq = 4").fetchone()
        sets = ", ".join(f"{c.strip()} = ?" for c in cols.split(","))
        case.conn.execute(f"UPDATE audit SET {sets} WHERE seq = 3", tuple(r4))
        case.conn.execute(f"UPDATE audit SET {sets} WHERE seq = 4", tuple(r3))
        kinds = _kinds(case)
        assert ("reordered", 4) in kinds and ("reordered", 3) in kinds
        assert not [k for k in kinds if k[0] == "edited"]


def test_truncated_tail_is_detected_by_the_meta_anchor() -> None:
    with _case_with_entries() as case:
        case.conn.execute("DELETE FROM audit WHERE seq >= 8")
        findings = [f for f in case.verify().findings if f.kind == "truncated"]
        assert findings and findings[0].seq == 8
        assert "#8–#9" in findings[0].message and "case meta record" in findings[0].message


def test_truncation_with_forged_meta_anchor_is_caught_by_the_sidecar_and_registry() -> None:
    with _case_with_entries() as case:
        last_kept = case.audit_entries()[6]  # entry #7
        case.conn.execute("DELETE FROM audit WHERE seq >= 8")
        case.conn.execute("UPDATE meta SET value = ? WHERE key = 'audit_anchor'",
                          (canonical_json({"count": 7, "head": last_kept.hash}),))
        report = case.verify()
        messages = [f.message for f in report.findings if f.kind == "truncated"]
        assert not report.ok and all(f.seq == 8 for f in report.findings if f.kind == "truncated")
        assert any(SIDECAR_ANCHOR in m for m in messages) and any("registry" in m for m in messages)
        # the sidecar deleted as well: the registry and the verified-head record (outside the case folder) still know
        (case.folder / SIDECAR_ANCHOR).unlink()
        truncated = [f.message for f in case.verify().findings if f.kind == "truncated"]
        assert len(truncated) == 2 and "registry" in truncated[0] and "verified-head" in truncated[1]


def test_truncation_with_every_local_anchor_forged_is_caught_by_a_printed_head(tmp_path: Path) -> None:
    with _case_with_entries() as case:
        printed = (9, case.audit_entries()[-1].hash)
        kept = case.audit_entries()[6]
        case.conn.execute("DELETE FROM audit WHERE seq >= 8")
        case.conn.execute("UPDATE meta SET value = ? WHERE key = 'audit_anchor'",
                          (canonical_json({"count": 7, "head": kept.hash}),))
        (case.folder / SIDECAR_ANCHOR).unlink()
        registry.update_anchor(case.case_id, 7, kept.hash)  # this forger holds the workstation key ...
        ledger.record(case.case_id, 7, kept.hash, reset=True)  # ... so the config folder's record is forged too
        # the sketches whose entries were cut off no longer match the log, and the signed head is #9 ...
        assert {f.kind for f in case.verify().findings} == {"record", "signature"}
        case.conn.execute("DELETE FROM sketch_versions WHERE sketch_id >= 7")
        case.conn.execute("DELETE FROM sketches WHERE id >= 7")
        # ... so without the workstation key the cut stays visible at the first missing entry
        assert [(f.kind, f.seq) for f in case.verify().findings] == [("signature", 8)]
        # a forger who also holds the workstation key re-signs the shortened head: now only a copy from
        # outside the workstation can tell
        case.conn.execute("BEGIN IMMEDIATE")
        case._sign_head()
        case.conn.execute("COMMIT")
        assert case.verify().ok
        report = case.verify(expected=printed)
        assert [(f.kind, f.seq) for f in report.findings] == [("truncated", 8)]


def test_a_log_from_another_case_does_not_verify() -> None:
    with _case_with_entries(2) as case:
        entries = case.audit_entries()
        report = audit.verify("some-other-case", entries, [])
        assert not report.ok and {f.kind for f in report.findings} == {"edited"}


def test_records_are_checked_against_the_log() -> None:
    case, _, rec = populated_case(k=5)
    with case:
        case.conn.execute("UPDATE results SET score = 0.99 WHERE search_id = ? AND rank = 3", (rec.id,))
        case.conn.execute("UPDATE decisions SET decision = 'possible' WHERE decision = 'excluded'")
        v = case.conn.execute("SELECT path FROM sketch_versions LIMIT 1").fetchone()[0]
        case.file(v).write_bytes(face_png(99, 32))
        messages = [f.message for f in case.verify().findings if f.kind == "record"]
        assert any(f"Results of search {rec.id}" in m and "altered" in m for m in messages)
        assert any("Decision" in m and "does not match its audit entry" in m for m in messages)
        assert any(v in m and "SHA-256" in m for m in messages)


def test_cli_verify_reports_location_and_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    with _case_with_entries(3) as case:
        case_id = case.case_id
        head = f"4:{case.audit_entries()[-1].hash}"
    assert main(["case", "verify", case_id, "--expect-head", head]) == 0
    assert "intact" in capsys.readouterr().out
    assert main(["case", "verify", case_id, "--head", head.split(":")[1]]) == 0
    assert "valid signature by this workstation" in capsys.readouterr().out
    assert main(["case", "verify", case_id, "--head", "0" * 64]) == 3
    assert "not in this log" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["case", "verify"])
    capsys.readouterr()
    from engine.cases import open_case

    with open_case(case_id) as case:
        case.conn.execute("UPDATE audit SET action = 'sketch.deleted' WHERE seq = 2")
    assert main(["case", "verify", case_id, "--json"]) == 3
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is False and out["findings"][0]["seq"] == 2 and out["findings"][0]["kind"] == "edited"
