"""Helpers for the case attack tests: a populated case with a row in every table, archive rewriting."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.cases import (
    Case,
    add_attachment,
    add_generated_image,
    export_case,
    export_report,
    list_sketches,
    registry,
    sign_off,
    update_case,
)
from engine.cases.archive import MANIFEST_NAME
from tests.engine.test_cases_support import face_png, populated_case
from tests.examiner_helpers import acting_as


def full_case() -> Case:
    """A case with at least one row in every table (sketch versions, search, decisions, images, sign-off)."""
    case, _, _ = populated_case(k=5)
    add_generated_image(case, face_png(9, 64), {"seed": 5, "models": {"arcface": "a" * 64}},
                        parent=list_sketches(case)[0], user="alice")
    add_attachment(case, b"witness statement: tall, cap", "statement.txt", note="scan", user="alice")
    update_case(case, notes="suspect seen at 21:10", user="alice")
    with acting_as("Det. Bob", "B-2002"):
        sign_off(case, "Det. Bob", statement="reviewed", scope="the decided candidates only")
    export_report(case, "html", user="alice")  # a report written into the case travels with it
    return case


def forget_locally(case: Case) -> None:
    """Remove a case from this workstation (folder and registry), as if it lived elsewhere."""
    folder, case_id = case.folder, case.case_id
    case.close()
    shutil.rmtree(folder)
    cases = registry.load()
    cases.pop(case_id, None)
    registry._save(cases)


def exported(tmp_path: Path) -> Path:
    """Export a full case and forget it locally; return the archive."""
    case = full_case()
    res = export_case(case, tmp_path / "case.zip", user="alice")
    forget_locally(case)
    return res.path


def rewrite_archive_db(archive: Path, out: Path, edit: Callable[[sqlite3.Connection], Any]) -> Path:
    """Change the archive's case database with ``edit`` and fix up the manifest's SHA-256 and size.

    This is what an attacker who understands the format does: every hash the archive carries matches.
    """
    with tempfile.TemporaryDirectory() as tmp:
        dbp = Path(tmp) / "case.sqlite"
        with zipfile.ZipFile(archive) as zin:
            dbp.write_bytes(zin.read("case/case.sqlite"))
            manifest = json.loads(zin.read(MANIFEST_NAME))
            conn = sqlite3.connect(dbp, isolation_level=None)
            edit(conn)
            conn.close()
            data = dbp.read_bytes()
            for f in manifest["files"]:
                if f["path"] == "case/case.sqlite":
                    f["sha256"], f["size"] = hashlib.sha256(data).hexdigest(), len(data)
            with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
                zout.writestr(MANIFEST_NAME, json.dumps(manifest))
                for info in zin.infolist():
                    if info.filename == MANIFEST_NAME:
                        continue
                    zout.writestr(info.filename, data if info.filename == "case/case.sqlite"
                                  else zin.read(info.filename))
    return out


def rewrite_archive(archive: Path, out: Path, *, add: dict[str, bytes] | None = None,
                    names: Callable[[str], str] | None = None, listed: bool = True) -> Path:
    """Copy an archive, adding members (listed in the manifest when ``listed``) or renaming them."""
    with zipfile.ZipFile(archive) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        manifest = json.loads(zin.read(MANIFEST_NAME))
        rename = names or (lambda n: n)
        for f in manifest["files"]:
            f["path"] = rename(f["path"])
        for name, data in (add or {}).items():
            if listed:
                manifest["files"].append({"path": name, "sha256": hashlib.sha256(data).hexdigest(),
                                          "size": len(data)})
        zout.writestr(MANIFEST_NAME, json.dumps(manifest))
        for info in zin.infolist():
            if info.filename != MANIFEST_NAME:
                zout.writestr(rename(info.filename), zin.read(info.filename))
        for name, data in (add or {}).items():
            zout.writestr(name, data)
    return out
