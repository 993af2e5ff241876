"""Watch operations: watch a recorded search, check the watches in the background, acknowledge a hit.

The check runs every open case's watches (:func:`engine.workstation.watch.run_watches`) on the engine lane,
where models and galleries are used one job at a time; writing a watch or acknowledging a hit runs in the
case lane. Each op returns plain view-models (:class:`WatchHitShown`): views never import the engine.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sketchface_desktop.ops.base import Op
from sketchface_desktop.ops.cases import CaseSlot

if TYPE_CHECKING:
    from engine.workstation import Workstation


@dataclass(frozen=True)
class WatchHitShown:
    """An unacknowledged watch hit as the hits list shows it (with its own gallery thumbnail)."""

    case_id: str
    case_number: str
    hit_id: int
    watch_id: int
    search_id: int
    gallery_id: str
    face_id: int
    score: float
    photo_path: str
    content_version: int
    found_at: str
    thumbnail: bytes | None = None

    @property
    def text(self) -> str:
        return (f"Case {self.case_number} · watched search {self.search_id} · score {self.score:.3f}\n"
                f"Face {self.gallery_id}:{self.face_id} · gallery version {self.content_version} · found "
                f"{self.found_at}")


@dataclass(frozen=True)
class WatchCheck:
    """What a background check did: new hits stored, watches refused (with reasons), hits waiting."""

    new_hits: int
    refused: list[str]
    pending: list[WatchHitShown] = field(default_factory=list)


def _pending(case_refs: list[str] | None = None) -> list[WatchHitShown]:
    from engine.cases import list_cases, open_case, watch_records

    refs = case_refs or [c["case_id"] for c in list_cases() if c.get("available") and c.get("status") == "open"]
    out: list[WatchHitShown] = []
    for ref in refs:
        with contextlib.suppress(Exception), open_case(ref) as case:  # a case that cannot open shows no hits
            runs = {r["id"]: r["ran_at"] for r in watch_records.list_runs(case)}
            watches = {w.id: w.search_id for w in watch_records.list_watches(case)}
            for h in watch_records.list_hits(case, unacknowledged=True):
                thumb = case.read_file(h.thumbnail_path, h.thumbnail_sha256) if h.thumbnail_path else None
                out.append(WatchHitShown(case.case_id, case.info.case_number, h.id, h.watch_id,
                                         watches.get(h.watch_id, 0), h.gallery_id, h.face_id, h.score,
                                         str(h.row.get("photo_path") or ""), h.content_version,
                                         str(runs.get(h.run_id, "")), thumb))
    return out


def check(ws: Workstation) -> Op[WatchCheck]:
    """Run every open case's watches over the faces added since, then list the hits waiting (engine lane)."""
    def work() -> WatchCheck:
        from engine.workstation.watch import run_watches

        report = run_watches(ws)
        refused = [f"Case {r['case']}, watch {r['watch']}: {r['reason']}" for r in report.refused]
        return WatchCheck(report.hits, refused, _pending())

    return Op("Checking watched searches", lambda _p, _c: work(), lane="engine", visible=False, cancellable=False)


def watch_search(slot: CaseSlot, ws: Workstation, search_id: int) -> Op[str]:
    """Watch a recorded search of the open case from now on (case lane); returns what the watch's bar is."""
    def work() -> str:
        from engine.workstation.watch import add_watch, describe_bar

        watch = add_watch(ws, slot.get(), search_id)
        return f"Search {search_id} is watched ({describe_bar(watch.bar)})."

    return Op("Watching a search", lambda _p, _c: work(), lane="case", cancellable=False)


def acknowledge(slot: CaseSlot, hit: WatchHitShown) -> Op[tuple[int, list[Any] | None]]:
    """Acknowledge a hit (case lane): it becomes an ordinary search of its case. Returns the new search's id and,
    when the hit's case is the open one, its search list."""
    def work() -> tuple[int, list[Any] | None]:
        from engine.cases import list_searches, open_case, watch_records

        if slot.case is not None and slot.case.case_id == hit.case_id:
            done = watch_records.acknowledge(slot.case, hit.hit_id)
            return int(done.search_id or 0), list_searches(slot.case)
        with open_case(hit.case_id) as case:
            return int(watch_records.acknowledge(case, hit.hit_id).search_id or 0), None

    return Op("Acknowledging a watch hit", lambda _p, _c: work(), lane="case", cancellable=False)
