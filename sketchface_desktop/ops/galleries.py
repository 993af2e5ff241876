"""Gallery operations: listing and reading in the io lane, creating, importing and maintaining in the engine lane.

Every local gallery is reached through the window's :class:`EngineSession` (one shared ``Gallery`` object
per folder), so an import saving its index is never raced by a second instance of the same gallery.
A server gallery (PostgreSQL + pgvector, :mod:`engine.gallery.pg`) of a configured profile is listed
beside them under the key ``pg:PROFILE:ID`` (see :func:`server_key`), with the profile in its name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sketchface_desktop.ops.base import Op, query

SERVER_PREFIX = "pg:"

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


def server_key(profile: str, gallery_id: str) -> str:
    """The window's id of a server gallery: the workstation's reference (local ids are 12 hex digits, so
    the two never collide)."""
    from engine.workstation import server_key as key

    return key(profile, gallery_id)


def is_server(key: str) -> bool:
    return key.startswith(SERVER_PREFIX)


def split_key(key: str) -> tuple[str, str]:
    """(profile, server gallery id) of a :func:`server_key`."""
    from engine.workstation import split_server_key

    return split_server_key(key)


def server_profiles() -> list[str]:
    """Names of the configured gallery-server profiles (Tools > Gallery servers)."""
    from engine import servers

    return list(servers.load_profiles())


def open_server_gallery(key: str) -> Any:
    """The :class:`~engine.gallery.pg.PgGallery` behind a server key (its pool is shared per server)."""
    from engine import servers

    return servers.open_server_gallery(*split_key(key))


def open_any(session: EngineSession, key: str) -> Any:
    """A local gallery from the session or a server gallery, by the window's key (the workstation opens it)."""
    return session.open_any(key)


def server_info(g: Any) -> Any:
    """A server gallery's GalleryInfo under its window key, its name marked with the server."""
    import dataclasses

    info = g.info()
    return dataclasses.replace(info, id=server_key(g.server, g.id), name=f"{info.name} [{g.server}]")


def server_infos() -> list[Any]:
    """GalleryInfo of every server gallery the configured profiles may see; an unreachable server is skipped."""
    import logging

    from engine import servers
    from engine.gallery.pg import PgGallery

    out = []
    for name, profile in servers.load_profiles().items():
        try:
            conn = servers.conninfo(profile)
            out += [server_info(PgGallery(conn, gid, name)) for gid, _, _ in PgGallery.list_all(conn)]
        except Exception as exc:  # one server down must not hide the rest
            logging.getLogger(__name__).warning("gallery server %s skipped: %s", name, exc)
    return out


def list_galleries(session: EngineSession) -> Op[list[Any]]:
    """Local galleries, then the server galleries of the configured profiles."""
    return query("Listing galleries", lambda: [g.info() for g in session.galleries()] + server_infos())


def read_rows(session: EngineSession, gallery_id: str) -> Op[tuple[Any, list[PhotoRow], Any]]:
    """The gallery object, its photo rows and its summary (for the grid and the navigator counts).

    A server gallery gives no object and no rows (its photos stay on the server), only its summary.
    """
    def work() -> tuple[Any, list[PhotoRow], Any]:
        if is_server(gallery_id):
            return None, [], server_info(open_server_gallery(gallery_id))
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


def create_on_server(profile: str, name: str) -> Op[str]:
    """A new server gallery owned by the profile's unit; the result is its window key."""
    def work(_p: Any, _c: Any) -> str:
        from engine import servers
        from engine.errors import GalleryError
        from engine.gallery.pg import PgGallery

        prof = servers.get_profile(profile)
        if not prof.unit:
            raise GalleryError(f"Server profile '{profile}' names no unit to own the new gallery.",
                               hint="Set the unit in Tools > Gallery servers, or: sketchface gallery create NAME "
                                    f"--server {profile} --unit UNIT.")
        return server_key(profile, PgGallery.create(servers.conninfo(prof), name, prof.unit, profile).id)

    return Op(f"Creating gallery {name} on {profile}", work, lane="io", visible=False)


def add_folder(session: EngineSession, gallery_id: str, folder: str, gallery_name: str) -> Op[Any]:
    """Import a folder of photos (cancellable, with progress); the result is the engine's IngestReport.

    Into a server gallery: embedded here (resumable staging gallery), then pushed, as ``gallery add --server``.
    """
    def work(progress: Any, cancel: Any) -> Any:
        return session.add_photos(gallery_id, [folder], progress=progress, cancel=cancel)

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


def delete(session: EngineSession, gallery_id: str, name: str) -> Op[str]:
    return Op(f"Deleting gallery {name}", lambda _p, _c: session.delete_gallery(gallery_id), lane="engine")
