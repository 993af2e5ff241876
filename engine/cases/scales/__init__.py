"""Verbal conclusion scales: the shipped default file, or the administrator's ``conclusion_scales.toml``.

Why a file: agencies word their scales differently, and the wording is policy, not code. What the
code fixes is the ceiling: a scale serving sketch or generated probes may hold investigative levels
only ("a lead worth pursuing", "not supported", "insufficient"), because a sketch search yields leads,
never identifications. A file that breaks that rule is refused, and verification applies the same
rule to every stored conclusion.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from engine import paths
from engine.errors import CaseError
from engine.workstation_key import canonical_json

SCALE_FILE = "conclusion_scales.toml"
PROBE_TYPES = ("photo", "sketch", "generated")
LEVEL_KINDS = ("evaluative", "investigative")
LEAD_ONLY = frozenset({"sketch", "generated"})  # probe types whose conclusions are investigative only
# Order of restriction: a search mixing probe types is judged by its most restricted one.
_RESTRICTION = {"photo": 0, "sketch": 1, "generated": 2}


@dataclass(frozen=True)
class Level:
    """One step of a scale: its id (what the command line takes), kind and wording."""

    id: str
    kind: str
    text: str


@dataclass(frozen=True)
class Scale:
    """A verbal scale and the probe types it serves; ``sha256`` identifies its exact definition."""

    id: str
    title: str
    probe_types: tuple[str, ...]
    levels: tuple[Level, ...]
    sha256: str

    def level(self, level_id: str) -> Level | None:
        """The level with this id, or None."""
        return next((lv for lv in self.levels if lv.id == level_id), None)


def stricter(a: str, b: str) -> str:
    """The more restricted of two probe types (an unknown type counts as generated, the most restricted)."""
    return a if _RESTRICTION.get(a, 2) >= _RESTRICTION.get(b, 2) else b


def scale_path() -> Path:
    """Where an administrator puts the agency's scale file (the configuration folder)."""
    return paths.config_dir() / SCALE_FILE


def _parse(text: str, where: str) -> tuple[Scale, ...]:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CaseError(f"The conclusion scale file {where} cannot be read ({exc}).") from exc
    raw = doc.get("scale")
    if not isinstance(raw, list) or not raw:
        raise CaseError(f"The conclusion scale file {where} defines no [[scale]].")
    out = [_scale(s, where) for s in raw]
    ids = [s.id for s in out]
    if len(set(ids)) != len(ids):
        raise CaseError(f"The conclusion scale file {where} defines a scale id twice.")
    for t in PROBE_TYPES:
        if not any(t in s.probe_types for s in out):
            raise CaseError(f"The conclusion scale file {where} has no scale for {t} probes.")
    return tuple(out)


def _scale(s: Any, where: str) -> Scale:
    if not isinstance(s, dict) or not isinstance(s.get("id"), str) or not isinstance(s.get("levels"), list):
        raise CaseError(f"A scale in {where} needs an id and a list of levels.")
    types = tuple(str(t) for t in s.get("probe_types", []))
    if not types or any(t not in PROBE_TYPES for t in types):
        raise CaseError(f"Scale {s['id']} in {where} must name its probe types among {', '.join(PROBE_TYPES)}.")
    levels = []
    for lv in s["levels"]:
        if not isinstance(lv, dict) or not all(isinstance(lv.get(k), str) and lv[k] for k in ("id", "kind", "text")):
            raise CaseError(f"Each level of scale {s['id']} in {where} needs an id, a kind and a text.")
        if lv["kind"] not in LEVEL_KINDS:
            raise CaseError(f"Level {lv['id']} of scale {s['id']} has kind {lv['kind']!r}; use "
                            f"{' or '.join(LEVEL_KINDS)}.")
        if lv["kind"] != "investigative" and LEAD_ONLY & set(types):
            raise CaseError(f"Scale {s['id']} in {where} serves sketch or generated probes but its level "
                            f"{lv['id']!r} is {lv['kind']}: a sketch search yields leads, not identifications, "
                            "so such a scale may hold investigative levels only.")
        levels.append(Level(lv["id"], lv["kind"], lv["text"]))
    body = {"id": s["id"], "title": str(s.get("title", s["id"])), "probe_types": list(types),
            "levels": [[lv.id, lv.kind, lv.text] for lv in levels]}
    digest = hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()
    return Scale(s["id"], body["title"], types, tuple(levels), digest)


def default_scales() -> tuple[Scale, ...]:
    """The two scales shipped with SketchFace."""
    text = resources.files(__package__).joinpath("default.toml").read_text(encoding="utf-8")
    return _parse(text, "(shipped default)")


def load_scales() -> tuple[Scale, ...]:
    """The administrator's scale file if there is one, else the shipped default; CaseError if it is invalid."""
    path = scale_path()
    if not path.is_file():
        return default_scales()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CaseError(f"The conclusion scale file {path} cannot be read ({exc}).") from exc
    return _parse(text, str(path))


def scale_for(probe_type: str, scales: tuple[Scale, ...] | None = None) -> Scale:
    """The scale a conclusion on a probe of this type is written on (the first that serves it)."""
    for s in scales if scales is not None else load_scales():
        if probe_type in s.probe_types:
            return s
    raise CaseError(f"No conclusion scale serves {probe_type} probes.")


def allowed(scale: Scale, probe_type: str, level_id: str) -> bool:
    """Whether ``level_id`` of ``scale`` may be recorded for a probe of ``probe_type`` (the hard ceiling included)."""
    lv = scale.level(level_id)
    if lv is None or probe_type not in scale.probe_types:
        return False
    return not (probe_type in LEAD_ONLY and lv.kind != "investigative")
