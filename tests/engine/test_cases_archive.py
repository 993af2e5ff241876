"""Case export/import: a faithful round trip, and refusal of tampered, incomplete or path-escaping archives."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from engine.cases import (
    add_attachment,
    add_generated_image,
    candidates,
    export_case,
    import_case,
    list_sketches,
    open_case,
)
from engine.cases.archive import MANIFEST_NAME
from engine.cli import main
from engine.errors import CaseError
from tests.engine.test_cases_support import face_png, populated_case


def _exported(tmp_path: Path) -> tuple[Path, str, dict]:
    """Export a populated case, then forget it locally (as if on the sending workstation)."""
    case, _, rec = populated_case(k=6)
    with case:
        add_generated_image(case, face_png(9, 64), {"seed": 5}, parent=list_sketches(case)[0])
        add_attachment(case, b"statement", "statement.txt")
        before = {"case_id": case.case_id, "entries": [e.hash for e in case.audit_entries()],
                  "candidates": [c.to_dict() for c in candidates(case, rec.id)],
                  "sketches": [case.file(v.path).read_bytes() for v in list_sketches(case)], "search": rec.id}
        res = export_case(case, tmp_path / "case.zip", user="alice")
        assert case.audit_entries()[-1].action == "case.export"
        assert case.audit_entries()[-1].outputs["archive"] == res.sha256
        folder = case.folder
    import shutil

    from engine.cases import registry

    shutil.rmtree(folder)
    cases = registry.load()
    cases.pop(before["case_id"])
    registry._save(cases)
    return res.path, res.sha256, before


def test_round_trip_restores_the_case_exactly_and_records_the_import(tmp_path: Path) -> None:
    archive, digest, before = _exported(tmp_path)
    with import_case(archive, location=tmp_path / "other_ws", expected_sha256=digest, user="bob") as case:
        assert case.case_id == before["case_id"] and case.folder == tmp_path / "other_ws" / case.case_id
        entries = case.audit_entries()
        assert [e.hash for e in entries[: len(before["entries"])]] == before["entries"]
        assert entries[-1].action == "case.import" and entries[-1].inputs["archive"] == digest
        assert [c.to_dict() for c in candidates(case, before["search"])] == before["candidates"]
        assert [case.file(v.path).read_bytes() for v in list_sketches(case)] == before["sketches"]
        assert case.verify().ok
    with open_case(before["case_id"]):
        pass
    with pytest.raises(CaseError, match="already exists"):
        import_case(archive)


def test_archive_is_deterministic_in_layout(tmp_path: Path) -> None:
    archive, _, _ = _exported(tmp_path)
    with zipfile.ZipFile(archive) as zf:
        names = zf.namelist()
        manifest = json.loads(zf.read(MANIFEST_NAME))
        assert names[0] == MANIFEST_NAME and names[1] == "case/case.sqlite"
        assert names[1:] == [f["path"] for f in manifest["files"]]
        assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in zf.infolist())
        for f in manifest["files"]:
            assert hashlib.sha256(zf.read(f["path"])).hexdigest() == f["sha256"]
        assert manifest["audit"]["verified"] is True


def _rewrite(src: Path, dst: Path, *, replace: dict[str, bytes] | None = None, add: dict[str, bytes] | None = None,
             drop: tuple[str, ...] = (), manifest_edit=None) -> Path:  # type: ignore[no-untyped-def]
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        manifest = json.loads(zin.read(MANIFEST_NAME))
        if manifest_edit:
            manifest_edit(manifest)
        zout.writestr(MANIFEST_NAME, json.dumps(manifest))
        for info in zin.infolist():
            if info.filename == MANIFEST_NAME or info.filename in drop:
                continue
            zout.writestr(info, (replace or {}).get(info.filename, zin.read(info.filename)))
        for name, data in (add or {}).items():
            zout.writestr(name, data)
    return dst


def _sketch_member(archive: Path) -> str:
    with zipfile.ZipFile(archive) as zf:
        return next(n for n in zf.namelist() if n.startswith("case/sketches/"))


def test_tampered_file_is_refused_and_nothing_is_left_behind(tmp_path: Path) -> None:
    archive, digest, _ = _exported(tmp_path)
    bad = _rewrite(archive, tmp_path / "bad.zip", replace={_sketch_member(archive): face_png(66, 64)})
    dest = tmp_path / "dest"
    with pytest.raises(CaseError, match="does not match its recorded SHA-256"):
        import_case(bad, location=dest)
    assert list(dest.iterdir()) == []
    with pytest.raises(CaseError, match="not the"):
        import_case(bad, expected_sha256=digest)


def test_tampered_file_with_fixed_manifest_is_refused_by_the_case_records(tmp_path: Path) -> None:
    archive, _, _ = _exported(tmp_path)
    member = _sketch_member(archive)
    new = face_png(66, 64)

    def fix(manifest: dict) -> None:
        for f in manifest["files"]:
            if f["path"] == member:
                f["sha256"], f["size"] = hashlib.sha256(new).hexdigest(), len(new)

    bad = _rewrite(archive, tmp_path / "bad.zip", replace={member: new}, manifest_edit=fix)
    with pytest.raises(CaseError, match="not the one its case record names"):
        import_case(bad, location=tmp_path / "dest")


def test_archive_whose_log_was_truncated_is_refused(tmp_path: Path) -> None:
    archive, _, _ = _exported(tmp_path)

    def claim_more(manifest: dict) -> None:
        manifest["audit"]["count"] += 2

    bad = _rewrite(archive, tmp_path / "bad.zip", manifest_edit=claim_more)
    with pytest.raises(CaseError, match="truncated"):
        import_case(bad, location=tmp_path / "dest")


@pytest.mark.parametrize("name", ["case/../../evil.txt", "/etc/evil.txt", "case/..\\evil.txt", "C:/evil.txt",
                                  "case/./x.txt", "elsewhere/evil.txt"])
def test_path_traversal_and_foreign_names_are_refused(tmp_path: Path, name: str) -> None:
    archive, _, _ = _exported(tmp_path)

    def list_it(manifest: dict) -> None:
        manifest["files"].append({"path": name, "sha256": hashlib.sha256(b"x").hexdigest(), "size": 1})

    bad = _rewrite(archive, tmp_path / "bad.zip", add={name: b"x"}, manifest_edit=list_it)
    with pytest.raises(CaseError, match="refused"):
        import_case(bad, location=tmp_path / "dest")
    assert not (tmp_path / "evil.txt").exists() and not Path("/etc/evil.txt").exists()


def test_symlink_member_unlisted_file_and_missing_file_are_refused(tmp_path: Path) -> None:
    archive, _, _ = _exported(tmp_path)
    link = tmp_path / "link.zip"
    _rewrite(archive, link)
    with zipfile.ZipFile(link, "a") as zf:
        info = zipfile.ZipInfo("case/sketches/link.png")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(CaseError, match="link"):
        import_case(link, location=tmp_path / "d1")
    extra = _rewrite(archive, tmp_path / "extra.zip", add={"case/attachments/extra.txt": b"planted"})
    with pytest.raises(CaseError, match="does not list"):
        import_case(extra, location=tmp_path / "d2")
    missing = _rewrite(archive, tmp_path / "missing.zip", drop=(_sketch_member(archive),))
    with pytest.raises(CaseError, match="lacks"):
        import_case(missing, location=tmp_path / "d3")
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    with pytest.raises(CaseError, match="not a readable zip"):
        import_case(tmp_path / "junk.zip", location=tmp_path / "d4")


def test_broken_case_is_not_exported_unless_asked(tmp_path: Path) -> None:
    case, _, _ = populated_case(k=3)
    with case:
        case.conn.execute("UPDATE audit SET user = 'x' WHERE seq = 2")
        with pytest.raises(CaseError, match="does not verify"):
            export_case(case, tmp_path / "x.zip")
        res = export_case(case, tmp_path / "x.zip", allow_broken=True)
        with zipfile.ZipFile(res.path) as zf:
            assert json.loads(zf.read(MANIFEST_NAME))["audit"]["verified"] is False


def test_cli_export_and_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case, _, _ = populated_case(k=3)
    case_id = case.case_id
    case.close()
    assert main(["case", "export", case_id, "--out", str(tmp_path / "c.zip"), "--json"]) == 0
    digest = json.loads(capsys.readouterr().out)["sha256"]
    assert main(["case", "import", str(tmp_path / "c.zip"), "--expect-sha256", digest]) == 1
    assert "already exists" in capsys.readouterr().err
