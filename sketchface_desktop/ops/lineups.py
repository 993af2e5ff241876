"""Line-up operations: build, swap a filler, write the administration material (all in the case lane).

Each op works on the open case (the :class:`~sketchface_desktop.ops.cases.CaseSlot`) and reads the
galleries through the window's workstation; it returns a :class:`LineupShown`, the plain view-model the
dialog draws (views never import the engine).
"""

from __future__ import annotations

from dataclasses import dataclass
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
                       [f"position {s.position}: {s.reason}" for s in lineup.swaps])


def build(slot: CaseSlot, ws: Workstation, search_id: int, gallery_id: str, face_id: int, *, fillers: int = 5,
          match: tuple[str, ...] = ("sex", "age_band")) -> Op[LineupShown]:
    """Build and record a line-up around a candidate (the rules' defaults unless given)."""
    def work() -> LineupShown:
        from engine.workstation.lineup import LineupRules, build_lineup

        lineup = build_lineup(ws, slot.get(), search_id, gallery_id, face_id, LineupRules(fillers=fillers, match=match))
        return _shown(ws, lineup)

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
