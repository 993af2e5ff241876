"""Searches stored in a case: run manifest, query images, result list and candidate thumbnails.

A search is stored with everything needed to repeat it (the run manifest the search engine wrote,
plus the query images themselves, so a re-run can re-embed them) and the ranked list it returned.
Decisions and blind review live in :mod:`engine.cases.review`.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.cases.db import canonical_json, now_iso
from engine.cases.images import inspect_image
from engine.cases.store import Case, resolve_user
from engine.errors import BadImage, CaseError
from engine.fsutil import sha256_bytes
from engine.manifest import REQUIRED_KEYS, ManifestInvalid, RunManifest
from engine.types import Match

MANIFEST_KEYS = REQUIRED_KEYS  # defined once, by engine.search.RunManifest
ThumbnailKey = tuple[str, int]
"""(gallery id, face id): a face id alone is ambiguous, since every local gallery numbers its faces from 1."""


@dataclass(frozen=True)
class QueryImage:
    """One query image of a search, as stored in the case (``queries/<sha256>.<ext>``)."""

    idx: int
    kind: str
    sha256: str
    weight: float
    path: str


@dataclass(frozen=True)
class SearchRecord:
    """A stored search: its manifest and hashes, review mode, and (for re-runs) what it repeated."""

    id: int
    label: str
    manifest: dict[str, Any]
    manifest_sha256: str
    results_sha256: str
    blind: bool
    revealed_at: str | None
    rerun_of: int | None
    rerun_report: dict[str, Any] | None
    created_at: str
    created_by: str
    n_results: int
    queries: tuple[QueryImage, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["queries"] = [asdict(q) for q in self.queries]
        return d


def validate_manifest(manifest: Mapping[str, Any] | RunManifest) -> RunManifest:
    """Refuse a manifest that could not repeat its search, naming what is missing; returns it typed.

    The schema is :class:`engine.search.RunManifest` (one definition for search, cases and re-run).
    """
    if isinstance(manifest, RunManifest):
        return manifest
    try:
        return RunManifest.from_dict(manifest)
    except ManifestInvalid as exc:
        raise CaseError(exc.message, hint="The search was not stored; the search engine wrote an incomplete "
                                          "record (a bug).") from exc


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _clean_metadata(meta: Mapping[str, Any]) -> tuple[dict[str, Any], bytes | None]:
    """Metadata fit for JSON, and a thumbnail pulled out of it (bytes, or read from a path)."""
    thumb: bytes | None = None
    clean: dict[str, Any] = {}
    for key, value in meta.items():
        if isinstance(value, bytes | bytearray | memoryview):
            if key in ("thumbnail", "thumbnail_bytes"):
                thumb = bytes(value)
            continue
        clean[key] = value
    tp = clean.get("thumbnail_path")
    if thumb is None and isinstance(tp, str | Path) and Path(tp).is_file():
        thumb = Path(tp).read_bytes()
    return json.loads(json.dumps(clean, default=_jsonable)), thumb


_FIXED_TYPES: dict[str, Any] = {"rank": int, "gallery_id": str, "face_id": int, "photo_id": int,
                                "photo_path": str, "photo_sha256": str, "baseline": bool, "group_size": int}


def _match_dict(m: Match, meta: dict[str, Any]) -> dict[str, Any]:
    """A result row as plain JSON values, every field of :class:`Match` included (also ones added later).

    The types are fixed here (ids as int, scores rounded as ``Match.to_dict`` does) so that the
    digest recomputed from the stored row later is the digest recorded now.
    """
    d = dict(m.to_dict())
    d["metadata"] = meta
    d = json.loads(json.dumps(d, default=_jsonable))
    for key, typ in _FIXED_TYPES.items():
        d[key] = typ(d[key])
    d["score"] = round(float(m.score), 6)
    d["subject_id"] = None if d.get("subject_id") is None else str(d["subject_id"])
    return d


def match_from_row(d: Mapping[str, Any]) -> Match:
    """Rebuild a :class:`Match` from a stored row (fields this version does not know are ignored)."""
    known = {f.name for f in dataclasses.fields(Match)}
    kwargs = {k: v for k, v in d.items() if k in known}
    if isinstance(kwargs.get("bbox"), list):
        kwargs["bbox"] = tuple(kwargs["bbox"])
    return Match(**kwargs)


def results_digest(rows: Sequence[Mapping[str, Any]]) -> str:
    """SHA-256 of a result list in canonical form (what the audit entry and the report cite)."""
    return sha256_bytes(canonical_json(list(rows)).encode("utf-8"))


def _blind_positions(n: int) -> list[int]:
    """A random display order for blind review; never the rank order itself when there is a choice."""
    order = list(range(1, n + 1))
    if n > 1:
        rng = random.SystemRandom()
        while order == sorted(order):
            rng.shuffle(order)
    return order


def _store_queries(case: Case, manifest: Mapping[str, Any], images: Sequence[bytes]) -> list[QueryImage]:
    queries = manifest["query"]
    if len(images) != len(queries):
        raise CaseError(f"The search has {len(queries)} query image(s) in its manifest but {len(images)} "
                        "were given; every query image must be stored so the search can be re-run.")
    out = []
    for i, (q, data) in enumerate(zip(queries, images, strict=True)):
        digest = sha256_bytes(data)
        if digest != q["sha256"]:
            raise CaseError(f"Query image {i + 1} does not match the manifest (SHA-256 {digest[:12]}… "
                            f"vs {str(q['sha256'])[:12]}…); the search was not stored.")
        ext, _, _ = inspect_image(data, f"query image {i + 1}")
        rel = case.store_file("queries", f"{digest}{ext}", data)
        out.append(QueryImage(i, str(q["kind"]), digest, float(q.get("weight", 1.0)), rel))
    return out


def _store_thumbnails(case: Case, thumbs: Sequence[bytes | None]) -> list[tuple[str | None, str | None]]:
    """Store the usable thumbnails (content-addressed); (path, sha256) per row, (None, None) where none."""
    named: dict[str, bytes] = {}
    refs: list[str | None] = []
    for data in thumbs:
        try:
            ext, _, _ = inspect_image(data, "thumbnail") if data is not None else ("", 0, 0)
        except BadImage:
            data = None  # a broken thumbnail must not block storing the search; the report shows none
        if data is None:
            refs.append(None)
            continue
        name = f"{sha256_bytes(data)}{ext}"
        named[name] = data
        refs.append(name)
    paths = dict(zip(named, case.store_files("thumbnails", list(named.items())), strict=True))
    return [(None, None) if r is None else (paths[r], r.rsplit(".", 1)[0]) for r in refs]


def _checked_thumbnail_keys(thumbnails: Mapping[Any, bytes]) -> Mapping[ThumbnailKey, bytes]:
    """Refuse thumbnails keyed by anything but (gallery id, face id): the caller has a keying bug."""
    for key in thumbnails:
        if not (isinstance(key, tuple) and len(key) == 2 and isinstance(key[0], str) and isinstance(key[1], int)):
            raise CaseError(f"A candidate thumbnail is keyed by {key!r}, not by (gallery id, face id); the search "
                            "was not stored.", hint="This is a bug in the program that recorded the search.")
    return thumbnails


def add_search(case: Case, manifest: Mapping[str, Any] | RunManifest, matches: Sequence[Match], query_images: Sequence[bytes], *,
               thumbnails: Mapping[ThumbnailKey, bytes] | None = None, blind: bool = False, label: str = "",
               rerun_of: int | None = None, rerun_report: Mapping[str, Any] | None = None,
               user: str | None = None) -> SearchRecord:
    """Store a search: its run manifest, the query images, the ranked results and their thumbnails.

    Args:
        manifest: the search engine's run manifest (see :data:`MANIFEST_KEYS`).
        matches: results in rank order.
        query_images: the bytes of each manifest query image, in manifest order (checked by SHA-256).
        thumbnails: optional face thumbnails keyed by (gallery id, face id), never by face id alone
            (another gallery's face would be recorded); a match's ``metadata["thumbnail"]`` (bytes) or
            ``metadata["thumbnail_path"]`` is used otherwise.
        blind: review this search blind (shuffled, scores hidden until every candidate is decided).
        label: a short name for the search.
        rerun_of, rerun_report: set by :func:`engine.cases.rerun.rerun_search`.
    """
    if isinstance(manifest, RunManifest):
        manifest = manifest.to_dict()
    validate_manifest(manifest)
    manifest_dict = json.loads(json.dumps(dict(manifest), default=_jsonable))
    manifest_sha = sha256_bytes(canonical_json(manifest_dict).encode("utf-8"))
    user = resolve_user(user)
    thumbnails = _checked_thumbnail_keys(thumbnails or {})
    rows, thumbs = [], []
    for m in matches:
        meta, thumb = _clean_metadata(m.metadata)
        thumb = thumbnails.get((str(m.gallery_id), int(m.face_id)), thumb)
        rows.append(_match_dict(m, meta))
        thumbs.append(thumb)
    if len({(r["gallery_id"], r["face_id"]) for r in rows}) != len(rows):
        raise CaseError("The result list names the same face twice; the search was not stored.")
    res_sha = results_digest(rows)
    positions = _blind_positions(len(rows)) if blind else list(range(1, len(rows) + 1))
    with case.write() as conn:
        queries = _store_queries(case, manifest_dict, query_images)
        cur = conn.execute(
            "INSERT INTO searches (label, manifest, manifest_sha256, results_sha256, blind, rerun_of, rerun_report, "
            "created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (label, canonical_json(manifest_dict), manifest_sha, res_sha, int(blind), rerun_of,
             canonical_json(dict(rerun_report)) if rerun_report is not None else None, now_iso(), user))
        sid = int(cur.lastrowid or 0)
        for q in queries:
            conn.execute("INSERT INTO search_queries VALUES (?, ?, ?, ?, ?, ?)",
                         (sid, q.idx, q.kind, q.sha256, q.weight, q.path))
        stored_thumbs = _store_thumbnails(case, thumbs)
        for r, m, pos, (tpath, tsha) in zip(rows, matches, positions, stored_thumbs, strict=True):
            conn.execute("INSERT INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (sid, r["rank"], pos, float(m.score), r["gallery_id"], r["face_id"], r["photo_id"],
                          r["photo_path"], r["photo_sha256"], r["subject_id"], canonical_json(r["metadata"]),
                          int(r["baseline"]), r["group_size"], tpath, tsha, canonical_json(r)))
        case.log("search.rerun" if rerun_of else "search.add", f"search:{sid}", user=user,
                 inputs={**{f"query{q.idx + 1}": q.sha256 for q in queries}, "manifest": manifest_sha},
                 outputs={"results": res_sha},
                 details={"label": label, "blind": blind, "n_results": len(rows), "k": manifest_dict["k"],
                          **({"rerun_of": rerun_of, "identical": bool((rerun_report or {}).get("identical"))}
                             if rerun_of else {})},
                 records=[("searches", sid), ("search_queries", sid), ("results", sid)])
    return get_search(case, sid)


def get_search(case: Case, search_id: int) -> SearchRecord:
    """One stored search (manifest, hashes, review mode, query images), or CaseError."""
    r = case.conn.execute("SELECT * FROM searches WHERE id = ?", (search_id,)).fetchone()
    if r is None:
        raise CaseError(f"Case {case.case_id} has no search {search_id}.",
                        hint="List the case's searches with 'sketchface case show CASE'.")
    n = case.conn.execute("SELECT COUNT(*) FROM results WHERE search_id = ?", (search_id,)).fetchone()[0]
    qs = case.conn.execute("SELECT * FROM search_queries WHERE search_id = ? ORDER BY idx", (search_id,)).fetchall()
    return SearchRecord(r["id"], r["label"], json.loads(r["manifest"]), r["manifest_sha256"], r["results_sha256"],
                        bool(r["blind"]), r["revealed_at"], r["rerun_of"],
                        json.loads(r["rerun_report"]) if r["rerun_report"] else None, r["created_at"],
                        r["created_by"], int(n),
                        tuple(QueryImage(q["idx"], q["kind"], q["sha256"], q["weight"], q["path"]) for q in qs))


def list_searches(case: Case) -> list[SearchRecord]:
    """Every search of the case (re-runs included), oldest first."""
    ids = [r[0] for r in case.conn.execute("SELECT id FROM searches ORDER BY id").fetchall()]
    return [get_search(case, i) for i in ids]


def query_images(case: Case, search_id: int) -> list[bytes]:
    """The stored query images of a search, each checked against its recorded SHA-256."""
    return [case.read_file(q.path, q.sha256) for q in get_search(case, search_id).queries]


def stored_matches(case: Case, search_id: int) -> list[Match]:
    """The stored result list as :class:`Match` rows in rank order (ignores blind mode: for re-runs)."""
    rows = case.conn.execute("SELECT row, score FROM results WHERE search_id = ? ORDER BY rank",
                             (search_id,)).fetchall()
    return [dataclasses.replace(match_from_row(json.loads(r["row"])), score=float(r["score"])) for r in rows]
