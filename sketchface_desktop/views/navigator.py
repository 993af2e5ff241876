"""NavigatorPanel: the open case (details, sketch versions, searches) and the galleries to search.

The left column answers "where am I": which case is open, which sketch versions and searches it holds,
and which galleries the next search covers (the ticked ones).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QAction, QResizeEvent
from PySide6.QtWidgets import QFrame, QListWidget, QListWidgetItem, QMenu, QToolBar, QVBoxLayout, QWidget

from sketchface_desktop.views import assets
from sketchface_desktop.views.ui import label, plain_tip

ItemRole = Qt.ItemDataRole.UserRole


class NavigatorPanel(QWidget):
    """The navigator dock's contents.

    Signals:
        sketch_activated(object): a SketchVersion was double-clicked (load it on the canvas).
        search_activated(object): a SearchRecord was chosen (show its results).
        gallery_activated(str): a gallery was chosen (show its photos).
        search_scope_changed(list): ids of the ticked galleries (what the next search covers).
        rerun_requested(object): re-run this SearchRecord with its recorded manifest.
    """

    sketch_activated = Signal(object)
    search_activated = Signal(object)
    gallery_activated = Signal(str)
    search_scope_changed = Signal(object)
    rerun_requested = Signal(object)

    def __init__(self, case_actions: list[QAction], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("NavigatorPanel")
        bar = QToolBar("Case")
        bar.setObjectName("CaseToolbar")
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        for action in case_actions:
            bar.addAction(action)
        self.card = QFrame()
        self.card.setProperty("role", "card")
        self.card.setObjectName("CaseCard")
        card_lay = QVBoxLayout(self.card)
        card_lay.setContentsMargins(10, 8, 10, 8)
        card_lay.setSpacing(2)
        self.case_title = label("No case open", "heading", True)
        self.case_details = label("Create or open a case to keep sketches, searches and decisions together.",
                                  "subtle", True)
        card_lay.addWidget(self.case_title)
        card_lay.addWidget(self.case_details)
        self.sketch_list = self._list("SketchList")
        self.sketch_list.itemDoubleClicked.connect(lambda it: self.sketch_activated.emit(it.data(ItemRole)))
        self.search_list = self._list("SearchList")
        self.search_list.itemClicked.connect(lambda it: self.search_activated.emit(it.data(ItemRole)))
        self.search_list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.search_list.customContextMenuRequested.connect(self._search_menu)
        self.gallery_list = self._list("GalleryList")
        self.gallery_list.itemClicked.connect(lambda it: self.gallery_activated.emit(it.data(ItemRole)))
        self.gallery_list.itemChanged.connect(lambda _it: self.search_scope_changed.emit(self.checked_galleries()))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 0, 6, 6)
        layout.setSpacing(4)
        layout.addWidget(bar)
        layout.addWidget(self.card)
        layout.addWidget(label("Sketch versions", "subtle"))
        layout.addWidget(self.sketch_list, 2)
        layout.addWidget(label("Searches", "subtle"))
        layout.addWidget(self.search_list, 2)
        layout.addWidget(label("Galleries (ticked ones are searched)", "subtle"))
        layout.addWidget(self.gallery_list, 3)
        self._unticked: set[str] = set()
        self.set_sketches([])
        self.set_searches([])

    @staticmethod
    def _list(name: str) -> QListWidget:
        widget = QListWidget()
        widget.setObjectName(name)
        widget.setAlternatingRowColors(True)
        widget.setMinimumHeight(60)
        widget.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        widget.setTextElideMode(Qt.TextElideMode.ElideRight)
        widget.setWordWrap(True)
        return widget

    @staticmethod
    def _placeholder(widget: QListWidget, text: str) -> None:
        item = QListWidgetItem(text)
        item.setFlags(Qt.ItemFlag.NoItemFlags)
        widget.addItem(item)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit_card()

    def _fit_card(self) -> None:
        """The case card never shrinks below its wrapped text (the lists below give way instead)."""
        layout = self.card.layout()
        if layout is not None and self.card.width() > 0:
            self.card.setMinimumHeight(layout.totalHeightForWidth(self.card.width()))

    def set_case(self, info: Any) -> None:
        self._set_case_text(info)
        self._fit_card()

    def _set_case_text(self, info: Any) -> None:
        if info is None:
            self.case_title.setText("No case open")
            self.case_details.setText("Create or open a case to keep sketches, searches and decisions together.")
            return
        self.case_title.setText(f"{info.case_number} — {info.title}" if info.title else info.case_number)
        lines = [f"Examiner: {info.examiner}"]
        if info.witnesses:
            lines.append("Witnesses: " + ", ".join(info.witnesses))
        if info.incident_date:
            lines.append(f"Incident: {info.incident_date}")
        lines.append(f"Opened {info.created_at[:10]} · {info.status}")
        self.case_details.setText("\n".join(lines))

    def set_sketches(self, versions: list[Any]) -> None:
        self.sketch_list.clear()
        for v in reversed(versions):
            item = QListWidgetItem(assets.icon("pen"), f"{v.name} v{v.version} — {v.witness}")
            item.setToolTip(plain_tip(f"Saved {v.created_at} by {v.created_by}\nSHA-256 {v.sha256}\n{v.note}".strip()))
            item.setData(ItemRole, v)
            self.sketch_list.addItem(item)
        if not versions:
            self._placeholder(self.sketch_list, "No saved sketch yet (Ctrl+S saves one)")

    def set_searches(self, records: list[Any]) -> None:
        self.search_list.clear()
        for r in reversed(records):
            kinds = {q.kind for q in r.queries}
            text = r.label or f"Search {r.id}"
            item = QListWidgetItem(assets.icon("search"), f"{text} · {r.n_results} results · "
                                   f"{r.created_at[:16].replace('T', ' ')}")
            item.setToolTip(plain_tip(f"{text}\n{', '.join(sorted(kinds))} query · {len(r.queries)} image(s)"
                                      + (" · blind review" if r.blind else "")
                                      + (f" · re-run of search {r.rerun_of}" if r.rerun_of else "")))
            item.setData(ItemRole, r)
            self.search_list.addItem(item)
        if not records:
            self._placeholder(self.search_list, "No searches in this case yet")

    def _search_menu(self, pos: QPoint) -> None:
        item = self.search_list.itemAt(pos)
        record = item.data(ItemRole) if item is not None else None
        if record is None:
            return
        menu = QMenu(self)
        menu.addAction(assets.icon("search"), "Show results", lambda: self.search_activated.emit(record))
        menu.addAction(assets.icon("history"), "Re-run with its recorded manifest…",
                       lambda: self.rerun_requested.emit(record))
        menu.popup(self.search_list.viewport().mapToGlobal(pos))

    def set_galleries(self, infos: list[Any]) -> None:
        self.gallery_list.blockSignals(True)
        self.gallery_list.clear()
        for info in infos:
            item = QListWidgetItem(assets.icon("gallery"), f"{info.name}  ({info.faces:,} faces)")
            item.setData(ItemRole, info.id)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked if info.id in self._unticked else Qt.CheckState.Checked)
            item.setToolTip(f"{info.photos:,} photos, {info.no_face:,} without a face, {info.error:,} unreadable")
            self.gallery_list.addItem(item)
        if not infos:
            self._placeholder(self.gallery_list, "No galleries yet (Gallery > New gallery)")
        self.gallery_list.blockSignals(False)
        self.search_scope_changed.emit(self.checked_galleries())

    def checked_galleries(self) -> list[str]:
        ids, self._unticked = [], set()
        for i in range(self.gallery_list.count()):
            item = self.gallery_list.item(i)
            gid = item.data(ItemRole)
            if gid is None:
                continue
            if item.checkState() == Qt.CheckState.Checked:
                ids.append(gid)
            else:
                self._unticked.add(gid)
        return ids
