"""Handing a case to another workstation: one zip archive with a manifest of SHA-256s, checked on import.

Import refuses anything it cannot vouch for: odd member names (absolute, ``..``, links, non-UTF-8,
collisions), too many or too large members, compression bombs, a file whose hash differs from the
manifest, a file the manifest does not list or no record refers to, a database whose schema is not
exactly ours (its rows are copied into a fresh database, never the file itself), and any finding of
the full verification (records, files, chain, signed head). An archive signed by another
workstation's key is accepted and says so, naming the key; ``expected_key`` pins the sender's key.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import paths
from engine.cases import audit, db, ledger, registry, staging
from engine.cases.archive_db import copy_case_db
from engine.cases.archive_members import (
    MANIFEST_NAME,
    MAX_MANIFEST_BYTES,
    MAX_RATIO,
    RATIO_FLOOR_BYTES,
    check_members,
    copy_member,
    listing,
)
from engine.cases.db import canonical_json, now_iso
from engine.cases.integrity import referenced_files, verify_case
from engine.cases.store import Case, open_case_folder, resolve_user
from engine.errors import CaseError
from engine.fsutil import atomic_path, private_dir, sha256_bytes, sha256_file

ARCHIVE_FORMAT = "sketchface-case-archive"
ARCHIVE_VERSION = 1
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_SOURCE_DB = ".archive.sqlite"
MIN_KEY_PREFIX = 16  # hex digits of a fingerprint that pin a key (64 bits)
__all__ = ["ARCHIVE_FORMAT", "MANIFEST_NAME", "ExportResult", "export_case", "import_case"]


@dataclass(frozen=True)
class ExportResult:
    """Where the archive went, its SHA-256 (give it to the receiver) and the audit state it carries."""

    path: Path
    sha256: str
    files: int
    audit_count: int
    audit_head: str
    recorded: bool = True  # False: the case is read-only (broken or write-protected), so no case.export entry


def _report_files(entries: list[audit.AuditEntry]) -> dict[str, str]:
    """reports/<name> -> SHA-256 for every report the log says was written into the case."""
    return {f"reports/{e.details.get('file')}": str(e.outputs.get("report"))
            for e in entries if e.action == "report.export" and isinstance(e.details.get("file"), str)}


def _case_files(case: Case) -> list[tuple[str, Path]]:
    """The files a record refers to (stored images, attachments, reports written into the case)."""
    wanted = set(referenced_files(case.conn)) | set(_report_files(case.audit_entries()))
    out = []
    for rel in sorted(wanted):
        p = case.folder / rel
        if p.is_file() and not p.is_symlink():
            out.append((rel, p))
    return out


def _zip_write(zf: zipfile.ZipFile, name: str, src: Path | bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    if isinstance(src, bytes):
        zf.writestr(info, src)
        return
    with open(src, "rb") as f, zf.open(info, "w") as dst:
        shutil.copyfileobj(f, dst, 1 << 20)


def _refuse_existing(target: Path) -> None:
    """An archive handed over with its SHA-256 is evidence: never replace one the caller did not mean to."""
    if target.is_dir():
        raise CaseError(f"{target} is a folder, not an archive file; nothing was exported.",
                        hint="Give a file name ending in .zip, or the folder itself to write case_NUMBER.zip into.")
    if target.exists() or target.is_symlink():
        try:
            held = f"its current SHA-256 is {sha256_file(target)}"
        except OSError as exc:
            held = f"its SHA-256 could not be read ({exc.strerror or exc})"
        raise CaseError(f"{target} already exists ({held}); it was not replaced.",
                        hint="Choose another file name, move the existing archive away, or export again with "
                             "--overwrite (in the window: pick the file in the save dialog and confirm replacing "
                             "it) to replace it; the earlier archive is then lost.")


def export_case(case: Case, out: str | os.PathLike[str], *, allow_broken: bool = False,
                user: str | None = None, overwrite: bool = False) -> ExportResult:
    """Write the whole case (a consistent database snapshot plus every file) as one zip archive.

    Args:
        out: archive path to write (atomically).
        allow_broken: export even if the audit chain does not verify (for investigating tampering);
            the manifest then says so and an import will refuse it. Such a case is read-only, so the
            export is not recorded in it (``recorded`` is False).
        overwrite: replace ``out`` if it already exists. Off by default: an earlier archive may already
            have been handed to someone with its SHA-256, so replacing it silently would lose evidence.
            The check runs before anything is written; a file created at ``out`` by another program
            during the export is still replaced (not guarded against).
    """
    target = Path(out).expanduser()
    if not overwrite:
        _refuse_existing(target)
    report = case.verify()
    if not report.ok and not allow_broken:
        raise CaseError("The case's audit chain does not verify; it was not exported.",
                        hint="Run 'sketchface case verify' to see where it was altered.")
    user = resolve_user(user)
    with tempfile.TemporaryDirectory(prefix="sketchface-export-") as tmp:
        snap = Path(tmp) / db.DB_NAME
        anchor = case.snapshot(snap)
        count, head = anchor if anchor else (0, audit.genesis_hash(case.case_id))
        files = [(f"case/{db.DB_NAME}", snap), *[(f"case/{rel}", p) for rel, p in _case_files(case)]]
        listed = [{"path": name, "sha256": sha256_file(p), "size": p.stat().st_size} for name, p in files]
        info = case.info
        manifest = {"format": ARCHIVE_FORMAT, "version": ARCHIVE_VERSION, "case_id": case.case_id,
                    "case_number": info.case_number, "title": info.title, "exported_at": now_iso(),
                    "exported_by": user, "audit": {"count": count, "head": head, "verified": report.ok,
                                                   "signature": report.signature},
                    "files": listed}
        with atomic_path(target) as tmp_zip, zipfile.ZipFile(tmp_zip, "w") as zf:
            _zip_write(zf, MANIFEST_NAME, json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8"))
            for name, p in files:
                _zip_write(zf, name, p)
    digest = sha256_file(target)
    if not report.ok or case.read_only:  # nothing may be signed over a broken record
        return ExportResult(target, digest, len(files), count, head, recorded=False)
    with case.write():
        case.log("case.export", f"case:{case.case_id}", user=user, outputs={"archive": digest},
                 details={"file": target.name, "files": len(files), "audit_count": count, "audit_head": head})
    return ExportResult(target, digest, len(files), count, head)


def _read_manifest(zf: zipfile.ZipFile) -> dict[str, Any]:
    try:
        info = zf.getinfo(MANIFEST_NAME)
        raw = zf.read(info) if info.file_size < MAX_MANIFEST_BYTES else b""
        manifest = json.loads(raw)
    except (KeyError, ValueError) as exc:
        raise CaseError("The archive has no readable MANIFEST.json: it is not a SketchFace case archive.") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != ARCHIVE_FORMAT:
        raise CaseError("The archive is not a SketchFace case archive (wrong format tag).")
    try:
        version = int(manifest.get("version", 0))
    except (TypeError, ValueError) as exc:
        raise CaseError("The archive's manifest has no usable format version; refused.") from exc
    if version > ARCHIVE_VERSION:
        raise CaseError("The archive was written by a newer SketchFace.", hint="Update SketchFace to import it.")
    return manifest


def _check_listing(members: dict[str, zipfile.ZipInfo], listed: dict[str, dict[str, Any]]) -> None:
    for name, info in members.items():
        if name != MANIFEST_NAME and name not in listed:
            raise CaseError(f"The archive holds {name}, which its manifest does not list: refused as tampered.")
        size = int(listed.get(name, {}).get("size", 0))
        if size > RATIO_FLOOR_BYTES and size > MAX_RATIO * max(1, info.compress_size):
            raise CaseError(f"Archive member {name} would expand {size // max(1, info.compress_size)}-fold "
                            "(a compression bomb); refused.")
    absent = sorted(set(listed) - set(members))
    if absent:
        raise CaseError(f"The archive lacks {', '.join(absent[:5])}, listed in its manifest: refused as incomplete.")
    if f"case/{db.DB_NAME}" not in listed:
        raise CaseError("The archive holds no case database; refused.")


def _check_referenced(stage: Path, listed: dict[str, dict[str, Any]]) -> None:
    """Every file besides the database must be one a record refers to, with the digest the record gives."""
    conn = db.connect(stage / db.DB_NAME)
    try:
        wanted = referenced_files(conn) | _report_files(audit.read_entries(conn))
    finally:
        conn.close()
    for name, f in listed.items():
        rel = name[len("case/"):]
        if rel == db.DB_NAME:
            continue
        if rel not in wanted:
            raise CaseError(f"The archive holds {name}, which no record of the case refers to: refused.")
        if wanted[rel] != f["sha256"]:
            raise CaseError(f"The archive's file {name} is not the one its case record names (SHA-256 differs): "
                            "refused.")


def _extract(zf: zipfile.ZipFile, manifest: dict[str, Any], stage: Path) -> None:
    members = check_members(zf)
    listed = listing(manifest)
    _check_listing(members, listed)
    dbname = f"case/{db.DB_NAME}"
    copy_member(zf, members[dbname], stage / _SOURCE_DB, listed[dbname])
    copy_case_db(stage / _SOURCE_DB, stage / db.DB_NAME)
    (stage / _SOURCE_DB).unlink()
    _check_referenced(stage, listed)
    for name, info in members.items():
        if name in (MANIFEST_NAME, dbname):
            continue
        target = stage / name[len("case/"):]
        if not target.resolve().is_relative_to(stage.resolve()):
            raise CaseError(f"Archive member {name} would be written outside the case folder; refused.")
        copy_member(zf, info, target, listed[name])


def _expected_key(expected_key: str | None) -> str | None:
    """The ``--expect-key`` fingerprint (or prefix) in canonical form; CaseError when it cannot pin a key.

    Checked before anything is unpacked, so a prefix too short to pin a key is named as such rather
    than reported as an archive signed by another key.
    """
    if expected_key is None or not expected_key.strip():
        return None
    want = expected_key.strip().lower()
    if any(c not in "0123456789abcdef" for c in want):
        raise CaseError(f"--expect-key takes the sender's key fingerprint in hex, as 'sketchface case key' prints it; "
                        f"{expected_key!r} is not hex.")
    if not MIN_KEY_PREFIX <= len(want) <= 64:
        raise CaseError(f"--expect-key needs at least {MIN_KEY_PREFIX} (at most 64) hex digits of the sender's key "
                        f"fingerprint to pin a key; {len(want)} were given.",
                        hint="Ask the sender for the fingerprint 'sketchface case key' prints on their workstation.")
    return want


def _check_key(sig: dict[str, Any] | None, expected_key: str | None) -> None:
    want = _expected_key(expected_key)
    if want is None:
        return
    got = str((sig or {}).get("fingerprint", ""))
    if not got.startswith(want):
        raise CaseError(f"The archive is signed by key {got or '(none)'}, not the {expected_key} expected: refused.")


def _verify_staged(stage: Path, manifest: dict[str, Any], expected_key: str | None) -> dict[str, Any]:
    """Run the full verification on the staged case; return the head signature it carries."""
    case = open_case_folder(stage)
    try:
        if case.case_id != manifest.get("case_id"):
            raise CaseError("The archive's database belongs to another case than its manifest says; refused.")
        raw = manifest.get("audit")
        a: dict[str, Any] = raw if isinstance(raw, dict) else {}
        try:
            claimed = audit.Anchor("archive manifest", int(a.get("count", 0)), str(a.get("head", "")), exact=True)
        except (TypeError, ValueError) as exc:
            raise CaseError("The archive's manifest has no usable audit head; refused.") from exc
        report = verify_case(case, [claimed, *[x for x in case.anchors() if x.exact]], accept_other_key=True)
        if not report.ok:
            raise CaseError("The archived case does not verify; refused. "
                            + " ".join(f.message for f in report.findings[:3]))
        sig = report.signature or {}
        carried = a.get("signature") if isinstance(a.get("signature"), dict) else {}
        if carried and (carried.get("signature"), carried.get("public_key")) != (sig.get("signature"),
                                                                                sig.get("public_key")):
            raise CaseError("The archive's manifest carries another head signature than its database; refused.")
        _check_key(sig, expected_key)
        return sig
    finally:
        case.close()


def import_case(archive: str | os.PathLike[str], *, location: str | os.PathLike[str] | None = None,
                expected_sha256: str | None = None, expected_key: str | None = None,
                user: str | None = None) -> Case:
    """Check and unpack a case archive into ``location`` (default cases_dir()); return the case open.

    Args:
        archive: the zip written by :func:`export_case`.
        location: parent folder for the case (e.g. an encrypted volume).
        expected_sha256: the archive's SHA-256 as the sender reported it.
        expected_key: the sender's workstation key fingerprint (or its first 16+ hex digits); the
            only check that also catches an archive rebuilt and re-signed with another key.
    """
    _expected_key(expected_key)
    src = Path(archive).expanduser()
    if not src.is_file():
        raise CaseError(f"{src} is {'a folder' if src.is_dir() else 'not there'}: give the path of a case archive "
                        "(.zip) to import.")
    digest = sha256_file(src)
    if expected_sha256 and digest != expected_sha256.strip().lower():
        raise CaseError(f"The archive's SHA-256 is {digest}, not the {expected_sha256} expected: refused.")
    parent = private_dir(Path(location).expanduser()) if location else paths.cases_dir()
    staging.clean_stale(parent)
    stage = parent / f".import-{secrets.token_hex(4)}"
    try:
        with zipfile.ZipFile(src) as zf:
            manifest = _read_manifest(zf)
            case_id = str(manifest.get("case_id", ""))
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,80}", case_id):
                raise CaseError("The archive's case id is not usable as a folder name; refused.")
            if case_id in registry.load() or (parent / case_id).exists():
                raise CaseError(f"Case {case_id} already exists on this workstation.",
                                hint="Open it, or remove it before importing this archive again.")
            staging.make(stage)
            _extract(zf, manifest, stage)
        sig = _verify_staged(stage, manifest, expected_key)
        # The one way in for a case signed elsewhere: this workstation now vouches for the head it verified.
        ledger.record(case_id, int(sig.get("count") or 0), str(sig.get("head") or ""), reset=True)
        final = parent / case_id
        (stage / staging.OWNER_FILE).unlink()
        os.replace(stage, final)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError) as exc:
        shutil.rmtree(stage, ignore_errors=True)
        raise CaseError(f"{src.name} is not a readable zip archive ({exc}).") from exc
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    case = open_case_folder(final)
    info = case.info
    registry.register(case_id, final, info.case_number, info.title)
    with case.write():
        case.log("case.import", f"case:{case_id}", user=resolve_user(user), inputs={"archive": digest},
                 details={"file": src.name, "exported_at": manifest.get("exported_at"),
                          "exported_by": manifest.get("exported_by"), "manifest_sha256":
                          sha256_bytes(canonical_json(manifest).encode("utf-8")),
                          "archive_signature": {k: sig.get(k) for k in ("count", "head", "signature", "public_key",
                                                                        "fingerprint", "this_workstation")}})
    return case
