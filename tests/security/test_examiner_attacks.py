"""Who decided: attacks on examiner identities, per-examiner signatures and two-person peer review.

Each test is an attack the examiner-profile change has to stop; before it, every one of them went
through (a sign-off was a typed name, and only the workstation key signed anything).
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from engine import examiners
from engine.cases import anchor, audit, ledger, registry
from engine.cases.db import canonical_json
from engine.cases.store import SIDECAR_ANCHOR
from tests.engine.test_cases_support import populated_case
from tests.examiner_helpers import REVIEWER, acting_as, ensure_profile
from tests.security.case_forgery import cli


def _case_with_decisions() -> tuple[str, int, list[Any]]:
    """A case by the default examiner (A): one search of 3 candidates, two decided."""
    case, _, rec = populated_case(k=3)
    with case:
        from engine.cases import candidates

        return case.case_id, rec.id, candidates(case, rec.id)


def _review_file(case_id: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], **extra: str) -> Path:
    """B's review file, written under B's profile on this workstation (``--scope`` for the undecided one)."""
    out = tmp_path / "review.json"
    with acting_as():
        code, _, err = cli(capsys, "case", "review-file", case_id, "--out", str(out), "--statement",
                           extra.get("statement", "Checked both decisions against the photos."),
                           "--scope", "the 2 decided candidates only")
    assert code == 0, err
    return out


def _forget_reviewer_profile() -> None:
    """B's profile lives on B's workstation, not here: remove it from this workstation's profile list."""
    path = examiners._profiles_path()
    data = json.loads(path.read_text(encoding="utf-8"))
    data["profiles"] = [p for p in data["profiles"] if p["identifier"] != REVIEWER[1]]
    path.write_text(json.dumps(data), encoding="utf-8")


def test_own_examiner_signing_off_under_another_display_name_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    case_id, _, _ = _case_with_decisions()
    code, _, err = cli(capsys, "case", "signoff", case_id, "--examiner", "B. Reviewer", "--statement", "fine",
                       "--scope", "the 2 decided candidates only")
    assert code == 1 and "another examiner's key" in err, err
    code, out, _ = cli(capsys, "case", "show", case_id, "--json")
    assert json.loads(out)["signoffs"] == []


def test_signoff_with_undecided_candidates_and_no_scope_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    case_id, _, _ = _case_with_decisions()
    ensure_profile(*REVIEWER)
    code, _, err = cli(capsys, "case", "signoff", case_id, "--examiner", REVIEWER[0], "--statement", "fine")
    assert code == 1 and "1 candidate(s) have no decision" in err and "--scope" in err, err
    code, out, err = cli(capsys, "case", "signoff", case_id, "--examiner", REVIEWER[0], "--statement", "fine",
                         "--scope", "the 2 decided candidates only")
    assert code == 0, err
    entry = json.loads(cli(capsys, "case", "audit", case_id, "--json")[1])["entries"][-1]
    assert entry["action"] == "signoff.record" and entry["details"]["scope"] == "the 2 decided candidates only"


def test_review_file_signed_by_an_unknown_key_is_flagged_unknown(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    case_id, _, _ = _case_with_decisions()
    review = _review_file(case_id, tmp_path, capsys)
    _forget_reviewer_profile()
    code, out, err = cli(capsys, "case", "review-import", case_id, str(review))
    assert code == 0, err
    assert "UNKNOWN KEY" in out and "trust accept" in out
    code, out, _ = cli(capsys, "case", "verify", case_id)
    assert code == 0 and "unknown key: B. Reviewer (B-2002)" in out


@pytest.mark.parametrize("field", ["statement", "audit_head", "signature"])
def test_review_file_with_altered_signature_or_head_is_refused(field: str, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    case_id, _, _ = _case_with_decisions()
    review = _review_file(case_id, tmp_path, capsys)
    data = json.loads(review.read_text())
    data[field] = {"statement": "I agree with everything.", "audit_head": "0" * 64,
                   "signature": "00" * 64}[field]
    review.write_text(json.dumps(data))
    code, _, err = cli(capsys, "case", "review-import", case_id, str(review))
    assert code == 1 and "Refused" in err and "signature does not hold" in err, err


def test_review_file_resigned_over_a_head_not_in_the_case_is_refused(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    case_id, _, _ = _case_with_decisions()
    review = _review_file(case_id, tmp_path, capsys)
    data = json.loads(review.read_text())
    data["audit_head"] = "ab" * 32  # a head of another record, signed properly by the reviewer
    data.pop("signature")
    data["signature"] = examiners.sign(examiners.find(REVIEWER[1]), "case-review", data)
    review.write_text(json.dumps(data))
    code, _, err = cli(capsys, "case", "review-import", case_id, str(review))
    assert code == 1 and "not one of this case's own entries" in err, err


def _resign_entry_as(folder: Path, case_id: str, seq: int, signer: examiners.Profile) -> None:
    """An insider holding the workstation key and B's key rewrites entry ``seq`` as B's and re-signs it all:

    the entry, the chain after it, the meta head, the workstation's head signature and every anchor copy.
    """
    conn = sqlite3.connect(folder / "case.sqlite", isolation_level=None)
    conn.row_factory = sqlite3.Row
    try:
        conn.execute("BEGIN")
        rows = conn.execute("SELECT * FROM audit ORDER BY seq").fetchall()
        prev = audit.genesis_hash(case_id)
        for r in rows:
            if r["seq"] < seq:
                prev = r["hash"]
                continue
            details = json.loads(r["details"])
            if r["seq"] == seq:
                details[audit.AUTHOR] = signer.author()
                body = audit.signed_body(case_id, r["seq"], r["ts"], r["user"], r["action"], r["object"],
                                         json.loads(r["inputs"]), json.loads(r["outputs"]), details, prev)
                details[audit.AUTHOR_SIGNATURE] = examiners.sign(signer, "audit-entry", body)
            h = audit.entry_hash(case_id, r["seq"], r["ts"], r["user"], r["action"], r["object"],
                                 json.loads(r["inputs"]), json.loads(r["outputs"]), details, prev)
            conn.execute("UPDATE audit SET details = ?, prev_hash = ?, hash = ? WHERE pos = ?",
                         (canonical_json(details), prev, h, r["pos"]))
            prev = h
        count = len(rows)
        conn.execute("UPDATE meta SET value = ? WHERE key = 'audit_anchor'",
                     (canonical_json({"count": count, "head": prev}),))
        anchor.write_signature(conn, anchor.sign_head(case_id, count, prev))
        conn.execute("COMMIT")
    finally:
        conn.close()
    (folder / SIDECAR_ANCHOR).write_text(json.dumps({"case_id": case_id, "count": count, "head": prev}))
    registry.update_anchor(case_id, count, prev)
    ledger.record(case_id, count, prev, reset=True)


def test_decision_resigned_with_another_profiles_key_after_the_fact_is_found(
        capsys: pytest.CaptureFixture[str]) -> None:
    case, _, rec = populated_case(k=3)
    with case:
        from engine.cases import update_case

        update_case(case, notes="A's next entry, signed over the decision's hash", user="alice")
        decision = next(e for e in case.audit_entries() if e.action == "decision.record")
        folder, case_id = case.folder, case.case_id
    bob = ensure_profile(*REVIEWER)
    _resign_entry_as(folder, case_id, decision.seq, bob)
    code, out, _ = cli(capsys, "case", "verify", case_id)
    assert code == 3, out
    assert f"Entry #{decision.seq + 1}" in out and "does not carry a valid signature by the examiner it names" in out


def test_revoked_keys_later_signature_is_a_finding_and_earlier_ones_stay_valid(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case, _, rec = populated_case(k=3)
    with case:
        from engine.cases import update_case

        time.sleep(1.1)  # entries carry times to the second: the revocation falls between two of them
        update_case(case, notes="written after the key was reported stolen", user="alice")
        last = case.audit_entries()[-1]
        case_id = case.case_id
    me = examiners.require_current()
    agency = tmp_path / "agency_keys.json"
    agency.write_text(json.dumps({"agency": "County Forensics", "examiners": [
        {**examiners.export_key(), "revoked_at": last.ts, "revoke_reason": "laptop stolen"}]}))
    code, _, err = cli(capsys, "examiner", "trust", "import", str(agency))
    assert code == 0, err
    code, out, _ = cli(capsys, "case", "verify", case_id)
    assert code == 3
    assert f"Entry #{last.seq} was signed by examiner key {me.fingerprint[:16]} after that key was revoked" in out
    assert f"Entry #{last.seq - 1} was" not in out  # earlier signatures are no finding ...
    assert "signature(s) made before the revocation stay valid" in out  # ... but carry a note
