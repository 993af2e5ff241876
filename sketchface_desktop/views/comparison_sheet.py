"""ComparisonSheet: the morphological comparison of one candidate, component by component, and its conclusion.

The components are the engine's list (FISWG feature list v2.0); each is similar, dissimilar or not
assessable (with why), with an optional note. The conclusion picker offers only the levels of the scale
the search's probe type allows (for a sketch: investigative-lead outcomes); the engine refuses anything
stronger anyway. Marks placed on the compare view (a click places one at the same spot on both aligned
images) are kept in the note of the component they belong to, as "mark at X%,Y%".
"""

from __future__ import annotations

import re
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from sketchface_desktop.controllers.exam_controller import ExamController
from sketchface_desktop.ops.exam import SheetView
from sketchface_desktop.views.ui import button, label, primary_button

UNASSESSED = "—"
WHY_PRESETS = ("not in the sketch", "not visible", "occluded")
MARK_COMPONENTS = ("scars", "facial-marks", "tattoos")
_MARK = re.compile(r"\[mark at (\d{1,3})%,(\d{1,3})%\]")


def marks_in(note: str) -> list[tuple[float, float]]:
    """The mark positions kept in a note (fractions of the aligned face)."""
    return [(int(x) / 100, int(y) / 100) for x, y in _MARK.findall(note)]


class ComparisonSheet(QWidget):
    """One candidate's sheet and conclusion.

    Signals:
        save_requested(object, object): the assessed rows [(component, assessment, why)] and {component: note}.
        conclude_requested(str, str): a level id of the allowed scale, and a note.
        marks_changed(object): the mark positions [(x, y)] to draw on both images.
    """

    save_requested = Signal(object, object)
    conclude_requested = Signal(str, str)
    marks_changed = Signal(object)

    def __init__(self, key: tuple[int, str, int], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ComparisonSheet")
        self.key = key  # (search id, case gallery id, face id): views of other candidates are ignored
        self.view: SheetView | None = None
        self.gallery_name = ""  # the candidate's gallery as the examiner knows it (set by attach_sheet)
        self.heading = label("Comparison sheet (reading…)", "heading", True)
        self.scale = label("", "subtle", True)
        self.scale.setObjectName("SheetScale")
        self.banner = label("", "baseline", True)
        self.banner.setObjectName("SheetNonEvidential")
        self.banner.hide()
        self.table = QTableWidget(0, 4)
        self.table.setObjectName("SheetTable")
        self.table.setHorizontalHeaderLabels(["Component", "Assessment", "Why not assessable", "Note"])
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        for column, width in ((0, 175), (1, 125), (2, 165)):
            self.table.setColumnWidth(column, width)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.mark_component = QComboBox()
        self.mark_component.setObjectName("MarkComponent")
        self.mark_component.addItems(list(MARK_COMPONENTS))
        self.mark_component.setToolTip("Which component a mark placed on the images belongs to")
        self.save_button = primary_button("Save sheet", "verify")
        self.save_button.setObjectName("SaveSheet")
        self.save_button.clicked.connect(self._save)
        self.level = QComboBox()
        self.level.setObjectName("ConclusionLevel")
        self.conclusion_note = QLineEdit()
        self.conclusion_note.setPlaceholderText("Note on the conclusion")
        self.conclude_button = button("Record conclusion", "possible")
        self.conclude_button.setObjectName("RecordConclusion")
        self.conclude_button.clicked.connect(
            lambda: self.conclude_requested.emit(str(self.level.currentData() or ""), self.conclusion_note.text().strip()))
        self.conclusion = label("Conclusion: none recorded", "subtle", True)
        self.conclusion.setObjectName("SheetConclusion")
        self.state = label("", "subtle", True)
        self.state.setObjectName("SheetState")
        marks = QHBoxLayout()
        marks.addWidget(label("Click the images to place a mark on:", "subtle"))
        marks.addWidget(self.mark_component)
        marks.addStretch(1)
        marks.addWidget(self.save_button)
        concl = QHBoxLayout()
        concl.addWidget(self.level, 2)
        concl.addWidget(self.conclusion_note, 1)
        concl.addWidget(self.conclude_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.heading)
        layout.addWidget(self.banner)
        layout.addWidget(self.table, 1)
        layout.addLayout(marks)
        layout.addWidget(self.scale)
        layout.addLayout(concl)
        layout.addWidget(self.conclusion)
        layout.addWidget(self.state)
        self._set_enabled(False)

    def _set_enabled(self, on: bool) -> None:
        for w in (self.table, self.save_button, self.level, self.conclude_button, self.conclusion_note):
            w.setEnabled(on)

    def row_of(self, component: str) -> int:
        """The table row of a component key (-1 when the sheet has no such component)."""
        keys = [k for k, _ in self.view.components] if self.view is not None else []
        return keys.index(component) if component in keys else -1

    def cell(self, component: str, column: int) -> Any:
        """The editor widget of a component's column (1 assessment, 2 why, 3 note)."""
        return self.table.cellWidget(self.row_of(component), column)

    def set_view(self, view: SheetView) -> None:
        """Show a sheet read or recorded by the engine (views of another candidate are ignored)."""
        if (view.search_id, view.gallery_id, view.face_id) != self.key:
            return
        first = self.view is None
        self.view = view
        where = f"{self.gallery_name} ({view.gallery_id})" if self.gallery_name else view.gallery_id
        self.heading.setText(f"Comparison sheet — {where}, face {view.face_id} "
                             f"({len(view.rows)} of {len(view.components)} components assessed)")
        self.banner.setText(view.non_evidential)
        self.banner.setVisible(bool(view.non_evidential))
        self.scale.setText(f"{view.probe_type.capitalize()} probe: conclusions on the scale “{view.scale_title}”. "
                           f"Components: {view.fiswg}.")
        if first:
            self._fill(view)
        self.level.clear()
        for level_id, text in view.levels:
            self.level.addItem(text, level_id)
        c = view.conclusion
        self.conclusion.setText(f"Conclusion: {c['level_text']} (by {c['created_by']})" if c else
                                "Conclusion: none recorded")
        self.state.setText("")
        self._set_enabled(True)
        self.marks_changed.emit(self.marks())

    def _fill(self, view: SheetView) -> None:
        self.table.setRowCount(len(view.components))
        for i, (key, title) in enumerate(view.components):
            row = view.rows.get(key, {})
            name = QLineEdit(title)
            name.setReadOnly(True)
            name.setFrame(False)
            self.table.setCellWidget(i, 0, name)
            box = QComboBox()
            box.addItems([UNASSESSED, *view.assessments])
            box.setCurrentText(row.get("assessment", UNASSESSED))
            self.table.setCellWidget(i, 1, box)
            why = QComboBox()
            why.setEditable(True)
            why.addItems(["", *WHY_PRESETS])
            why.setCurrentText(row.get("reason", ""))
            self.table.setCellWidget(i, 2, why)
            note = QLineEdit(row.get("note", ""))
            note.textChanged.connect(lambda _t: self.marks_changed.emit(self.marks()))
            self.table.setCellWidget(i, 3, note)

    def rows(self) -> tuple[list[tuple[str, str, str]], dict[str, str]]:
        """The assessed components (component, assessment, why) and the notes, as the table holds them."""
        features, notes = [], {}
        for key, _title in self.view.components if self.view is not None else []:
            assessment = self.cell(key, 1).currentText()
            if assessment == UNASSESSED:
                continue
            why = self.cell(key, 2).currentText().strip() if assessment == "not-assessable" else ""
            features.append((key, assessment, why))
            note = self.cell(key, 3).text().strip()
            if note:
                notes[key] = note
        return features, notes

    def _save(self) -> None:
        features, notes = self.rows()
        missing = [k for k, a, w in features if a == "not-assessable" and not w]
        if missing:
            self.state.setText(f"Say why {', '.join(missing)} is not assessable (not in the sketch, not visible, "
                               "occluded).")
            return
        self.state.setText("Saving…")
        self.save_requested.emit(features, notes)

    def marks(self) -> list[tuple[float, float]]:
        """Every mark kept in the notes of the mark components."""
        out: list[tuple[float, float]] = []
        for key in MARK_COMPONENTS:
            if self.view is not None and self.row_of(key) >= 0:
                out += marks_in(self.cell(key, 3).text())
        return out

    def add_mark(self, x: float, y: float) -> None:
        """A mark placed on the images: kept in the chosen component's note (saved with the sheet)."""
        key = self.mark_component.currentText()
        if self.view is None or self.row_of(key) < 0:
            return
        note = self.cell(key, 3)
        text = f"[mark at {round(x * 100)}%,{round(y * 100)}%]"
        note.setText(f"{note.text().strip()} {text}".strip())

    def set_error(self, text: str) -> None:
        self.state.setText(text)


def attach_sheet(dialog: Any, exam: ExamController, search_id: int | None, row: Any) -> ComparisonSheet | None:
    """Put a candidate's comparison sheet into the compare view and connect it to the examination controller.

    Nothing is attached for a search not recorded in a case (a sheet belongs to a recorded search).
    """
    if dialog is None or search_id is None:
        return None
    sheet = ComparisonSheet((search_id, row.case_gallery_id, row.face_id), dialog)
    sheet.gallery_name = str(getattr(row, "gallery_name", "") or "")
    dialog.attach_sheet(sheet)
    sheet.save_requested.connect(exam.save_sheet)
    sheet.conclude_requested.connect(exam.conclude)
    exam.sheet_shown.connect(sheet.set_view)
    exam.failed.connect(lambda text: sheet.set_error(text) if dialog.isVisible() else None)
    exam.open_sheet(search_id, row.case_gallery_id, row.face_id)
    return sheet
