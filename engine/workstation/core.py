"""The workstation: the one object the command line and the desktop talk to.

Why one object (as Anki's ``Collection``): the examiner's use cases (search, record a search in a case,
re-run, add photos, validate) each need the same opened galleries, the same loaded models and the same
ArcFace-space check. Held here, every front-end gets the same behaviour and no front-end decides
anything about gallery kinds: it names galleries by reference (a local name or id, or a server
reference ``pg:PROFILE:GALLERY``) and the workstation opens the right kind.

- *One object per gallery folder*: opening a ``Gallery`` tidies stale temporary index files in its
  folder, so a second instance opened while an import saves its index could remove the file being
  written. Every use case goes through the same object (the engine makes it safe across threads).
- *One embedder choice*: :meth:`sketch_embedder` is :func:`engine.search.load_embedder` on this
  workstation's face pipeline: the trained encoder, refused when trained for another ArcFace file,
  else the labelled ArcFace baseline on the already loaded pipeline (no second copy in memory).
- Models load on first use (in the desktop's engine lane) and are dropped when the device changes.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import paths, servers
from engine import settings as settings_mod
from engine.cases import Case, RerunReport, SearchRecord, rerun_search
from engine.errors import GalleryError, IndexCorrupt
from engine.faces import load_pipeline
from engine.gallery import Gallery, open_gallery
from engine.gallery import create_gallery as _create_gallery
from engine.gallery.exact import AUTO
from engine.gallery.ingest import IngestReport
from engine.gallery.pg.gallery import PgGallery
from engine.gallery.pg.push import add_to_server
from engine.gallery.registry import DB_FILE
from engine.progress import CancelToken, ProgressCallback
from engine.search.core import Query, Searcher
from engine.search.embedders import SketchEmbedder, load_embedder
from engine.search.record import FinishedSearch, finish_search
from engine.search.rerun import rerun_for_case
from engine.settings import Settings
from engine.validate.run import DEFAULT_GROUP_KEYS, ValidationRun, validate
from engine.workstation.authorize import Authorization, enforce
from engine.workstation.record import record_finished

if TYPE_CHECKING:
    from engine.faces import FacePipeline

log = logging.getLogger(__name__)

SERVER_PREFIX = "pg:"


def server_key(profile: str, gallery: str) -> str:
    """The reference of a server gallery (its id or name on a profile); local ids are 12 hex digits, so the
    two never collide."""
    return f"{SERVER_PREFIX}{profile}:{gallery}"


def is_server_key(ref: str) -> bool:
    return ref.startswith(SERVER_PREFIX)


def split_server_key(ref: str) -> tuple[str, str]:
    """(profile, gallery) of a :func:`server_key`."""
    profile, _, gallery = ref[len(SERVER_PREFIX):].rpartition(":")
    return profile, gallery


class Workstation:
    """Opened galleries, loaded models and the examiner's use cases; every method may run on a worker thread.

    Args:
        settings: the workstation's settings (loaded from the settings file when None).
        pipeline, sketch_embedder: already loaded models to use (tests, a specific encoder).
    """

    def __init__(self, settings: Settings | None = None, pipeline: FacePipeline | None = None,
                 sketch_embedder: SketchEmbedder | None = None) -> None:
        self._lock = threading.RLock()  # galleries
        self._model_lock = threading.RLock()  # models load for seconds: never block gallery reads
        self.settings = settings or settings_mod.load()
        self._galleries: dict[str, Gallery] = {}
        self._by_dir: dict[Path, str] = {}
        self._servers: dict[str, PgGallery] = {}
        self._pipeline = pipeline
        self._embedder = sketch_embedder

    # -- settings ------------------------------------------------------------------------------
    def apply_settings(self, settings: Settings) -> None:
        """Adopt new settings; loaded models are dropped when the device or detector size changed."""
        with self._model_lock:
            old = self.settings
            self.settings = settings
            if (old.device, old.det_size) != (settings.device, settings.det_size):
                self._pipeline = None
                self._embedder = None
        with self._lock:
            for g in self._galleries.values():
                g.settings = settings

    # -- galleries -----------------------------------------------------------------------------
    def galleries(self) -> list[Gallery]:
        """Every local gallery (opened once, then reused), sorted by name; a damaged one is skipped."""
        with self._lock:
            for folder in sorted(paths.galleries_dir().iterdir()):
                if folder.name.startswith(".") or not (folder / DB_FILE).exists() or folder in self._by_dir:
                    continue
                try:
                    g = Gallery(folder, self.settings)
                except (GalleryError, IndexCorrupt) as exc:
                    log.warning("skipping gallery %s: %s", folder, exc)
                    continue
                except Exception as exc:  # a damaged database must not hide the other galleries
                    log.warning("skipping gallery %s: %s", folder, exc)
                    continue
                self._keep(g)
            present = [g for g in self._galleries.values() if g.dir.exists()]
        return sorted(present, key=lambda g: g.name.casefold())

    def _keep(self, g: Gallery) -> Gallery:
        self._galleries[g.id] = g
        self._by_dir[g.dir] = g.id
        return g

    def gallery(self, ref: str) -> Gallery:
        """The workstation's object of a local gallery, by id, name or unique id prefix."""
        with self._lock:
            if ref not in self._galleries:
                self.galleries()
            if ref in self._galleries:
                return self._galleries[ref]
            try:
                found = open_gallery(ref, self.settings)  # by name or prefix; the engine's messages
            except GalleryError:
                if len(ref) == 12 and all(c in "0123456789abcdef" for c in ref):
                    raise GalleryError(f"Gallery {ref} no longer exists on this workstation.",
                                       hint="It may have been deleted; refresh the gallery list.") from None
                raise
            gid = found.id
            found.close()
            return self._galleries[gid]

    def server_gallery(self, ref: str) -> PgGallery:
        """A server gallery by :func:`server_key` (``pg:PROFILE:GALLERY``, name or id), opened once."""
        with self._lock:
            if ref not in self._servers:
                profile, gallery = split_server_key(ref)
                if not profile or not gallery:
                    raise GalleryError(f"{ref!r} does not name a server gallery: write PROFILE:GALLERY.")
                self._servers[ref] = servers.open_server_gallery(profile, gallery)
            return self._servers[ref]

    def open_any(self, ref: str) -> Gallery | PgGallery:
        """A local or a server gallery by reference (the one place that tells the two apart)."""
        return self.server_gallery(ref) if is_server_key(ref) else self.gallery(ref)

    def create_gallery(self, name: str) -> Gallery:
        with self._lock:
            return self._keep(_create_gallery(name, self.settings))

    def delete_gallery(self, ref: str) -> str:
        """Close the workstation's object and delete the gallery's store and index (never the photos)."""
        with self._lock:
            g = self.gallery(ref)
            with g.write_lock:
                g.close()
                shutil.rmtree(g.dir)
            self._galleries.pop(g.id, None)
            self._by_dir.pop(g.dir, None)
            return g.id

    # -- models --------------------------------------------------------------------------------
    def pipeline(self) -> FacePipeline:
        """The face pipeline (detector + ArcFace), loaded on first use with the current settings."""
        with self._model_lock:
            if self._pipeline is None:
                self._pipeline = load_pipeline(settings=self.settings)
            return self._pipeline

    def sketch_embedder(self) -> SketchEmbedder:
        """The one sketch-embedder choice, with the ArcFace-compatibility check (see the module docstring)."""
        with self._model_lock:
            if self._embedder is None:
                self._embedder = load_embedder(self.pipeline(), self.settings.device)
            return self._embedder

    def forget_models(self) -> None:
        """Drop loaded models (after models were imported or replaced)."""
        with self._model_lock:
            self._pipeline = None
            self._embedder = None

    def searcher(self, sketch: bool = True) -> Searcher:
        """A searcher on this workstation's models (the sketch embedder loaded only when ``sketch``)."""
        return Searcher(self.pipeline(), self.sketch_embedder() if sketch else None, self.settings)

    # -- use cases -----------------------------------------------------------------------------
    def search(self, queries: Sequence[Query], galleries: Sequence[str], *, k: int | None = None,
               filters: Sequence[str] = (), group_by_subject: bool = False, ef: int | None = None,
               mode: str = AUTO, cancel: CancelToken | None = None,
               authorization: Authorization | None = None) -> FinishedSearch:
        """One search over local galleries, server galleries or both, ready to record.

        Under the agency's search policy file every search needs ``authorization`` from
        :func:`engine.workstation.authorize.authorize` (checked here against the same file, for these
        galleries; its capped list length is used when ``k`` is None), else SearchRefused with the
        policy's reason: the policy binds the use case, not only the front-ends. Without a policy file
        nothing changes. Re-runs and watch runs of a recorded search (:meth:`rerun`) keep the original
        search's authorization and are not asked again.

        Args:
            galleries: references (local name or id; ``pg:PROFILE:GALLERY`` for a server gallery).
            mode: how local galleries search: ``auto`` (exact while its measured scan stays under the
                bound), ``exact``, or ``hnsw`` with exact re-rank; server galleries use pgvector HNSW
                with exact re-rank.

        Returns:
            the result with its query images and each candidate's own thumbnail (keyed by gallery and face).
        """
        k = enforce(authorization, k=k, server=any(is_server_key(ref) for ref in galleries))
        opened = [self.open_any(ref) for ref in galleries]
        searcher = self.searcher(sketch=any(q.kind == "sketch" for q in queries))
        result = searcher.search(queries, opened, k=k, filters=list(filters), group_by_subject=group_by_subject,
                                 ef=ef, cancel=cancel, mode=mode)
        return finish_search(result, queries)

    def record(self, case: Case, finished: FinishedSearch, *, label: str = "", blind: bool = False,
               user: str | None = None, authorization: Authorization | None = None) -> SearchRecord:
        """Store a finished search in ``case`` (one audited entry; the one recording path).

        Under the agency's search policy file the search's ``authorization`` (for a recorded search) is
        required and kept with it in the same transaction.
        """
        return record_finished(case, finished, label=label, blind=blind, user=user, authorization=authorization)

    def rerunner(self) -> Callable[[Mapping[str, Any], list[bytes]], Any]:
        """The case re-runner on this workstation's models and gallery objects; it returns the candidates'
        thumbnails too, so a stored re-run keeps them."""
        def rerun(manifest: Mapping[str, Any], images: list[bytes]) -> Any:
            kinds = {q.get("kind") for q in manifest.get("query", []) if isinstance(q, Mapping)}
            return rerun_for_case(manifest, images, searcher=self.searcher(sketch="sketch" in kinds),
                                  open_local=self.gallery)

        return rerun

    def rerun(self, case: Case, search_id: int, *, store: bool = True, user: str | None = None) -> RerunReport:
        """Repeat a recorded search (each gallery in the mode it ran) and say whether the list is the same."""
        return rerun_search(case, search_id, self.rerunner(), store=store, user=user)

    def add_photos(self, gallery: str, folders: Sequence[Path | str], *, progress: ProgressCallback | None = None,
                   cancel: CancelToken | None = None) -> IngestReport:
        """Import photos with this workstation's face pipeline, into a local gallery or a server gallery
        (embedded here in a resumable staging gallery, then pushed: the server never sees a photo file)."""
        folders = [Path(f) for f in folders]
        if is_server_key(gallery):
            remote = self.server_gallery(gallery)
            report, _pushed = add_to_server(remote, folders, remote.server, pipeline=self.pipeline(),
                                            progress=progress, cancel=cancel)
            return report
        return self.gallery(gallery).add(folders, pipeline=self.pipeline(), progress=progress, cancel=cancel,
                                         workers=self.settings.ingest_workers, batch=self.settings.ingest_batch)

    def validate(self, cases_dir: Path | str, gallery: str, *, encoder: str = "both",
                 group_keys: Sequence[str] = DEFAULT_GROUP_KEYS, progress: ProgressCallback | None = None,
                 cancel: CancelToken | None = None) -> ValidationRun:
        """Validate the sketch encoder on solved cases against a local gallery (:mod:`engine.validate`)."""
        return validate(cases_dir, self.gallery(gallery), encoder=encoder, group_keys=group_keys,
                        device=self.settings.device, pipeline=self.pipeline(), progress=progress, cancel=cancel)

    def close(self) -> None:
        """Close every gallery this workstation opened (models are dropped with it)."""
        with self._lock:
            for g in self._galleries.values():
                try:
                    g.close()
                except Exception:  # closing at exit must not raise
                    log.exception("closing gallery %s", g.id)
            for s in self._servers.values():
                try:
                    s.close()
                except Exception:
                    log.exception("closing server gallery %s", s.id)
            self._galleries.clear()
            self._by_dir.clear()
            self._servers.clear()
            self._pipeline = None
            self._embedder = None

    def __enter__(self) -> Workstation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
