"""ResultsModel and ResultsView: the ranked candidates of a search with rank, face, score, gallery, subject, decision.

A row comes either from a fresh ``engine.types.Match`` (no case open) or from a case ``Candidate``
(with the examiner's current decision). Baseline rows (sketch embedded by ArcFace itself, no trained
encoder) carry a visible "baseline" tag on every cell, not only in a banner, so a screenshot of one
candidate can never be mistaken for a trained-encoder result.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPixmap, QResizeEvent
from PySide6.QtWidgets import QListView, QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from sketchface_desktop.ops.calibration import score_note
from sketchface_desktop.ops.search import ResultRow, read_face_thumbnail
from sketchface_desktop.views import assets
from sketchface_desktop.views.gallery_view import fill_grid
from sketchface_desktop.views.thumbnails import ThumbnailLoader

RowRole = Qt.ItemDataRole.UserRole + 10
CELL = QSize(166, 236)
THUMB = 128
DECISION_TEXT = {"possible": "Possible", "excluded": "Excluded", "not_reviewed": "Not reviewed"}
DECISION_COLOUR = {"possible": QColor("#1e6b3a"), "excluded": QColor("#a33a1f"), "not_reviewed": QColor("#6b7885")}
DECISION_ICON = {"possible": "possible", "excluded": "excluded", "not_reviewed": "not-reviewed"}


class ResultsModel(QAbstractListModel):
    """The candidates of the search on show; thumbnails come lazily from a ThumbnailLoader."""

    def __init__(self, loader: ThumbnailLoader, session: Any, parent: Any = None) -> None:
        super().__init__(parent)
        self.loader = loader
        self.session = session
        self.rows: list[ResultRow] = []
        self.search_id: int | None = None
        loader.ready.connect(self._thumbnail_ready)

    def set_rows(self, rows: list[ResultRow], search_id: int | None = None) -> None:
        self.beginResetModel()
        self.rows = list(rows)
        self.search_id = search_id
        self.endResetModel()

    def update_decisions(self, rows: list[ResultRow]) -> None:
        """Take new decisions/notes (same candidates) without resetting the view's selection."""
        by_key = {(r.gallery_id, r.face_id): r for r in rows}
        for i, old in enumerate(self.rows):
            new = by_key.get((old.gallery_id, old.face_id))
            if new is not None and (new.decision, new.note, new.rank, new.score) != (
                    old.decision, old.note, old.rank, old.score):
                self.rows[i] = replace(old, decision=new.decision, note=new.note, rank=new.rank, score=new.score)
                self.dataChanged.emit(self.index(i), self.index(i))

    def row(self, i: int) -> ResultRow:
        return self.rows[i]

    def any_baseline(self) -> bool:
        return any(r.baseline for r in self.rows)

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self.rows):
            return None
        r = self.rows[index.row()]
        if role == RowRole:
            return r
        if role == Qt.ItemDataRole.DisplayRole:
            return f"#{r.rank}" if r.rank is not None else f"({r.position})"
        if role == Qt.ItemDataRole.DecorationRole:
            session = self.session
            return self.loader.get(("face", r.gallery_id, r.face_id), lambda: read_face_thumbnail(session, r))
        if role == Qt.ItemDataRole.ToolTipRole:
            lines = [r.photo_path, f"Gallery: {r.gallery_name}", f"Subject: {r.subject_id or 'unknown'}"]
            if r.group_size > 1:
                lines.append(f"{r.group_size} photos of this subject in the list")
            if r.note:
                lines.append(f"Note: {r.note}")
            if r.baseline:
                lines.append("Baseline: sketch embedded by ArcFace itself (no trained sketch encoder)")
            if r.score is not None and r.rank is not None:  # what the score meant in validation, if measured
                note = score_note(r.score, r.rank, r.baseline)
                lines += [note] if note else []
            return "\n".join(lines)
        return None

    def _thumbnail_ready(self, key: Any) -> None:
        if isinstance(key, tuple) and key[0] == "face":
            for i, r in enumerate(self.rows):
                if r.gallery_id == key[1] and r.face_id == key[2]:
                    idx = self.index(i)
                    self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])


class ResultDelegate(QStyledItemDelegate):
    """Paints a candidate card: face, rank badge, score, gallery, subject, decision, baseline tag.

    Signals: none of its own (Qt's inherited ones only).
    """

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        return CELL

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        r: ResultRow = index.data(RowRole)
        if r is None:
            return
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        extra = max(0, option.rect.width() - CELL.width())
        card = option.rect.adjusted(5 + extra // 2, 5, -5 - (extra - extra // 2), -5)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        border = DECISION_COLOUR[r.decision] if r.decision != "not_reviewed" else QColor("#d5dbe1")
        painter.setPen(QColor("#1f5fa8") if selected else border)
        painter.setBrush(QColor("#eef4fb") if selected else QColor("#ffffff"))
        painter.drawRoundedRect(card, 7, 7)
        thumb = QRect(card.center().x() - THUMB // 2, card.top() + 8, THUMB, THUMB)
        pixmap = index.data(Qt.ItemDataRole.DecorationRole)
        if isinstance(pixmap, QPixmap) and not pixmap.isNull():
            painter.drawPixmap(thumb, pixmap)
        else:
            painter.fillRect(thumb, QColor("#eef1f4"))
            painter.drawPixmap(thumb.center().x() - 18, thumb.center().y() - 18, assets.pixmap("photo", 36, "#b6c0ca"))
        if r.decision == "excluded":
            painter.fillRect(thumb, QColor(255, 255, 255, 130))
        self._badge(painter, QRect(card.left() + 6, card.top() + 6, 40, 22),
                    f"#{r.rank}" if r.rank is not None else str(r.position), QColor("#1d2733"))
        if r.baseline:
            self._badge(painter, QRect(card.right() - 70, card.top() + 6, 64, 20), "baseline", QColor("#b98a12"),
                        small=True)
        y = thumb.bottom() + 6
        bold = QFont(option.font)
        bold.setBold(True)
        painter.setFont(bold)
        painter.setPen(QColor("#1d2733"))
        score = f"score {r.score:.3f}" if r.score is not None else "score hidden"
        painter.drawText(QRect(card.left() + 8, y, card.width() - 16, 18), Qt.AlignmentFlag.AlignLeft, score)
        painter.setFont(option.font)
        fm = painter.fontMetrics()
        painter.setPen(QColor("#4a5866"))
        for i, text in enumerate((r.gallery_name, f"Subject: {r.subject_id or '—'}")):
            painter.drawText(QRect(card.left() + 8, y + 18 + 17 * i, card.width() - 16, 17), Qt.AlignmentFlag.AlignLeft,
                             fm.elidedText(text, Qt.TextElideMode.ElideRight, card.width() - 16))
        dec_rect = QRect(card.left() + 8, card.bottom() - 24, card.width() - 16, 20)
        painter.drawPixmap(dec_rect.left(), dec_rect.top() + 1, assets.pixmap(
            DECISION_ICON[r.decision], 18, DECISION_COLOUR[r.decision].name()))
        painter.setPen(DECISION_COLOUR[r.decision])
        painter.setFont(bold if r.decision != "not_reviewed" else option.font)
        label = DECISION_TEXT[r.decision] + (" · note" if r.note else "")
        painter.drawText(dec_rect.adjusted(24, 0, 0, 0), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         label)
        painter.restore()

    @staticmethod
    def _badge(painter: QPainter, rect: QRect, text: str, colour: QColor, small: bool = False) -> None:
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colour)
        painter.drawRoundedRect(rect, 5, 5)
        font = painter.font()
        font.setBold(True)
        if small:
            font.setPointSizeF(max(7.0, font.pointSizeF() - 1.5))
        painter.setFont(font)
        painter.setPen(QColor("#ffffff"))
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)


class ResultsView(QListView):
    """The results grid (virtualised like the gallery view).

    Signals: none of its own (Qt's inherited ones only).
    """

    def __init__(self, model: ResultsModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ResultsView")
        self.setModel(model)
        self.setItemDelegate(ResultDelegate(self))
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setUniformItemSizes(True)
        self.setGridSize(CELL)
        self.setSelectionMode(QListView.SelectionMode.SingleSelection)
        self.setVerticalScrollMode(QListView.ScrollMode.ScrollPerPixel)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)

    def resizeEvent(self, event: QResizeEvent) -> None:
        fill_grid(self, CELL)
        super().resizeEvent(event)
