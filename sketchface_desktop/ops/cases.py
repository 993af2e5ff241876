"""Case operations: every read and write of the open case, all in the case lane.

The engine's :class:`engine.cases.Case` lives in a :class:`CaseSlot`, touched only inside case-lane
work, so its SQLite connection is never used by two threads at once. Writes are only started by
:class:`~sketchface_desktop.controllers.case_controller.CaseController` (the one writer of the open
case, which broadcasts each change); views read through it too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import CaseError
from sketchface_desktop.ops.base import Op

if TYPE_CHECKING:
    from engine.cases import AuditEntry, AuditReport, Case, CaseInfo, SearchRecord, SketchVersion
    from engine.workstation.authorize import Authorization


class CaseSlot:
    """Holds the open engine Case; only case-lane work reads or replaces it."""

    def __init__(self) -> None:
        self.case: Case | None = None

    def get(self) -> Case:
        """The open case, or a clear error when none is open (e.g. closed while the op waited)."""
        if self.case is None:
            raise CaseError("No case is open.", hint="Create or open a case first.")
        return self.case

    def replace(self, case: Case | None) -> None:
        """Close the case held (if any) and hold ``case`` instead."""
        if self.case is not None and self.case is not case:
            self.case.close()
        self.case = case


@dataclass(frozen=True)
class CaseState:
    """What the window shows of an opened case."""

    info: CaseInfo
    sketches: list[SketchVersion]
    searches: list[SearchRecord]
    # For an imported archive: whose key signed its audit head (fingerprint, this_workstation, ...).
    signature: dict[str, Any] | None = None


@dataclass(frozen=True)
class CaseListing:
    """The registered cases, and what the registry had to report while reading them (shown once)."""

    cases: list[dict[str, Any]]
    notices: list[str]


@dataclass(frozen=True)
class AuditView:
    """The audit panel's content: the verification outcome and every entry.

    ``withheld`` is non-empty (and ``entries`` empty) while the acting examiner reviews a search blind:
    the entries carry the first examiner's decisions and notes, so only the verification is shown.
    """

    report: AuditReport
    entries: list[AuditEntry]
    signoffs: list[Any]
    withheld: str = ""


def _state(case: Case) -> CaseState:
    from engine.cases import list_searches, list_sketches

    return CaseState(case.info, list_sketches(case), list_searches(case))


def _case(title: str, fn: Any, *, visible: bool = False) -> Op[Any]:
    return Op(title, lambda _p, _c: fn(), lane="case", visible=visible, cancellable=False)


# -- open / create / close -----------------------------------------------------------------------
def list_cases() -> Op[CaseListing]:
    """The case list, with the registry's notices (e.g. a garbled registry it moved aside)."""
    def work() -> CaseListing:
        from engine.cases import list_cases as engine_list
        from engine.cases import registry

        cases = engine_list()
        return CaseListing(cases, registry.take_notices())

    return _case("Listing cases", work)


def create(slot: CaseSlot, case_number: str, title: str, **fields: Any) -> Op[CaseState]:
    def work() -> CaseState:
        from engine.cases import create_case

        case = create_case(case_number, title, **fields)
        slot.replace(case)
        return _state(case)

    return _case(f"Creating case {case_number}", work)


def open_case(slot: CaseSlot, ref: str) -> Op[CaseState]:
    def work() -> CaseState:
        from engine.cases import open_case as engine_open

        case = engine_open(ref)
        slot.replace(case)
        return _state(case)

    return _case(f"Opening case {ref}", work)


def close(slot: CaseSlot) -> Op[None]:
    return _case("Closing case", lambda: slot.replace(None))


def update(slot: CaseSlot, **fields: Any) -> Op[CaseInfo]:
    def work() -> CaseInfo:
        from engine.cases import update_case

        return update_case(slot.get(), **fields)

    return _case("Updating case details", work)


# -- sketches and files --------------------------------------------------------------------------
def add_sketch(slot: CaseSlot, png: bytes, *, witness: str, sketch_id: int | None, note: str = "",
               name: str = "") -> Op[tuple[SketchVersion, list[SketchVersion]]]:
    def work() -> tuple[SketchVersion, list[SketchVersion]]:
        from engine.cases import add_sketch as engine_add
        from engine.cases import list_sketches

        case = slot.get()
        version = engine_add(case, png, witness=witness if sketch_id is None else "", name=name,
                             sketch_id=sketch_id, note=note)
        return version, list_sketches(case)

    return _case("Saving sketch version", work)


def read_files(slot: CaseSlot, refs: list[tuple[str, str | None]]) -> Op[list[bytes]]:
    """Bytes of files stored in the case (path, expected SHA-256), each checked on read."""
    return _case("Reading case files", lambda: [bytes(slot.get().read_file(rel, sha)) for rel, sha in refs])


def query_images(slot: CaseSlot, search_id: int) -> Op[list[bytes]]:
    def work() -> list[bytes]:
        from engine.cases import query_images as engine_read

        return engine_read(slot.get(), search_id)

    return _case("Reading query images", work)


def add_generated(slot: CaseSlot, png: bytes, params: dict[str, Any], *, sketch_png: bytes | None,
                  note: str) -> Op[Any]:
    """Store a generated image, linked to the stored sketch version whose bytes it was made from."""
    sha = hashlib.sha256(sketch_png).hexdigest() if sketch_png else None

    def work() -> Any:
        from engine.cases import add_generated_image, list_sketches

        case = slot.get()
        parent = next((v for v in reversed(list_sketches(case)) if v.sha256 == sha), None) if sha else None
        return add_generated_image(case, png, params, parent=parent, note=note)

    return _case("Saving generated image to case", work)


# -- searches and review -------------------------------------------------------------------------
def record_search(slot: CaseSlot, finished: Any, *, blind: bool, label: str,
                  authorization: Authorization | None = None,
                  ) -> Op[tuple[int, list[Any], list[SearchRecord]]]:
    """Store a finished search through the engine's recording path, the one the command line uses.

    ``authorization`` (the engine's, under the agency's policy) is recorded with the search in the same
    transaction by that path, as the command line records it.
    """
    def work() -> tuple[int, list[Any], list[SearchRecord]]:
        from engine.cases import candidates, list_searches
        from engine.workstation import record_finished

        case = slot.get()
        rec = record_finished(case, finished, blind=blind, label=label, authorization=authorization)
        return rec.id, candidates(case, rec.id), list_searches(case)

    return _case("Recording search in case", work)


def candidates(slot: CaseSlot, search_id: int) -> Op[list[Any]]:
    def work() -> list[Any]:
        from engine.cases import candidates as engine_rows

        return engine_rows(slot.get(), search_id)

    return _case("Reading search results", work)


def record_decision(slot: CaseSlot, search_id: int, face_id: int, gallery_id: str, decision: str,
                    note: str = "") -> Op[tuple[list[Any], list[SearchRecord]]]:
    def work() -> tuple[list[Any], list[SearchRecord]]:
        from engine.cases import list_searches, record_decisions

        case = slot.get()
        rows = record_decisions(case, search_id, [{"face_id": face_id, "gallery_id": gallery_id,
                                                   "decision": decision, "note": note}])
        return rows, list_searches(case)

    return _case("Recording decision", work)


def blind_candidates(slot: CaseSlot, search_id: int) -> Op[list[Any]]:
    """The candidates with the first examiner's decisions withheld until the acting reviewer's own blind
    decisions on the search are recorded (refused for the examiner who decided)."""
    def work() -> list[Any]:
        from engine.cases import review

        return review.candidates_for_blind_review(slot.get(), search_id)

    return _case("Reading candidates for blind review", work)


def record_blind_review(slot: CaseSlot, search_id: int,
                        items: list[dict[str, Any]]) -> Op[tuple[list[Any], list[SearchRecord]]]:
    """The reviewer's blind decisions (one signed entry); then the list with the first examiner's decisions."""
    def work() -> tuple[list[Any], list[SearchRecord]]:
        from engine.cases import list_searches, review

        case = slot.get()
        review.record_blind_review(case, search_id, items)
        return review.candidates(case, search_id), list_searches(case)

    return _case("Recording blind review decisions", work, visible=True)


def reviewer_disagreements(slot: CaseSlot, search_ids: list[int] | None) -> Op[tuple[bool, list[dict[str, Any]]]]:
    """Whether the acting profile reviewed blind, and where its blind decisions differ (over the scope)."""
    def work() -> tuple[bool, list[dict[str, Any]]]:
        from engine.cases import review

        case = slot.get()
        blind, differ = False, list[dict[str, Any]]()
        for sid in (list(search_ids) if search_ids else [None]):
            b, d = review.reviewer_disagreements(case, sid)
            blind, differ = blind or b, differ + d
        return blind, differ

    return _case("Comparing blind decisions", work)


def sign_off(slot: CaseSlot, examiner: str, *, role: str, statement: str,
             search_ids: list[int] | None, scope: str = "") -> Op[list[Any]]:
    """The second examiner's sign-off over the whole case (``search_ids`` None) or over each search named."""
    def work() -> list[Any]:
        from engine.cases import list_signoffs
        from engine.cases import sign_off as engine_sign

        case = slot.get()
        scopes: list[int | None] = list(search_ids) if search_ids else [None]
        for sid in scopes:
            engine_sign(case, examiner, role=role, statement=statement, search_id=sid, scope=scope)
        return list_signoffs(case)

    return _case(f"Recording sign-off by {examiner}", work, visible=True)


def rerun(slot: CaseSlot, search_id: int, rerunner: Any) -> Op[Any]:
    """Repeat a stored search with its manifest (stored as a new, linked search) and report the difference.

    Case lane: the case's records are read and written around the search, which must not wait behind
    a long import in the engine lane (``rerunner`` uses the already loaded models).
    """
    def work() -> tuple[Any, list[SearchRecord]]:
        from engine.cases import get_search, list_searches, rerun_search

        case = slot.get()
        get_search(case, search_id)
        report = rerun_search(case, search_id, rerunner)
        return report, list_searches(case)

    return _case(f"Re-running search {search_id}", work, visible=True)


# -- record, reports and archives ----------------------------------------------------------------
def blind_review_pending(case: Case, blind_search_id: int | None) -> bool:
    """True while the acting examiner reviews ``blind_search_id`` blind and the engine has no record of
    their blind decisions on it yet: until then nothing may show the first examiner's decisions."""
    from engine.cases import review

    return blind_search_id is not None and not review.blind_review_recorded(case, blind_search_id)


def audit(slot: CaseSlot, expected: tuple[int, str] | None = None,
          blind_search_id: int | None = None) -> Op[AuditView]:
    """Verify the record and read its entries; during a blind review (``blind_search_id``, see
    :func:`blind_review_pending`) the entries are withheld and only the verification is returned."""
    def work() -> AuditView:
        from engine.cases import list_signoffs

        case = slot.get()
        report = case.verify(expected)
        if blind_review_pending(case, blind_search_id):
            return AuditView(report, [], list_signoffs(case), withheld=(
                f"Entries withheld during your blind review of search {blind_search_id}: they include the first "
                "examiner's decisions. They are shown again once your blind decisions are recorded."))
        return AuditView(report, case.audit_entries(), list_signoffs(case))

    return _case("Verifying the case record", work)


def export_report(slot: CaseSlot, fmt: str, out: str | None, blind_search_id: int | None = None) -> Op[Path]:
    """Write a report; refused during a blind review (it lists the first examiner's decisions)."""
    def work(progress: Any, _c: Any) -> Path:
        from engine.cases import export_report as engine_export
        from engine.progress import ProgressEvent

        if blind_review_pending(slot.get(), blind_search_id):
            raise CaseError(f"The report lists the first examiner's decisions, so it is not written during your "
                            f"blind review of search {blind_search_id}.",
                            hint="Decide every candidate (or use Case > Record blind decisions), then export it.")
        progress(ProgressEvent(0, 2, f"Building the {fmt.upper()} report"))
        path = engine_export(slot.get(), fmt, out)
        progress(ProgressEvent(2, 2, "Written"))
        return path

    return Op(f"Exporting {fmt.upper()} report", work, lane="case", cancellable=False)


def export_archive(slot: CaseSlot, out: str, overwrite: bool = False,
                   blind_search_id: int | None = None) -> Op[Any]:
    """Write the case archive; an existing file at ``out`` is refused unless ``overwrite`` (the window
    passes it only when its save dialog has already asked the examiner to confirm replacing it). Refused
    during a blind review (``blind_search_id``): the archive holds the first examiner's decisions."""
    def work() -> Any:
        from engine.cases import export_case

        if blind_review_pending(slot.get(), blind_search_id):
            raise CaseError(f"The case archive holds the first examiner's decisions, so it is not written during "
                            f"your blind review of search {blind_search_id}.",
                            hint="Decide every candidate (or use Case > Record blind decisions), then export it.")
        return export_case(slot.get(), out, overwrite=overwrite)

    return _case(f"Exporting case archive {Path(out).name}", work, visible=True)


def import_archive(slot: CaseSlot, archive: str, expected_sha256: str | None,
                   location: str | None, expected_key: str | None = None) -> Op[CaseState]:
    """Check and unpack an archive (pinning the sender's key fingerprint when given); the imported case
    becomes the open one, and its state names the key that signed the archive's audit head."""
    def work() -> CaseState:
        from dataclasses import replace

        from engine.cases import import_case

        case = import_case(archive, location=location or None, expected_sha256=expected_sha256 or None,
                           expected_key=expected_key or None)
        slot.replace(case)
        entry = case.audit_entries()[-1]  # the import's own entry, naming the archive's signer
        signed = entry.details.get("archive_signature") if entry.action == "case.import" else None
        return replace(_state(case), signature=dict(signed) if isinstance(signed, dict) else None)

    return _case(f"Importing case archive {Path(archive).name}", work, visible=True)


def save_sketch_now(slot: CaseSlot, png: bytes, *, witness: str, sketch_id: int | None, note: str) -> None:
    """At exit, after the lanes stopped: store a drawing directly (no thread uses the case any more)."""
    from engine.cases import add_sketch as engine_add

    engine_add(slot.get(), png, witness=witness if sketch_id is None else "", sketch_id=sketch_id, note=note)
