"""The watch list in the window: a badge counting unacknowledged watch hits, and the list to acknowledge them.

The badge sits in the status bar; a click opens :class:`WatchHitsDialog`, which shows each hit with its own
gallery thumbnail and acknowledges the chosen one (it then becomes an ordinary search of its case).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import QDialog, QListWidget, QListWidgetItem, QToolButton, QVBoxLayout, QWidget

from sketchface_desktop.controllers.watch_controller import WatchController
from sketchface_desktop.views.ui import button, label

THUMB = 72
WAITING = "QToolButton { color: #a33a1f; font-weight: 600; border: 1px solid #a33a1f; border-radius: 3px; }"


class WatchBadge(QToolButton):
    """'Watch hits: N' in the status bar, highlighted while any hit waits; a click opens the list."""

    def __init__(self, controller: WatchController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("WatchBadge")
        self.controller = controller
        self.dialog: WatchHitsDialog | None = None
        self.setToolTip("Unacknowledged hits of watched searches: new faces in a gallery over a watch's bar")
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.clicked.connect(self.open_list)
        controller.hits_changed.connect(self.show_count)
        self.show_count([])

    def show_count(self, hits: list[Any]) -> None:
        self.setText(f"Watch hits: {len(hits)}")
        self.setStyleSheet(WAITING if hits else "")  # the colour of the style sheet's "missing" badge

    def open_list(self) -> WatchHitsDialog:
        if self.dialog is None:
            self.dialog = WatchHitsDialog(self.controller, self.window())
        self.dialog.fill(self.controller.hits)
        self.dialog.show()
        self.dialog.raise_()
        return self.dialog


class WatchHitsDialog(QDialog):
    """The unacknowledged watch hits, each with its thumbnail; Acknowledge makes the chosen one a search."""

    def __init__(self, controller: WatchController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("WatchHitsDialog")
        self.setWindowTitle("Watch hits")
        self.controller = controller
        self.intro = label("New faces over a watched search's bar. Acknowledge a hit to examine it: it becomes a "
                           "search of its case, with this candidate to decide.", "subtle", wrap=True)
        self.list = QListWidget()
        self.list.setObjectName("WatchHitList")
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.list.setWordWrap(True)
        self.acknowledge = button("Acknowledge and examine")
        self.acknowledge.setObjectName("AcknowledgeHit")
        self.acknowledge.clicked.connect(self._acknowledge)
        self.check = button("Check now")
        self.check.clicked.connect(controller.check)
        self.message = label("", "subtle", wrap=True)
        layout = QVBoxLayout(self)
        for w in (self.intro, self.list, self.acknowledge, self.check, self.message):
            layout.addWidget(w)
        controller.hits_changed.connect(self.fill)
        controller.message.connect(self.message.setText)
        self.resize(640, 420)

    def fill(self, hits: list[Any]) -> None:
        self.list.clear()
        for hit in hits:
            item = QListWidgetItem(hit.text)
            if hit.thumbnail:
                pix = QPixmap()
                pix.loadFromData(hit.thumbnail)
                item.setIcon(QIcon(pix))
            item.setData(Qt.ItemDataRole.UserRole, hit)
            item.setToolTip(hit.photo_path)
            self.list.addItem(item)
        if hits:
            self.list.setCurrentRow(0)
        self.acknowledge.setEnabled(bool(hits))

    def _acknowledge(self) -> None:
        item = self.list.currentItem()
        if item is not None:
            self.controller.acknowledge(item.data(Qt.ItemDataRole.UserRole))
