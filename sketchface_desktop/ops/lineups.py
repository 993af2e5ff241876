"""Line-up operations: list witness records, build, swap a filler, write the administration material, record
the witness's response (all in the case lane).

Each op works on the open case (the :class:`~sketchface_desktop.ops.cases.CaseSlot`) and reads the
galleries through the window's workstation; it returns a :class:`LineupShown`, the plain view-model the
dialog draws (views never import the engine).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sketchface_desktop.ops.base import Op
from sketchface_desktop.ops.cases import CaseSlot

if TYPE_CHECKING:
    from engine.workstation import Workstation


@dataclass(frozen=True)
class LineupShown:
    """A line-up as the review dialog shows it: members (with thumbnails), figures, warning, swaps."""

    lineup_id: int
    search_id: int
    seed: str
    description: dict[str, str]
    band: tuple[float, float]
    band_source: str
    members: list[dict[str, Any]]
    thumbnails: dict[int, bytes]
    fairness: dict[str, Any]
    warning: str
    swaps: list[str]
    responses: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class WitnessShown:
    """A witness description of the case as the options dialog lists it."""

    id: int
    label: str
    fields: dict[str, str]
    taken_by: str


@dataclass(frozen=True)
class LineupOptions:
    """What the options dialog returns: fillers, ticked fields, the witness record, values typed over it."""

    fillers: int
    match: tuple[str, ...]
    witness: int | None = None
    typed: dict[str, str] = field(default_factory=dict)


def _shown(ws: Workstation, lineup: Any) -> LineupShown:
    thumbs = {}
    for m in lineup.members:
        data = ws.gallery(m.gallery_id).thumbnail(m.face_id)
        if data is not None:
            thumbs[m.position] = data
    dist = lineup.fairness.get("distinctiveness", {})
    mock = lineup.fairness.get("mock_witness", {})
    fairness = {"ratio": dist.get("ratio"), "suspect_share": mock.get("suspect_share"),
                "fair_share": mock.get("fair_share"), "effective_size": mock.get("effective_size"),
                "functional_size": mock.get("functional_size")}
    return LineupShown(lineup.id, lineup.search_id, str(lineup.seed), dict(lineup.description),
                       (float(lineup.params["band"][0]), float(lineup.params["band"][1])),
                       str(lineup.params.get("band_source", "")), [m.to_dict() for m in lineup.members], thumbs,
                       fairness, lineup.warning,
                       [f"position {s.position}: {s.reason}" for s in lineup.swaps],
                       [f"response {r.id}: {'nobody chosen' if r.choice is None else f'position {r.choice}'}; "
                        f"“{r.confidence}”" for r in lineup.responses])


def witnesses(slot: CaseSlot) -> Op[list[WitnessShown]]:
    """The open case's witness descriptions (for the options dialog to list and fill from)."""
    def work() -> list[WitnessShown]:
        from engine.cases.witness import list_witnesses

        return [WitnessShown(w.id, w.label(), dict(w.fields), w.taken_by) for w in list_witnesses(slot.get())]

    return Op("Reading the witness descriptions", lambda _p, _c: work(), lane="case", cancellable=False)


def build(slot: CaseSlot, ws: Workstation, search_id: int, gallery_id: str, face_id: int, *, fillers: int = 5,
          match: tuple[str, ...] = ("sex", "age_band"), witness: int | None = None,
          typed: dict[str, str] | None = None) -> Op[LineupShown]:
    """Build and record a line-up around a candidate (values from the ``witness`` record, ``typed`` over it)."""
    def work() -> LineupShown:
        from engine.workstation.lineup import LineupRules, build_lineup

        rules = LineupRules(fillers=fillers, match=match, description=dict(typed or {}),
                            witness=None if witness is None else str(witness))
        return _shown(ws, build_lineup(ws, slot.get(), search_id, gallery_id, face_id, rules))

    return Op("Building a line-up", lambda _p, _c: work(), lane="case", cancellable=False)


def swap(slot: CaseSlot, ws: Workstation, lineup_id: int, position: int, reason: str) -> Op[LineupShown]:
    """Swap the filler at ``position`` for the next eligible one, recording ``reason``."""
    def work() -> LineupShown:
        from engine.workstation.lineup import swap_filler

        return _shown(ws, swap_filler(ws, slot.get(), lineup_id, position, reason))

    return Op("Swapping a line-up filler", lambda _p, _c: work(), lane="case", cancellable=False)


def material(slot: CaseSlot, ws: Workstation, lineup_id: int, mode: str, out: str) -> Op[Path]:
    """Write the administration PDF (no mark of the suspect) to ``out``."""
    def work() -> Path:
        from engine.fsutil import atomic_write_bytes
        from engine.workstation.lineup import lineup_material

        path = Path(out)
        atomic_write_bytes(path, lineup_material(ws, slot.get(), lineup_id, mode=mode))
        return path

    return Op("Writing the line-up material", lambda _p, _c: work(), lane="case", cancellable=False)


def respond(slot: CaseSlot, ws: Workstation, lineup_id: int, choice: int | None, confidence: str,
            administrator: str) -> Op[LineupShown]:
    """Record the witness's choice (a position, or None) and confidence statement; the line-up redrawn."""
    def work() -> LineupShown:
        from engine.cases.lineup import get_lineup
        from engine.workstation.lineup import record_response

        case = slot.get()
        record_response(case, lineup_id, choice, confidence, administrator=administrator)
        return _shown(ws, get_lineup(case, lineup_id))

    return Op("Recording the witness's response", lambda _p, _c: work(), lane="case", cancellable=False)
