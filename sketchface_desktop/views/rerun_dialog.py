"""RerunDialog: a stored search repeated with its manifest, and the two result lists side by side.

Left the list the examiner reviewed, right the new run; rows that left the list, entered it, moved
or changed score are marked, and the verdict says whether galleries, models and parameters were
the same. The re-run is stored in the case, linked to the original.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QListWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from sketchface_desktop.controllers.case_controller import CaseController
from sketchface_desktop.views.ui import button, label

COLUMNS = ("Rank", "Score", "Gallery / face", "Subject")
MARKS = {"removed": QColor("#f6d9d2"), "added": QColor("#d6eedd"), "moved": QColor("#fff1c7"),
         "rescored": QColor("#e8eef8")}


def _key(c: Any) -> tuple[str, int]:
    return str(c.gallery_id), int(c.face_id)


def _keys(items: list[dict[str, Any]]) -> set[tuple[str, int]]:
    return {(str(d.get("gallery_id", "")), int(d.get("face_id", -1))) for d in items}


class RerunDialog(QDialog):
    """Runs the re-run on open and shows the verdict and both lists.

    Signals: the QDialog set.
    """

    def __init__(self, cases: CaseController, search_id: int, rerunner: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("RerunDialog")
        self.setWindowTitle(f"Re-run of search {search_id}")
        self.cases = cases
        self.search_id = search_id
        self.rerunner = rerunner
        self.report: Any = None
        self.verdict = label(f"Re-running search {search_id} with its recorded manifest…", "heading-small", True)
        self.verdict.setObjectName("RerunVerdict")
        self.changes = QListWidget()
        self.changes.setObjectName("RerunChanges")
        self.changes.setMaximumHeight(90)
        self.left, self.right = self._table("RerunOriginal"), self._table("RerunNew")
        self.left_title = label(f"Search {search_id} (as reviewed)", "heading-small")
        self.right_title = label("Re-run", "heading-small")
        sides = QHBoxLayout()
        for title, table in ((self.left_title, self.left), (self.right_title, self.right)):
            col = QVBoxLayout()
            col.addWidget(title)
            col.addWidget(table, 1)
            sides.addLayout(col, 1)
        legend = label("Marked: red left the list · green entered it · amber moved · blue changed score", "subtle")
        close = button("Close")
        close.clicked.connect(self.accept)
        foot = QHBoxLayout()
        foot.addWidget(legend, 1)
        foot.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.verdict)
        layout.addWidget(self.changes)
        layout.addLayout(sides, 1)
        layout.addLayout(foot)
        self.resize(980, 620)

    @staticmethod
    def _table(name: str) -> QTableWidget:
        table = QTableWidget(0, len(COLUMNS))
        table.setObjectName(name)
        table.setHorizontalHeaderLabels(COLUMNS)
        table.verticalHeader().hide()
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        table.horizontalHeader().setStretchLastSection(True)
        return table

    def start(self) -> Any:
        """Start the re-run (case lane: it reads the stored query images and records the new run)."""
        return self.cases.rerun(self.search_id, self.rerunner, self.show_report, self._failed)

    def _failed(self, exc: BaseException) -> None:
        self.verdict.setText(f"The search could not be re-run: {getattr(exc, 'message', None) or exc}")

    def show_report(self, report: Any) -> None:
        self.report = report
        same = "identical result list" if report.identical else "the result list CHANGED"
        manifest = ("galleries, models and parameters unchanged" if report.manifest_identical
                    else "galleries, models or parameters changed")
        stored = f" · stored as search {report.new_search_id}" if report.new_search_id else ""
        self.verdict.setText(f"Search {report.search_id} re-run: {same}; {manifest}{stored}.")
        self.changes.clear()
        self.changes.addItems(list(report.changes) or ["No differences."])
        self.cases.read_candidates(report.search_id, lambda rows: self._fill(self.left, rows, "left"))
        if report.new_search_id:
            self.right_title.setText(f"Re-run (search {report.new_search_id})")
            self.cases.read_candidates(report.new_search_id, lambda rows: self._fill(self.right, rows, "right"))

    def _fill(self, table: QTableWidget, rows: list[Any], side: str) -> None:
        rep = self.report
        removed, added = _keys(rep.removed), _keys(rep.added)
        moved, rescored = _keys(rep.moved), _keys(rep.rescored)
        table.setRowCount(len(rows))
        for r, c in enumerate(rows):
            key = _key(c)
            mark = ("removed" if side == "left" and key in removed else "added" if side == "right" and key in added
                    else "moved" if key in moved else "rescored" if key in rescored else "")
            cells = (str(c.rank) if c.rank is not None else "—", f"{c.score:.4f}" if c.score is not None else "hidden",
                     f"{c.gallery_name or c.gallery_id} / {c.face_id}", c.subject_id or "—")
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if mark:
                    item.setBackground(MARKS[mark])
                    item.setToolTip(mark)
                table.setItem(r, col, item)
