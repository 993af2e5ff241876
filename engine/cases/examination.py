"""The reasoned examination: probe intake, the morphological comparison sheet, and bounded conclusions.

Why: a decision ("possible", "excluded") records what the examiner chose, not why, and nothing kept a
conclusion within what the evidence can bear. Here each probe is assessed before it is relied on
(ENFSI's initial assessment of suitability), each candidate is compared component by component, and
the conclusion is written on a verbal scale whose ceiling depends on the probe: for sketch and
generated probes only investigative-lead outcomes (:mod:`engine.cases.scales`). Every record is one
audited transaction, verified like every other record both ways (:mod:`engine.cases.records`).

The sheet's components follow the FISWG "Facial Image Comparison Feature List for Morphological
Analysis", Version 2.0 (2018.09.11), published as ASTM E3149-18. FISWG lists face/head outline and
face/head composition as two components, and hair with the hairline; tattoos are a separate row here
(FISWG treats them with facial marks) because witnesses recall them and galleries annotate them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from engine.cases import exam_checks, exam_schema, items, scales
from engine.cases.db import canonical_json, now_iso
from engine.cases.store import Case, resolve_user
from engine.errors import CaseError

FISWG_VERSION = "FISWG Facial Image Comparison Feature List for Morphological Analysis v2.0 (2018.09.11; ASTM E3149-18)"
COMPONENTS: dict[str, str] = {
    "skin": "Skin", "face-outline": "Face/head outline", "face-composition": "Face/head composition",
    "hair": "Hair and hairline", "forehead": "Forehead", "eyebrows": "Eyebrows", "eyes": "Eyes",
    "cheeks": "Cheeks", "nose": "Nose", "ears": "Ears", "mouth": "Mouth", "chin-jawline": "Chin/jawline",
    "neck": "Neck", "facial-hair": "Facial hair", "facial-lines": "Facial lines", "scars": "Scars",
    "facial-marks": "Facial marks", "tattoos": "Tattoos", "alterations": "Alterations",
}
ASSESSMENTS = ("similar", "dissimilar", "not-assessable")
SUITABILITY = ("suitable", "limited", "unsuitable")
MARK_KINDS = ("scar", "mark", "tattoo")
NON_EVIDENTIAL = "NON-EVIDENTIAL: generated image (investigative aid only)"


@dataclass(frozen=True)
class Intake:
    """The initial assessment of one probe image: where it came from and whether it is fit to search with."""

    id: int
    probe_ref: str
    probe_sha256: str
    source: str
    software: str
    witness: str
    delay: str
    artist: str
    alterations: str
    suitability: str
    reasons: str
    marks: list[dict[str, str]]
    evidential: bool
    created_at: str
    created_by: str

    @property
    def probe_type(self) -> str:
        """photo, sketch or generated: which conclusion scale a search with this probe is held to."""
        return exam_checks.source_probe_type(self.source)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "probe_type": self.probe_type}


@dataclass(frozen=True)
class SheetRow:
    """One component of one candidate's comparison sheet (the latest row per component counts)."""

    id: int
    search_id: int
    gallery_id: str
    face_id: int
    component: str
    assessment: str
    reason: str
    note: str
    created_at: str
    created_by: str

    @property
    def title(self) -> str:
        return COMPONENTS.get(self.component, self.component)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "title": self.title}


@dataclass(frozen=True)
class Conclusion:
    """A conclusion on one candidate, on the scale its probe type allows."""

    id: int
    search_id: int
    gallery_id: str
    face_id: int
    probe_type: str
    scale_id: str
    scale_sha256: str
    level: str
    level_text: str
    note: str
    created_at: str
    created_by: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _probe(case: Case, ref: str) -> tuple[str, str, bool]:
    """(canonical reference, SHA-256, is generated) of a stored probe image named on the command line.

    Accepts a sketch id (its latest version), ``sketch:N`` / ``sketch:N:vM``, ``sketch_version:ID``
    or ``generated:ID``.
    """
    text = ref.strip()
    kind, _, rest = text.partition(":")
    if text.isdigit():
        kind, rest = "sketch", text
    if kind == "generated" and rest.isdigit():
        g = items.get_generated(case, int(rest))
        return g.ref, g.sha256, True
    if kind == "sketch_version" and rest.isdigit():
        v = items.get_sketch_version(case, int(rest))
        return v.ref, v.sha256, False
    if kind == "sketch":
        sid, _, ver = rest.partition(":")
        versions = [v for v in items.list_sketches(case) if str(v.sketch_id) == sid]
        if ver:
            versions = [v for v in versions if f"v{v.version}" == ver.lower()]
        if versions:
            return versions[-1].ref, versions[-1].sha256, False
        raise CaseError(f"Case {case.case_id} has no sketch {rest}.", hint="See its sketches with 'sketchface case show'.")
    raise CaseError(f"Cannot tell which probe {ref!r} is.",
                    hint="Give a sketch id (3), sketch:3:v2, sketch_version:ID or generated:ID.")


def parse_mark(text: str) -> dict[str, str]:
    """``tattoo:left forearm:rose`` -> {kind, location, description} (the description is optional)."""
    kind, _, rest = text.partition(":")
    location, _, description = rest.partition(":")
    if kind.strip().lower() not in MARK_KINDS or not location.strip():
        raise CaseError(f"A mark is KIND:LOCATION[:DESCRIPTION] with KIND one of {', '.join(MARK_KINDS)}, not {text!r}.")
    return {"kind": kind.strip().lower(), "location": location.strip(), "description": description.strip()}


def record_intake(case: Case, probe: str, *, source: str, suitability: str, reasons: str = "", software: str = "",
                  witness: str = "", delay: str = "", artist: str = "", alterations: str = "",
                  marks: list[dict[str, str]] | None = None, user: str | None = None) -> Intake:
    """Record the intake of a stored probe image (a later intake of the same image supersedes this one).

    Args:
        probe: which stored image (see :func:`_probe`).
        source: one of :data:`engine.cases.exam_checks.SOURCES`; a generated image is always "generated".
        suitability: suitable, limited or unsuitable; limited and unsuitable need ``reasons``.
        software: the composite software, required for a composite-software source.
        marks: scars, marks and tattoos the witness described, as :func:`parse_mark` gives them.
    """
    ref, sha, generated = _probe(case, probe)
    source = "generated" if generated else source.strip().lower()
    if source not in exam_checks.SOURCES:
        raise CaseError(f"Source {source!r} is not one of {', '.join(exam_checks.SOURCES)}.")
    if source == "composite-software" and not software.strip():
        raise CaseError("A composite-software probe needs the software's name (--software).")
    if suitability not in SUITABILITY:
        raise CaseError(f"Suitability is one of {', '.join(SUITABILITY)}, not {suitability!r}.")
    if suitability != "suitable" and not reasons.strip():
        raise CaseError(f"A probe assessed as {suitability} needs the reasons (--reason).")
    if not witness.strip() and ref.startswith("sketch_version:"):
        witness = items.get_sketch_version(case, int(ref.split(":")[1])).witness
    user = resolve_user(user)
    marks_text = canonical_json([parse_mark(f"{m['kind']}:{m['location']}:{m.get('description', '')}")
                                 for m in marks or []])
    with case.write() as conn:
        exam_schema.ensure_tables(conn)
        cur = conn.execute(
            "INSERT INTO intakes (probe_ref, probe_sha256, source, software, witness, delay, artist, alterations, "
            "suitability, reasons, marks, evidential, created_at, created_by) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (ref, sha, source, software.strip(), witness.strip(), delay.strip(), artist.strip(), alterations.strip(),
             suitability, reasons.strip(), marks_text, 0 if source == "generated" else 1, now_iso(), user))
        iid = int(cur.lastrowid or 0)
        case.log("probe.intake", ref, user=user, inputs={"probe": sha},
                 details={"intake_id": iid, "source": source, "suitability": suitability, "reasons": reasons.strip()},
                 records=[("intakes", iid)])
    return next(i for i in list_intakes(case) if i.id == iid)


def _intake_row(r: Any) -> Intake:
    return Intake(r["id"], r["probe_ref"], r["probe_sha256"], r["source"], r["software"], r["witness"], r["delay"],
                  r["artist"], r["alterations"], r["suitability"], r["reasons"], json.loads(r["marks"] or "[]"),
                  bool(r["evidential"]), r["created_at"], r["created_by"])


def list_intakes(case: Case) -> list[Intake]:
    """Every intake of the case, oldest first (superseded ones included)."""
    if not exam_schema.present(case.conn, "intakes"):
        return []
    return [_intake_row(r) for r in case.conn.execute("SELECT * FROM intakes ORDER BY id").fetchall()]


def intake_for(case: Case, sha256: str) -> Intake | None:
    """The latest intake of the probe image with this SHA-256, or None."""
    return next((i for i in reversed(list_intakes(case)) if i.probe_sha256 == sha256), None)


def _candidate(case: Case, search_id: int, gallery_id: str | None, face_id: int) -> str:
    """The gallery id of a candidate of the search, or CaseError when the search did not return it."""
    rows = case.conn.execute("SELECT gallery_id FROM results WHERE search_id = ? AND face_id = ?",
                             (search_id, face_id)).fetchall()
    found = [str(r[0]) for r in rows if gallery_id is None or str(r[0]) == gallery_id]
    if len(found) != 1:
        raise CaseError(f"Search {search_id} has no{' single' if len(found) > 1 else ''} candidate "
                        f"{gallery_id or '?'}:{face_id}.", hint="See its candidates with 'sketchface case show CASE "
                        f"--search {search_id}'.")
    return found[0]


def parse_feature(text: str) -> tuple[str, str, str]:
    """``nose=similar`` or ``ears=not-assessable:hidden by hair`` -> (component, assessment, reason)."""
    component, _, value = text.partition("=")
    assessment, _, reason = value.partition(":")
    component, assessment = component.strip().lower(), assessment.strip().lower().replace("_", "-")
    if component not in COMPONENTS:
        raise CaseError(f"{component!r} is not a comparison component.", hint=f"Components: {', '.join(COMPONENTS)}.")
    if assessment not in ASSESSMENTS:
        raise CaseError(f"{component}: the assessment is one of {', '.join(ASSESSMENTS)}, not {assessment!r}.")
    if assessment == "not-assessable" and not reason.strip():
        raise CaseError(f"{component}: say why it is not assessable (e.g. {component}=not-assessable:\"not in the "
                        "sketch\", \"not visible\", \"occluded\").")
    return component, assessment, reason.strip()


def record_sheet(case: Case, search_id: int, face_id: int, features: list[tuple[str, str, str]], *,
                 gallery_id: str | None = None, notes: dict[str, str] | None = None,
                 user: str | None = None) -> list[SheetRow]:
    """Record comparison-sheet rows for one candidate (one audited entry; later rows supersede earlier ones).

    Args:
        features: (component, assessment, reason) as :func:`parse_feature` gives them.
        notes: optional note per component.
    """
    if not features:
        raise CaseError("Give at least one --feature COMPONENT=ASSESSMENT.")
    user = resolve_user(user)
    notes = notes or {}
    with case.write() as conn:
        exam_schema.ensure_tables(conn)
        gid = _candidate(case, search_id, gallery_id, face_id)
        ids = []
        for component, assessment, reason in features:
            cur = conn.execute(
                "INSERT INTO comparison_rows (search_id, gallery_id, face_id, component, assessment, reason, note, "
                "created_at, created_by) VALUES (?,?,?,?,?,?,?,?,?)",
                (search_id, gid, face_id, component, assessment, reason, notes.get(component, ""), now_iso(), user))
            ids.append(int(cur.lastrowid or 0))
        case.log("examination.sheet", f"search:{search_id}:face:{gid}/{face_id}", user=user,
                 details={"rows": ids, "features": {c: a for c, a, _ in features}},
                 records=[("comparison_rows", i) for i in ids])
    return sheet(case, search_id, gid, face_id)


def sheet(case: Case, search_id: int, gallery_id: str, face_id: int) -> list[SheetRow]:
    """A candidate's current sheet: the latest row of each assessed component, in FISWG order."""
    if not exam_schema.present(case.conn, "comparison_rows"):
        return []
    latest: dict[str, SheetRow] = {}
    for r in case.conn.execute("SELECT * FROM comparison_rows WHERE search_id = ? AND gallery_id = ? AND face_id = ? "
                               "ORDER BY id", (search_id, gallery_id, face_id)).fetchall():
        latest[r["component"]] = SheetRow(r["id"], r["search_id"], r["gallery_id"], r["face_id"], r["component"],
                                          r["assessment"], r["reason"], r["note"], r["created_at"], r["created_by"])
    order = list(COMPONENTS)
    return sorted(latest.values(), key=lambda s: order.index(s.component) if s.component in order else len(order))


def record_conclusion(case: Case, search_id: int, face_id: int, level: str, *, gallery_id: str | None = None,
                      note: str = "", user: str | None = None) -> Conclusion:
    """Record a conclusion on the scale the search's probe type allows; a stronger one is refused."""
    user = resolve_user(user)
    all_scales = scales.load_scales()
    with case.write() as conn:
        exam_schema.ensure_tables(conn)
        gid = _candidate(case, search_id, gallery_id, face_id)
        probe = exam_checks.search_probe_type(conn, search_id)
        scale = scales.scale_for(probe, all_scales)
        if not scales.allowed(scale, probe, level):
            levels = ", ".join(f"{lv.id} ({lv.text})" for lv in scale.levels)
            raise CaseError(f"{level!r} is not a conclusion a {probe} probe allows: search {search_id} is held to the "
                            f"scale {scale.title!r}, whose strongest outcome is {scale.levels[0].text!r}. Nothing was "
                            "recorded.", hint=f"Its levels: {levels}.")
        text = scale.level(level).text  # type: ignore[union-attr]  # allowed() found it
        cur = conn.execute(
            "INSERT INTO conclusions (search_id, gallery_id, face_id, probe_type, scale_id, scale_sha256, level, "
            "level_text, note, created_at, created_by) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (search_id, gid, face_id, probe, scale.id, scale.sha256, level, text, note, now_iso(), user))
        cid = int(cur.lastrowid or 0)
        case.log("examination.conclude", f"search:{search_id}:face:{gid}/{face_id}", user=user,
                 details={"conclusion_id": cid, "level": level, "scale": scale.id, "probe_type": probe, "note": note},
                 records=[("conclusions", cid)])
    return next(c for c in conclusions(case, search_id) if c.id == cid)


def conclusions(case: Case, search_id: int) -> list[Conclusion]:
    """Every conclusion recorded on a search, oldest first (the latest per candidate counts)."""
    if not exam_schema.present(case.conn, "conclusions"):
        return []
    rows = case.conn.execute("SELECT * FROM conclusions WHERE search_id = ? ORDER BY id", (search_id,)).fetchall()
    return [Conclusion(r["id"], r["search_id"], r["gallery_id"], r["face_id"], r["probe_type"], r["scale_id"],
                       r["scale_sha256"], r["level"], r["level_text"], r["note"], r["created_at"], r["created_by"])
            for r in rows]
