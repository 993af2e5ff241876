"""GalleryPanel: the galleries of this workstation and the photos of the chosen one, with their jobs.

Listing and reading run in the io lane; adding folders, removing, rebuilding, verifying and importing
metadata run in the engine lane (they load models or write the index) as cancellable jobs. While an
import runs the photo grid refreshes every couple of seconds from the store, so the examiner watches
the gallery fill without the GUI thread ever waiting on the database.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QMenu,
    QMessageBox,
    QVBoxLayout,
    QWidget,
)

from sketchface_desktop.controllers.gallery_controller import GalleryController
from sketchface_desktop.views import assets
from sketchface_desktop.views.gallery_view import EMPTY_GALLERY_TEXT, GalleryModel, GalleryView
from sketchface_desktop.views.thumbnails import ThumbnailLoader
from sketchface_desktop.views.ui import button, label, primary_button
from sketchface_desktop.workers import Job

REFRESH_DURING_IMPORT_MS = 1000
FILTERS = (("All photos", None), ("Indexed", "ok"), ("No face", "no_face"), ("Errors", "error"))


class GalleryPanel(QWidget):
    """The Gallery tab.

    Signals:
        galleries_changed(list): fresh GalleryInfo list (the navigator and search bar show it).
        import_finished(object): an IngestReport after an add-folder job completed.
        message(str): a short outcome for the status bar (metadata imported, index verified).
    """

    galleries_changed = Signal(object)
    import_finished = Signal(object)
    message = Signal(str)

    def __init__(self, galleries: GalleryController, loader: ThumbnailLoader, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("GalleryPanel")
        self.galleries = galleries
        self.infos: list[Any] = []
        self.current_id: str | None = None
        self.import_job: Job | None = None
        self.model = GalleryModel(loader, self)
        self.view = GalleryView(self.model, self)
        self.title = label("No gallery selected", "heading", wrap=True)
        self.summary = label("Create a gallery, then add folders of photos to it.", "subtle", True)
        self.chooser = QComboBox()
        self.chooser.setObjectName("GalleryChooser")
        self.chooser.setMinimumWidth(160)
        self.chooser.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.chooser.setMinimumContentsLength(16)
        self.chooser.currentIndexChanged.connect(self._chosen)
        self.status_filter = QComboBox()
        for text, key in FILTERS:
            self.status_filter.addItem(text, key)
        self.status_filter.currentIndexChanged.connect(
            lambda _i: self.model.set_status_filter(self.status_filter.currentData()))
        self.add_button = primary_button("Add folder…", "folder-add")
        self.add_button.clicked.connect(lambda: self.add_folder())
        self.more_button = button("Manage", "settings")
        menu = QMenu(self.more_button)
        self.act_new = menu.addAction(assets.icon("gallery-new"), "New gallery…", lambda: self.create_gallery())
        menu.addSeparator()
        self.act_csv = menu.addAction(assets.icon("csv"), "Import metadata CSV…", lambda: self.import_csv())
        self.act_verify = menu.addAction(assets.icon("verify"), "Verify index", self.verify)
        self.act_rebuild = menu.addAction(assets.icon("rebuild"), "Rebuild index", self.rebuild)
        menu.addSeparator()
        self.act_remove = menu.addAction(assets.icon("remove"), "Remove selected photos", self.remove_selected)
        self.act_delete = menu.addAction(assets.icon("clear"), "Delete gallery…", self.delete_gallery)
        self.more_button.setMenu(menu)
        top = QHBoxLayout()
        top.addWidget(self.chooser, 1)
        top.addWidget(self.status_filter)
        heading = QHBoxLayout()
        heading.addWidget(self.title, 1)
        for b in (self.more_button, self.add_button):
            heading.addWidget(b)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addLayout(top)
        layout.addLayout(heading)
        layout.addWidget(self.summary)
        layout.addWidget(self.view, 1)
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setInterval(REFRESH_DURING_IMPORT_MS)
        self._refresh_timer.timeout.connect(self.reload_rows)
        self._rows_loading = False
        self._reload_again = False
        self._update_actions()

    # -- gallery list ------------------------------------------------------------------------
    def refresh(self) -> Job:
        return self.galleries.list_galleries(self._set_infos)

    def _set_infos(self, infos: list[Any]) -> None:
        self.infos = infos
        self.chooser.blockSignals(True)
        self.chooser.clear()
        for info in infos:
            self.chooser.addItem(assets.icon("gallery"), info.name, info.id)  # server names end in [PROFILE]
        pick = self.current_id if any(i.id == self.current_id for i in infos) else (infos[0].id if infos else None)
        self.chooser.setCurrentIndex(max(0, self.chooser.findData(pick)) if pick else -1)
        self.chooser.blockSignals(False)
        shown = self.model.gallery.id if self.model.gallery is not None else None
        if pick is None or pick != shown:
            self.show_gallery(pick)
        else:
            self._show_summary()
        self.galleries_changed.emit(infos)

    def info(self, gallery_id: str | None = None) -> Any | None:
        gid = gallery_id or self.current_id
        return next((i for i in self.infos if i.id == gid), None)

    def _chosen(self, _index: int) -> None:
        self.show_gallery(self.chooser.currentData())

    def show_gallery(self, gallery_id: str | None) -> None:
        """Show a gallery's photos (read in the io lane)."""
        self.current_id = gallery_id
        idx = self.chooser.findData(gallery_id) if gallery_id else -1
        if idx >= 0 and idx != self.chooser.currentIndex():
            self.chooser.blockSignals(True)
            self.chooser.setCurrentIndex(idx)
            self.chooser.blockSignals(False)
        self._update_actions()
        if self.model.gallery is not None and self.model.gallery.id != gallery_id:
            self.model.set_gallery(None, [])  # never show one gallery's photos under another's name
        if gallery_id is None:
            self.model.set_gallery(None, [])
            self._show_summary()
            return
        self.reload_rows(reset=True)

    def reload_rows(self, reset: bool = False) -> None:
        """Read the current gallery's rows in the io lane; one read at a time, the latest request wins."""
        gid = self.current_id
        if gid is None:
            return
        if self._rows_loading:
            self._reload_again = True
            return
        self._rows_loading = True
        self._reload_again = False

        self.galleries.read_rows(gid, lambda res: self._rows_read(gid, res, reset), lambda _j: self._rows_settled())

    def _rows_settled(self) -> None:
        self._rows_loading = False
        if self._reload_again:
            self.reload_rows()

    def _rows_read(self, gid: str, result: tuple[Any, list[Any], Any], reset: bool) -> None:
        if gid != self.current_id:
            return
        gallery, rows, info = result
        if reset or self.model.gallery is not gallery or not self.model.rows:
            self.model.set_gallery(gallery, rows)
        else:
            self.model.update_rows(rows)
        self.infos = [info if i.id == info.id else i for i in self.infos]
        self._show_summary()
        self.galleries_changed.emit(self.infos)  # the navigator's face counts follow a running import

    def _show_summary(self) -> None:
        info = self.info()
        if info is None:
            self.title.setText("No gallery selected" if self.infos else "No galleries yet")
            self.summary.setText("Create a gallery, then add folders of photos to it.")
            return
        self.title.setText(info.name)
        self.summary.setText(f"{info.photos:,} photos · {info.faces:,} faces indexed · {info.no_face:,} without a face"
                             f" · {info.error:,} unreadable · {info.with_metadata:,} with metadata")

    def _update_actions(self) -> None:
        has = self.current_id is not None
        busy = self.import_job is not None and self.import_job.active
        self.add_button.setEnabled(has and not busy)
        local = has and not self.galleries.is_server(self.current_id or "")  # a server maintains its own
        for action in (self.act_csv, self.act_verify, self.act_rebuild, self.act_remove, self.act_delete):
            action.setEnabled(local)

    # -- operations ---------------------------------------------------------------------------
    def create_gallery(self, name: str | None = None, server: str | None = None) -> Job | None:
        """A new gallery on this workstation, or on ``server`` (a profile; asked when profiles exist)."""
        if name is None:
            name, ok = QInputDialog.getText(self, "New gallery", "Name of the new gallery:")
            if not ok or not name.strip():
                return None
            profiles = self.galleries.server_profiles()
            if profiles:
                here = "This workstation"
                where, ok = QInputDialog.getItem(self, "New gallery", "Where to keep it:",
                                                 [here] + [f"Server: {p}" for p in profiles], 0, False)
                if not ok:
                    return None
                server = None if where == here else where.removeprefix("Server: ")

        def created(gid: str) -> None:
            self.current_id = gid
            self.refresh()

        return self.galleries.create(name, created, server)

    def add_folder(self, folder: str | None = None) -> Job | None:
        """Import a folder of photos into the current gallery as a cancellable engine job."""
        gid = self.current_id
        if gid is None:
            return None
        if folder is None:
            folder = QFileDialog.getExistingDirectory(self, "Add a folder of photos")
            if not folder:
                return None
        info = self.info(gid)
        name = info.name if info is not None else "gallery"
        self.import_job = self.galleries.add_folder(gid, folder, name, self.import_finished.emit,
                                                    lambda _j: self._import_done())
        self._refresh_timer.start()
        self.view.placeholder = "Importing… photos appear here as they are indexed."
        self._update_actions()
        return self.import_job

    def _import_done(self) -> None:
        self._refresh_timer.stop()
        self.view.placeholder = EMPTY_GALLERY_TEXT

        self._update_actions()
        self.refresh()
        self.reload_rows()

    def _maintain(self, make: Any, done: Any = None) -> Job | None:
        """Run a maintenance op on the current gallery, then re-read the list and the photos."""
        gid = self.current_id
        if gid is None:
            return None
        return make(gid, done, lambda _j: self._after_maintenance())  # type: ignore[no-any-return]

    def _after_maintenance(self) -> None:
        self.refresh()
        self.reload_rows()

    def import_csv(self, path: str | None = None) -> Job | None:
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, "Import metadata CSV", "", "CSV files (*.csv)")
            if not path:
                return None
        return self._maintain(lambda gid, *then: self.galleries.import_metadata(gid, path, *then),
                              lambda rep: self.message.emit(f"Metadata: {rep.imported} of {rep.rows} rows imported."))

    def verify(self) -> Job | None:
        def done(rep: Any) -> None:
            if rep.ok:
                self.message.emit(f"Gallery verified: index and store agree ({rep.store_faces:,} faces, "
                                  f"{rep.sample_checked} vectors compared).")
            else:
                self._tell("Verify gallery", "Problems found:\n" + "\n".join(rep.problems)
                           + "\n\nRebuild the index (Manage > Rebuild index) to fix them.", warn=True)

        return self._maintain(self.galleries.verify, done)

    def rebuild(self) -> Job | None:
        return self._maintain(self.galleries.rebuild)

    def remove_selected(self) -> Job | None:
        rows = sorted({i.row() for i in self.view.selectionModel().selectedIndexes()})
        paths = [self.model.photo(r).path for r in rows]
        if not paths:
            self._tell("Remove photos", "Select the photos to remove first.")
            return None
        return self._maintain(lambda gid, *then: self.galleries.remove_photos(gid, paths, *then))

    def delete_gallery(self, confirm: bool = True) -> Job | None:
        info = self.info()
        if info is None:
            return None
        if confirm and QMessageBox.question(
                self, "Delete gallery", f"Delete the gallery '{info.name}'? Its index and thumbnails are removed; "
                "the photos on disk are not touched.") != QMessageBox.StandardButton.Yes:
            return None
        gid = info.id
        self.current_id = None
        return self.galleries.delete(gid, info.name, self._list_again)

    def _list_again(self, _job: Job) -> None:
        self.refresh()

    def _tell(self, title: str, text: str, warn: bool = False) -> None:
        box = QMessageBox(QMessageBox.Icon.Warning if warn else QMessageBox.Icon.Information, title, text,
                          QMessageBox.StandardButton.Ok, self)
        box.setObjectName("GalleryMessage")
        box.open()
