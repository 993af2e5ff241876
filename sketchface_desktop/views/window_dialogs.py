"""WindowDialogs: the dialogs the window opens — guide, settings, compare, report, sign-off, re-run, archives, demo.

A view-side helper of :class:`~sketchface_desktop.views.main_window.MainWindow`: it is given what each
dialog needs (the job runner, the engine session, the controllers) and keeps a reference to each
dialog it opened, so tests and the screenshot tool can reach them.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from sketchface_desktop.controllers.case_controller import CaseController
from sketchface_desktop.controllers.errors import missing_model_message
from sketchface_desktop.controllers.examiner_flow import ExaminerFlow
from sketchface_desktop.controllers.models_controller import ModelsController
from sketchface_desktop.controllers.window_state import set_guide_dismissed
from sketchface_desktop.engine_session import EngineSession
from sketchface_desktop.ops import Runner
from sketchface_desktop.ops import models as model_ops
from sketchface_desktop.ops import search as search_ops
from sketchface_desktop.ops.cases import CaseState
from sketchface_desktop.ops.search import ResultRow
from sketchface_desktop.views.case_dialogs import ArchiveImportDialog, normalise_hex
from sketchface_desktop.views.compare_dialog import CompareDialog
from sketchface_desktop.views.error_dialog import ErrorPresenter
from sketchface_desktop.views.first_run import FirstRunGuide
from sketchface_desktop.views.report_dialog import ReportDialog
from sketchface_desktop.views.rerun_dialog import RerunDialog
from sketchface_desktop.views.settings_dialog import SettingsDialog
from sketchface_desktop.views.signoff_dialog import SignOffDialog
from sketchface_desktop.workers import Job

log = logging.getLogger(__name__)


class WindowDialogs(QObject):
    """Opens and remembers the window's dialogs (no signals of its own)."""

    def __init__(self, window: QWidget, runner: Runner, session: EngineSession, cases: CaseController,
                 errors: ErrorPresenter, on_models_changed: Callable[[], None],
                 on_settings_saved: Callable[[Any], None], models: ModelsController | None = None) -> None:
        super().__init__(window)
        self.window = window
        self.runner = runner
        self.session = session
        self.cases = cases
        self.models = models if models is not None else ModelsController(runner, self)
        self.errors = errors
        self.flow: ExaminerFlow | None = None  # set once the flow exists (it asks through this object)
        self._models_changed = on_models_changed
        self._settings_saved = on_settings_saved
        self.guide: FirstRunGuide | None = None
        self.compare: CompareDialog | None = None
        self.report: ReportDialog | None = None
        self.signoff: SignOffDialog | None = None
        self.rerun: RerunDialog | None = None
        self.demo_job: Job | None = None
        cases.blind_review_changed.connect(self._blind_review_changed)

    # -- failures, guide, settings -------------------------------------------------------------
    def job_failed(self, job: Job, exc: BaseException) -> None:
        """Missing models open the guide; other engine errors the error dialog."""
        missing = missing_model_message(exc)
        if missing is not None:
            self.show_guide(f"{job.title} needs a model that is not installed: {missing}")
            return
        self.errors.show(exc, job.title)

    def show_guide(self, reason: str = "") -> FirstRunGuide:
        if self.guide is not None:
            self.guide.close()
        self.guide = guide = FirstRunGuide(self.window, reason)
        guide.open_models.connect(lambda: self.open_settings("models"))
        guide.import_requested.connect(self._import_models)
        guide.demo_requested.connect(lambda: self.try_demo())
        guide.finished.connect(lambda _r: set_guide_dismissed(guide.dont_show.isChecked()))
        guide.open()
        return guide

    def _import_models(self) -> None:
        self.open_settings("models").models_page.import_bundle(folder=True)

    def open_settings(self, tab: str = "general") -> SettingsDialog:
        dialog = SettingsDialog(self.runner, self.window, tab, models=self.models)
        dialog.settings_saved.connect(self._settings_saved)
        dialog.models_page.models_changed.connect(self._models_changed)
        dialog.open()
        return dialog

    # -- review ------------------------------------------------------------------------------
    def open_compare(self, row: ResultRow) -> CompareDialog:
        """The sketch beside (or over) the candidate's face; decisions go to the examiner flow."""
        flow = self.flow
        assert flow is not None
        if self.compare is not None:
            self.compare.close()
        self.compare = dialog = CompareDialog(row, flow.compare_sketch(), None, flow.can_decide, self.window)
        dialog.decision_made.connect(flow.decide)
        search_ops.sketch_crop(flow.compare_sketch(), flow.compare_box()).success(dialog.set_sketch).run(self.runner)
        search_ops.candidate_face(self.session, row.gallery_id, row.face_id, row.photo_path, row.bbox).success(
            dialog.set_candidate).run(self.runner)
        dialog.open()
        return dialog

    def _blind_review_changed(self, search_id: int | None) -> None:
        """A compare view opened before a blind review began shows the first examiner's note and sheet:
        it closes when one begins (the reviewer opens it again from the blind list)."""
        if search_id is not None and self.compare is not None and self.compare.isVisible():
            self.compare.close()

    def rows_shown(self, rows: list[ResultRow]) -> None:
        """Keep an open compare view's decision in step with the grid, and its note while the field still
        shows the stored one (in a blind review the grid's rows carry no note: the first examiner's goes)."""
        dialog = self.compare
        if dialog is None:
            return
        match = next((r for r in rows if (r.gallery_id, r.face_id) == (dialog.row.gallery_id, dialog.row.face_id)),
                     None)
        if match is not None:
            if dialog.note.text().strip() == dialog.row.note.strip():
                dialog.note.setText(match.note)
            dialog.row = match
            dialog.state.setText(f"Decision: {match.decision.replace('_', ' ')} (saved)")

    # -- the record ----------------------------------------------------------------------------
    def _need_case(self, what: str) -> bool:
        if not self.cases.is_open:
            QMessageBox.information(self.window, what, "Create or open a case first.")
        return self.cases.is_open

    def export_report(self) -> ReportDialog | None:
        if not self._need_case("Export report"):
            return None
        self.report = ReportDialog(self.cases, self.window)
        self.report.open()
        return self.report

    def sign_off(self) -> SignOffDialog | None:
        if not self._need_case("Sign-off"):
            return None
        self.signoff = SignOffDialog(self.cases, self.window)
        self.signoff.open()
        return self.signoff

    def rerun_search(self, search_id: int | None) -> RerunDialog | None:
        if not self._need_case("Re-run search"):
            return None
        if search_id is None:
            QMessageBox.information(self.window, "Re-run search", "Show a recorded search first (double-click it "
                                    "under Searches in the navigator).")
            return None
        self.rerun = RerunDialog(self.cases, search_id, search_ops.session_rerunner(self.session), self.window)
        self.rerun.open()
        self.rerun.start()
        return self.rerun

    def export_archive(self, path: str | None = None) -> Job | None:
        if not self._need_case("Export case archive"):
            return None
        confirmed = False  # replacing an existing archive only after the save dialog asked about it
        if path is None:
            default = f"case_{self.cases.info.case_number}.zip".replace("/", "-")
            path, _ = QFileDialog.getSaveFileName(self.window, "Export case archive", default, "Case archive (*.zip)")
            if not path:
                return None
            confirmed = True  # the save dialog confirms overwriting an existing file (Qt's default)

        def done(res: Any) -> None:
            box = QMessageBox(QMessageBox.Icon.Information, "Case archive written",
                              f"{res.path}\n\nSHA-256 (give it to the receiver with the archive):\n{res.sha256}\n\n"
                              f"{res.files} files · audit head {res.audit_count}:{res.audit_head}",
                              QMessageBox.StandardButton.Ok, self.window)
            box.setObjectName("ArchiveWritten")
            box.setTextFormat(Qt.TextFormat.PlainText)
            box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            box.open()

        return self.cases.export_archive(path, done, overwrite=confirmed)

    def import_archive(self, path: str | None = None, sha256: str | None = None,
                       expected_key: str | None = None) -> Job | None:
        """Import a case archive; what the sender reported (SHA-256, key fingerprint) is asked for unless given."""
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self.window, "Import case archive", "", "Case archive (*.zip)")
            if not path:
                return None
        if sha256 is None:
            dialog = ArchiveImportDialog(path, self.window)
            if dialog.exec() != ArchiveImportDialog.DialogCode.Accepted:
                return None
            sha256, expected_key = dialog.values()
        if self.flow is not None:
            self.flow.autosave()
        return self.cases.import_archive(path, normalise_hex(sha256), expected_key=normalise_hex(expected_key or ""),
                                         on_result=lambda state: self._archive_imported(state, bool(expected_key)))

    def _archive_imported(self, state: CaseState, pinned: bool) -> None:
        """Say whose key signed the imported archive, so the examiner can compare it with the sender's."""
        sig = state.signature or {}
        who = "this workstation" if sig.get("this_workstation") else "another workstation"
        advice = ("It matches the key you expected." if pinned else
                  "" if sig.get("this_workstation") else
                  "Compare it with the sender's ('sketchface case key' on their workstation), or give it as the "
                  "expected signing key next time.")
        self.notify("ArchiveImported", "Case archive imported",
                    f"Case {state.info.case_number} imported.\n\nIts audit head was signed by {who}, key\n"
                    f"{sig.get('fingerprint') or '(none)'}\n\n{advice}".rstrip())

    def notify(self, name: str, title: str, text: str) -> QMessageBox:
        """A non-modal message the examiner closes when ready (plain, selectable text); logged too."""
        log.info("%s: %s", title, text.replace("\n", " "))
        box = QMessageBox(QMessageBox.Icon.Information, title, text, QMessageBox.StandardButton.Ok, self.window)
        box.setObjectName(name)
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setWindowModality(Qt.WindowModality.NonModal)  # the examiner keeps working while it is up
        box.show()
        return box

    # -- demo ----------------------------------------------------------------------------------
    def try_demo(self, restart: bool = True) -> Job:
        """Install the demo into its own home, then start a workstation there (this one keeps your data)."""
        def ready(info: Any) -> None:
            log.info("demo prepared in %s (case %s)", info.home, info.case_number)
            if restart:
                self.start_demo_workstation(info)

        self.demo_job = model_ops.prepare_demo().success(ready).run(self.runner)
        return self.demo_job

    def start_demo_workstation(self, info: Any) -> bool:
        """A second workstation process on the demo home (SKETCHFACE_HOME), showing the DEMO case."""
        env = dict(os.environ)
        env.update(info.env())
        process = QProcess(self)
        process.setProgram(sys.executable)
        process.setArguments(["-m", "sketchface_desktop"])
        env["SKETCHFACE_OPEN_CASE"] = str(info.case_id)
        penv = QProcessEnvironment()
        for k, v in env.items():
            penv.insert(k, v)
        process.setProcessEnvironment(penv)
        ok, _pid = process.startDetached()
        QMessageBox.information(self.window, "Demo", "A DEMO workstation opens in a separate window (tiny random "
                                "models, sample photos: scores are meaningless). Your own cases stay here."
                                if ok else "The demo workstation could not be started; see the log.")
        return bool(ok)
