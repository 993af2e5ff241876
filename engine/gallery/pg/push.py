"""Move a local gallery up to a server gallery without re-embedding, and import folders into a server gallery.

Why through the local store: the workstation already holds each photo's faces, embeddings, thumbnails
and metadata; pushing them is a copy, not a recomputation. Photos the server already has (same SHA-256)
are skipped before sending, and the server skips any that arrive twice (parallel pushes), so a push
killed at any point resumes where it stopped when run again.

Importing folders into a server gallery goes through a local *staging* gallery in the data folder:
the ordinary local import (detect, align, embed, one transaction per photo, resumable) and then a push.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import paths
from engine.gallery.gallery import DB_FILE, DIM, Gallery
from engine.gallery.pg.gallery import PgGallery, PushReport, UploadFace, UploadPhoto
from engine.gallery.store import GalleryStore
from engine.progress import CancelToken, ProgressCallback, Reporter, check

if TYPE_CHECKING:
    from engine.faces import FacePipeline
    from engine.gallery.gallery import Gallery
    from engine.gallery.ingest import IngestReport

BATCH_PHOTOS = 500


def _uploads(local: Gallery, photo_ids: list[tuple[int, str, str]]) -> list[UploadPhoto]:
    """Upload records of local photos (id, path, sha256) from the stored faces, embeddings and thumbnails."""
    store = local.store
    faces_of = {pid: store.faces_of_photo(pid) for pid, _, _ in photo_ids}
    every = [f for fs in faces_of.values() for f in fs]
    infos = store.face_infos(every)
    vectors = dict(zip(every, store.embeddings(every), strict=True)) if every else {}
    out = []
    for pid, path, sha in photo_ids:
        faces = []
        meta: dict[str, Any] = {}
        for fid in faces_of[pid]:
            info = infos[fid]
            meta = {"subject_id": info.subject_id, **info.metadata}
            faces.append(UploadFace(info.bbox, float("nan"), info.quality, float("nan"), info.primary, vectors[fid],
                                    store.thumbnail(fid)))
        if faces:
            out.append(UploadPhoto(sha, path, faces, meta={k: v for k, v in meta.items() if v is not None}))
    return out


def _batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def push_gallery(local: Gallery, remote: PgGallery, progress: ProgressCallback | None = None,
                 cancel: CancelToken | None = None, batch: int = BATCH_PHOTOS) -> PushReport:
    """Copy every indexed photo of ``local`` that ``remote`` lacks, in batches (one transaction each)."""
    if local.model_sha256:
        remote.set_model_sha256(local.model_sha256)
    known = remote.known_sha256()
    paths_by_id = dict(local.store.photo_paths())
    todo = [(pid, paths_by_id.get(pid, ""), sha) for pid, sha in local.store.photo_sha256s() if sha not in known]
    reporter = Reporter(progress, len(todo))
    inserted = skipped = faces = 0
    for chunk in _batches(todo, batch):
        check(cancel)
        report = remote.push(_uploads(local, list(chunk)))
        inserted, skipped, faces = inserted + report.inserted, skipped + report.skipped, faces + report.faces
        reporter.step(len(chunk), f"pushed {inserted} photo(s)")
    reporter.emit("done", force=True)
    return PushReport(inserted, skipped + (len(local.store.photo_sha256s()) - len(todo)), faces)


def staging_gallery(server: str, remote: PgGallery) -> Gallery:
    """The local staging gallery of a server gallery (created on first use, under the data folder)."""

    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", server) or "server"
    folder = paths.data_dir() / "server-staging" / f"{safe}-{remote.id}"
    if not (folder / DB_FILE).exists():
        GalleryStore.create(folder / DB_FILE, {"id": remote.id, "name": f"{remote.name} (staging for {server})",
                                               "dim": str(DIM)}).close()
    return Gallery(Path(folder))


def add_to_server(remote: PgGallery, folders: Sequence[Path | str], server: str = "",
                  pipeline: FacePipeline | None = None, progress: ProgressCallback | None = None,
                  cancel: CancelToken | None = None) -> tuple[IngestReport, PushReport]:
    """``gallery add`` for a server gallery: embed locally (resumable), then push what the server lacks."""
    with staging_gallery(server, remote) as local:
        report = local.add(list(folders), pipeline=pipeline, progress=progress, cancel=cancel)
        pushed = push_gallery(local, remote, cancel=cancel)
    return report, pushed
