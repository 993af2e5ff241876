"""What a case holds besides searches: sketch versions, generated images and attachments.

Each is stored as the exact bytes received (identified by SHA-256, never re-encoded) and each
addition is one audited transaction.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any

from engine.cases.db import canonical_json, now_iso
from engine.cases.images import inspect_image
from engine.cases.store import Case, resolve_user
from engine.errors import CaseError
from engine.fsutil import sha256_bytes

MAX_ATTACHMENT_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class SketchVersion:
    """One version of a sketch: the image (case-relative path + SHA-256) and the witness it came from."""

    id: int
    sketch_id: int
    version: int
    name: str
    witness: str
    path: str
    sha256: str
    width: int
    height: int
    note: str
    created_at: str
    created_by: str

    @property
    def ref(self) -> str:
        """Reference string used as a ``parent`` of generated images."""
        return f"sketch_version:{self.id}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GeneratedImage:
    """A synthetic image (reconstruction, variation) with the parameters that produced it and its parent."""

    id: int
    path: str
    sha256: str
    params: dict[str, Any]
    params_sha256: str
    parent: str | None
    note: str
    created_at: str
    created_by: str

    @property
    def ref(self) -> str:
        """Reference string used as a ``parent`` of generated images."""
        return f"generated:{self.id}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Attachment:
    """Any other file filed with the case (witness statement scan, notes), kept byte for byte."""

    id: int
    name: str
    path: str
    sha256: str
    size: int
    note: str
    created_at: str
    created_by: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _sketch_row(r: Any) -> SketchVersion:
    return SketchVersion(r["id"], r["sketch_id"], r["version"], r["name"], r["witness"], r["path"], r["sha256"],
                         r["width"], r["height"], r["note"], r["created_at"], r["created_by"])


_SKETCH_SELECT = ("SELECT v.*, s.name, s.witness FROM sketch_versions v JOIN sketches s ON s.id = v.sketch_id ")


def add_sketch(case: Case, image: bytes, *, witness: str, name: str = "", sketch_id: int | None = None,
               note: str = "", user: str | None = None) -> SketchVersion:
    """Store a sketch image as a new sketch (version 1) or as the next version of ``sketch_id``.

    Args:
        image: PNG (or other decodable image) bytes, stored unchanged.
        witness: the witness whose description it records (required for a new sketch).
        name: label of a new sketch (default "Sketch N").
        sketch_id: existing sketch to add a version to.
        note: what changed in this version.
    """
    ext, w, h = inspect_image(image, "sketch")
    user = resolve_user(user)
    digest = sha256_bytes(image)
    with case.write() as conn:
        new_sketch = sketch_id is None
        if sketch_id is None:
            if not witness.strip():
                raise CaseError("A new sketch needs the witness it was drawn with.")
            count = conn.execute("SELECT COUNT(*) FROM sketches").fetchone()[0]
            cur = conn.execute("INSERT INTO sketches (name, witness, created_at, created_by) VALUES (?, ?, ?, ?)",
                               (name or f"Sketch {count + 1}", witness.strip(), now_iso(), user))
            sketch_id = int(cur.lastrowid or 0)
            version = 1
        else:
            row = conn.execute("SELECT * FROM sketches WHERE id = ?", (sketch_id,)).fetchone()
            if row is None:
                raise CaseError(f"Case {case.case_id} has no sketch {sketch_id}.")
            if witness.strip() and witness.strip() != row["witness"]:
                raise CaseError(f"Sketch {sketch_id} belongs to witness {row['witness']!r}, not {witness!r}.",
                                hint="Start a new sketch for another witness's description.")
            version = conn.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM sketch_versions WHERE sketch_id = ?",
                                   (sketch_id,)).fetchone()[0]
        rel = case.store_file("sketches", f"sketch{sketch_id}_v{version}_{digest[:12]}{ext}", image)
        cur = conn.execute(
            "INSERT INTO sketch_versions (sketch_id, version, path, sha256, width, height, note, created_at, "
            "created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (sketch_id, version, rel, digest, w, h, note, now_iso(), user))
        vid = int(cur.lastrowid or 0)
        case.log("sketch.add_version", f"sketch:{sketch_id}:v{version}", user=user, outputs={"image": digest},
                 details={"sketch_version_id": vid, "witness": witness.strip(), "note": note, "path": rel},
                 records=[*([("sketches", sketch_id)] if new_sketch else []), ("sketch_versions", vid)])
    return get_sketch_version(case, vid)


def get_sketch_version(case: Case, version_id: int) -> SketchVersion:
    """One sketch version by id, or CaseError."""
    r = case.conn.execute(_SKETCH_SELECT + "WHERE v.id = ?", (version_id,)).fetchone()
    if r is None:
        raise CaseError(f"Case {case.case_id} has no sketch version {version_id}.")
    return _sketch_row(r)


def list_sketches(case: Case) -> list[SketchVersion]:
    """Every sketch version, grouped by sketch, oldest version first."""
    rows = case.conn.execute(_SKETCH_SELECT + "ORDER BY v.sketch_id, v.version").fetchall()
    return [_sketch_row(r) for r in rows]


def _parent_ref(case: Case, parent: SketchVersion | GeneratedImage | str | None) -> str | None:
    if parent is None:
        return None
    ref = parent if isinstance(parent, str) else parent.ref
    kind, _, ident = ref.partition(":")
    table = {"sketch_version": "sketch_versions", "generated": "generated"}.get(kind)
    if table is not None and (not ident.isdigit() or case.conn.execute(
            f"SELECT 1 FROM {table} WHERE id = ?", (int(ident),)).fetchone() is None):
        raise CaseError(f"Parent {ref!r} does not exist in case {case.case_id}.")
    return ref


def add_generated_image(case: Case, png_bytes: bytes, params: dict[str, Any], *,
                        parent: SketchVersion | GeneratedImage | str | None = None, note: str = "",
                        user: str | None = None) -> GeneratedImage:
    """Store a synthetic image with the exact parameters that produced it.

    Reports always show these stamped "SYNTHETIC — investigative aid".

    Args:
        png_bytes: the image as produced (stored unchanged).
        params: JSON-serialisable generation parameters (seed, steps, prompt, scales...). Put model
            files used under ``params["models"] = {model_id: sha256}``: the report lists their
            provenance and licences from the model manifest.
        parent: what it was generated from: a :class:`SketchVersion`, another
            :class:`GeneratedImage`, or a reference string such as ``"sketch_version:3"``,
            ``"generated:2"`` or ``"search:4"``.
        note: free text.
    """
    ext, _, _ = inspect_image(png_bytes, "generated image")
    try:
        params_text = canonical_json(params)
    except (TypeError, ValueError) as exc:
        raise CaseError(f"Generation parameters must be JSON-serialisable: {exc}.") from exc
    user = resolve_user(user)
    digest = sha256_bytes(png_bytes)
    params_digest = sha256_bytes(params_text.encode("utf-8"))
    with case.write() as conn:
        ref = _parent_ref(case, parent)
        nid = conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM generated").fetchone()[0]
        rel = case.store_file("generated", f"gen{nid}_{digest[:12]}{ext}", png_bytes)
        cur = conn.execute(
            "INSERT INTO generated (id, path, sha256, params, params_sha256, parent, note, created_at, created_by) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", (nid, rel, digest, params_text, params_digest, ref, note,
                                                   now_iso(), user))
        gid = int(cur.lastrowid or 0)
        case.log("generated.add", f"generated:{gid}", user=user,
                 inputs={"params": params_digest, **({"parent": ref} if ref else {})},
                 outputs={"image": digest}, details={"path": rel, "note": note}, records=[("generated", gid)])
    return get_generated(case, gid)


def _gen_row(r: Any) -> GeneratedImage:
    return GeneratedImage(r["id"], r["path"], r["sha256"], json.loads(r["params"]), r["params_sha256"],
                          r["parent"], r["note"], r["created_at"], r["created_by"])


def get_generated(case: Case, gen_id: int) -> GeneratedImage:
    """One generated image by id, or CaseError."""
    r = case.conn.execute("SELECT * FROM generated WHERE id = ?", (gen_id,)).fetchone()
    if r is None:
        raise CaseError(f"Case {case.case_id} has no generated image {gen_id}.")
    return _gen_row(r)


def list_generated(case: Case) -> list[GeneratedImage]:
    """Every generated image of the case, oldest first."""
    return [_gen_row(r) for r in case.conn.execute("SELECT * FROM generated ORDER BY id").fetchall()]


def _safe_name(name: str) -> str:
    base = re.split(r"[\\/]", name)[-1]
    base = re.sub(r"[^A-Za-z0-9._ -]+", "_", base).strip(" .") or "attachment"
    return base[:80]


def add_attachment(case: Case, data: bytes, name: str, *, note: str = "", user: str | None = None) -> Attachment:
    """File any document with the case, byte for byte, under a sanitised version of its name."""
    if len(data) > MAX_ATTACHMENT_BYTES:
        raise CaseError(f"Attachment {name} is larger than {MAX_ATTACHMENT_BYTES // 2**20} MiB.")
    user = resolve_user(user)
    digest = sha256_bytes(data)
    safe = _safe_name(name)
    with case.write() as conn:
        rel = case.store_file("attachments", f"{digest[:12]}_{safe}", data)
        cur = conn.execute("INSERT INTO attachments (name, path, sha256, size, note, created_at, created_by) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?)", (name, rel, digest, len(data), note, now_iso(), user))
        aid = int(cur.lastrowid or 0)
        case.log("attachment.add", f"attachment:{aid}", user=user, outputs={"file": digest},
                 details={"name": name, "path": rel, "size": len(data), "note": note},
                 records=[("attachments", aid)])
    return next(a for a in list_attachments(case) if a.id == aid)


def list_attachments(case: Case) -> list[Attachment]:
    """Every attachment of the case, oldest first."""
    rows = case.conn.execute("SELECT * FROM attachments ORDER BY id").fetchall()
    return [Attachment(r["id"], r["name"], r["path"], r["sha256"], r["size"], r["note"], r["created_at"],
                       r["created_by"]) for r in rows]
