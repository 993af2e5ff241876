"""Checks on a case archive's members before anything is written: names, counts, sizes, compression ratios.

Every member name must be a plain UTF-8 path under ``case/`` that cannot escape the destination,
collide with another member (exactly, by case or Unicode form, or as file against folder) or be a
link; the archive's member count, each member's size and its compression ratio are capped so a small
archive cannot fill the disk.
"""

from __future__ import annotations

import hashlib
import stat
import unicodedata
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from engine.errors import CaseError

MANIFEST_NAME = "MANIFEST.json"
MAX_MEMBERS = 200_000
MAX_MEMBER_BYTES = 4 * 2**30
MAX_TOTAL_BYTES = 64 * 2**30
MAX_RATIO = 200  # deflate rarely beats 100:1 on real case files; a bomb does far better
RATIO_FLOOR_BYTES = 4 * 2**20  # small members cannot fill a disk whatever their ratio
MAX_MANIFEST_BYTES = 64 * 2**20
_UTF8_FLAG = 0x800


def _odd(name: str, why: str) -> CaseError:
    return CaseError(f"The archive holds a member named {ascii(name)}, which {why}; the archive was refused.",
                     hint="Ask the sender for a fresh export from SketchFace.")


def check_name(info: zipfile.ZipInfo) -> str | None:
    """The member's name if it is a safe plain path, None for a folder entry; CaseError otherwise."""
    name = info.filename
    if stat.S_ISLNK(info.external_attr >> 16):
        raise CaseError(f"The archive contains a link ({ascii(name)}); it was refused.")
    if not (info.flag_bits & _UTF8_FLAG) and not name.isascii():
        raise _odd(name, "is not UTF-8 (a file name SketchFace never writes)")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise _odd(name, "contains control characters")
    if "\\" in name or name.startswith("/") or ":" in name:
        raise _odd(name, "is absolute or not a plain path (unsafe)")
    stem = name[:-1] if name.endswith("/") else name
    parts = PurePosixPath(stem).parts
    if not stem or any(p in ("", ".", "..") for p in parts) or stem != "/".join(parts):
        raise _odd(name, "is not a plain path inside the case (unsafe)")
    if any(p.startswith(".") for p in parts):
        raise _odd(name, "is a hidden file (SketchFace never exports one)")
    if name != MANIFEST_NAME and parts[0] != "case":
        raise CaseError(f"The archive contains an unexpected file {ascii(name)}; it was refused.")
    if name.endswith("/"):
        return None
    if info.file_size > MAX_MEMBER_BYTES:
        raise CaseError(f"Archive member {name} is implausibly large ({info.file_size:,} bytes); refused.")
    if info.file_size > RATIO_FLOOR_BYTES and info.file_size > MAX_RATIO * max(1, info.compress_size):
        raise CaseError(f"Archive member {name} expands {info.file_size // max(1, info.compress_size)}-fold "
                        "(a compression bomb); refused.")
    return name


def _fold(name: str) -> str:
    return unicodedata.normalize("NFC", name).casefold()


def check_members(zf: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """All file members by name, after every name and cap check; CaseError on the first problem."""
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise CaseError(f"The archive holds {len(infos):,} members, more than the {MAX_MEMBERS:,} allowed; refused.")
    files: dict[str, zipfile.ZipInfo] = {}
    folded: dict[str, str] = {}
    folders: set[str] = set()
    for info in infos:
        name = check_name(info)
        stem = info.filename.rstrip("/")
        parts = stem.split("/")
        folders.update(_fold("/".join(parts[:i])) for i in range(1, len(parts)))
        if name is None:
            folders.add(_fold(stem))
            continue
        if name in files:
            raise CaseError(f"The archive holds {name} twice; it was refused.")
        if _fold(name) in folded:
            raise _odd(name, f"differs from member {folded[_fold(name)]!r} only in letter case or Unicode form")
        files[name] = info
        folded[_fold(name)] = name
    clash = sorted(n for f, n in folded.items() if f in folders)
    if clash:
        raise _odd(clash[0], "is a file in the archive and also a folder holding other members")
    return files


def listing(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The manifest's file list by path, each with a SHA-256 and a size; CaseError if malformed."""
    raw = manifest.get("files")
    if not isinstance(raw, list):
        raise CaseError("The archive's manifest has no file list; refused.")
    out: dict[str, dict[str, Any]] = {}
    for f in raw:
        try:
            path, sha, size = str(f["path"]), str(f["sha256"]), int(f["size"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CaseError("The archive's manifest lists a file without path, SHA-256 and size; refused.") from exc
        if size < 0 or size > MAX_MEMBER_BYTES:
            raise CaseError(f"The archive's manifest gives {path} an impossible size ({size:,}); refused.")
        out[path] = {"path": path, "sha256": sha, "size": size}
    if sum(f["size"] for f in out.values()) > MAX_TOTAL_BYTES:
        raise CaseError(f"The archive's files add up to more than {MAX_TOTAL_BYTES // 2**30} GiB; refused.")
    return out


def copy_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, want: dict[str, Any]) -> None:
    """Extract one member, stopping at the manifest's size, and check its SHA-256."""
    h, size, limit = hashlib.sha256(), 0, int(want["size"])
    target.parent.mkdir(parents=True, exist_ok=True)
    with zf.open(info) as src, open(target, "xb") as dst:
        while chunk := src.read(1 << 20):
            size += len(chunk)
            if size > limit:  # never trust the declared size: stop a zip bomb at the manifest's size
                raise CaseError(f"Archive member {info.filename} is larger than its manifest says; refused.")
            h.update(chunk)
            dst.write(chunk)
    if h.hexdigest() != want["sha256"] or size != limit:
        raise CaseError(f"Archive file {info.filename} does not match its recorded SHA-256: the archive was altered "
                        "or damaged, and was refused.")
