"""CaseController: the one writer of the open case, and the one place that says it changed.

Every write (details, sketch versions, searches, decisions, generated images, sign-offs, reports,
re-runs, archives) is an operation of :mod:`sketchface_desktop.ops.cases` started here, in the case
lane, and followed by :attr:`CaseController.changed` (Anki's ``operation_did_execute``), so the
audit panel, the navigator and the results all follow without anyone writing behind its back.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from sketchface_desktop.ops import Runner
from sketchface_desktop.ops import cases as case_ops
from sketchface_desktop.ops.cases import AuditView, CaseListing, CaseSlot, CaseState
from sketchface_desktop.workers import Job

if TYPE_CHECKING:
    from engine.workstation.authorize import Authorization

ErrorFn = Callable[[BaseException], None]
# What a change touched (the payload of ``changed``).
DETAILS, SKETCHES, SEARCHES, DECISIONS, SIGNOFFS, REPORTS, GENERATED = (
    "details", "sketches", "searches", "decisions", "signoffs", "reports", "generated")
OPENED = frozenset({DETAILS, SKETCHES, SEARCHES, DECISIONS, SIGNOFFS, REPORTS, GENERATED})


class CaseController(QObject):
    """Owns the open case (through a :class:`CaseSlot` touched only in the case lane).

    Signals:
        case_changed(object): the open case's CaseInfo, or None when no case is open.
        sketches_changed(object): the case's SketchVersion list.
        searches_changed(object): the case's SearchRecord list.
        candidates_ready(int, object): a search id and its Candidate list (with current decisions).
        changed(object): a frozenset of what an operation changed (``OPENED`` for open/close/import).
        notice(str): something the examiner must be told that is not an error (a garbled case registry
            moved aside while the case list was read).
        blind_review_changed(object): the search the acting examiner reviews blind (whose first examiner's
            decisions every view withholds until the engine records the blind decisions), or None.
    """

    case_changed = Signal(object)
    sketches_changed = Signal(object)
    searches_changed = Signal(object)
    candidates_ready = Signal(int, object)
    changed = Signal(object)
    notice = Signal(str)
    blind_review_changed = Signal(object)

    def __init__(self, runner: Runner, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.slot = CaseSlot()
        self.info: Any = None
        self.sketches: list[Any] = []
        self.searches: list[Any] = []
        self.current_sketch_id: int | None = None
        # A blind review under way: from its start until the engine has the blind decisions (or refuses),
        # reads that could show the first examiner's decisions are withheld (ops.cases.blind_review_pending).
        self.blind_review: int | None = None

    @property
    def case(self) -> Any:
        """The engine Case (for tests and the exit path; work on it only through ops)."""
        return self.slot.case

    @property
    def is_open(self) -> bool:
        return self.info is not None

    def _write(self, op: Any, what: frozenset[str] | set[str], then: Callable[[Any], None] | None = None) -> Job:
        def done(value: Any) -> None:
            if then is not None:
                then(value)
            self.changed.emit(frozenset(what))

        return op.success(done).run(self.runner)  # type: ignore[no-any-return]

    # -- open / create / close -----------------------------------------------------------------
    def create(self, case_number: str, title: str, *, examiner: str = "", witnesses: list[str] | None = None,
               incident_date: str = "", notes: str = "", location: str = "") -> Job:
        op = case_ops.create(self.slot, case_number, title, examiner=examiner or None, witnesses=witnesses or [],
                             incident_date=incident_date, notes=notes, location=location or None)
        return self._write(op, OPENED, self._opened)

    def open(self, ref: str) -> Job:
        return self._write(case_ops.open_case(self.slot, ref), OPENED, self._opened)

    def import_archive(self, archive: str, expected_sha256: str = "", location: str = "",
                       on_error: ErrorFn | None = None, expected_key: str = "",
                       on_result: Callable[[CaseState], None] | None = None) -> Job:
        """Check and unpack a case archive (``expected_key``: the sender's key fingerprint, pinned); it
        becomes the open case, and ``on_result`` gets its state with the signer of its audit head."""
        def opened(state: CaseState) -> None:
            self._opened(state)
            if on_result is not None:
                on_result(state)

        op = case_ops.import_archive(self.slot, archive, expected_sha256, location, expected_key).failure(on_error)
        return self._write(op, OPENED, opened)

    def _opened(self, state: CaseState) -> None:
        self._set_blind(None)
        self.info = state.info
        self.current_sketch_id = state.sketches[-1].sketch_id if state.sketches else None
        self.case_changed.emit(state.info)
        self._set_sketches(state.sketches)
        self._set_searches(state.searches)

    def close(self) -> Job:
        return self._write(case_ops.close(self.slot), OPENED, lambda _r: self._closed())

    def _closed(self) -> None:
        self._set_blind(None)
        self.info = None
        self.current_sketch_id = None
        self.case_changed.emit(None)
        self._set_sketches([])
        self._set_searches([])

    def update(self, **fields: Any) -> Job:
        def updated(info: Any) -> None:
            self.info = info
            self.case_changed.emit(info)

        return self._write(case_ops.update(self.slot, **fields), {DETAILS}, updated)

    def list_cases(self, on_result: Callable[[list[dict[str, Any]]], None]) -> Job:
        """Read the case list; the registry's notices go out as ``notice`` before ``on_result`` runs."""
        def listed(listing: CaseListing) -> None:
            for text in listing.notices:
                self.notice.emit(text)
            on_result(listing.cases)

        return case_ops.list_cases().success(listed).run(self.runner)

    # -- sketches ------------------------------------------------------------------------------
    def default_witness(self) -> str:
        return str(self.info.witnesses[0]) if self.info is not None and self.info.witnesses else "unknown"

    def save_sketch(self, png: bytes, *, witness: str = "", note: str = "", new_sketch: bool = False,
                    name: str = "") -> Job:
        """Store the drawing as the next version of the current sketch (or as a new sketch)."""
        sketch_id = None if new_sketch else self.current_sketch_id

        def saved(result: tuple[Any, list[Any]]) -> None:
            version, sketches = result
            self.current_sketch_id = version.sketch_id
            self._set_sketches(sketches)

        op = case_ops.add_sketch(self.slot, png, witness=witness, sketch_id=sketch_id, note=note, name=name)
        return self._write(op, {SKETCHES}, saved)

    def start_new_sketch(self) -> None:
        """The next saved drawing starts a new sketch (another witness) instead of a new version."""
        self.current_sketch_id = None

    def read_sketch(self, version: Any, on_result: Callable[[bytes], None]) -> Job:
        def read(files: list[bytes]) -> None:
            self.current_sketch_id = version.sketch_id
            on_result(files[0])

        return case_ops.read_files(self.slot, [(version.path, version.sha256)]).success(read).run(self.runner)

    def read_versions(self, versions: list[Any], on_result: Callable[[list[bytes]], None]) -> Job:
        refs = [(v.path, v.sha256) for v in versions]
        return case_ops.read_files(self.slot, refs).titled("Reading saved sketches").success(on_result).run(
            self.runner)

    def _set_sketches(self, sketches: list[Any]) -> None:
        self.sketches = list(sketches)
        self.sketches_changed.emit(self.sketches)

    def save_on_exit(self, png: bytes) -> None:
        """At exit, after the lanes stopped: keep an unsaved drawing (no thread uses the case any more)."""
        if self.slot.case is None:
            return
        case_ops.save_sketch_now(self.slot, png, witness=self.default_witness(), sketch_id=self.current_sketch_id,
                                 note="autosaved on exit")

    # -- generated images ------------------------------------------------------------------------
    def save_generated(self, png: bytes, params: dict[str, Any], *, sketch_png: bytes | None, note: str,
                       on_result: Callable[[Any], None] | None = None) -> Job:
        """Store a generated image linked to the sketch version it came from (that sheet is stored first
        when the drawing changed since, or was never saved)."""
        import hashlib

        sha = hashlib.sha256(sketch_png).hexdigest() if sketch_png else None
        if sha and sketch_png and not any(v.sha256 == sha for v in self.sketches):
            witness = "" if self.current_sketch_id is not None else self.default_witness()
            self.save_sketch(sketch_png, witness=witness, note="the sheet a reconstruction was made from")
        op = case_ops.add_generated(self.slot, png, params, sketch_png=sketch_png, note=note)
        return self._write(op, {GENERATED}, on_result)

    # -- searches and decisions ---------------------------------------------------------------
    def store_search(self, finished: Any, *, blind: bool = False, label: str = "",
                     authorization: Authorization | None = None) -> Job:
        """Record a finished search (the engine's ``FinishedSearch``) in the case through the engine's one
        recording path, with the policy's authorization when there is one; ``candidates_ready`` follows
        with its rows."""
        def stored(res: tuple[int, list[Any], list[Any]]) -> None:
            sid, rows, searches = res
            self._set_searches(searches)
            self.candidates_ready.emit(sid, rows)

        op = case_ops.record_search(self.slot, finished, blind=blind, label=label, authorization=authorization)
        return self._write(op, {SEARCHES}, stored)

    def load_candidates(self, search_id: int) -> Job:
        op = case_ops.candidates(self.slot, search_id)
        return op.success(lambda rows: self.candidates_ready.emit(search_id, rows)).run(self.runner)

    def record_decision(self, search_id: int, face_id: int, gallery_id: str, decision: str, note: str = "",
                        on_result: Callable[[Any], None] | None = None) -> Job:
        def recorded(res: tuple[list[Any], list[Any]]) -> None:
            rows, searches = res
            self._set_searches(searches)
            self.candidates_ready.emit(search_id, rows)
            if on_result is not None:
                on_result(rows)

        op = case_ops.record_decision(self.slot, search_id, face_id, gallery_id, decision, note)
        return self._write(op, {DECISIONS}, recorded)

    def load_blind_candidates(self, search_id: int, on_error: ErrorFn | None = None) -> Job:
        """The candidates with the first examiner's decisions withheld (blind review by the acting profile).

        From now on the audit and the report withhold them too, until the engine records the blind
        decisions; when the engine refuses the blind review, that ends here before ``on_error`` runs.
        """
        def refused(exc: BaseException) -> None:
            self._set_blind(None)
            if on_error is not None:
                on_error(exc)

        self._set_blind(search_id)
        op = case_ops.blind_candidates(self.slot, search_id).failure(refused)
        return op.success(lambda rows: self.candidates_ready.emit(search_id, rows)).run(self.runner)

    def end_blind_review(self) -> None:
        """The examiner left the blind review unrecorded (case closed, review refused): show everything."""
        self._set_blind(None)

    def _set_blind(self, search_id: int | None) -> None:
        if search_id != self.blind_review:
            self.blind_review = search_id
            self.blind_review_changed.emit(search_id)

    def record_blind_review(self, search_id: int, items: list[dict[str, Any]],
                            on_result: Callable[[Any], None] | None = None, on_error: ErrorFn | None = None) -> Job:
        """The acting reviewer's blind decisions (one signed entry); the full list follows. When they are
        not recorded, the blind review stays under way (nothing shows the first examiner's decisions)."""
        def recorded(res: tuple[list[Any], list[Any]]) -> None:
            rows, searches = res
            if self.blind_review == search_id:
                self._set_blind(None)
            self._set_searches(searches)
            self.candidates_ready.emit(search_id, rows)
            if on_result is not None:
                on_result(rows)

        op = case_ops.record_blind_review(self.slot, search_id, items).failure(on_error)
        return self._write(op, {DECISIONS}, recorded)

    def reviewer_disagreements(self, search_ids: list[int] | None,
                               on_result: Callable[[tuple[bool, list[dict[str, Any]]]], None]) -> Job:
        """Whether the acting profile reviewed blind over this scope, and where it disagrees."""
        return case_ops.reviewer_disagreements(self.slot, search_ids).success(on_result).run(self.runner)

    def query_images(self, search_id: int, on_result: Callable[[list[bytes]], None]) -> Job:
        return case_ops.query_images(self.slot, search_id).success(on_result).run(self.runner)

    def _set_searches(self, searches: list[Any]) -> None:
        self.searches = list(searches)
        self.searches_changed.emit(self.searches)

    # -- record: sign-off, audit, re-run, reports, archives -----------------------------------
    def read_candidates(self, search_id: int, on_result: Callable[[list[Any]], None]) -> Job:
        """A search's candidates for a side view (the grid is not touched)."""
        return case_ops.candidates(self.slot, search_id).success(on_result).run(self.runner)

    def sign_off(self, examiner: str, role: str, statement: str, search_ids: list[int] | None,
                 on_result: Callable[[list[Any]], None] | None = None, on_error: ErrorFn | None = None,
                 scope: str = "") -> Job:
        """A second examiner signs the case (``search_ids`` None) or each search named, within ``scope``."""
        op = case_ops.sign_off(self.slot, examiner, role=role, statement=statement, search_ids=search_ids,
                               scope=scope)
        return self._write(op.failure(on_error), {SIGNOFFS}, on_result)

    def audit(self, on_result: Callable[[AuditView], None], expected: tuple[int, str] | None = None,
              on_error: ErrorFn | None = None) -> Job:
        """Verify the record (against a printed ``(count, head)`` when given) and read its entries (withheld
        during a blind review). A reading made before the blind review started or ended is dropped: the
        change is broadcast (``blind_review_changed``) and its listeners read again."""
        blind = self.blind_review

        def read(view: AuditView) -> None:
            if blind == self.blind_review:
                on_result(view)

        return case_ops.audit(self.slot, expected, blind).success(read).failure(on_error).run(self.runner)

    def rerun(self, search_id: int, rerunner: Any, on_result: Callable[[Any], None],
              on_error: ErrorFn | None = None) -> Job:
        """Repeat a stored search with ``rerunner``; the re-run is stored as a new search linked to it."""
        def done(res: tuple[Any, list[Any]]) -> None:
            report, searches = res
            self._set_searches(searches)
            on_result(report)

        return self._write(case_ops.rerun(self.slot, search_id, rerunner).failure(on_error), {SEARCHES}, done)

    def export_report(self, fmt: str, out: str | None, on_result: Callable[[Path], None],
                      on_error: ErrorFn | None = None) -> Job:
        """Write a PDF, HTML or JSON report (default: the case's reports folder); it is audited. Refused
        during a blind review: a report lists the first examiner's decisions."""
        op = case_ops.export_report(self.slot, fmt, out, self.blind_review)
        return self._write(op.failure(on_error), {REPORTS}, on_result)

    def export_archive(self, out: str, on_result: Callable[[Any], None], on_error: ErrorFn | None = None,
                       overwrite: bool = False) -> Job:
        """Write the case archive; refused during a blind review (it holds the first examiner's decisions)."""
        op = case_ops.export_archive(self.slot, out, overwrite, self.blind_review)
        return self._write(op.failure(on_error), {REPORTS}, on_result)

    def shutdown(self) -> None:
        """Close the case from the GUI thread at exit, after the case lane has stopped."""
        self.slot.replace(None)
