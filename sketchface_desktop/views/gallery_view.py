"""GalleryModel and GalleryView: every photo of a gallery, virtualised, with its face and its status.

The model holds one small row per photo (id, path, status, reason) read in the io lane; thumbnails
load only for the rows the view paints. With uniform item sizes the view lays out 50,000 rows without
measuring them, so a large gallery scrolls as fast as a small one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPaintEvent, QPixmap, QResizeEvent
from PySide6.QtWidgets import QListView, QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from sketchface_desktop.ops.galleries import PhotoRow, read_photo_thumbnail
from sketchface_desktop.views import assets
from sketchface_desktop.views.thumbnails import ThumbnailLoader

STATUS_TEXT = {"ok": "indexed", "no_face": "no face", "error": "error"}
STATUS_COLOUR = {"ok": QColor("#1e6b3a"), "no_face": QColor("#8a6d1a"), "error": QColor("#a33a1f")}
StatusRole = Qt.ItemDataRole.UserRole + 1
ReasonRole = Qt.ItemDataRole.UserRole + 2
PathRole = Qt.ItemDataRole.UserRole + 3
CELL = QSize(132, 182)
EMPTY_GALLERY_TEXT = "No photos in this gallery yet. Use “Add folder…” to import a folder of photos."
THUMB = 112


class GalleryModel(QAbstractListModel):
    """The photos of one gallery, optionally filtered by status; thumbnails come from a ThumbnailLoader.

    Signals: the QAbstractItemModel set (rowsInserted, dataChanged, modelReset…).
    """

    def __init__(self, loader: ThumbnailLoader, parent: Any = None) -> None:
        super().__init__(parent)
        self.loader = loader
        self.gallery: Any = None
        self.rows: list[PhotoRow] = []
        self._visible: list[int] = []
        self.status_filter: str | None = None
        self._row_of_photo: dict[int, int] = {}
        loader.ready.connect(self._thumbnail_ready)

    # -- contents ----------------------------------------------------------------------------
    def set_gallery(self, gallery: Any, rows: list[PhotoRow]) -> None:
        self.beginResetModel()
        self.gallery = gallery
        self.rows = list(rows)
        self._refilter()
        self.endResetModel()

    def update_rows(self, rows: list[PhotoRow]) -> None:
        """Take a fresh snapshot: appended photos are inserted, changed ones repainted, else reset."""
        old = self.rows
        if len(rows) >= len(old) and all(a.photo_id == b.photo_id for a, b in zip(old, rows, strict=False)) \
                and self.status_filter is None:
            changed = [i for i, (a, b) in enumerate(zip(old, rows, strict=False)) if a != b]
            if len(rows) > len(old):
                self.beginInsertRows(QModelIndex(), len(old), len(rows) - 1)
                self.rows = list(rows)
                self._refilter()
                self.endInsertRows()
            else:
                self.rows = list(rows)
                self._refilter()
            for i in changed:
                self.dataChanged.emit(self.index(i), self.index(i))
            return
        self.beginResetModel()
        self.rows = list(rows)
        self._refilter()
        self.endResetModel()

    def set_status_filter(self, status: str | None) -> None:
        self.beginResetModel()
        self.status_filter = status
        self._refilter()
        self.endResetModel()

    def _refilter(self) -> None:
        if self.status_filter is None:
            self._visible = list(range(len(self.rows)))
        else:
            self._visible = [i for i, r in enumerate(self.rows) if r.status == self.status_filter]
        self._row_of_photo = {self.rows[i].photo_id: n for n, i in enumerate(self._visible)}

    def photo(self, row: int) -> PhotoRow:
        return self.rows[self._visible[row]]

    def counts(self) -> dict[str, int]:
        out = {"ok": 0, "no_face": 0, "error": 0}
        for r in self.rows:
            out[r.status] = out.get(r.status, 0) + 1
        return out

    # -- Qt model API ------------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._visible)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._visible):
            return None
        row = self.photo(index.row())
        if role == Qt.ItemDataRole.DisplayRole:
            return Path(row.path).name
        if role == Qt.ItemDataRole.ToolTipRole:
            extra = f"\n{STATUS_TEXT.get(row.status, row.status)}: {row.reason}" if row.reason else ""
            return f"{row.path}{extra}"
        if role == Qt.ItemDataRole.DecorationRole:
            return self.thumbnail(row)
        if role == StatusRole:
            return row.status
        if role == ReasonRole:
            return row.reason
        if role == PathRole:
            return row.path
        return None

    def thumbnail(self, row: PhotoRow) -> QPixmap | None:
        if row.status != "ok" or self.gallery is None:
            return None
        gallery, pid = self.gallery, row.photo_id
        return self.loader.get(("photo", gallery.id, pid), lambda: read_photo_thumbnail(gallery, pid))

    def _thumbnail_ready(self, key: Any) -> None:
        if not (isinstance(key, tuple) and key[0] == "photo" and self.gallery is not None
                and key[1] == self.gallery.id):
            return
        row = self._row_of_photo.get(key[2])
        if row is not None:
            idx = self.index(row)
            self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])


class PhotoDelegate(QStyledItemDelegate):
    """Paints a gallery cell: the face (or a status glyph), the file name and a status line.

    Signals: none of its own (Qt's inherited ones only).
    """

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        return CELL

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        painter.save()
        rect = option.rect.adjusted(4, 4, -4, -4)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QColor("#9fbde0") if selected else QColor("#e1e6eb"))
        painter.setBrush(QColor("#dbe7f5") if selected else QColor("#ffffff"))
        painter.drawRoundedRect(rect, 6, 6)
        status = index.data(StatusRole) or "ok"
        thumb_rect = QRect(rect.center().x() - THUMB // 2, rect.top() + 6, THUMB, THUMB)
        pixmap = index.data(Qt.ItemDataRole.DecorationRole)
        if isinstance(pixmap, QPixmap) and not pixmap.isNull():
            painter.drawPixmap(thumb_rect, pixmap)
        else:
            painter.fillRect(thumb_rect, QColor("#eef1f4"))
            glyph = {"ok": "photo", "no_face": "not-reviewed", "error": "warning"}.get(status, "photo")
            colour = STATUS_COLOUR.get(status, QColor("#8190a0")).name() if status != "ok" else "#b6c0ca"
            icon = assets.pixmap(glyph, 40, colour)
            painter.drawPixmap(thumb_rect.center().x() - 20, thumb_rect.center().y() - 20, icon)
        text_rect = QRect(rect.left() + 6, thumb_rect.bottom() + 4, rect.width() - 12, 16)
        painter.setPen(QColor("#1d2733"))
        name = option.fontMetrics.elidedText(str(index.data(Qt.ItemDataRole.DisplayRole) or ""),
                                             Qt.TextElideMode.ElideMiddle, text_rect.width())
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignVCenter, name)
        font = QFont(option.font)
        font.setPointSizeF(max(7.0, font.pointSizeF() - 1.5))
        font.setBold(status != "ok")
        painter.setFont(font)
        painter.setPen(STATUS_COLOUR.get(status, QColor("#4a5866")))
        status_rect = text_rect.translated(0, 16)
        painter.drawText(status_rect, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignVCenter,
                         STATUS_TEXT.get(status, status))
        reason = index.data(ReasonRole) or ""
        if reason and status != "ok":  # the why, elided; the tooltip has it whole
            font.setBold(False)
            painter.setFont(font)
            painter.setPen(QColor("#5d6b79"))
            reason_rect = status_rect.translated(0, 14)
            painter.drawText(reason_rect, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignVCenter,
                             painter.fontMetrics().elidedText(reason, Qt.TextElideMode.ElideRight, reason_rect.width()))
        painter.restore()


class GalleryView(QListView):
    """A virtualised grid of a gallery's photos (uniform cells, batched layout).

    Signals: none of its own (Qt's inherited ones only).
    """

    def __init__(self, model: GalleryModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("GalleryView")
        self.setModel(model)
        self.setItemDelegate(PhotoDelegate(self))
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setUniformItemSizes(True)
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(500)
        self.setGridSize(CELL)
        self.setSpacing(0)
        self.setSelectionMode(QListView.SelectionMode.ExtendedSelection)
        self.setVerticalScrollMode(QListView.ScrollMode.ScrollPerPixel)
        self.verticalScrollBar().setSingleStep(24)

        self.placeholder = EMPTY_GALLERY_TEXT

    def resizeEvent(self, event: QResizeEvent) -> None:
        fill_grid(self, CELL)
        super().resizeEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if self.model() is not None and self.model().rowCount() == 0 and self.placeholder:
            painter = QPainter(self.viewport())
            painter.setPen(QColor("#8190a0"))
            painter.drawText(self.viewport().rect().adjusted(24, 24, -24, -24),
                             Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder)
            painter.end()


def fill_grid(view: QListView, cell: QSize) -> None:
    """Widen the grid cells so the columns fill the viewport (no dead strip at the right edge)."""
    width = view.viewport().width() - 2
    cols = max(1, width // cell.width())
    view.setGridSize(QSize(max(cell.width(), width // cols), cell.height()))
