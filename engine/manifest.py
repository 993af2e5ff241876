"""The run manifest: the one typed record of what a search did, so anyone can repeat it and compare.

It sits below both search and cases (a primitive), so neither imports the other for it: search
builds it (:func:`engine.search.core.build_manifest`), cases validate it before storing a search
(:mod:`engine.cases.searches`), re-runs read it and :func:`compare_manifests` (the one comparison)
says what changed between two runs. The JSON form (:meth:`RunManifest.to_dict`) is what a case stores and
hashes; :meth:`RunManifest.from_dict` reads that form back, including manifests stored by earlier
versions (the embedder kinds ``trained`` and ``arcface-baseline`` are read as ``sketch_encoder`` and
``arcface_baseline``; a sketch query without ``face_box`` was cropped to its ink box).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.environment import describe_software
from engine.errors import EngineError
from engine.sketch.preprocess import Box, check_face_box

FUSION = "weighted_mean_of_unit_embeddings"
QUERY_KINDS = ("photo", "sketch")
SKETCH_ENCODER, ARCFACE_BASELINE, ARCFACE = "sketch_encoder", "arcface_baseline", "arcface"
EMBEDDER_KINDS = (SKETCH_ENCODER, ARCFACE_BASELINE, ARCFACE)
# Spellings of earlier versions (engine.sketch's describe()) -> the one vocabulary above.
LEGACY_EMBEDDER_KINDS = {"trained": SKETCH_ENCODER, "arcface-baseline": ARCFACE_BASELINE}
# Fields that differ on every run and say nothing about the result list.
VOLATILE_KEYS = frozenset({"created_at", "started_at", "finished_at", "timestamp", "elapsed_s", "elapsed_ms",
                           "duration_s", "duration_ms", "timings", "run_id"})
HNSW_MODE = "hnsw"  # the search mode of runs recorded before exact search (engine.gallery.exact)
REQUIRED_KEYS = ("query", "embedder", "arcface_sha256", "galleries", "index", "filters", "k",
                 "group_by_subject", "engine_version")


class ManifestInvalid(EngineError):
    """A run manifest lacks what is needed to repeat its search, or is malformed."""

    title = "Search record incomplete"


def embedder_kind(kind: object) -> str:
    """The one spelling of an embedder kind (old spellings accepted); ManifestInvalid for unknown kinds."""
    text = LEGACY_EMBEDDER_KINDS.get(str(kind), str(kind))
    if text not in EMBEDDER_KINDS:
        raise ManifestInvalid(f"Unknown embedder kind {kind!r} in the search record "
                              f"(known: {', '.join(EMBEDDER_KINDS)}).")
    return text


@dataclass(frozen=True)
class EmbedderRef:
    """What turned the query images into the vector: its kind and the SHA-256 of its weights."""

    kind: str
    sha256: str | None = None

    @property
    def baseline(self) -> bool:
        """True when ArcFace embedded a sketch itself (a weak baseline reports must label)."""
        return self.kind == ARCFACE_BASELINE

    @classmethod
    def of_sketch_embedder(cls, embedder: Any) -> EmbedderRef:
        """The reference of a :class:`engine.sketch.SketchEmbedder` (trained encoder or baseline)."""
        kind = ARCFACE_BASELINE if getattr(embedder, "is_baseline", False) else SKETCH_ENCODER
        return cls(kind, getattr(embedder, "model_sha256", None))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EmbedderRef:
        """Read ``{"kind", "sha256"}`` (or a ``describe()`` dict with ``model_sha256``), old kinds included."""
        if not isinstance(d, Mapping) or "kind" not in d:
            raise ManifestInvalid("The search record's embedder must be an object {kind, sha256}.")
        sha = d.get("sha256", d.get("model_sha256"))
        return cls(embedder_kind(d["kind"]), None if sha is None else str(sha))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "sha256": self.sha256}


@dataclass(frozen=True)
class QueryRef:
    """One query image of a search: kind, SHA-256, fusion weight and, for sketches, the face box used."""

    kind: str
    sha256: str
    weight: float = 1.0
    face_box: Box | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, "sha256": self.sha256, "weight": self.weight}
        if self.kind == "sketch":  # None: cropped to the ink box (no guide)
            d["face_box"] = list(self.face_box) if self.face_box is not None else None
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], i: int = 0) -> QueryRef:
        if not isinstance(d, Mapping) or d.get("kind") not in QUERY_KINDS or not d.get("sha256"):
            raise ManifestInvalid(f"query[{i}] needs kind sketch|photo and sha256.")
        try:
            box = check_face_box(d.get("face_box"))
        except EngineError as exc:
            raise ManifestInvalid(f"query[{i}]: {exc.message}") from exc
        return cls(str(d["kind"]), str(d["sha256"]), float(d.get("weight", 1.0)), box)


@dataclass(frozen=True)
class GalleryRef:
    """A searched gallery: id, name, content version (changes with every edit), face count, index params."""

    id: str
    content_version: Any
    name: str = ""
    face_count: int | None = None
    index: dict[str, Any] = field(default_factory=dict)
    server: str = ""  # the server profile of a shared gallery ("" = this workstation)

    def to_dict(self) -> dict[str, Any]:
        d = {"id": self.id, "name": self.name, "content_version": self.content_version,
             "face_count": self.face_count, "index": dict(self.index)}
        return {**d, "server": self.server} if self.server else d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GalleryRef:
        if not isinstance(d, Mapping) or "id" not in d or "content_version" not in d:
            raise ManifestInvalid("galleries must list {id, content_version, ...}.")
        count = d.get("face_count")
        return cls(str(d["id"]), d["content_version"], str(d.get("name", "")),
                   None if count is None else int(count), dict(d.get("index") or {}), str(d.get("server") or ""))


def _filters(value: Any) -> tuple[str, ...]:
    if isinstance(value, Mapping):  # an older/foreign form: {"sex": "M"}
        return tuple(f"{k}={v}" for k, v in value.items())
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return tuple(str(f) for f in value)
    raise ManifestInvalid("filters must be a list of KEY<op>VALUE strings.")


@dataclass(frozen=True)
class RunManifest:
    """Everything needed to repeat a search and to explain a different list later (convention 10)."""

    query: tuple[QueryRef, ...]
    embedder: EmbedderRef
    arcface_sha256: str
    galleries: tuple[GalleryRef, ...]
    index: dict[str, Any]
    filters: tuple[str, ...]
    k: int
    group_by_subject: bool = False
    engine_version: str = ""
    fusion: str = FUSION
    # Every model file the search loaded (detector included): id, file, sha256, trust ("published" or
    # "pinned at first import"). Empty in manifests stored by earlier versions.
    models: tuple[dict[str, Any], ...] = ()
    # The software that ran it: sketchface version, the lock's name and SHA-256, and whether the running
    # environment matched the lock (engine.environment). Empty in manifests stored by earlier versions.
    software: Mapping[str, Any] = field(default_factory=dict)

    @property
    def baseline(self) -> bool:
        return self.embedder.baseline

    def to_dict(self) -> dict[str, Any]:
        """The JSON form a case stores and hashes."""
        return {
            "query": [q.to_dict() for q in self.query],
            "embedder": self.embedder.to_dict(),
            "arcface_sha256": self.arcface_sha256,
            "galleries": [g.to_dict() for g in self.galleries],
            "index": dict(self.index),
            "filters": list(self.filters),
            "k": self.k,
            "group_by_subject": self.group_by_subject,
            "fusion": self.fusion,
            "engine_version": self.engine_version,
            "models": [dict(m) for m in self.models],
            "software": dict(self.software),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunManifest:
        """Read (and validate) a stored manifest; ManifestInvalid names every missing or malformed part."""
        if not isinstance(d, Mapping):
            raise ManifestInvalid("The search record has no run manifest object.")
        missing = [key for key in REQUIRED_KEYS if key not in d]
        if missing:
            raise ManifestInvalid(f"The search's run manifest lacks {', '.join(missing)}; it could not be re-run.")
        problems: list[str] = []

        def part(fn: Any, *args: Any) -> Any:
            try:
                return fn(*args)
            except ManifestInvalid as exc:
                problems.append(exc.message.rstrip("."))
            except (TypeError, ValueError) as exc:
                problems.append(str(exc))
            return None

        queries = d["query"]
        if not isinstance(queries, list) or not queries:
            problems.append("query must be a non-empty list")
            queries = []
        refs = [part(QueryRef.from_dict, q, i) for i, q in enumerate(queries)]
        galleries = d["galleries"] if isinstance(d["galleries"], list) else []
        if not isinstance(d["galleries"], list):
            problems.append("galleries must list {id, content_version, ...}")
        grefs = [part(GalleryRef.from_dict, g) for g in galleries]
        if not isinstance(d["index"], Mapping):
            problems.append("index must be an object {M, ef_construction, ef}")
        embedder = part(EmbedderRef.from_dict, d["embedder"])
        filters = part(_filters, d["filters"])
        k = part(int, d["k"])
        if problems:
            raise ManifestInvalid("The search's run manifest is malformed: " + "; ".join(problems) + ".")
        return cls(tuple(refs), embedder, str(d["arcface_sha256"]), tuple(grefs), dict(d["index"]), filters, k,
                   bool(d["group_by_subject"]), str(d.get("engine_version", "")), str(d.get("fusion", FUSION)),
                   tuple(dict(m) for m in d.get("models") or () if isinstance(m, Mapping)),
                   dict(d["software"]) if isinstance(d.get("software"), Mapping) else {})


def plain(value: Any) -> str:
    """A manifest value as an examiner reads it: ``M=32, ef=200`` rather than a program's dict syntax."""
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={plain(v)}" for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))) or "none"
    if isinstance(value, list | tuple):
        return "; ".join(plain(v) for v in value) or "none"
    if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return value[:12] + "…"
    return "none" if value is None else str(value)


def _short(v: Any) -> str:
    return plain(v)


def _changed(a: Any, b: Any, prefix: str = "") -> str:
    """``before → after`` of a changed value; for two mappings, only the entries that differ
    (``recall.faces 11 → 17, ef 16 → 32``), so a grown gallery's re-measured recall does not repeat every
    index parameter twice."""
    if not (isinstance(a, Mapping) and isinstance(b, Mapping)):
        return f"{prefix}{' ' if prefix else ''}{plain(a)} → {plain(b)}"
    parts = [_changed(a.get(k), b.get(k), f"{prefix}.{k}" if prefix else str(k))
             for k in sorted(a.keys() | b.keys(), key=str) if a.get(k) != b.get(k)]
    return ", ".join(parts) or "unchanged"


def _with_mode(index: Mapping[str, Any]) -> dict[str, Any]:
    return {"mode": HNSW_MODE, **index}


def _gallery_changes(old: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    def same(g: Mapping[str, Any]) -> dict[str, Any]:
        index = g.get("index")
        return {**g, "index": _with_mode(index)} if isinstance(index, Mapping) else dict(g)

    before = {str(g["id"]): same(g) for g in old}
    after = {str(g["id"]): same(g) for g in new}
    out: list[dict[str, Any]] = []
    for gid in sorted(before.keys() | after.keys()):
        a, b = before.get(gid), after.get(gid)
        name = (b or a or {}).get("name", gid)
        if a is None or b is None:
            out.append({"field": f"galleries[{gid}]", "before": a, "after": b,
                        "message": f"Gallery {name} was {'added to' if a is None else 'missing from'} the search."})
            continue
        for key in sorted(a.keys() | b.keys()):
            if key in VOLATILE_KEYS or a.get(key) == b.get(key):
                continue
            msg = f"Gallery {name}: {key} {_changed(a.get(key), b.get(key))}"
            if key == "face_count" and isinstance(a.get(key), int) and isinstance(b.get(key), int):
                delta = b[key] - a[key]
                msg += f" ({'grew' if delta > 0 else 'shrank'} by {abs(delta)} face{'s' if abs(delta) != 1 else ''})"
            out.append({"field": f"galleries[{gid}].{key}", "before": a.get(key), "after": b.get(key), "message": msg})
    return out


_LABELS = {"embedder": "Embedder", "arcface_sha256": "ArcFace model", "index": "Index parameters",
           "filters": "Filters", "k": "k", "group_by_subject": "Grouping by subject", "query": "Query images",
           "engine_version": "Engine version", "software": "Software environment"}


def _same_vocabulary(key: str, value: Any) -> Any:
    """A manifest field as today's engine writes it, for comparison only: an embedder's old spelling
    (``trained`` -> ``sketch_encoder``), a sketch query without ``face_box`` (it was cropped to its ink),
    an index without ``mode`` (searched by HNSW with exact re-rank, before exact search)."""
    if key == "index" and isinstance(value, Mapping):
        return _with_mode(value)
    try:
        if key == "embedder" and isinstance(value, Mapping):
            return EmbedderRef.from_dict(value).to_dict()
        if key == "query" and isinstance(value, list):
            return [QueryRef.from_dict(q, i).to_dict() for i, q in enumerate(value)]
    except ManifestInvalid:
        pass
    return value


def compare_manifests(old: Mapping[str, Any] | RunManifest,
                      new: Mapping[str, Any] | RunManifest) -> list[dict[str, Any]]:
    """What differs between two run manifests, one change per field: ``field``, ``before``, ``after`` and a
    human-readable ``message`` (the case's re-run report and :func:`manifest_differences` both use it)."""
    old = old.to_dict() if isinstance(old, RunManifest) else old
    new = new.to_dict() if isinstance(new, RunManifest) else new
    out = _gallery_changes(old.get("galleries", []), new.get("galleries", []))
    for key in sorted((old.keys() | new.keys()) - {"galleries"} - VOLATILE_KEYS):
        a, b = _same_vocabulary(key, old.get(key)), _same_vocabulary(key, new.get(key))
        if a == b or (key in ("models", "software") and key not in old):  # not recorded by earlier versions
            continue
        if key == "software" and isinstance(a, Mapping) and isinstance(b, Mapping):
            if a.get("lock_digest") == b.get("lock_digest") and a.get("matches_lock") == b.get("matches_lock"):
                continue  # the same locked environment: a differing package list alone is not a new fact
            out.append({"field": key, "before": a, "after": b,
                        "message": f"Software environment differs: {describe_software(a)} → {describe_software(b)}"})
            continue
        label = _LABELS.get(key, key)
        if key == "embedder" and isinstance(a, Mapping) and isinstance(b, Mapping):
            msg = (f"Embedder changed: {a.get('kind')} {_short(a.get('sha256'))} → "
                   f"{b.get('kind')} {_short(b.get('sha256'))} (model differs)")
        elif key.endswith("sha256"):
            msg = f"{label} differs: {_short(a)} → {_short(b)} (model differs)"
        else:
            msg = f"{label} changed: {_changed(a, b)}"
        out.append({"field": key, "before": a, "after": b, "message": msg})
    return out


def manifest_differences(old: Mapping[str, Any] | RunManifest, new: Mapping[str, Any] | RunManifest) -> list[str]:
    """The messages of :func:`compare_manifests`: what can change the result list, for a person to read."""
    return [str(c["message"]) for c in compare_manifests(old, new)]
