"""The galleries on this workstation: create, list, open (by name, id or id prefix) and delete.

Each gallery is a folder ``galleries/<12 hex id>/``. Creation builds it under a dot-name and renames
it into place, so a crash mid-creation leaves nothing that looks like a gallery.
"""

from __future__ import annotations

import logging
import re
import secrets
import shutil
from pathlib import Path

from engine import paths
from engine import settings as settings_mod
from engine.errors import GalleryError, IndexCorrupt
from engine.gallery.gallery import DB_FILE, DIM, Gallery, GalleryInfo
from engine.gallery.store import GalleryStore
from engine.settings import Settings

log = logging.getLogger(__name__)

_NAME_OK = re.compile(r"^[^\x00-\x1f/\\]{1,120}$")


def _gallery_dirs() -> list[Path]:
    return sorted(d for d in paths.galleries_dir().iterdir()
                  if d.is_dir() and not d.name.startswith(".") and (d / DB_FILE).exists())


def _open_all(settings: Settings | None) -> list[Gallery]:
    out = []
    for d in _gallery_dirs():
        try:
            out.append(Gallery(d, settings))
        except (GalleryError, IndexCorrupt) as exc:
            log.warning("skipping %s: %s", d, exc)
    return out


def create_gallery(name: str, settings: Settings | None = None) -> Gallery:
    """Create an empty gallery named ``name`` (unique, case-insensitively). HNSW M/ef_construction
    come from settings and are fixed for the gallery until a rebuild changes them."""
    name = name.strip()
    if not _NAME_OK.match(name):
        raise GalleryError(f"{name!r} is not a usable gallery name.",
                           hint="Use 1-120 characters without slashes or control characters.")
    settings = settings or settings_mod.load()
    for g in _open_all(settings):
        with g:
            if g.name.casefold() == name.casefold():
                raise GalleryError(f"A gallery named '{g.name}' already exists (id {g.id}).")
    gallery_id = secrets.token_hex(6)
    tmp = paths.galleries_dir() / f".{gallery_id}.creating"
    GalleryStore.create(tmp / DB_FILE, {
        "id": gallery_id, "name": name, "dim": str(DIM),
        "hnsw_M": str(settings.hnsw_m), "hnsw_ef_construction": str(settings.hnsw_ef_construction),
    }).close()
    final = paths.galleries_dir() / gallery_id
    tmp.rename(final)  # a crash before this leaves only an ignored dot-folder
    return Gallery(final, settings)


def list_galleries(settings: Settings | None = None) -> list[GalleryInfo]:
    infos = []
    for g in _open_all(settings):
        with g:
            infos.append(g.info())
    return sorted(infos, key=lambda i: i.name.casefold())


def open_gallery(ref: str, settings: Settings | None = None) -> Gallery:
    """Open by id, by name (case-insensitive) or by a unique id prefix of 4+ characters."""
    base = paths.galleries_dir()
    if re.fullmatch(r"[0-9a-f]{12}", ref) and (base / ref / DB_FILE).exists():
        return Gallery(base / ref, settings)
    galleries = _open_all(settings)
    chosen = [g for g in galleries if g.name.casefold() == ref.strip().casefold()]
    if not chosen and len(ref) >= 4:
        chosen = [g for g in galleries if g.id.startswith(ref)]
    keep = chosen[0] if len(chosen) == 1 else None
    known = ", ".join(f"{g.name} ({g.id})" for g in galleries) or "none yet"
    for g in galleries:
        if g is not keep:
            g.close()
    if keep is not None:
        return keep
    if chosen:
        raise GalleryError(f"'{ref}' matches several galleries; use the full id.", hint=f"Galleries: {known}.")
    raise GalleryError(f"No gallery called '{ref}'.",
                       hint=f"Galleries: {known}. Create one with 'sketchface gallery create NAME'.")


def delete_gallery(ref: str) -> str:
    """Delete a gallery's store, index and thumbnails (never the photos). Returns its id."""
    g = open_gallery(ref)
    directory, gallery_id = g.dir, g.id
    g.close()
    shutil.rmtree(directory)
    return gallery_id
