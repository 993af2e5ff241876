"""Gallery operations: listing and reading in the io lane, creating, importing and maintaining in the engine lane.

Every gallery is reached through the window's :class:`EngineSession` (one shared ``Gallery`` object
per folder), so an import saving its index is never raced by a second instance of the same gallery.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sketchface_desktop.ops.base import Op, query

if TYPE_CHECKING:
    from sketchface_desktop.engine_session import EngineSession


@dataclass(frozen=True)
class PhotoRow:
    """One photo of a gallery as the gallery grid shows it."""

    photo_id: int
    path: str
    status: str
    reason: str = ""


def read_photo_rows(gallery: Any) -> list[PhotoRow]:
    """All photos of a gallery with status and reason (two queries whatever the size)."""
    bad = {path: (status, reason) for path, status, reason in gallery.bad_photos()}
    return [PhotoRow(pid, path, *bad.get(path, ("ok", ""))) for pid, path in gallery.store.photo_paths()]


def read_photo_thumbnail(gallery: Any, photo_id: int) -> bytes | None:
    """JPEG of the photo's primary face (the first stored), or None for photos without a face."""
    faces = gallery.store.faces_of_photo(photo_id)
    return gallery.thumbnail(faces[0]) if faces else None


def list_galleries(session: EngineSession) -> Op[list[Any]]:
    return query("Listing galleries", lambda: [g.info() for g in session.galleries()])


def read_rows(session: EngineSession, gallery_id: str) -> Op[tuple[Any, list[PhotoRow], Any]]:
    """The gallery object, its photo rows and its summary (for the grid and the navigator counts)."""
    def work() -> tuple[Any, list[PhotoRow], Any]:
        g = session.gallery(gallery_id)
        return g, read_photo_rows(g), g.info()

    return query("Reading gallery", work)


def thumbnail(title: str, fetch: Any) -> Op[Any]:
    """A thumbnail's bytes from ``fetch()`` (io lane, not listed in the jobs panel)."""
    return query(title, fetch)


def create(session: EngineSession, name: str) -> Op[str]:
    # Engine lane: creating opens every gallery, which must not race an import's index save.
    return Op(f"Creating gallery {name}", lambda _p, _c: str(session.create_gallery(name).id), lane="engine",
              visible=False)


def add_folder(session: EngineSession, gallery_id: str, folder: str, gallery_name: str) -> Op[Any]:
    """Import a folder of photos (cancellable, with progress); the result is the engine's IngestReport."""
    def work(progress: Any, cancel: Any) -> Any:
        g = session.gallery(gallery_id)
        s = session.settings
        return g.add([Path(folder)], pipeline=session.pipeline(), progress=progress, cancel=cancel,
                     workers=s.ingest_workers, batch=s.ingest_batch)

    return Op(f"Adding {Path(folder).name} to {gallery_name}", work, lane="engine")


def import_metadata(session: EngineSession, gallery_id: str, csv_path: str) -> Op[Any]:
    return Op("Importing metadata", lambda _p, _c: session.gallery(gallery_id).import_metadata(csv_path),
              lane="engine")


def verify(session: EngineSession, gallery_id: str) -> Op[Any]:
    return Op("Verifying gallery index", lambda _p, _c: session.gallery(gallery_id).verify(), lane="engine")


def rebuild(session: EngineSession, gallery_id: str) -> Op[Any]:
    return Op("Rebuilding gallery index",
              lambda p, c: session.gallery(gallery_id).rebuild(progress=p, cancel=c), lane="engine")


def remove_photos(session: EngineSession, gallery_id: str, paths: list[str]) -> Op[Any]:
    return Op(f"Removing {len(paths)} photos", lambda _p, _c: session.gallery(gallery_id).remove(paths),
              lane="engine")


def delete(session: EngineSession, gallery_id: str, name: str) -> Op[None]:
    return Op(f"Deleting gallery {name}", lambda _p, _c: session.delete_gallery(gallery_id), lane="engine")
