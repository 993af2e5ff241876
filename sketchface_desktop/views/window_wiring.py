"""How the main window's widgets are connected to the controllers, in one place.

Views emit what the examiner asked for; controllers decide; views follow the controllers' signals
(the case controller's broadcasts, the flow's rows). Nothing here does work itself. The window builds
its parts and hands itself to :class:`WindowWiring`, which reads those parts off it: one class lays the
window out, this one connects it, so neither re-declares the other's attributes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sketchface_desktop.controllers.window_state import guide_dismissed
from sketchface_desktop.ops import models as model_ops
from sketchface_desktop.ops import settings as settings_ops
from sketchface_desktop.views.comparison_sheet import attach_sheet
from sketchface_desktop.views.first_run import ExaminerSetupDialog
from sketchface_desktop.views.training_run import start_training

if TYPE_CHECKING:
    from sketchface_desktop.views.main_window import MainWindow


class WindowWiring:
    """The connections of one main window (built by the window once every part named here exists)."""

    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self.demo_notice = settings_ops.demo_notice()  # a demo home: DEMO in the title and the status bar
        self.examiner_setup: ExaminerSetupDialog | None = None

    def connect(self) -> None:
        """Connect menus, panels and controllers."""
        w = self.window
        flow, dialogs, cases, rec = w.flow, w.dialogs, w.cases, w.reconstruct_flow
        w.hub.job_failed.connect(dialogs.job_failed)
        rec.failed.connect(dialogs.job_failed)
        # menus
        w.act_new_case.triggered.connect(lambda: flow.new_case())
        w.act_open_case.triggered.connect(lambda: flow.open_case())
        w.act_edit_case.triggered.connect(lambda: flow.edit_case())
        w.act_close_case.triggered.connect(lambda: flow.close_case())
        w.act_new_sketch.triggered.connect(lambda: flow.new_sketch())
        w.act_search.triggered.connect(lambda: flow.search_sketch())
        w.act_search_photo.triggered.connect(lambda: flow.search_photo())
        w.act_new_gallery.triggered.connect(lambda: w.gallery.create_gallery())
        w.act_add_folder.triggered.connect(self._add_folder)
        w.act_settings.triggered.connect(lambda: dialogs.open_settings())
        w.act_models.triggered.connect(lambda: dialogs.open_settings("models"))
        w.act_guide.triggered.connect(lambda: dialogs.show_guide())
        w.act_train.triggered.connect(lambda: start_training(w.hub, w))
        w.act_export_report.triggered.connect(lambda: dialogs.export_report())
        w.act_sign_off.triggered.connect(lambda: dialogs.sign_off())
        w.act_rerun.triggered.connect(lambda: dialogs.rerun_search(flow.shown_search_id))
        w.act_export_archive.triggered.connect(lambda: dialogs.export_archive())
        w.act_import_archive.triggered.connect(lambda: dialogs.import_archive())
        w.status.models_clicked.connect(lambda: dialogs.open_settings("models"))
        # who is working: the status bar's switcher, the first-run question, blind review
        w.status.set_demo(self.demo_notice)
        w.status.set_profiles(w.profiles)
        w.status.add_examiner_requested.connect(lambda: self.ask_examiner(first_run=False))
        w.act_blind_review.triggered.connect(lambda: flow.start_blind_review())
        w.act_finish_blind.triggered.connect(lambda: flow.finish_blind_review())
        w.profiles.acting_changed.connect(flow.acting_changed)  # a blind review is its reviewer's own
        flow.blind_review_changed.connect(lambda sid: w.act_finish_blind.setEnabled(sid is not None))
        w.act_finish_blind.setEnabled(False)
        w.jobs.active_count_changed.connect(w.status.set_jobs)
        # results grid
        r = w.results
        r.search_sketch_requested.connect(lambda: flow.search_sketch())
        r.search_photo_requested.connect(lambda: flow.search_photo())
        r.compare_requested.connect(dialogs.open_compare)
        r.compare_requested.connect(  # after open_compare: the candidate's comparison sheet beside the images
            lambda row: attach_sheet(dialogs.compare, w.exam, flow.examinable_search_id, row))  # none when blind
        w.act_intake.triggered.connect(lambda: w.intake.ask())
        w.searches.policy_note.connect(lambda text: w.status.showMessage(text, 15_000))  # the search policy's
        w.searches.policy_note.connect(w.results.set_busy)  # cap or refusal, said where the search shows
        w.sketch.sketch_changed.connect(w.intake.sheet_changed)
        flow.rows_shown.connect(lambda _rows: w.intake.show_status(w.exam.status))
        r.decision_requested.connect(flow.decide)
        r.more_like_requested.connect(flow.more_like)
        r.exclude_requested.connect(flow.exclude)
        r.bring_forward.connect(lambda: w.tabs.setCurrentWidget(w.results))
        r.k.setValue(w.session.settings.search_top_k)
        flow.rows_shown.connect(dialogs.rows_shown)
        # the case: one writer, everyone follows its broadcasts
        cases.case_changed.connect(self._case_shown)
        cases.notice.connect(self._case_notice)
        cases.sketches_changed.connect(w.navigator.set_sketches)
        cases.searches_changed.connect(w.navigator.set_searches)
        w.navigator.sketch_activated.connect(flow.load_sketch)
        w.navigator.search_activated.connect(flow.show_search)
        w.navigator.rerun_requested.connect(lambda record: dialogs.rerun_search(record.id))
        w.navigator.gallery_activated.connect(self._gallery_activated)
        w.navigator.search_scope_changed.connect(
            lambda ids: r.set_scope([flow.gallery_names.get(i, i) for i in ids]))
        # galleries and sketch
        w.gallery.galleries_changed.connect(self._galleries)
        w.gallery.message.connect(lambda text: w.status.showMessage(text, 8000))
        w.gallery.import_finished.connect(self._import_finished)
        w.sketch.save_requested.connect(lambda: flow.save_sketch())
        # reconstruct panel
        p = w.reconstruct
        p.describe_requested.connect(lambda: rec.describe())
        p.generate_requested.connect(lambda: rec.generate())
        p.cancel_requested.connect(rec.cancel)
        p.save_requested.connect(rec.save)
        p.probe_requested.connect(rec.probe)
        p.vary_requested.connect(rec.vary)
        w.tabs.currentChanged.connect(lambda _i: rec.refresh_cloud())
        self._case_shown(None)

    def after_first_paint(self) -> None:
        """Work deferred until the window is on screen: model and device status, gallery list, guide."""
        w = self.window
        if w.hub.closed:  # the window was closed before this ran
            return
        w.status.refresh_models()
        w.status.refresh_device(w.session.settings.device)
        w.gallery.refresh()
        model_ops.warm_up().failure(lambda _exc: None).run(w.hub)
        w.started = True
        wants_guide = w.show_guide_at_start and model_ops.missing_required() and not guide_dismissed()
        if w.profiles.acting is None:  # nothing is recorded until the window knows who is working
            dialog = self.ask_examiner(first_run=True)
            if wants_guide:  # then what is missing for search
                dialog.finished.connect(lambda _r: w.dialogs.show_guide())
        elif wants_guide:
            w.dialogs.show_guide()

    def ask_examiner(self, first_run: bool) -> ExaminerSetupDialog:
        """Ask who is working (display name, agency identifier, passphrase where no keyring holds keys)."""
        if self.examiner_setup is not None:
            self.examiner_setup.close()
        self.examiner_setup = dialog = ExaminerSetupDialog(self.window.profiles, self.window, first_run=first_run)
        dialog.open()
        return dialog

    def _case_notice(self, text: str) -> None:
        """A notice from the case registry: in the status bar and a message the examiner closes (logged)."""
        self.window.status.showMessage(text, 15000)
        self.window.dialogs.notify("CaseNotice", "Case registry", text)

    def _case_shown(self, info: Any) -> None:
        w = self.window
        w.navigator.set_case(info)
        is_open = info is not None
        for action in (w.act_edit_case, w.act_close_case, w.act_export_report, w.act_sign_off, w.act_rerun,
                       w.act_export_archive):
            action.setEnabled(is_open)
        w.status.set_case(f"Case {info.case_number} — {info.title}" if is_open else "No case open")
        w.setWindowTitle(f"{info.case_number} — SketchFace Workstation" if is_open else "SketchFace Workstation")
        w.act_blind_review.setEnabled(is_open)
        if self.demo_notice:
            w.setWindowTitle(f"DEMO — {w.windowTitle()} (random-weight models, meaningless scores)")

    def _galleries(self, infos: list[Any]) -> None:
        self.window.flow.set_galleries(infos)
        self.window.navigator.set_galleries(infos)

    def _import_finished(self, report: Any) -> None:
        self.window.status.showMessage(
            f"Import finished: {report.added:,} added, {report.updated:,} updated, {report.unchanged:,} unchanged, "
            f"{report.no_face:,} without a face, {report.errors:,} unreadable ({report.elapsed_s:.0f} s).", 15000)

    def _gallery_activated(self, gallery_id: str) -> None:
        self.window.gallery.show_gallery(gallery_id)
        self.window.tabs.setCurrentWidget(self.window.gallery)

    def _add_folder(self) -> None:
        self.window.tabs.setCurrentWidget(self.window.gallery)
        self.window.gallery.add_folder()
