"""Case store: folders, WAL, registry, chosen locations, sketches with versions, generated images, attachments."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from engine import paths
from engine.cases import (
    add_attachment,
    add_generated_image,
    add_sketch,
    get_generated,
    list_cases,
    list_sketches,
    open_case,
    update_case,
)
from engine.errors import BadImage, CaseError
from engine.fsutil import sha256_bytes
from tests.engine.test_cases_support import face_png, new_case


def test_new_case_has_folders_wal_database_and_is_findable_by_id_number_and_folder() -> None:
    with new_case() as case:
        folder = case.folder
        case_id = case.case_id
        assert folder.parent == paths.cases_dir()
        for sub in ("sketches", "generated", "attachments", "reports"):
            assert (folder / sub).is_dir()
        assert case.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        info = case.info
        assert (info.case_number, info.examiner, info.witnesses) == ("2026-0042", "Det. Alice", ("W1", "W2"))
    for ref in (case_id, "2026-0042", str(folder)):
        with open_case(ref) as again:
            assert again.case_id == case_id
    rows = list_cases()
    assert [r["case_id"] for r in rows] == [case_id] and rows[0]["available"]


def test_case_can_live_in_a_chosen_folder_and_is_remembered_by_the_registry(tmp_path: Path) -> None:
    volume = tmp_path / "encrypted_volume"
    with new_case("2026-0100", location=volume) as case:
        case_id = case.case_id
        assert case.folder == volume / case_id
    assert not (paths.cases_dir() / case_id).exists()
    with open_case("2026-0100") as again:
        assert again.folder == volume / case_id
    assert any(r["case_id"] == case_id and r["available"] for r in list_cases())


def test_duplicate_case_number_and_unknown_case_are_refused() -> None:
    new_case().close()
    with pytest.raises(CaseError, match="already exists"):
        new_case()
    with pytest.raises(CaseError, match="No case"):
        open_case("9999-0000")


def test_sketch_versions_keep_exact_bytes_hash_and_witness() -> None:
    with new_case() as case:
        png1, png2 = face_png(1, 96), face_png(2, 96)
        v1 = add_sketch(case, png1, witness="W1", name="Composite A", user="alice")
        v2 = add_sketch(case, png2, witness="W1", sketch_id=v1.sketch_id, note="nose narrower", user="alice")
        other = add_sketch(case, face_png(3, 96), witness="W2", user="alice")
        assert (v1.version, v2.version, other.version) == (1, 2, 1)
        assert other.sketch_id != v1.sketch_id
        assert v2.sha256 == sha256_bytes(png2) and v2.name == "Composite A" and v2.note == "nose narrower"
        assert case.file(v2.path).read_bytes() == png2
        assert [s.id for s in list_sketches(case)] == [v1.id, v2.id, other.id]
        with pytest.raises(CaseError, match="belongs to witness"):
            add_sketch(case, png1, witness="W2", sketch_id=v1.sketch_id)
        with pytest.raises(BadImage):
            add_sketch(case, b"not an image at all", witness="W1")
        with pytest.raises(CaseError, match="witness"):
            add_sketch(case, png1, witness=" ")


def test_generated_image_is_linked_to_its_parameters_and_parent() -> None:
    with new_case() as case:
        v1 = add_sketch(case, face_png(1), witness="W1")
        params = {"seed": 42, "steps": 30, "ip_adapter_scale": 0.7, "models": {"ip_adapter.faceid_sd15": "f" * 64}}
        g1 = add_generated_image(case, face_png(5), params, parent=v1, note="first try")
        g2 = add_generated_image(case, face_png(6), {"seed": 43}, parent=g1)
        assert get_generated(case, g1.id).params == params
        assert g1.parent == f"sketch_version:{v1.id}" and g2.parent == f"generated:{g1.id}"
        assert g1.params_sha256 == sha256_bytes(json.dumps(params, sort_keys=True, separators=(",", ":")).encode())
        entry = [e for e in case.audit_entries() if e.action == "generated.add"][0]
        assert entry.outputs["image"] == g1.sha256 and entry.inputs["params"] == g1.params_sha256
        with pytest.raises(CaseError, match="does not exist"):
            add_generated_image(case, face_png(7), {}, parent="sketch_version:999")
        with pytest.raises(CaseError, match="JSON"):
            add_generated_image(case, face_png(7), {"bad": object()})


def test_attachment_name_cannot_escape_the_case_folder() -> None:
    with new_case() as case:
        a = add_attachment(case, b"witness statement", "../../etc/statement W1.txt", note="scan")
        assert a.name == "../../etc/statement W1.txt"
        assert case.file(a.path).parent == (case.folder / "attachments").resolve()
        assert case.file(a.path).read_bytes() == b"witness statement"
        with pytest.raises(CaseError, match="outside the case folder"):
            case.file("../outside.txt")


def test_every_change_is_audited_with_who_and_hashes() -> None:
    with new_case() as case:
        v1 = add_sketch(case, face_png(1), witness="W1", user="bob")
        update_case(case, status="closed", notes="suspect charged", user="carol")
        with pytest.raises(CaseError, match="status"):
            update_case(case, status="lost")
        entries = case.audit_entries()
        assert [e.action for e in entries] == ["case.create", "sketch.add_version", "case.update"]
        assert [e.user for e in entries] == ["alice", "bob", "carol"]
        assert entries[1].outputs == {"image": v1.sha256}
        assert entries[2].details["before"] == {"status": "open", "notes": ""}
        assert entries[2].details["after"] == {"status": "closed", "notes": "suspect charged"}
        assert case.info.status == "closed"


def test_a_failed_change_leaves_no_record_and_no_audit_entry() -> None:
    with new_case() as case:
        before = case.conn.execute("SELECT COUNT(*) FROM audit").fetchone()[0]
        with pytest.raises(CaseError):
            add_sketch(case, face_png(1), witness="W1", sketch_id=77)
        assert case.conn.execute("SELECT COUNT(*) FROM audit").fetchone()[0] == before
        assert case.conn.execute("SELECT COUNT(*) FROM sketch_versions").fetchone()[0] == 0
        assert case.verify().ok


def test_database_survives_reopening_from_another_connection() -> None:
    with new_case() as case:
        add_sketch(case, face_png(1), witness="W1")
        path = case.folder / "case.sqlite"
        other = sqlite3.connect(path)  # a reader while the case is open (WAL)
        assert other.execute("SELECT COUNT(*) FROM sketch_versions").fetchone()[0] == 1
        other.close()
