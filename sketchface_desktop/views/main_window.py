"""MainWindow: navigator, sketch canvas, results and gallery tabs, audit and jobs docks, status bar in one window.

The window assembles: it builds the controllers with the collaborators each needs, lays the panels
out, owns the menus and shortcuts and remembers its layout (QSettings in the SketchFace config dir,
so a relocated SKETCHFACE_HOME carries it). Connecting its widgets' signals to the controllers is
another class's job (:class:`~sketchface_desktop.views.window_wiring.WindowWiring`), and so is opening
its dialogs (:class:`~sketchface_desktop.views.window_dialogs.WindowDialogs`). What an action does lives
in :mod:`sketchface_desktop.controllers`; the work itself in :mod:`sketchface_desktop.ops`.
"""

from __future__ import annotations

import logging
import time

from PySide6.QtCore import QByteArray, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QCloseEvent, QDesktopServices, QKeySequence, QPaintEvent, QShowEvent
from PySide6.QtWidgets import QDockWidget, QMainWindow, QMenu, QMessageBox, QSplitter, QTabWidget, QWidget

from sketchface_desktop.controllers.case_controller import CaseController
from sketchface_desktop.controllers.exam_controller import ExamController
from sketchface_desktop.controllers.examiner_flow import ExaminerFlow
from sketchface_desktop.controllers.examiner_profiles import ExaminerProfiles
from sketchface_desktop.controllers.gallery_controller import GalleryController
from sketchface_desktop.controllers.lineup_controller import LineupController
from sketchface_desktop.controllers.models_controller import ModelsController
from sketchface_desktop.controllers.reconstruct_controller import ReconstructController
from sketchface_desktop.controllers.search_controller import SearchController
from sketchface_desktop.controllers.watch_controller import WatchController
from sketchface_desktop.controllers.window_state import log_folder, window_settings
from sketchface_desktop.engine_session import EngineSession
from sketchface_desktop.views import assets
from sketchface_desktop.views.audit_panel import AuditPanel
from sketchface_desktop.views.authorization_dialog import AuthorizationPrompt
from sketchface_desktop.views.canvas import SketchPanel
from sketchface_desktop.views.error_dialog import ErrorPresenter
from sketchface_desktop.views.gallery_panel import GalleryPanel
from sketchface_desktop.views.intake_dialog import IntakePrompt
from sketchface_desktop.views.jobs_panel import JobsPanel
from sketchface_desktop.views.lineup_dialog import ask_lineup_options, open_lineup_dialog
from sketchface_desktop.views.navigator import NavigatorPanel
from sketchface_desktop.views.prompter import DialogPrompter
from sketchface_desktop.views.reconstruct_panel import ReconstructPanel
from sketchface_desktop.views.results_panel import ResultsPanel
from sketchface_desktop.views.results_view import ResultsModel
from sketchface_desktop.views.server_dialog import open_server_dialog
from sketchface_desktop.views.shortcuts_dialog import ShortcutsDialog
from sketchface_desktop.views.status_bar import WorkstationStatusBar
from sketchface_desktop.views.thumbnails import ThumbnailLoader
from sketchface_desktop.views.ui import make_action
from sketchface_desktop.views.validate_dialog import open_validation
from sketchface_desktop.views.watch_panel import WatchBadge
from sketchface_desktop.views.window_dialogs import WindowDialogs
from sketchface_desktop.views.window_wiring import WindowWiring
from sketchface_desktop.workers import JobHub

log = logging.getLogger(__name__)
LAYOUT_VERSION = 2  # 2: the Audit dock
DEVICE_PROBE_DELAY_MS = 300


class MainWindow(QMainWindow):
    """The workstation's main window.

    Signals:
        first_painted(float): emitted once, right after the first paint (time.monotonic() of that paint).
    """

    first_painted = Signal(float)

    def __init__(self, hub: JobHub | None = None, session: EngineSession | None = None,
                 show_guide: bool = True) -> None:
        super().__init__()
        self.setObjectName("MainWindow")
        self.setWindowTitle("SketchFace Workstation")
        self.setWindowIcon(assets.app_icon())
        self.hub = hub or JobHub()
        self.session = session or EngineSession()
        self.errors = ErrorPresenter(self)
        self.first_paint_at: float | None = None
        self.show_guide_at_start = show_guide
        self.started = False  # the deferred start-up work has begun (tests and tools wait for it)
        self.loader = ThumbnailLoader(self.hub, parent=self)
        self.cases = CaseController(self.hub, self)
        self.models = ModelsController(self.hub, self)
        self.searches = SearchController(self.hub, self.session, self)
        self.profiles = ExaminerProfiles(self)  # who is working: every case write is signed by their key
        self._build_actions()
        self.sketch = SketchPanel(self)
        self.results_model = ResultsModel(self.loader, self.session, self)
        self.results = ResultsPanel(self.results_model, self)
        self.galleries = GalleryController(self.hub, self.session, self)
        self.gallery = GalleryPanel(self.galleries, self.loader, self)
        self.reconstruct = ReconstructPanel(self)
        self.navigator = NavigatorPanel([self.act_new_case, self.act_open_case, self.act_edit_case,
                                         self.act_close_case], self)
        self.jobs = JobsPanel(self.hub, self)
        self.audit = AuditPanel(self.cases, self)
        self.status = WorkstationStatusBar(self.models, self)
        self.setStatusBar(self.status)
        self._build_layout()
        self._build_menus()
        self.dialogs = WindowDialogs(self, self.hub, self.session, self.cases, self.errors, self.models_changed,
                                     self.settings_saved, models=self.models)
        self.prompter = DialogPrompter(self, self.dialogs.show_guide)
        self.flow = ExaminerFlow(self.hub, self.session, self.cases, self.searches, self.sketch.canvas, self.results,
                                 self.navigator, self.prompter, self)
        self.dialogs.flow = self.flow
        self.reconstruct_flow = ReconstructController(self.hub, self.session, self.cases, self.flow, self.reconstruct,
                                                      self.sketch.canvas, self.prompter, self)
        self.lineups = LineupController(self.hub, self.session, self.cases, lambda: self.flow.shown_search_id,
                                        lambda witnesses: ask_lineup_options(self, witnesses),
                                        lambda c, shown: open_lineup_dialog(c, shown, self), self)
        self.results.lineup_requested.connect(self.lineups.build_for)
        self.lineups.failed.connect(self.results.set_busy)
        self.watches = WatchController(self.hub, self.session, self.cases, lambda: self.flow.shown_search_id, self)
        self.watch_badge = WatchBadge(self.watches, self)
        self.status.addPermanentWidget(self.watch_badge)
        self.act_watch.triggered.connect(self.watches.watch_shown)
        self.watches.message.connect(lambda text: self.status.showMessage(text, 10_000))
        self.first_painted.connect(lambda _t: self.watches.start())  # a check at start, then on its timer
        self.exam = ExamController(self.hub, self.cases, self.sketch.canvas, self)  # intake, sheets, conclusions
        self.intake = IntakePrompt(self.exam, self, self.cases.default_witness, self.results.exam_notice,
                                   (self.navigator.sketch_list, self.navigator.search_list),
                                   lambda: self.flow.shown_search_id)
        self.authorization = AuthorizationPrompt(self, self.intake.ask, self.results.exam_notice)  # search policy
        self.searches.attach_policy(self.authorization, self.cases, lambda: self.exam.status.intakes)
        self.wiring = WindowWiring(self)
        self.wiring.connect()
        self._restore_layout()

    def models_changed(self) -> None:
        self.session.forget_models()
        self.status.refresh_models()

    def settings_saved(self, settings: object) -> None:
        self.session.apply_settings(settings)  # type: ignore[arg-type]
        self.status.refresh_device(settings.device)  # type: ignore[attr-defined]

    # -- construction --------------------------------------------------------------------------
    def _build_actions(self) -> None:
        self.act_new_case = make_action(self, "case-new", "New case…", QKeySequence.StandardKey.New)
        self.act_open_case = make_action(self, "case", "Open case…", QKeySequence.StandardKey.Open)
        self.act_edit_case = make_action(self, "edit", "Case details…", "Ctrl+Shift+D")
        self.act_close_case = make_action(self, "case-close", "Close case", "Ctrl+Shift+W")
        self.act_new_sketch = make_action(self, "pen", "New sketch (another witness)…", "Ctrl+Shift+K",
                                          "Start a new sketch in this case, e.g. from another witness")
        self.act_intake = make_action(self, "info", "Probe intake…", None,
                                      "Record where the sketch on the sheet came from and whether it is fit to "
                                      "search with, before its first search")
        self.act_search = make_action(self, "search", "Search with sketch", "Ctrl+Return",
                                      "Search the ticked galleries with the current sketch")
        self.act_search_photo = make_action(self, "photo", "Search with photo…", "Ctrl+Shift+Return")
        self.act_new_gallery = make_action(self, "gallery-new", "New gallery…", "Ctrl+Shift+N")
        self.act_add_folder = make_action(self, "folder-add", "Add folder to gallery…", "Ctrl+Shift+O")
        self.act_settings = make_action(self, "settings", "Settings…", QKeySequence.StandardKey.Preferences)
        if self.act_settings.shortcut().isEmpty():
            self.act_settings.setShortcut(QKeySequence("Ctrl+,"))
        self.act_models = make_action(self, "model", "Models…")
        self.act_train = make_action(self, "jobs", "Train sketch encoder…", None,
                                     "Run the trainer as a separate process; progress appears in Jobs")
        self.act_guide = make_action(self, "info", "Getting started…", "F1")
        self.act_shortcuts = make_action(self, None, "Keyboard shortcuts…", "Ctrl+/")
        self.act_shortcuts.triggered.connect(lambda: self.show_shortcuts())
        self.act_logs = make_action(self, "open", "Open log folder")
        self.act_logs.triggered.connect(lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(log_folder()))))
        self.act_quit = make_action(self, None, "Quit", QKeySequence.StandardKey.Quit)
        self.act_quit.triggered.connect(self.close)
        self.act_reset_layout = make_action(self, None, "Reset window layout")
        self.act_reset_layout.triggered.connect(self.reset_layout)
        self.act_export_report = make_action(self, "export", "Export report…", "Ctrl+P",
                                             "Export the case as a PDF, HTML or JSON report")
        self.act_sign_off = make_action(self, "verify", "Second-examiner sign-off…", None,
                                        "A second examiner signs the case or chosen searches")
        self.act_blind_review = make_action(self, "search", "Blind review of shown search", None,
                                            "Decide each candidate yourself before the first examiner's "
                                            "decisions are shown (second examiner)")
        self.act_finish_blind = make_action(self, "verify", "Record blind decisions", None,
                                            "Record the blind decisions made so far and show the first "
                                            "examiner's")
        self.act_watch = make_action(self, "history", "Watch shown search", None,
                                     "Search this case's search again, automatically, over photos added to its "
                                     "galleries from now on")
        self.act_rerun = make_action(self, "history", "Re-run shown search…", None,
                                     "Repeat the search on show with its recorded manifest and compare the lists")
        self.act_export_archive = make_action(self, "download", "Export case archive…", None,
                                              "The whole case as one zip, with its SHA-256")
        self.act_import_archive = make_action(self, "import-scan", "Import case archive…", None,
                                              "Check and open a case archive from another workstation")

    def _build_layout(self) -> None:
        self.tabs = QTabWidget()
        self.tabs.setObjectName("MainTabs")
        self.tabs.addTab(self.results, assets.icon("search"), "Results")
        self.tabs.addTab(self.gallery, assets.icon("gallery"), "Gallery")
        self.tabs.addTab(self.reconstruct, assets.icon("pen"), "Reconstruct")
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("MainSplitter")
        self.splitter.addWidget(self.sketch)
        self.splitter.addWidget(self.tabs)
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 3)
        self.splitter.setChildrenCollapsible(False)
        self.sketch.setMinimumWidth(400)
        self.setCentralWidget(self.splitter)
        self.nav_dock = self._dock("Case and galleries", "NavigatorDock", self.navigator,
                                   Qt.DockWidgetArea.LeftDockWidgetArea)
        self.jobs_dock = self._dock("Jobs", "JobsDock", self.jobs, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.audit_dock = self._dock("Audit", "AuditDock", self.audit, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.tabifyDockWidget(self.jobs_dock, self.audit_dock)
        self.audit_dock.hide()  # opened from Case > Audit; the default layout stays as it was
        self.resize(1440, 900)
        self._layout_restored = False
        self._pending_splitter: QByteArray | None = None

    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(area, dock)
        return dock

    def _build_menus(self) -> None:
        bar = self.menuBar()
        case = bar.addMenu("&Case")
        for a in (self.act_new_case, self.act_open_case, self.act_edit_case, self.act_close_case, None,
                  self.act_export_report, self.act_blind_review, self.act_finish_blind, self.act_sign_off,
                  self.act_rerun, self.act_watch, self.audit_dock.toggleViewAction(), None,
                  self.act_export_archive, self.act_import_archive, None, self.act_quit):
            if a is None:
                case.addSeparator()
            else:
                case.addAction(a)
        sketch = bar.addMenu("&Sketch")
        sketch.addAction(self.act_new_sketch)
        sketch.addAction(self.act_intake)
        sketch.addSeparator()
        sp = self.sketch
        for group in ((sp.act_pen, sp.act_eraser, sp.act_pan, sp.act_smaller, sp.act_bigger),
                      (sp.act_undo, sp.act_redo, sp.act_clear), (sp.act_guide, sp.act_guide_tool),
                      (sp.act_import, sp.act_export, sp.act_save)):
            for a in group:
                sketch.addAction(a)
            sketch.addSeparator()
        search = bar.addMenu("Sea&rch")
        search.addAction(self.act_search)
        search.addAction(self.act_search_photo)
        gallery = bar.addMenu("&Gallery")
        gallery.addAction(self.act_new_gallery)
        gallery.addAction(self.act_add_folder)
        gallery.addSeparator()
        for a in (self.gallery.act_csv, self.gallery.act_verify, self.gallery.act_rebuild,
                  self.gallery.act_remove, self.gallery.act_delete):
            gallery.addAction(a)
        view = bar.addMenu("&View")
        for a in (sp.act_zoom_in, sp.act_zoom_out, sp.act_fit):
            view.addAction(a)
        view.addSeparator()
        view.addAction(self.nav_dock.toggleViewAction())
        view.addAction(self.jobs_dock.toggleViewAction())
        view.addAction(self.audit_dock.toggleViewAction())
        view.addAction(self.act_reset_layout)
        tools = bar.addMenu("&Tools")
        tools.addAction(self.act_settings)
        tools.addAction(self.act_models)
        tools.addAction(self.act_train)
        tools.addAction("&Validate on solved cases…", lambda: open_validation(self.hub, self.session, self))
        tools.addAction("Gallery &servers…", lambda: open_server_dialog(self))
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self.act_guide)
        help_menu.addAction(self.act_shortcuts)
        help_menu.addAction(self.act_logs)
        main = self.addToolBar("Main")
        main.setObjectName("MainToolbar")
        main.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for a in (self.act_new_case, self.act_open_case, None, self.act_search, self.act_search_photo, None,
                  self.act_export_report, None, self.act_new_gallery, self.act_add_folder, None, self.act_settings):
            if a is None:
                main.addSeparator()
            else:
                main.addAction(a)

    def show_shortcuts(self) -> ShortcutsDialog:
        groups = [(menu.title().replace("&", ""), [a for a in menu.actions() if not a.isSeparator()])
                  for menu in self.menuBar().findChildren(QMenu) if menu.parent() is self.menuBar()]
        r = self.results
        groups.append(("Results", [r.act_possible, r.act_excluded, r.act_not_reviewed, r.act_note, r.act_compare,
                                   r.act_more, r.act_exclude]))
        dialog = ShortcutsDialog(groups, self)
        dialog.open()
        return dialog

    # -- layout memory -------------------------------------------------------------------------
    def _restore_layout(self) -> None:
        s = window_settings()
        if s.value("layout_version", 0, int) != LAYOUT_VERSION:
            return
        geometry, state, split = s.value("geometry"), s.value("state"), s.value("splitter")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        if isinstance(state, QByteArray):
            self.restoreState(state, LAYOUT_VERSION)
        if isinstance(split, QByteArray):
            self._pending_splitter = split  # applied once shown: sizes restored before the first layout drift
        self.tabs.setCurrentIndex(int(s.value("tab", 0, int)))  # type: ignore[call-overload]
        self._layout_restored = True

    def _default_proportions(self) -> None:
        """First run (no saved layout): navigator narrow, sketch and results sharing the middle, jobs low."""
        self.resizeDocks([self.nav_dock], [270], Qt.Orientation.Horizontal)
        self.resizeDocks([self.jobs_dock], [120], Qt.Orientation.Vertical)
        total = max(800, self.width() - 280)
        self.splitter.setSizes([int(total * 0.46), total - int(total * 0.46)])

    def save_layout(self) -> None:
        s = window_settings()
        s.setValue("layout_version", LAYOUT_VERSION)
        s.setValue("geometry", self.saveGeometry())
        s.setValue("state", self.saveState(LAYOUT_VERSION))
        s.setValue("splitter", self.splitter.saveState())
        s.setValue("tab", self.tabs.currentIndex())
        s.sync()

    def reset_layout(self) -> None:
        for dock in (self.nav_dock, self.jobs_dock):
            dock.setFloating(False)
            dock.show()
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.nav_dock)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.jobs_dock)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.audit_dock)
        self.tabifyDockWidget(self.jobs_dock, self.audit_dock)
        self.jobs_dock.raise_()
        self._default_proportions()

    # -- events --------------------------------------------------------------------------------
    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._pending_splitter is not None:
            state, self._pending_splitter = self._pending_splitter, None
            QTimer.singleShot(0, lambda: self.splitter.restoreState(state))
        if not self._layout_restored:
            self._layout_restored = True
            QTimer.singleShot(0, self._default_proportions)

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if self.first_paint_at is None:
            self.first_paint_at = time.monotonic()
            QTimer.singleShot(0, lambda: self.first_painted.emit(self.first_paint_at))
            QTimer.singleShot(DEVICE_PROBE_DELAY_MS, self, self.wiring.after_first_paint)

    def closeEvent(self, event: QCloseEvent) -> None:
        active = [j for j in self.hub.active_jobs() if j.visible]
        if active and self.property("confirm_close") is not False:
            answer = QMessageBox.question(
                self, "Quit SketchFace", f"{len(active)} job(s) are still running. Cancel them and quit? "
                "Work recorded so far is kept; an import can be resumed later.")
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        self.save_layout()
        self.errors.close_all()
        self.hub.shutdown()
        try:
            self.flow.before_close()
        except Exception as exc:  # an autosave failure must not keep the window open; it is logged
            log.warning("autosave on exit failed: %s", exc)
        self.cases.shutdown()
        self.session.close()
        event.accept()
