"""ExaminerFlow: what happens when the examiner acts — case, sketch, search, review — wired between the panels.

Kept apart from the window's layout so each half stays readable. Every engine call goes through a
job (engine lane for models and indexes, case lane for case records, io lane for reads); this module
only decides what to start and where the answer is shown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox

from engine.errors import ModelMissing
from sketchface_desktop.case_dialogs import CaseDetailsDialog, OpenCaseDialog
from sketchface_desktop.compare_dialog import CompareDialog, face_crop
from sketchface_desktop.engine_session import warm_up_engine
from sketchface_desktop.first_run import REQUIRED, FirstRunGuide, needs_guide
from sketchface_desktop.results_view import ResultRow
from sketchface_desktop.settings_dialog import SettingsDialog
from sketchface_desktop.training_run import start_training
from sketchface_desktop.window_state import guide_dismissed, set_guide_dismissed
from sketchface_desktop.workers import Job

if TYPE_CHECKING:
    from sketchface_desktop.main_window import MainWindow


class ExaminerFlow(QObject):
    """Connects the window's panels and controllers (no signals of its own)."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.w = window
        self.guide: FirstRunGuide | None = None
        self.compare: CompareDialog | None = None
        self.shown_search_id: int | None = None
        self.shown_query_png: bytes | None = None
        self.gallery_names: dict[str, str] = {}
        self.started = False  # after_first_paint has run (tests and tools wait for it)
        w = window
        w.act_new_case.triggered.connect(lambda: self.new_case())
        w.act_open_case.triggered.connect(lambda: self.open_case())
        w.act_edit_case.triggered.connect(self.edit_case)
        w.act_close_case.triggered.connect(lambda: self.close_case())
        w.act_new_sketch.triggered.connect(lambda: self.new_sketch())
        w.act_search.triggered.connect(lambda: self.search_sketch())
        w.act_search_photo.triggered.connect(lambda: self.search_photo())
        w.act_new_gallery.triggered.connect(lambda: w.gallery.create_gallery())
        w.act_add_folder.triggered.connect(lambda: self._add_folder())
        w.act_settings.triggered.connect(lambda: self.open_settings())
        w.act_models.triggered.connect(lambda: self.open_settings("models"))
        w.act_guide.triggered.connect(lambda: self.show_guide())
        w.act_train.triggered.connect(lambda: start_training(w.hub, w))
        w.results.search_sketch_requested.connect(lambda: self.search_sketch())
        w.results.search_photo_requested.connect(lambda: self.search_photo())
        w.results.compare_requested.connect(self.open_compare)
        w.results.decision_requested.connect(self.decide)
        w.results.more_like_requested.connect(lambda r: self._refined(w.searches.more_like_this(r.photo_path)))
        w.results.exclude_requested.connect(self._exclude)
        w.searches.search_finished.connect(self._search_finished)
        w.cases.case_changed.connect(self._case_changed)
        w.cases.sketches_changed.connect(w.navigator.set_sketches)
        w.cases.searches_changed.connect(w.navigator.set_searches)
        w.cases.candidates_ready.connect(self._candidates)
        w.navigator.sketch_activated.connect(self.load_sketch)
        w.navigator.search_activated.connect(self.show_search)
        w.navigator.gallery_activated.connect(self._gallery_activated)
        w.navigator.search_scope_changed.connect(self._scope)
        w.gallery.galleries_changed.connect(self._galleries)
        w.gallery.message.connect(lambda text: w.status.showMessage(text, 8000))
        w.gallery.import_finished.connect(self._import_finished)
        w.sketch.save_requested.connect(lambda: self.save_sketch())
        w.results.k.setValue(w.session.settings.search_top_k)
        w.results.set_can_decide(False)

    # -- start-up and failures -----------------------------------------------------------------
    def after_first_paint(self) -> None:
        """Work deferred until the window is on screen: model and device status, gallery list, guide."""
        w = self.w
        w.status.refresh_models()
        w.status.refresh_device(w.session.settings.device)
        w.gallery.refresh()
        w.hub.submit("Preparing the engine", lambda _p, _c: warm_up_engine(), visible=False, cancellable=False,
                     on_error=lambda exc: None)
        self.started = True
        if w.show_guide_at_start and needs_guide() and not guide_dismissed():
            self.show_guide()

    def job_failed(self, job: Job, exc: BaseException) -> None:
        if isinstance(exc, ModelMissing):
            self.show_guide(f"{job.title} needs a model that is not installed: {exc.message}")
            return
        self.w.errors.show(exc, job.title)

    def show_guide(self, reason: str = "") -> FirstRunGuide:
        if self.guide is not None:
            self.guide.close()
        self.guide = guide = FirstRunGuide(self.w, reason)
        guide.open_models.connect(lambda: self.open_settings("models"))
        guide.import_requested.connect(self._import_models)
        guide.finished.connect(lambda _r: set_guide_dismissed(guide.dont_show.isChecked()))
        guide.open()
        return guide

    def _import_models(self) -> None:
        dialog = self.open_settings("models")
        dialog.models_page.import_bundle(folder=True)

    def open_settings(self, tab: str = "general") -> SettingsDialog:
        dialog = SettingsDialog(self.w.hub, self.w, tab)
        dialog.settings_saved.connect(self._settings_saved)
        dialog.models_page.models_changed.connect(self._models_changed)
        dialog.open()
        return dialog

    def _settings_saved(self, settings: Any) -> None:
        self.w.session.apply_settings(settings)
        self.w.status.refresh_device(settings.device)

    def _models_changed(self) -> None:
        self.w.session.forget_models()
        self.w.status.refresh_models()

    # -- cases ---------------------------------------------------------------------------------
    def new_case(self, values: dict[str, Any] | None = None) -> Job | None:
        if values is None:
            dialog = CaseDetailsDialog(self.w, default_examiner=self.w.session.settings.examiner)
            if dialog.exec() != CaseDetailsDialog.DialogCode.Accepted:
                return None
            values = dialog.values()
        self._autosave()
        return self.w.cases.create(location=self.w.session.settings.cases_dir, **values)

    def open_case(self, ref: str | None = None) -> Job | None:
        if ref is not None:
            self._autosave()
            return self.w.cases.open(ref)

        def chosen(cases: list[dict[str, Any]]) -> None:
            dialog = OpenCaseDialog(cases, self.w)
            if dialog.exec() == OpenCaseDialog.DialogCode.Accepted and (case_id := dialog.chosen()):
                self._autosave()
                self.w.cases.open(case_id)

        return self.w.cases.list_cases(chosen)

    def close_case(self) -> Job | None:
        """Close the case, first keeping an unsaved drawing as a version of it."""
        if not self.w.cases.is_open:
            return None
        self._autosave()
        return self.w.cases.close()

    def edit_case(self) -> None:
        info = self.w.cases.info
        if info is None:
            return
        dialog = CaseDetailsDialog(self.w, info)
        if dialog.exec() == CaseDetailsDialog.DialogCode.Accepted:
            v = dialog.values()
            self.w.cases.update(title=v["title"], witnesses=v["witnesses"], incident_date=v["incident_date"],
                                notes=v["notes"])

    def _case_changed(self, info: Any) -> None:
        w = self.w
        w.navigator.set_case(info)
        w.results.set_can_decide(info is not None)
        w.act_edit_case.setEnabled(info is not None)
        w.act_close_case.setEnabled(info is not None)
        w.status.set_case(f"Case {info.case_number} — {info.title}" if info else "No case open")
        w.setWindowTitle(f"{info.case_number} — SketchFace Workstation" if info else "SketchFace Workstation")
        if info is None or self.shown_search_id is not None:
            self.shown_search_id = None
            w.results.show_rows([], None, "Draw a sketch (or load one), tick the galleries to search, then press "
                                "Search." if info is None else f"Case {info.case_number} opened.")

    # -- sketches ------------------------------------------------------------------------------
    def save_sketch(self, witness: str | None = None, note: str = "") -> Job | None:
        """Store the drawing in the open case as a new version (asking for a case or witness when needed)."""
        cases, canvas = self.w.cases, self.w.sketch.canvas
        if not cases.is_open:
            QMessageBox.information(self.w, "Save sketch", "Create or open a case first: sketches are kept in cases.")
            return None
        if cases.current_sketch_id is None and witness is None:
            known = list(cases.info.witnesses)
            if len(known) == 1:
                witness = known[0]
            else:
                witness, ok = QInputDialog.getItem(self.w, "New sketch", "Witness whose description this records:",
                                                   known or [""], 0, True)
                if not ok or not witness.strip():
                    return None
        job = cases.save_sketch(canvas.to_png_bytes(), witness=witness or "", note=note)
        job.result.connect(lambda _r: canvas.undo_stack.setClean())
        return job

    def new_sketch(self) -> None:
        """Keep the current drawing (autosaved into the case) and start an empty sheet as a new sketch."""
        self._autosave()
        self.w.sketch.canvas.reset()
        self.w.cases.current_sketch_id = None

    def load_sketch(self, version: Any) -> None:
        def loaded(data: bytes) -> None:
            self.w.sketch.canvas.reset(QImage.fromData(data))
            self.w.sketch.canvas.undo_stack.setClean()
            self.w.cases.current_sketch_id = version.sketch_id

        self._autosave()
        self.w.cases.read_sketch(version, loaded)

    def _autosave(self) -> None:
        """Keep an unsaved drawing as a version before the case changes under it (nothing is lost)."""
        cases, canvas = self.w.cases, self.w.sketch.canvas
        if cases.is_open and not canvas.undo_stack.isClean() and not canvas.is_blank():
            witness = cases.info.witnesses[0] if cases.info.witnesses else "unknown"
            cases.save_sketch(canvas.to_png_bytes(), witness=witness, note="autosaved")
            canvas.undo_stack.setClean()

    def before_close(self) -> None:
        """At exit, after the lanes stopped: store an unsaved drawing directly (no thread uses the case now)."""
        cases, canvas = self.w.cases, self.w.sketch.canvas
        if cases.case is None or canvas.undo_stack.isClean() or canvas.is_blank():
            return
        from engine.cases import add_sketch

        witness = cases.info.witnesses[0] if cases.info.witnesses else "unknown"
        add_sketch(cases.case, canvas.to_png_bytes(), witness=witness if cases.current_sketch_id is None else "",
                   sketch_id=cases.current_sketch_id, note="autosaved on exit")

    # -- searching -----------------------------------------------------------------------------
    def _models_ready(self, what: str) -> bool:
        from engine import models

        missing = [m for m in REQUIRED if not models.installed(m)]
        if missing:
            self.show_guide(f"{what} needs the face models, which are not installed yet.")
        return not missing

    def search_sketch(self) -> Job | None:
        w = self.w
        canvas, ids = w.sketch.canvas, w.navigator.checked_galleries()
        if canvas.is_blank():
            w.results.set_busy("The sheet is empty: draw or import a sketch first.")
            return None
        if not ids or not self._models_ready("Sketch search"):
            return None
        png, box = canvas.to_png_bytes(), canvas.face_box()
        self.shown_query_png = png
        r = w.results
        filters = [f.strip() for f in r.filters.text().split(",") if f.strip()]

        def start(extra: list[bytes]) -> None:
            req = w.searches.sketch_request(png, box, ids, r.k.value(), filters, extra_sketches=extra,
                                            group_by_subject=r.group.isChecked(), blind=r.blind.isChecked())
            self._refined(w.searches.run(req))

        others = self._other_sketches()
        if r.fuse.isChecked() and others:
            versions = others
            job = w.hub.submit("Reading saved sketches", lambda _p, _c: [
                w.cases.read_case_file(v.path, v.sha256) for v in versions], lane="case", visible=False,
                on_result=start)
            return job
        start([])
        return w.searches.job

    def _other_sketches(self) -> list[Any]:
        """The latest version of every other sketch of the case (other witnesses' drawings), for fusion."""
        latest: dict[int, Any] = {}
        for v in self.w.cases.sketches:
            if v.sketch_id != self.w.cases.current_sketch_id and v.version >= getattr(latest.get(v.sketch_id),
                                                                                       "version", 0):
                latest[v.sketch_id] = v
        return list(latest.values())

    def search_photo(self, path: str | None = None) -> Job | None:
        w, r = self.w, self.w.results
        ids = w.navigator.checked_galleries()
        if not ids or not self._models_ready("Photo search"):
            return None
        if path is None:
            path, _ = QFileDialog.getOpenFileName(w, "Search with a photo", "", "Images (*.jpg *.jpeg *.png *.bmp)")
            if not path:
                return None
        filters = [f.strip() for f in r.filters.text().split(",") if f.strip()]
        req = w.searches.photo_request(path, ids, r.k.value(), filters, group_by_subject=r.group.isChecked(),
                                       blind=r.blind.isChecked())
        self.shown_query_png = req.queries[0].data
        return self._refined(w.searches.run(req))

    def _refined(self, job: Job | None) -> Job | None:
        if job is not None:
            self.w.tabs.setCurrentWidget(self.w.results)
            self.w.results.set_busy(f"{job.title}…")
        return job

    def _exclude(self, row: ResultRow) -> None:
        if self.w.cases.is_open and self.shown_search_id is not None:
            self.decide(row, "excluded", row.note)
        self._refined(self.w.searches.exclude(row.photo_sha256, row.photo_path))

    def _search_finished(self, request: Any, result: Any, thumbs: dict[int, bytes]) -> None:
        w = self.w
        if w.cases.is_open:
            w.results.set_busy("Recording the search in the case…")
            w.cases.store_search(result, [q.data for q in request.queries], thumbs, blind=request.blind,
                                 label=request.label)
            return
        rows = [ResultRow.from_match(m) for m in result.matches]
        self.shown_search_id = None
        w.results.show_rows(rows, None, self._summary(len(rows), result.elapsed_ms, recorded=False))

    @staticmethod
    def _summary(n: int, elapsed_ms: float | None, recorded: bool) -> str:
        took = f" in {elapsed_ms / 1000:.2f} s" if elapsed_ms is not None else ""
        where = "recorded in the case" if recorded else "not recorded: no case is open"
        return f"{n} candidates{took} · {where}. Double-click a candidate to compare."

    def _candidates(self, search_id: int, candidates: list[Any]) -> None:
        folder = self.w.cases.info.folder if self.w.cases.info else None
        rows = [ResultRow.from_candidate(c, folder, self.gallery_names) for c in candidates]
        if search_id != self.shown_search_id:
            self.shown_search_id = search_id
            self.shown_query_png = None
            self.w.cases.query_images(search_id, self._query_images_read)
        elapsed = getattr(self.w.searches.last_result, "elapsed_ms", None)
        decided = sum(r.decision != "not_reviewed" for r in rows)
        self.w.results.show_rows(rows, search_id, self._summary(len(rows), elapsed, True)
                                 + f" {decided} of {len(rows)} decided.")
        if self.compare is not None:
            match = next((r for r in rows if (r.gallery_id, r.face_id) == (self.compare.row.gallery_id,
                                                                           self.compare.row.face_id)), None)
            if match is not None:
                self.compare.row = match
                self.compare.state.setText(f"Decision: {match.decision.replace('_', ' ')} (saved)")

    def _query_images_read(self, images: list[bytes]) -> None:
        if images:
            self.shown_query_png = images[0]

    def show_search(self, record: Any) -> None:
        self.w.tabs.setCurrentWidget(self.w.results)
        self.w.cases.load_candidates(record.id)

    # -- review --------------------------------------------------------------------------------
    def decide(self, row: ResultRow, decision: str, note: str) -> Job | None:
        if not self.w.cases.is_open or self.shown_search_id is None:
            QMessageBox.information(self.w, "Decision", "Open or create a case before searching to record decisions.")
            return None
        return self.w.cases.record_decision(self.shown_search_id, row.face_id, row.gallery_id, decision, note)

    def open_compare(self, row: ResultRow) -> CompareDialog:
        w = self.w
        sketch = self.shown_query_png or w.sketch.canvas.to_png_bytes()
        if self.compare is not None:
            self.compare.close()
        self.compare = dialog = CompareDialog(row, sketch, None, w.cases.is_open and self.shown_search_id is not None,
                                              w)
        dialog.decision_made.connect(self.decide)
        session = w.session

        def best_face(_p: Any, _c: Any) -> Any:
            bbox = row.bbox
            if bbox is None:
                info = session.gallery(row.gallery_id).store.face_infos([row.face_id]).get(row.face_id)
                bbox = info.bbox if info else None
            return face_crop(row.photo_path, bbox) or session.gallery(row.gallery_id).thumbnail(row.face_id)

        w.hub.submit("Reading candidate photo", best_face, lane="io", visible=False,
                     on_result=lambda img: dialog.set_candidate(img))
        dialog.open()
        return dialog

    # -- galleries -----------------------------------------------------------------------------
    def _galleries(self, infos: list[Any]) -> None:
        self.gallery_names = {i.id: i.name for i in infos}
        self.w.navigator.set_galleries(infos)

    def _import_finished(self, report: Any) -> None:
        self.w.status.showMessage(
            f"Import finished: {report.added:,} added, {report.updated:,} updated, {report.unchanged:,} unchanged, "
            f"{report.no_face:,} without a face, {report.errors:,} unreadable ({report.elapsed_s:.0f} s).", 15000)

    def _scope(self, ids: list[str]) -> None:
        self.w.results.set_scope([self.gallery_names.get(i, i) for i in ids])

    def _gallery_activated(self, gallery_id: str) -> None:
        self.w.gallery.show_gallery(gallery_id)
        self.w.tabs.setCurrentWidget(self.w.gallery)

    def _add_folder(self) -> None:
        self.w.tabs.setCurrentWidget(self.w.gallery)
        self.w.gallery.add_folder()
