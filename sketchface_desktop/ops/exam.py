"""Examination operations: probe intake, the comparison sheet, conclusions and probe status (case lane).

Each op works on the open case through the engine's examination records
(:mod:`engine.cases.examination`), the same functions the command line calls, and returns plain
view-models (:class:`SheetView`, :class:`ProbeStatus`), so the views never import the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sketchface_desktop.ops.base import Op
from sketchface_desktop.ops.cases import CaseSlot


@dataclass(frozen=True)
class SheetView:
    """One candidate's comparison sheet as the compare view shows it.

    ``components``: (key, title) in FISWG order; ``rows``: the latest row per assessed component
    (dicts with component, assessment, reason, note); ``levels``: (id, text) of the scale the search's
    probe type allows (nothing stronger is offered); ``conclusion``: the latest one on this candidate.
    """

    search_id: int
    gallery_id: str
    face_id: int
    probe_type: str
    scale_title: str
    fiswg: str
    components: list[tuple[str, str]]
    assessments: tuple[str, ...]
    levels: list[tuple[str, str]]
    rows: dict[str, dict[str, Any]]
    conclusion: dict[str, Any] | None
    non_evidential: str = ""


@dataclass(frozen=True)
class ProbeStatus:
    """What the lists show of the case's probes: which stored images have an intake, which searches are
    of a generated image (non-evidential) or ran before their probe's intake."""

    intakes: dict[str, dict[str, Any]] = field(default_factory=dict)  # probe SHA-256 -> latest intake
    sketch_intake: dict[int, str] = field(default_factory=dict)  # sketch version id -> suitability, "" = none
    searches: dict[int, dict[str, Any]] = field(default_factory=dict)  # search id -> probe_type, flags


def _case(title: str, fn: Any, *, visible: bool = False) -> Op[Any]:
    return Op(title, lambda _p, _c: fn(), lane="case", visible=visible, cancellable=False)


def _sheet_view(case: Any, search_id: int, gallery_id: str, face_id: int) -> SheetView:
    from engine.cases import exam_checks, examination, scales

    probe = exam_checks.search_probe_type(case.conn, search_id)
    scale = scales.scale_for(probe, scales.load_scales())
    levels = [(lv.id, lv.text) for lv in scale.levels if scales.allowed(scale, probe, lv.id)]
    rows = {r.component: {"component": r.component, "assessment": r.assessment, "reason": r.reason,
                          "note": r.note, "created_by": r.created_by}
            for r in examination.sheet(case, search_id, gallery_id, face_id)}
    mine = [c for c in examination.conclusions(case, search_id) if (c.gallery_id, c.face_id) == (gallery_id, face_id)]
    return SheetView(search_id, gallery_id, face_id, probe, scale.title, examination.FISWG_VERSION,
                     list(examination.COMPONENTS.items()), examination.ASSESSMENTS, levels, rows,
                     mine[-1].to_dict() if mine else None,
                     examination.NON_EVIDENTIAL if probe == "generated" else "")


def sheet(slot: CaseSlot, search_id: int, gallery_id: str, face_id: int) -> Op[SheetView]:
    """Read a candidate's sheet, its conclusion and the levels its probe type allows."""
    return _case("Reading the comparison sheet", lambda: _sheet_view(slot.get(), search_id, gallery_id, face_id))


def record_sheet(slot: CaseSlot, search_id: int, gallery_id: str, face_id: int,
                 features: list[tuple[str, str, str]], notes: dict[str, str]) -> Op[SheetView]:
    """Record the sheet's rows (one audited entry, signed by the acting examiner); the engine checks each."""
    def work() -> SheetView:
        from engine.cases import examination

        case = slot.get()
        checked = [examination.parse_feature(f"{c}={a}:{r}" if r else f"{c}={a}") for c, a, r in features]
        examination.record_sheet(case, search_id, face_id, checked, gallery_id=gallery_id, notes=notes)
        return _sheet_view(case, search_id, gallery_id, face_id)

    return _case(f"Recording the comparison sheet of {gallery_id}:{face_id}", work, visible=True)


def record_conclusion(slot: CaseSlot, search_id: int, gallery_id: str, face_id: int, level: str,
                      note: str) -> Op[SheetView]:
    """Record a conclusion; the engine refuses a level stronger than the probe type allows."""
    def work() -> SheetView:
        from engine.cases import examination

        case = slot.get()
        examination.record_conclusion(case, search_id, face_id, level, gallery_id=gallery_id, note=note)
        return _sheet_view(case, search_id, gallery_id, face_id)

    return _case(f"Recording the conclusion on {gallery_id}:{face_id}", work, visible=True)


def record_intake(slot: CaseSlot, version_id: int, values: dict[str, Any]) -> Op[ProbeStatus]:
    """Record the intake of a stored sketch version (``values``: the intake dialog's fields)."""
    def work() -> ProbeStatus:
        from engine.cases import examination

        case = slot.get()
        marks = [examination.parse_mark(m) for m in values.get("marks", [])]
        examination.record_intake(case, f"sketch_version:{version_id}", source=values["source"],
                                  suitability=values["suitability"], reasons=values.get("reasons", ""),
                                  software=values.get("software", ""), witness=values.get("witness", ""),
                                  delay=values.get("delay", ""), artist=values.get("artist", ""),
                                  alterations=values.get("alterations", ""), marks=marks)
        return _status(case)

    return _case("Recording the probe intake", work, visible=True)


def _status(case: Any) -> ProbeStatus:
    from engine.cases import exam_checks, exam_report, examination, list_searches, list_sketches

    intakes = {i.probe_sha256: i.to_dict() for i in examination.list_intakes(case)}
    sketch_intake = {v.id: str(intakes.get(v.sha256, {}).get("suitability", "")) for v in list_sketches(case)}
    before = {b["search_id"] for b in exam_report.searched_before_intake(case)}
    found = {}
    for s in list_searches(case):
        probe = exam_checks.search_probe_type(case.conn, s.id)
        found[s.id] = {"probe_type": probe, "non_evidential": probe == "generated",
                       "before_intake": s.id in before}
    return ProbeStatus(intakes, sketch_intake, found)


def status(slot: CaseSlot) -> Op[ProbeStatus]:
    """Which probes have an intake, and which searches are non-evidential or ran before intake."""
    return _case("Reading probe intakes", lambda: _status(slot.get()))


def intake_choices() -> dict[str, tuple[str, ...]]:
    """The intake dialog's choices, as the engine defines them (sources, suitability, mark kinds)."""
    from engine.cases import exam_checks, examination

    return {"sources": exam_checks.SOURCES, "suitability": examination.SUITABILITY,
            "mark_kinds": examination.MARK_KINDS}
