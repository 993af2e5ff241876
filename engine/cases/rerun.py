"""Re-running a stored search from its manifest and saying whether the list is the same, and if not why.

The case side defines the protocol (:data:`Rerunner`); the search engine provides the real one as
``engine.search.rerun_manifest``. Keeping the comparison here means tests and the report need no
search engine, and every re-run is judged by the same rules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from engine.cases.searches import (
    SearchRecord,
    ThumbnailKey,
    add_search,
    get_search,
    query_images,
    stored_matches,
    validate_manifest,
)
from engine.cases.store import Case
from engine.errors import CaseError
from engine.manifest import compare_manifests
from engine.types import Match

RerunOutput = (tuple[dict[str, Any], list[Match]]
               | tuple[dict[str, Any], list[Match], Mapping[ThumbnailKey, bytes]])
Rerunner = Callable[[dict[str, Any], list[bytes]], RerunOutput]
"""Repeat a search: ``(stored manifest, query image bytes in manifest order) -> (new manifest, matches)``,
optionally with a third item, each candidate's thumbnail keyed by (gallery id, face id), which the
stored re-run keeps as the original search keeps its own.

The search engine must use the manifest's k, filters, index parameters and galleries; it reports the
galleries' *current* content versions and the models it actually used in the new manifest.
"""

SCORE_TOLERANCE = 1e-5


@dataclass
class RerunReport:
    """Outcome of a re-run: ``identical`` (the result list) or the list of changes, manifest and rows.

    ``identical`` is about the list the examiner reviewed (same faces, ranks, scores within
    :data:`SCORE_TOLERANCE`); ``manifest_identical`` says whether galleries, models and parameters
    are also unchanged. A gallery can grow without changing the top-k list: both facts are reported.
    """

    search_id: int
    identical: bool
    manifest_identical: bool = True
    changes: list[str] = field(default_factory=list)
    manifest_changes: list[dict[str, Any]] = field(default_factory=list)
    added: list[dict[str, Any]] = field(default_factory=list)
    removed: list[dict[str, Any]] = field(default_factory=list)
    moved: list[dict[str, Any]] = field(default_factory=list)
    rescored: list[dict[str, Any]] = field(default_factory=list)
    new_search_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """The verdict and each change, as lines for a terminal."""
        if self.identical:
            return f"Search {self.search_id} re-run: identical result list."
        return f"Search {self.search_id} re-run: the list changed.\n" + "\n".join(f"  - {c}" for c in self.changes)


def compare_results(old: Sequence[Match], new: Sequence[Match], report: RerunReport) -> None:
    """Fill ``report`` with rows added, removed, moved and re-scored (by gallery and face id)."""
    before = {(m.gallery_id, m.face_id): m for m in old}
    after = {(m.gallery_id, m.face_id): m for m in new}
    for key, m in after.items():
        if key not in before:
            report.added.append({"gallery_id": key[0], "face_id": key[1], "rank": m.rank, "score": m.score,
                                 "photo_path": m.photo_path})
    for key, m in before.items():
        if key not in after:
            report.removed.append({"gallery_id": key[0], "face_id": key[1], "rank": m.rank, "score": m.score})
            continue
        n = after[key]
        if n.rank != m.rank:
            report.moved.append({"gallery_id": key[0], "face_id": key[1], "rank_before": m.rank, "rank_after": n.rank})
        if abs(float(n.score) - float(m.score)) > SCORE_TOLERANCE:
            report.rescored.append({"gallery_id": key[0], "face_id": key[1], "score_before": m.score,
                                    "score_after": n.score})
    def face(d: Mapping[str, Any]) -> str:
        m = after.get((d["gallery_id"], d["face_id"])) or before[(d["gallery_id"], d["face_id"])]
        return f"face {m.gallery_name or m.gallery_id}:{m.face_id}"

    if report.added:
        report.changes.append(f"{len(report.added)} new row(s) in the list: " + ", ".join(
            f"{face(a)} at rank {a['rank']}" for a in report.added[:10]))
    if report.removed:
        report.changes.append(f"{len(report.removed)} row(s) dropped from the list: " + ", ".join(
            f"{face(r)} (was rank {r['rank']})" for r in report.removed[:10]))
    if report.moved:
        report.changes.append(f"{len(report.moved)} row(s) changed rank: " + ", ".join(
            f"{face(m)} {m['rank_before']}→{m['rank_after']}" for m in report.moved[:10]))
    if report.rescored:
        report.changes.append(f"{len(report.rescored)} score(s) differ by more than {SCORE_TOLERANCE:g}")


def rerun_search(case: Case, search_id: int, rerunner: Rerunner, *, store: bool = True,
                 user: str | None = None) -> RerunReport:
    """Repeat a stored search with its manifest and query images; report identical or what changed.

    Args:
        rerunner: the search engine's :data:`Rerunner` (``engine.search.rerun_manifest``).
        store: keep the new run as a search of the case linked to the original (audited), so the
            report shows the re-run and its verdict.
    """
    original: SearchRecord = get_search(case, search_id)
    validate_manifest(original.manifest)  # names what an old or damaged record lacks before any model loads
    images = query_images(case, search_id)  # raises if a stored query image was altered
    out = rerunner(dict(original.manifest), images)
    new_manifest, new_matches = out[0], out[1]
    thumbnails = out[2] if len(out) == 3 else None
    if not isinstance(new_manifest, Mapping):
        raise CaseError("The search engine returned no run manifest for the re-run.")
    report = RerunReport(search_id=search_id, identical=False)
    report.manifest_changes = compare_manifests(original.manifest, new_manifest)
    report.manifest_identical = not report.manifest_changes
    compare_results(stored_matches(case, search_id), list(new_matches), report)
    list_changed = bool(report.added or report.removed or report.moved or report.rescored)
    report.identical = not list_changed
    report.changes = [c["message"] for c in report.manifest_changes] + report.changes
    if report.identical and report.manifest_changes:
        report.changes.append("The result list itself is identical.")
    if store:
        rec = add_search(case, new_manifest, new_matches, images, thumbnails=thumbnails, blind=False,
                         label=f"Re-run of search {search_id}" + (f" ({original.label})" if original.label else ""),
                         rerun_of=search_id, rerun_report=report.to_dict(), user=user)
        report.new_search_id = rec.id
    return report


def load_engine_rerunner() -> Rerunner:
    """The search engine's re-runner, imported on demand (search is a heavy, separately built part).

    It also returns the candidates' thumbnails, so the stored re-run shows its faces.
    """
    try:
        from engine.search import rerun_for_case  # lazy: optional part, imported on demand
    except ImportError as exc:
        raise CaseError("Re-running a search needs the search engine (engine.search.rerun_for_case), "
                        f"which this installation does not provide ({exc}).",
                        hint="Update SketchFace to a build that includes search.") from exc
    return rerun_for_case
