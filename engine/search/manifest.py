"""The run manifest: the one typed record of what a search did, so anyone can repeat it and compare.

Search builds it (:func:`engine.search.core.build_manifest`), cases validate it before storing a
search (:mod:`engine.cases.searches`), re-run reads it (:mod:`engine.search.rerun`,
:mod:`engine.cases.rerun`). The JSON form (:meth:`RunManifest.to_dict`) is what a case stores and
hashes; :meth:`RunManifest.from_dict` reads that form back, including manifests stored by earlier
versions (the embedder kinds ``trained`` and ``arcface-baseline`` are read as ``sketch_encoder`` and
``arcface_baseline``; a sketch query without ``face_box`` was cropped to its ink box).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.errors import EngineError
from engine.sketch.preprocess import Box, check_face_box

FUSION = "weighted_mean_of_unit_embeddings"
QUERY_KINDS = ("photo", "sketch")
SKETCH_ENCODER, ARCFACE_BASELINE, ARCFACE = "sketch_encoder", "arcface_baseline", "arcface"
EMBEDDER_KINDS = (SKETCH_ENCODER, ARCFACE_BASELINE, ARCFACE)
# Spellings of earlier versions (engine.sketch's describe()) -> the one vocabulary above.
LEGACY_EMBEDDER_KINDS = {"trained": SKETCH_ENCODER, "arcface-baseline": ARCFACE_BASELINE}
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
