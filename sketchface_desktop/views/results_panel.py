"""ResultsPanel: the search options (k, filters, grouping, fusion), the review mode, the banners and the results grid.

The examiner's verbs live here: search, compare (double-click), mark possible / excluded / not reviewed
(keys 1, 2, 3), add a note, refine with "more like this" or "exclude". Blind review is a mode of the
grid: candidates shuffled, ranks and scores hidden until every one has a decision (the engine reveals
them then), with the progress shown above the grid.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QInputDialog,
    QLineEdit,
    QMenu,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from sketchface_desktop.controllers.ports import SearchOptions
from sketchface_desktop.views import assets
from sketchface_desktop.views.results_view import ResultRow, ResultsModel, ResultsView
from sketchface_desktop.views.ui import button, label, primary_button

BASELINE_TEXT = ("BASELINE — no trained sketch encoder is installed: the sketch was embedded by the photo "
                 "model (ArcFace) itself. Expect weak ranking; treat these candidates with extra care.")


class ResultsPanel(QWidget):
    """The Results tab.

    Signals:
        search_sketch_requested(): search with the current sketch.
        search_photo_requested(): search with a photo (the window asks which).
        compare_requested(object): a ResultRow to compare with the sketch.
        decision_requested(object, str, str): ResultRow, decision, note.
        more_like_requested(object): refine the last search with this candidate's photo.
        exclude_requested(object): repeat the last search without this candidate's photo.
        lineup_requested(object): build a photo line-up around this candidate (a ResultRow).
        bring_forward(): the panel has news to show (the window brings its tab forward).
    """

    search_sketch_requested = Signal()
    search_photo_requested = Signal()
    compare_requested = Signal(object)
    decision_requested = Signal(object, str, str)
    more_like_requested = Signal(object)
    exclude_requested = Signal(object)
    lineup_requested = Signal(object)
    bring_forward = Signal()

    def __init__(self, model: ResultsModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ResultsPanel")
        self.model = model
        self.view = ResultsView(model, self)
        self.view.doubleClicked.connect(lambda idx: self.compare_requested.emit(model.row(idx.row())))
        self.view.customContextMenuRequested.connect(self._menu)
        self.k = QSpinBox()
        self.k.setObjectName("SearchK")
        self.k.setRange(1, 1000)
        self.k.setValue(50)
        self.k.setPrefix("top ")
        self.k.setToolTip("Number of candidates to list")
        self.filters = QLineEdit()
        self.filters.setObjectName("SearchFilters")
        self.filters.setPlaceholderText("Filters, e.g. sex=M, birth_year>=1980, quality>=0.5")
        # Scars, marks and tattoos: kind and text, searched in the gallery's annotations (tattoo=rose; * any).
        self.marks_kind = QComboBox()
        self.marks_kind.setObjectName("MarksKind")
        self.marks_kind.addItems(["tattoo", "scar", "mark"])
        self.marks_text = QLineEdit()
        self.marks_text.setObjectName("MarksFilter")
        self.marks_text.setPlaceholderText("Scar, mark or tattoo: location or description (* any)")
        self.group = QCheckBox("One row per subject")
        self.ranked = QPushButton("Ranked")
        self.ranked.setObjectName("ModeRanked")
        self.ranked.setToolTip("Candidates in rank order with their scores")
        self.blind = QPushButton("Blind")
        self.blind.setObjectName("ModeBlind")
        self.blind.setToolTip("Shuffle candidates and hide ranks and scores until every one has a decision")
        self.mode = QButtonGroup(self)
        for b in (self.ranked, self.blind):
            b.setCheckable(True)
            b.setProperty("role", "segment")
            self.mode.addButton(b)
        self.ranked.setChecked(True)
        self.fuse = QCheckBox("Fuse with other sketches")
        self.fuse.setToolTip("Search with the current sketch and the case's other sketches (e.g. other witnesses') "
                             "together: their embeddings are averaged")
        self.search_button = primary_button("Search sketch", "search")
        self.search_button.setObjectName("SearchSketchButton")
        self.search_button.clicked.connect(self.search_sketch_requested)
        self.photo_button = button("Search photo…", "photo")
        self.photo_button.clicked.connect(self.search_photo_requested)
        row1 = QHBoxLayout()
        row1.addWidget(self.search_button)
        row1.addWidget(self.photo_button)
        row1.addWidget(self.k)
        self.scope = label("", "subtle")
        self.scope.setObjectName("SearchScope")
        self.scope.setWordWrap(True)
        row1.addStretch(1)
        row2 = QHBoxLayout()
        row2.addWidget(self.filters, 1)
        row2.addWidget(self.marks_kind)
        row2.addWidget(self.marks_text, 1)
        row3 = QHBoxLayout()
        row3.setSpacing(0)
        row3.addWidget(label("Review:", "subtle"))
        row3.addSpacing(6)
        row3.addWidget(self.ranked)
        row3.addWidget(self.blind)
        row3.addSpacing(16)
        for w in (self.group, self.fuse):
            row3.addWidget(w)
            row3.addSpacing(12)
        row3.addStretch(1)
        self.banner = label(BASELINE_TEXT, "baseline", True)
        self.banner.setObjectName("BaselineBanner")
        self.banner.hide()
        self.blind_banner = label("", "blind", True)
        self.blind_banner.setObjectName("BlindBanner")
        self.blind_banner.hide()
        self.exam_notice = label("", "baseline", True)  # probe intake missing, non-evidential probe
        self.exam_notice.setObjectName("ExamNotice")
        self.exam_notice.hide()
        self.summary = label("Draw a sketch (or load one), tick the galleries to search, then press Search.",
                             "placeholder", True)
        self.summary.setObjectName("ResultsSummary")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addLayout(row1)
        layout.addLayout(row2)
        layout.addLayout(row3)
        layout.addWidget(self.scope)
        layout.addWidget(self.banner)
        layout.addWidget(self.blind_banner)
        layout.addWidget(self.exam_notice)
        layout.addWidget(self.summary)
        layout.addWidget(self.view, 1)
        self.can_decide = False
        self._actions()

    def _actions(self) -> None:
        self.act_possible = self._view_action("possible", "Mark possible", "1", "possible")
        self.act_excluded = self._view_action("excluded", "Mark excluded", "2", "excluded")
        self.act_not_reviewed = self._view_action("not-reviewed", "Mark not reviewed", "3", "not_reviewed")
        self.act_note = self._view_action("note", "Add note…", "N", None)
        self.act_note.triggered.connect(self._note)
        self.act_compare = self._view_action("compare", "Compare with sketch", "Return", None)
        self.act_compare.triggered.connect(lambda: self._with_current(self.compare_requested.emit))
        self.act_more = self._view_action("more-like", "More like this", "M", None)
        self.act_more.triggered.connect(lambda: self._with_current(self.more_like_requested.emit))
        self.act_exclude = self._view_action("exclude-search", "Exclude and search again", "Shift+X", None)
        self.act_exclude.triggered.connect(lambda: self._with_current(self.exclude_requested.emit))
        self.act_lineup = QAction("Build line-up…", self.view)
        self.act_lineup.setObjectName("LineupAction")
        self.act_lineup.setToolTip("Build a fair photo line-up around this candidate, with fillers from the galleries")
        self.act_lineup.triggered.connect(lambda: self._with_current(self.lineup_requested.emit))

    def _view_action(self, icon: str, text: str, key: str, decision: str | None) -> QAction:
        action = QAction(assets.icon(icon), text, self.view)
        action.setShortcut(QKeySequence(key))
        action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        if decision is not None:
            action.triggered.connect(lambda _=False, d=decision: self._with_current(
                lambda r: self.decision_requested.emit(r, d, r.note)))
        self.view.addAction(action)
        return action

    def current_row(self) -> ResultRow | None:
        idx = self.view.currentIndex()
        return self.model.row(idx.row()) if idx.isValid() else None

    def _with_current(self, fn: Any) -> None:
        row = self.current_row()
        if row is not None:
            fn(row)

    def _note(self) -> None:
        row = self.current_row()
        if row is None:
            return
        text, ok = QInputDialog.getText(self, "Note", f"Note on candidate #{row.rank or row.position}:", text=row.note)
        if ok:
            self.decision_requested.emit(row, row.decision, text.strip())

    def _menu(self, pos: QPoint) -> None:
        idx = self.view.indexAt(pos)
        if not idx.isValid():
            return
        self.view.setCurrentIndex(idx)
        menu = QMenu(self)
        menu.addAction(self.act_compare)
        menu.addSeparator()
        for action in (self.act_possible, self.act_excluded, self.act_not_reviewed, self.act_note):
            action.setEnabled(self.can_decide)
            menu.addAction(action)
        menu.addSeparator()
        menu.addAction(self.act_more)
        menu.addAction(self.act_exclude)
        menu.addSeparator()
        self.act_lineup.setEnabled(self.can_decide)
        menu.addAction(self.act_lineup)
        menu.popup(self.view.viewport().mapToGlobal(pos))

    # -- state shown ---------------------------------------------------------------------------
    def options(self) -> SearchOptions:
        """The search options as set now."""
        filters = tuple(f.strip() for f in self.filters.text().split(",") if f.strip())
        if self.marks_text.text().strip():
            filters += (f"{self.marks_kind.currentText()}={self.marks_text.text().strip()}",)
        return SearchOptions(self.k.value(), filters, self.group.isChecked(), self.blind.isChecked(),
                             self.fuse.isChecked())

    def set_can_decide(self, can: bool) -> None:
        self.can_decide = can
        for action in (self.act_possible, self.act_excluded, self.act_not_reviewed, self.act_note):
            action.setEnabled(can)

    def set_scope(self, names: list[str]) -> None:
        self.scope.setText(("Searching: " + ", ".join(names)) if names else "No gallery ticked")
        self.search_button.setEnabled(bool(names))
        self.photo_button.setEnabled(bool(names))

    def show_rows(self, rows: list[ResultRow], search_id: int | None, summary: str) -> None:
        if search_id is not None and search_id == self.model.search_id and len(rows) == len(self.model.rows):
            self.model.update_decisions(rows)
        else:
            self.model.set_rows(rows, search_id)
        self.banner.setVisible(self.model.any_baseline())
        hidden = bool(rows) and all(r.score is None for r in rows)
        decided = sum(r.decision != "not_reviewed" for r in rows)
        self.blind_banner.setText(f"BLIND REVIEW — {decided} of {len(rows)} decided. Candidates are shuffled; ranks "
                                  "and scores appear once every candidate has a decision.")
        self.blind_banner.setVisible(hidden)
        self.summary.setText(summary)
        self.summary.setProperty("role", "subtle")
        self.summary.style().polish(self.summary)

    def set_busy(self, text: str) -> None:
        self.summary.setText(text)
        self.bring_forward.emit()
