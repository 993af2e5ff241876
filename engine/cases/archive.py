"""Handing a case to another workstation: one zip archive with a manifest of SHA-256s, checked on import.

Import refuses anything it cannot vouch for: a file whose hash differs from the manifest, a file the
manifest does not list (or one it lists that is absent), names that would escape the destination
(absolute paths, ``..``, drive letters, backslashes, links), oversized members, and a case database
whose audit chain does not verify or does not end at the head the manifest records.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from engine import paths
from engine.cases import audit, db, registry
from engine.cases.db import canonical_json, now_iso
from engine.cases.integrity import verify_case
from engine.cases.store import SIDECAR_ANCHOR, Case, open_case_folder, resolve_user
from engine.errors import CaseError
from engine.fsutil import atomic_path, sha256_bytes, sha256_file

ARCHIVE_FORMAT = "sketchface-case-archive"
ARCHIVE_VERSION = 1
MANIFEST_NAME = "MANIFEST.json"
MAX_MEMBER_BYTES = 8 * 2**30
MAX_TOTAL_BYTES = 64 * 2**30
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_SKIP = {db.DB_NAME, f"{db.DB_NAME}-wal", f"{db.DB_NAME}-shm", SIDECAR_ANCHOR}


@dataclass(frozen=True)
class ExportResult:
    """Where the archive went, its SHA-256 (give it to the receiver) and the audit state it carries."""

    path: Path
    sha256: str
    files: int
    audit_count: int
    audit_head: str


def _case_files(case: Case) -> list[tuple[str, Path]]:
    out = []
    for p in sorted(case.folder.rglob("*")):
        rel = p.relative_to(case.folder).as_posix()
        if p.is_file() and not p.is_symlink() and rel not in _SKIP and not p.name.startswith("."):
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


def export_case(case: Case, out: str | os.PathLike[str], *, allow_broken: bool = False,
                user: str | None = None) -> ExportResult:
    """Write the whole case (a consistent database snapshot plus every file) as one zip archive.

    Args:
        out: archive path to write (atomically).
        allow_broken: export even if the audit chain does not verify (for investigating tampering);
            the manifest then says so and an import will refuse it.
    """
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
        listing = [{"path": name, "sha256": sha256_file(p), "size": p.stat().st_size} for name, p in files]
        info = case.info
        manifest = {"format": ARCHIVE_FORMAT, "version": ARCHIVE_VERSION, "case_id": case.case_id,
                    "case_number": info.case_number, "title": info.title, "exported_at": now_iso(),
                    "exported_by": user, "audit": {"count": count, "head": head, "verified": report.ok},
                    "files": listing}
        target = Path(out).expanduser()
        with atomic_path(target) as tmp_zip, zipfile.ZipFile(tmp_zip, "w") as zf:
            _zip_write(zf, MANIFEST_NAME, json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8"))
            for name, p in files:
                _zip_write(zf, name, p)
    digest = sha256_file(target)
    with case.write():
        case.log("case.export", f"case:{case.case_id}", user=user, outputs={"archive": digest},
                 details={"file": target.name, "files": len(files), "audit_count": count, "audit_head": head})
    return ExportResult(target, digest, len(files), count, head)


def _check_member(info: zipfile.ZipInfo) -> str | None:
    """The member's safe relative name, None for a directory entry, or CaseError if unsafe."""
    name = info.filename
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise CaseError(f"The archive contains a link ({name!r}); it was refused.")
    if "\\" in name or name.startswith("/") or ":" in name or "\x00" in name:
        raise CaseError(f"The archive contains an unsafe file name {name!r}; it was refused.")
    if name.endswith("/"):
        return None
    parts = PurePosixPath(name).parts
    if any(p in ("", ".", "..") for p in parts) or name != "/".join(parts):
        raise CaseError(f"The archive contains a file name that is not a plain path inside the case ({name!r}); "
                        "it was refused.")
    if name != MANIFEST_NAME and parts[0] != "case":
        raise CaseError(f"The archive contains an unexpected file {name!r}; it was refused.")
    if info.file_size > MAX_MEMBER_BYTES:
        raise CaseError(f"Archive member {name} is implausibly large ({info.file_size:,} bytes); refused.")
    return name


def _read_manifest(zf: zipfile.ZipFile) -> dict[str, Any]:
    try:
        raw = zf.read(MANIFEST_NAME) if zf.getinfo(MANIFEST_NAME).file_size < 64 * 2**20 else b""
        manifest = json.loads(raw)
    except (KeyError, ValueError) as exc:
        raise CaseError("The archive has no readable MANIFEST.json: it is not a SketchFace case archive.") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != ARCHIVE_FORMAT:
        raise CaseError("The archive is not a SketchFace case archive (wrong format tag).")
    if int(manifest.get("version", 0)) > ARCHIVE_VERSION:
        raise CaseError("The archive was written by a newer SketchFace.", hint="Update SketchFace to import it.")
    return manifest


def _extract(zf: zipfile.ZipFile, manifest: dict[str, Any], staging: Path) -> None:
    listed = {f["path"]: f for f in manifest.get("files", [])}
    members = {}
    for info in zf.infolist():
        name = _check_member(info)
        if name is None or name == MANIFEST_NAME:
            continue
        if name in members:
            raise CaseError(f"The archive holds {name} twice; it was refused.")
        if name not in listed:
            raise CaseError(f"The archive holds {name}, which its manifest does not list: refused as tampered.")
        members[name] = info
    absent = sorted(set(listed) - set(members))
    if absent:
        raise CaseError(f"The archive lacks {', '.join(absent[:5])}, listed in its manifest: refused as incomplete.")
    if sum(int(f["size"]) for f in listed.values()) > MAX_TOTAL_BYTES:
        raise CaseError("The archive's files add up to more than 64 GiB; refused.")
    for name, info in members.items():
        want = listed[name]
        target = staging / name[len("case/"):]
        if not target.resolve().is_relative_to(staging.resolve()):
            raise CaseError(f"Archive member {name} would be written outside the case folder; refused.")
        target.parent.mkdir(parents=True, exist_ok=True)
        digest, size = _copy_member(zf, info, target, int(want["size"]))
        if digest != want["sha256"] or size != int(want["size"]):
            raise CaseError(f"Archive file {name} does not match its recorded SHA-256: the archive was altered "
                            "or damaged, and was refused.")


def _copy_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, limit: int) -> tuple[str, int]:
    h, size = hashlib.sha256(), 0
    with zf.open(info) as src, open(target, "wb") as dst:
        while chunk := src.read(1 << 20):
            size += len(chunk)
            if size > limit:  # never trust the declared size: stop a zip bomb at the manifest's size
                raise CaseError(f"Archive member {info.filename} is larger than its manifest says; refused.")
            h.update(chunk)
            dst.write(chunk)
    return h.hexdigest(), size


def _verify_staged(staging: Path, manifest: dict[str, Any]) -> None:
    case = open_case_folder(staging)
    try:
        if case.case_id != manifest.get("case_id"):
            raise CaseError("The archive's database belongs to another case than its manifest says; refused.")
        a = manifest.get("audit") or {}
        anchors = [audit.Anchor("archive manifest", int(a.get("count", 0)), str(a.get("head", "")), exact=True)]
        report = verify_case(case, anchors + [x for x in case.anchors() if x.exact])
        if not report.ok:
            raise CaseError("The archived case does not verify; refused. "
                            + " ".join(f.message for f in report.findings[:3]))
    finally:
        case.close()


def import_case(archive: str | os.PathLike[str], *, location: str | os.PathLike[str] | None = None,
                expected_sha256: str | None = None, user: str | None = None) -> Case:
    """Check and unpack a case archive into ``location`` (default cases_dir()); return the case open.

    Args:
        archive: the zip written by :func:`export_case`.
        location: parent folder for the case (e.g. an encrypted volume).
        expected_sha256: the archive's SHA-256 as the sender reported it (strongly advised: it is the
            only check that also catches a consistently rewritten archive).
    """
    src = Path(archive).expanduser()
    digest = sha256_file(src)
    if expected_sha256 and digest != expected_sha256.strip().lower():
        raise CaseError(f"The archive's SHA-256 is {digest}, not the {expected_sha256} expected: refused.")
    parent = Path(location).expanduser() if location else paths.cases_dir()
    parent.mkdir(parents=True, exist_ok=True)
    staging = parent / f".import-{secrets.token_hex(4)}"
    try:
        with zipfile.ZipFile(src) as zf:
            manifest = _read_manifest(zf)
            case_id = str(manifest.get("case_id", ""))
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,80}", case_id):
                raise CaseError("The archive's case id is not usable as a folder name; refused.")
            if case_id in registry.load() or (parent / case_id).exists():
                raise CaseError(f"Case {case_id} already exists on this workstation.",
                                hint="Open it, or remove it before importing this archive again.")
            staging.mkdir()
            _extract(zf, manifest, staging)
        _verify_staged(staging, manifest)
        final = parent / case_id
        os.replace(staging, final)
    except zipfile.BadZipFile as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise CaseError(f"{src.name} is not a readable zip archive ({exc}).") from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    case = open_case_folder(final)
    info = case.info
    registry.register(case_id, final, info.case_number, info.title)
    with case.write():
        case.log("case.import", f"case:{case_id}", user=resolve_user(user), inputs={"archive": digest},
                 details={"file": src.name, "exported_at": manifest.get("exported_at"),
                          "exported_by": manifest.get("exported_by"), "manifest_sha256":
                          sha256_bytes(canonical_json(manifest).encode("utf-8"))})
    return case
