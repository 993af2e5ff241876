"""A revoked examiner key writes nothing: the write is refused with a message naming the key and what to do.

Before this change a revoked (stolen, rotated) key went on signing new audit entries; verify only
flagged them afterwards. Verify still flags a later signature that got in by other means (see
test_examiner_attacks), but the workstation no longer makes one.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from engine import examiners
from tests.security.case_forgery import cli


def _new_case(capsys: pytest.CaptureFixture[str], number: str) -> str:
    code, out, err = cli(capsys, "case", "new", number, "--title", "Revoked key", "--json")
    assert code == 0, err
    return str(json.loads(out)["case_id"])


def _audit_count(capsys: pytest.CaptureFixture[str], case_id: str) -> int:
    code, out, err = cli(capsys, "case", "audit", case_id, "--json")
    assert code == 0, err
    return len(json.loads(out)["entries"])


def test_a_write_signed_by_a_revoked_profile_key_is_refused_at_write_time(
        capsys: pytest.CaptureFixture[str]) -> None:
    case_id = _new_case(capsys, "2026-0901")
    me = examiners.require_current()
    before = _audit_count(capsys, case_id)
    time.sleep(1.1)  # entries carry times to the second: the revocation falls after every entry so far
    code, _, err = cli(capsys, "examiner", "revoke", me.fingerprint, "--reason", "laptop stolen")
    assert code == 0, err
    code, _, err = cli(capsys, "case", "update", case_id, "--notes", "written with the stolen key")
    assert code == 1, "a revoked key must not sign a new entry"
    assert f"key {me.fingerprint[:16]}" in err and "was revoked" in err and "laptop stolen" in err, err
    assert "examiner rotate" in err, "the message says what to do"
    assert _audit_count(capsys, case_id) == before, "nothing was written"
    code, out, _ = cli(capsys, "case", "verify", case_id)
    assert code == 0, out  # what was written before the revocation stays valid


def test_a_review_file_cannot_be_signed_with_a_revoked_key(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    case_id = _new_case(capsys, "2026-0902")
    from tests.examiner_helpers import acting_as

    with acting_as() as bob:
        time.sleep(1.1)
        code, _, err = cli(capsys, "examiner", "revoke", bob.fingerprint, "--reason", "left the unit")
        assert code == 0, err
        code, _, err = cli(capsys, "case", "review-file", case_id, "--out", str(tmp_path / "r.json"),
                           "--statement", "Reviewed.")
    assert code == 1 and "was revoked" in err, err
    assert not (tmp_path / "r.json").exists()


def test_control_an_unrevoked_profile_still_writes(capsys: pytest.CaptureFixture[str]) -> None:
    case_id = _new_case(capsys, "2026-0903")
    before = _audit_count(capsys, case_id)
    code, _, err = cli(capsys, "case", "update", case_id, "--notes", "an ordinary change")
    assert code == 0, err
    assert _audit_count(capsys, case_id) == before + 1
