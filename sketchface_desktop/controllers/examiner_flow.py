"""ExaminerFlow: what happens when the examiner acts — case, sketch, search, review.

It receives its collaborators (the op runner, the case and search controllers, and the sheet, the
results grid, the gallery scope and a prompter as small protocols) and reaches into nothing else:
the window wires its widgets to these methods, and a test drives them with fakes.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from PySide6.QtCore import QObject, Signal

from sketchface_desktop.controllers.case_controller import CaseController
from sketchface_desktop.controllers.errors import error_text
from sketchface_desktop.controllers.ports import GalleryScope, Prompter, ResultsDisplay, SketchSource
from sketchface_desktop.controllers.search_controller import SearchController
from sketchface_desktop.engine_session import EngineSession
from sketchface_desktop.ops import Runner
from sketchface_desktop.ops import models as model_ops
from sketchface_desktop.ops import settings as settings_ops
from sketchface_desktop.ops.search import Box, ResultRow, photo_request, sketch_request, window_keys
from sketchface_desktop.workers import Job

EMPTY_TEXT = "Draw a sketch (or load one), tick the galleries to search, then press Search."


class ExaminerFlow(QObject):
    """The examiner's verbs on cases, sketches, searches and decisions.

    Signals:
        rows_shown(object): the ResultRow list now in the grid (the compare view follows decisions).
        blind_review_changed(object): the search id under blind review by the acting profile, or None.
    """

    rows_shown = Signal(object)
    blind_review_changed = Signal(object)

    def __init__(self, runner: Runner, session: EngineSession, cases: CaseController, searches: SearchController,
                 sketch: SketchSource, results: ResultsDisplay, scope: GalleryScope, ask: Prompter,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.session = session
        self.cases = cases
        self.searches = searches
        self.sketch = sketch
        self.results = results
        self.scope = scope
        self.ask = ask
        self.shown_search_id: int | None = None
        self.shown_query_png: bytes | None = None
        self.gallery_names: dict[str, str] = {}
        self.blind_search_id: int | None = None  # a second examiner's blind review of this search is under way
        self.blind_pending: dict[tuple[str, int], str] = {}  # (case gallery id, face id) -> blind decision
        self._blind_rows: list[ResultRow] = []
        self._blind_examiner: str | None = None  # the key fingerprint of the profile reviewing blind
        searches.search_finished.connect(self._search_finished)
        searches.submitted_later.connect(self._started)  # submitted once the policy's form was answered
        cases.case_changed.connect(self._case_changed)
        cases.candidates_ready.connect(self._candidates)
        results.set_can_decide(False)

    # -- cases ---------------------------------------------------------------------------------
    def new_case(self, values: dict[str, Any] | None = None) -> Job | None:
        if values is None:
            acting = settings_ops.acting_examiner()  # the case names who is working, not an old setting
            values = self.ask.case_details(None, acting.name if acting is not None else self.session.settings.examiner)
            if values is None:
                return None
        self.autosave()
        return self.cases.create(location=self.session.settings.cases_dir, **values)

    def open_case(self, ref: str | None = None) -> Job | None:
        if ref is not None:
            self.autosave()
            return self.cases.open(ref)

        def chosen(cases: list[dict[str, Any]]) -> None:
            case_id = self.ask.choose_case(cases)
            if case_id:
                self.autosave()
                self.cases.open(case_id)

        return self.cases.list_cases(chosen)

    def close_case(self) -> Job | None:
        """Close the case, first keeping an unsaved drawing as a version of it."""
        if not self.cases.is_open:
            return None
        self.autosave()
        return self.cases.close()

    def edit_case(self) -> Job | None:
        info = self.cases.info
        if info is None:
            return None
        v = self.ask.case_details(info, info.examiner)
        if v is None:
            return None
        return self.cases.update(title=v["title"], witnesses=v["witnesses"], incident_date=v["incident_date"],
                                 notes=v["notes"])

    def _case_changed(self, info: Any) -> None:
        self._end_blind()
        self.results.set_can_decide(info is not None)
        if info is None or self.shown_search_id is not None:
            self.shown_search_id = None
            self._show([], None, EMPTY_TEXT if info is None else f"Case {info.case_number} opened.")

    # -- sketches ------------------------------------------------------------------------------
    def save_sketch(self, witness: str | None = None, note: str = "") -> Job | None:
        """Store the drawing in the open case as a new version (asking for a witness when needed)."""
        if not self.cases.is_open:
            self.ask.tell("Save sketch", "Create or open a case first: sketches are kept in cases.")
            return None
        if self.cases.current_sketch_id is None and witness is None:
            known = list(self.cases.info.witnesses)
            witness = known[0] if len(known) == 1 else self.ask.choose_witness(known)
            if not witness or not witness.strip():
                return None
        job = self.cases.save_sketch(self.sketch.to_png_bytes(), witness=witness or "", note=note)
        job.result.connect(lambda _r: self.sketch.mark_saved())
        return job

    def new_sketch(self) -> None:
        """Keep the current drawing (autosaved into the case) and start an empty sheet as a new sketch."""
        self.autosave()
        self.sketch.load_png(None)
        self.cases.start_new_sketch()

    def load_sketch(self, version: Any) -> Job:
        def loaded(data: bytes) -> None:
            self.sketch.load_png(data)
            self.sketch.mark_saved()

        self.autosave()
        return self.cases.read_sketch(version, loaded)

    def _unsaved(self) -> bool:
        return self.sketch.is_modified() and not self.sketch.is_blank()

    def autosave(self) -> None:
        """Keep an unsaved drawing as a version before the case changes under it (nothing is lost)."""
        if self.cases.is_open and self._unsaved():
            self.cases.save_sketch(self.sketch.to_png_bytes(), witness=self.cases.default_witness(), note="autosaved")
            self.sketch.mark_saved()

    def before_close(self) -> None:
        """At exit, after the lanes stopped: the case controller stores an unsaved drawing directly."""
        if self._unsaved():
            self.cases.save_on_exit(self.sketch.to_png_bytes())

    # -- searching -----------------------------------------------------------------------------
    def models_ready(self, what: str) -> bool:
        """True when the search models are installed; else the guide says what is missing."""
        if model_ops.missing_required():
            self.ask.guide(f"{what} needs the face models, which are not installed yet.")
            return False
        return True

    def search_sketch(self) -> Job | None:
        ids = self.scope.checked_galleries()
        if self.sketch.is_blank():
            self.results.set_busy("The sheet is empty: draw or import a sketch first.")
            return None
        if not ids or not self.models_ready("Sketch search"):
            return None
        png, box, opts = self.sketch.to_png_bytes(), self.sketch.face_box(), self.results.options()
        self.shown_query_png = png

        def start(extra: list[bytes]) -> None:
            req = sketch_request(png, box, ids, opts.k, list(opts.filters), extra_sketches=extra,
                                 group_by_subject=opts.group_by_subject, blind=opts.blind)
            self._started(self.searches.run(req))

        others = self._other_sketches()
        if opts.fuse and others:
            return self.cases.read_versions(others, start)
        req = sketch_request(png, box, ids, opts.k, list(opts.filters), group_by_subject=opts.group_by_subject,
                             blind=opts.blind)
        return self._started(self.searches.run(req))

    def _other_sketches(self) -> list[Any]:
        """The latest version of every other sketch of the case (other witnesses' drawings), for fusion."""
        latest: dict[int, Any] = {}
        for v in self.cases.sketches:
            if v.sketch_id != self.cases.current_sketch_id and v.version >= getattr(latest.get(v.sketch_id),
                                                                                     "version", 0):
                latest[v.sketch_id] = v
        return list(latest.values())

    def search_photo(self, path: str | None = None) -> Job | None:
        ids = self.scope.checked_galleries()
        if not ids or not self.models_ready("Photo search"):
            return None
        path = path or self.ask.choose_photo()
        if not path:
            return None
        opts = self.results.options()
        req = photo_request(path, ids, opts.k, list(opts.filters), group_by_subject=opts.group_by_subject,
                            blind=opts.blind)
        self.shown_query_png = req.queries[0].data
        return self._started(self.searches.run(req))

    def run_request(self, request: Any, query_png: bytes | None = None) -> Job | None:
        """Run a prepared request (e.g. a probe with a synthetic face) and show it like any search."""
        if query_png is not None:
            self.shown_query_png = query_png
        return self._started(self.searches.run(request))

    def _started(self, job: Job | None) -> Job | None:
        """Say the search is running (None: the policy asked first or refused, and said so)."""
        if job is not None:
            self.results.set_busy(f"{job.title}…")
        return job

    def more_like(self, row: ResultRow) -> Job | None:
        job = self.searches.more_like_this(row.photo_path)
        return self._started(job) if job is not None else None

    def exclude(self, row: ResultRow) -> Job | None:
        if self.cases.is_open and self.shown_search_id is not None:
            self.decide(row, "excluded", row.note)
        job = self.searches.exclude(row.photo_sha256, row.photo_path)
        return self._started(job) if job is not None else None

    def _search_finished(self, request: Any, finished: Any) -> None:
        if self.cases.is_open:
            self.results.set_busy("Recording the search in the case…")
            self.cases.store_search(finished, blind=request.blind, label=request.label,
                                    authorization=request.authorization)
            return
        result = finished.result
        keys = window_keys(result.manifest)
        rows = [ResultRow.from_match(m, keys) for m in result.matches]
        self.shown_search_id = None
        self._show(rows, None, self._summary(len(rows), result.elapsed_ms, recorded=False))

    @staticmethod
    def _summary(n: int, elapsed_ms: float | None, recorded: bool) -> str:
        took = f" in {elapsed_ms / 1000:.2f} s" if elapsed_ms is not None else ""
        where = "recorded in the case" if recorded else "not recorded: no case is open"
        return f"{n} candidates{took} · {where}. Double-click a candidate to compare."

    def _candidates(self, search_id: int, candidates: list[Any]) -> None:
        folder = self.cases.info.folder if self.cases.info else None
        record = next((s for s in self.cases.searches if s.id == search_id), None)
        keys = window_keys(record.manifest) if record is not None else {}
        rows = [ResultRow.from_candidate(c, folder, self.gallery_names, keys) for c in candidates]
        if search_id != self.shown_search_id:
            self.shown_search_id = search_id
            self.shown_query_png = None
            self.cases.query_images(search_id, self._query_images_read)
        if search_id == self.blind_search_id:
            self._blind_rows = rows
            self._show_blind()
            return
        elapsed = getattr(self.searches.last_result, "elapsed_ms", None)
        decided = sum(r.decision != "not_reviewed" for r in rows)
        under_way = (f" Your blind review of search {self.blind_search_id} is still under way: show it again to "
                     "go on." if self.blind_search_id is not None else "")
        self._show(rows, search_id,
                   self._summary(len(rows), elapsed, True) + f" {decided} of {len(rows)} decided.{under_way}")

    def _show(self, rows: list[ResultRow], search_id: int | None, summary: str) -> None:
        self.results.show_rows(rows, search_id, summary)
        self.rows_shown.emit(rows)

    def _query_images_read(self, images: list[bytes]) -> None:
        if images:
            self.shown_query_png = images[0]

    def show_search(self, record: Any) -> Job:
        """Show a recorded search; the one under blind review comes as the engine gives it to a blind
        reviewer (the first examiner's decisions withheld), with this reviewer's blind decisions so far."""
        self.results.set_busy(f"Reading search {record.id}…")
        if record.id == self.blind_search_id:
            search_id = record.id
            return self.cases.load_blind_candidates(search_id,
                                                    on_error=lambda exc: self._blind_refused(search_id, exc))
        return self.cases.load_candidates(record.id)

    def set_galleries(self, infos: list[Any]) -> None:
        self.gallery_names = {i.id: i.name for i in infos}

    # -- review --------------------------------------------------------------------------------
    @property
    def can_decide(self) -> bool:
        return self.cases.is_open and self.shown_search_id is not None

    @property
    def examinable_search_id(self) -> int | None:
        """The recorded search whose candidates' comparison sheets the compare view may show: none while it
        is under blind review until the engine records the blind decisions (a sheet carries the first
        examiner's assessments, notes and conclusion)."""
        if not self.can_decide or self.shown_search_id in (self.blind_search_id, self.cases.blind_review):
            return None
        return self.shown_search_id

    def decide(self, row: ResultRow, decision: str, note: str) -> Job | None:
        if not self.can_decide or self.shown_search_id is None:
            self.ask.tell("Decision", "Open or create a case before searching to record decisions.")
            return None
        if self.blind_search_id == self.shown_search_id:
            return self._decide_blind(row, decision)
        return self.cases.record_decision(self.shown_search_id, row.face_id, row.case_gallery_id, decision, note)

    def compare_sketch(self) -> bytes:
        """The query image the shown candidates answer (the stored one for a recorded search)."""
        return self.shown_query_png or self.sketch.to_png_bytes()

    def compare_box(self) -> Box | None:
        """The face box the engine cropped that query with: the recorded one for a stored search."""
        record = next((s for s in self.cases.searches if s.id == self.shown_search_id), None)
        if record is not None:
            queries = record.manifest.get("query") or [{}]
            box = queries[0].get("face_box") if isinstance(queries[0], dict) else None
            return (float(box[0]), float(box[1]), float(box[2]), float(box[3])) if box and len(box) == 4 else None
        last = self.searches.last_request
        if last is not None and last.queries and last.queries[0].data == self.compare_sketch():
            return last.queries[0].face_box
        return self.sketch.face_box()

    # -- blind verification by a second examiner ---------------------------------------------
    def start_blind_review(self) -> Job | None:
        """Review the shown search blind under the acting profile: the first examiner's decisions stay
        hidden until this reviewer's own decisions on every candidate are recorded (signed, one entry)."""
        if not self.cases.is_open or self.shown_search_id is None:
            self.ask.tell("Blind review", "Open a recorded search of the case first: blind review is of one search.")
            return None
        search_id, under_way = self.shown_search_id, self.blind_search_id
        if under_way == search_id:  # the same review again: the blind decisions made so far are kept
            return self._begin_blind(search_id, dict(self.blind_pending))
        if under_way is None:
            return self._begin_blind(search_id, {})
        # Another search's blind review is under way and its decisions are not recorded: ask before dropping it.
        self.ask.confirm(
            "ReplaceBlindReview", "Blind review",
            f"Your blind review of search {under_way} is still under way: its {len(self.blind_pending)} blind "
            f"decision(s) are not recorded. Start a blind review of search {search_id} and drop them?",
            "To keep them, cancel, show that search again and decide the rest (or use Case > Record blind "
            "decisions).", "Start blind review",
            lambda: self._replace_blind(under_way, search_id), accept_name="StartBlindReview")
        return None

    def _replace_blind(self, under_way: int, search_id: int) -> Job | None:
        """The examiner accepted dropping the blind review of ``under_way``; nothing starts if it changed
        meanwhile (recorded, or ended by a case change)."""
        if self.blind_search_id != under_way or not self.cases.is_open:
            return None
        return self._begin_blind(search_id, {})

    def _begin_blind(self, search_id: int, pending: dict[tuple[str, int], str]) -> Job:
        """Ask the engine for the blind list of ``search_id`` (it refuses a profile that may not review it
        blind), keeping the blind decisions ``pending`` made so far."""
        acting = settings_ops.acting_examiner()
        self._blind_examiner = acting.fingerprint if acting is not None else None
        self.blind_search_id = search_id
        self.blind_pending = pending
        self._blind_rows = []
        self.blind_review_changed.emit(search_id)
        self.results.set_busy("Reading the candidates for blind review…")
        return self.cases.load_blind_candidates(search_id, on_error=lambda exc: self._blind_refused(search_id, exc))

    def acting_changed(self, profile: Any) -> Job | None:
        """Another examiner took over in the switcher: a blind review is its reviewer's own, so the blind
        decisions made so far (not the new examiner's) are dropped, the examiner is told, and the review
        starts again for the new profile, which the engine accepts or refuses."""
        search_id = self.blind_search_id
        if search_id is None or getattr(profile, "fingerprint", None) == self._blind_examiner:
            return None  # no blind review, or the same examiner (the profiles were only read again)
        if self.blind_pending:
            who = f"{profile.name} ({profile.identifier})" if profile is not None else "nobody"
            self.ask.tell("Blind review", f"The examiner changed to {who}: the {len(self.blind_pending)} blind "
                          f"decision(s) made on search {search_id} before the change were not recorded, and the "
                          "blind review starts again under the new examiner.")
        return self._begin_blind(search_id, {})

    def _blind_refused(self, search_id: int, exc: BaseException) -> None:
        """Say why (the engine's words) and show the search's ordinary list again."""
        self._end_blind()
        self.ask.tell("Blind review", f"Blind review refused: {getattr(exc, 'message', None) or exc}")
        self.cases.load_candidates(search_id)

    def _end_blind(self) -> None:
        if self.blind_search_id is not None:
            self.blind_search_id = None
            self.blind_pending = {}
            self._blind_rows = []
            self.blind_review_changed.emit(None)
        self.cases.end_blind_review()

    def _show_blind(self) -> None:
        rows = [replace(r, decision=self.blind_pending.get((r.case_gallery_id, r.face_id), "not_reviewed"),
                        note="") for r in self._blind_rows]
        n = sum(r.decision != "not_reviewed" for r in rows)
        self._show(rows, self.blind_search_id,
                   f"BLIND REVIEW of search {self.blind_search_id}: {n} of {len(rows)} decided. The first "
                   "examiner's decisions are hidden until yours are recorded (when every candidate is decided, "
                   "or with Record blind decisions).")

    def _decide_blind(self, row: ResultRow, decision: str) -> Job | None:
        key = (row.case_gallery_id, row.face_id)
        if decision in ("possible", "excluded"):
            self.blind_pending[key] = decision
        else:
            self.blind_pending.pop(key, None)
        self._show_blind()
        if self._blind_rows and len(self.blind_pending) == len(self._blind_rows):
            return self.finish_blind_review()
        return None

    def finish_blind_review(self) -> Job | None:
        """Record the blind decisions made so far (signed under the acting profile) and reveal the list."""
        search_id = self.blind_search_id
        if search_id is None or not self.blind_pending:
            return None
        pending = dict(self.blind_pending)
        items = [{"gallery_id": g, "face_id": f, "decision": d} for (g, f), d in pending.items()]
        self.blind_search_id = None
        self.blind_pending = {}
        self._blind_rows = []
        self.blind_review_changed.emit(None)
        self.results.set_busy("Recording your blind decisions…")
        return self.cases.record_blind_review(search_id, items,
                                              on_error=lambda exc: self._blind_not_recorded(search_id, pending, exc))

    def _blind_not_recorded(self, search_id: int, pending: dict[tuple[str, int], str], exc: BaseException) -> None:
        """The blind decisions were not recorded (e.g. the reviewer's key is locked): say why and go on with
        the blind review, the decisions made kept; the engine decides whether it may go on (if they are
        recorded after all, it refuses and the ordinary list follows)."""
        said = error_text(exc)  # the engine's words, with the window's way to choose an examiner
        self.ask.tell("Blind review", f"Your blind decisions were not recorded: {said.message}"
                      + (f" {said.details}" if said.expected and said.details else ""))
        self._begin_blind(search_id, pending)
