"""GalleryController: lists, reads, fills and maintains the galleries for the Gallery tab.

The panel holds this controller, never the job runner or the engine session: each method starts an
op of :mod:`sketchface_desktop.ops.galleries` on the session it was given, and every change to a
gallery (created, photos added or removed, index rebuilt, metadata imported, deleted) is followed by
:attr:`GalleryController.changed` with the gallery's id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from sketchface_desktop.engine_session import EngineSession
from sketchface_desktop.ops import Runner
from sketchface_desktop.ops import galleries as gallery_ops
from sketchface_desktop.workers import Job

ResultFn = Callable[[Any], None]
FinishedFn = Callable[[Job], None]


class GalleryController(QObject):
    """Gallery reads (io lane) and changes (engine lane: they load models or write the index).

    Signals:
        changed(str): a gallery was created, changed or deleted (its id); read-only work emits nothing.
    """

    changed = Signal(str)

    def __init__(self, runner: Runner, session: EngineSession, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.session = session

    # -- reads ---------------------------------------------------------------------------------
    def list_galleries(self, on_result: Callable[[list[Any]], None]) -> Job:
        """Every gallery's GalleryInfo."""
        return gallery_ops.list_galleries(self.session).success(on_result).run(self.runner)

    def read_rows(self, gallery_id: str, on_result: ResultFn, on_finished: FinishedFn | None = None) -> Job:
        """A gallery, its photo rows and its summary."""
        return gallery_ops.read_rows(self.session, gallery_id).success(on_result).finished(on_finished).run(
            self.runner)

    # -- changes -------------------------------------------------------------------------------
    def _change(self, gallery_id: Callable[[Any], str] | str, op: Any, on_result: ResultFn | None,
                on_finished: FinishedFn | None) -> Job:
        def done(value: Any) -> None:
            if on_result is not None:
                on_result(value)
            self.changed.emit(gallery_id(value) if callable(gallery_id) else gallery_id)

        return op.success(done).finished(on_finished).run(self.runner)  # type: ignore[no-any-return]

    def server_profiles(self) -> list[str]:
        """Names of the configured gallery servers (a small settings file: read in place)."""
        return gallery_ops.server_profiles()

    @staticmethod
    def is_server(gallery_id: str) -> bool:
        """Whether the id names a server gallery (its photos and index are maintained on the server)."""
        return gallery_ops.is_server(gallery_id)

    def create(self, name: str, on_result: Callable[[str], None] | None = None, server: str | None = None) -> Job:
        """A new empty gallery, here or on the ``server`` profile; ``on_result`` gets its id."""
        op = gallery_ops.create_on_server(server, name) if server else gallery_ops.create(self.session, name)
        return self._change(str, op, on_result, None)

    def add_folder(self, gallery_id: str, folder: str, gallery_name: str, on_result: ResultFn | None = None,
                   on_finished: FinishedFn | None = None) -> Job:
        """Import a folder of photos (cancellable, with progress); ``on_result`` gets the IngestReport."""
        op = gallery_ops.add_folder(self.session, gallery_id, folder, gallery_name)
        return self._change(gallery_id, op, on_result, on_finished)

    def import_metadata(self, gallery_id: str, csv_path: str, on_result: ResultFn | None = None,
                        on_finished: FinishedFn | None = None) -> Job:
        op = gallery_ops.import_metadata(self.session, gallery_id, csv_path)
        return self._change(gallery_id, op, on_result, on_finished)

    def verify(self, gallery_id: str, on_result: ResultFn | None = None, on_finished: FinishedFn | None = None) -> Job:
        """Compare the index with the store (changes nothing)."""
        return gallery_ops.verify(self.session, gallery_id).success(on_result).finished(on_finished).run(self.runner)

    def rebuild(self, gallery_id: str, on_result: ResultFn | None = None, on_finished: FinishedFn | None = None) -> Job:
        return self._change(gallery_id, gallery_ops.rebuild(self.session, gallery_id), on_result, on_finished)

    def remove_photos(self, gallery_id: str, paths: list[str], on_result: ResultFn | None = None,
                      on_finished: FinishedFn | None = None) -> Job:
        op = gallery_ops.remove_photos(self.session, gallery_id, paths)
        return self._change(gallery_id, op, on_result, on_finished)

    def delete(self, gallery_id: str, name: str, on_finished: FinishedFn | None = None) -> Job:
        """Remove the gallery's index and thumbnails (the photos on disk are not touched)."""
        return self._change(gallery_id, gallery_ops.delete(self.session, gallery_id, name), None, on_finished)
