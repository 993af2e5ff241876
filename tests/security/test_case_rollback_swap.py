"""Finding 8: a rollback and a folder swap are found without a printed head.

Rollback: the attacker keeps a copy of the case folder *and* of the data folder's case registry,
lets the examiner work on, then puts both copies back. Everything the data folder holds then agrees
with the old state; only what the workstation key authenticates outside it still records the newer
head. Swap: the folder registered for one case is replaced by another case's folder.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from engine.cases import ledger, registry, update_case
from tests.engine.test_cases_support import new_case
from tests.security.case_forgery import cli


def _snapshot(folder: Path, tmp: Path) -> tuple[Path, bytes]:
    saved = tmp / "saved_case"
    shutil.copytree(folder, saved)
    return saved, registry.registry_path().read_bytes()


def _restore(folder: Path, saved: Path, reg: bytes) -> None:
    shutil.rmtree(folder)
    shutil.copytree(saved, folder)
    registry.registry_path().write_bytes(reg)


def test_rollback_with_the_registry_restored_is_found(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with new_case() as case:
        folder = case.folder
        saved, reg = _snapshot(folder, tmp_path)
        update_case(case, notes="suspect named by W2", user="alice")
        update_case(case, status="closed", user="alice")
    _restore(folder, saved, reg)
    code, out, _ = cli(capsys, "case", "verify", "2026-0042")
    assert code == 3, out
    assert "truncated" in out or "missing from the end" in out
    code, _, err = cli(capsys, "case", "update", "2026-0042", "--notes", "x", "--user", "alice")
    assert code == 1 and "read-only" in err  # and no write hides it


def test_registry_anchor_garbled_is_found(capsys: pytest.CaptureFixture[str]) -> None:
    with new_case() as case:
        update_case(case, notes="n", user="alice")
        case_id = case.case_id
    data = json.loads(registry.registry_path().read_text())
    data["cases"][case_id]["anchor"]["count"] = 1  # an older, plausible count
    registry.registry_path().write_text(json.dumps(data))
    code, out, _ = cli(capsys, "case", "verify", "2026-0042")
    assert code == 3 and "registry" in out and "altered" in out, out


def test_verified_head_record_garbled_is_found(capsys: pytest.CaptureFixture[str]) -> None:
    with new_case() as case:
        case_id = case.case_id
    data = json.loads(ledger.ledger_path().read_text())
    data["cases"][case_id]["head"] = "0" * 64
    ledger.ledger_path().write_text(json.dumps(data))
    code, out, _ = cli(capsys, "case", "verify", "2026-0042")
    assert code == 3 and "altered" in out, out


def test_verify_names_the_case_it_checked(capsys: pytest.CaptureFixture[str]) -> None:
    with new_case() as case:
        case_id, folder = case.case_id, case.folder
    code, out, _ = cli(capsys, "case", "verify", "2026-0042")
    assert code == 0
    assert "2026-0042" in out and case_id in out and str(folder) in out
    doc = json.loads(cli(capsys, "case", "verify", "2026-0042", "--json")[1])
    assert (doc["case"]["case_number"], doc["case"]["case_id"], doc["case"]["folder"]) == \
        ("2026-0042", case_id, str(folder))


def test_folder_swapped_in_from_another_case_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with new_case("C1") as c1, new_case("C2") as c2:
        f1, f2, id1, id2 = c1.folder, c2.folder, c1.case_id, c2.case_id
    shutil.rmtree(f1)
    shutil.copytree(f2, f1)
    for ref in ("C1", id1):
        code, out, err = cli(capsys, "case", "verify", ref)
        assert code == 1 and "intact" not in out, out
        assert id1 in err and id2 in err and "swapped" in err, err
    assert cli(capsys, "case", "verify", "C2")[0] == 0  # control: the real C2 still verifies


def test_control_a_case_moved_by_the_user_still_verifies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with new_case() as case:
        folder = case.folder
    moved = tmp_path / "volume" / folder.name
    moved.parent.mkdir()
    shutil.move(str(folder), moved)
    assert cli(capsys, "case", "verify", str(moved))[0] == 0  # same case id: a move is no swap


def test_verified_head_record_garbled_whole_is_found_and_not_overwritten(capsys: pytest.CaptureFixture[str]) -> None:
    with new_case():
        pass
    ledger.ledger_path().write_text("{ not json")
    code, out, _ = cli(capsys, "case", "verify", "2026-0042")
    assert code == 3 and "verified-head record" in out, out
    code, _, err = cli(capsys, "case", "update", "2026-0042", "--notes", "x", "--user", "alice")
    assert code == 1 and "read-only" in err
    assert ledger.ledger_path().read_text() == "{ not json"  # kept as evidence
