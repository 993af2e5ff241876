"""EngineSession: the engine objects the workstation keeps open between jobs (galleries, face pipeline, embedder).

Why one shared instance per gallery: opening a ``Gallery`` tidies stale temporary index files in its
folder, so a second instance opened while an import saves its index could remove the file being
written. Every job therefore goes through the same ``Gallery`` object (the engine makes it safe to
share across threads). Models load once, in the engine lane, and are dropped when the device setting
changes. Nothing here is imported for the GUI's first paint: the heavy parts load inside jobs.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import paths
from engine import settings as settings_mod
from engine.errors import GalleryError

if TYPE_CHECKING:
    from engine.faces import FacePipeline
    from engine.gallery import Gallery
    from engine.settings import Settings

log = logging.getLogger(__name__)

DB_FILE = "gallery.sqlite"  # the engine's gallery database name: a folder holding it is a gallery


class EngineSession:
    """Engine state shared by the workstation's jobs; every method may be called from a worker thread."""

    def __init__(self, settings: Settings | None = None) -> None:
        self._lock = threading.RLock()  # galleries
        self._model_lock = threading.RLock()  # models load for seconds: never block gallery reads
        self.settings = settings or _load_settings()
        self._galleries: dict[str, Gallery] = {}
        self._by_dir: dict[Path, str] = {}
        self._pipeline: FacePipeline | None = None
        self._embedder: Any = None

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
        """Every gallery on this workstation (opened once, then reused), sorted by name."""
        from engine.gallery import Gallery

        with self._lock:
            for folder in sorted(paths.galleries_dir().iterdir()):
                if folder.name.startswith(".") or not (folder / DB_FILE).exists() or folder in self._by_dir:
                    continue
                try:
                    g = Gallery(folder, self.settings)
                except GalleryError as exc:  # IndexCorrupt is a GalleryError's sibling: both EngineError
                    log.warning("skipping gallery %s: %s", folder, exc)
                    continue
                except Exception as exc:  # a damaged database must not hide the other galleries
                    log.warning("skipping gallery %s: %s", folder, exc)
                    continue
                self._galleries[g.id] = g
                self._by_dir[folder] = g.id
            present = [g for g in self._galleries.values() if g.dir.exists()]
        return sorted(present, key=lambda g: g.name.casefold())

    def gallery(self, gallery_id: str) -> Gallery:
        with self._lock:
            if gallery_id not in self._galleries:
                self.galleries()
            try:
                return self._galleries[gallery_id]
            except KeyError:
                raise GalleryError(f"Gallery {gallery_id} no longer exists on this workstation.",
                                   hint="It may have been deleted; refresh the gallery list.") from None

    def create_gallery(self, name: str) -> Gallery:
        from engine.gallery import create_gallery

        with self._lock:
            g = create_gallery(name, self.settings)
            self._galleries[g.id] = g
            self._by_dir[g.dir] = g.id
            return g

    def delete_gallery(self, gallery_id: str) -> None:
        """Close our instance and delete the gallery's store and index (never the photos)."""
        import shutil

        with self._lock:
            g = self.gallery(gallery_id)
            with g.write_lock:
                g.close()
                shutil.rmtree(g.dir)
            self._galleries.pop(gallery_id, None)
            self._by_dir.pop(g.dir, None)

    # -- models (engine lane) ------------------------------------------------------------------
    def pipeline(self) -> FacePipeline:
        """The face pipeline (detector + ArcFace), loaded on first use with the current settings."""
        with self._model_lock:
            if self._pipeline is None:
                from engine.faces import load_pipeline

                self._pipeline = load_pipeline(settings=self.settings)
            return self._pipeline

    def sketch_embedder(self) -> Any:
        """The trained sketch encoder when installed, else the labelled ArcFace baseline.

        The baseline is built on this session's face pipeline rather than through
        ``load_sketch_embedder`` (which would load a second detector and ArcFace session for it).
        """
        with self._model_lock:
            if self._embedder is None:
                from engine import models
                from engine.sketch import (
                    MODEL_ID,
                    ArcFaceBaselineEmbedder,
                    installed_arcface_sha256,
                    load_sketch_embedder,
                )

                if models.installed(MODEL_ID):
                    self._embedder = load_sketch_embedder(self.settings.device)
                else:
                    self._embedder = ArcFaceBaselineEmbedder(self.pipeline(),
                                                             arcface_sha256=installed_arcface_sha256())
            return self._embedder

    def forget_models(self) -> None:
        """Drop loaded models (after models were imported or replaced)."""
        with self._model_lock:
            self._pipeline = None
            self._embedder = None

    def close(self) -> None:
        with self._lock:
            for g in self._galleries.values():
                try:
                    g.close()
                except Exception:  # closing at exit must not raise
                    log.exception("closing gallery %s", g.id)
            self._galleries.clear()
            self._by_dir.clear()
            self._pipeline = None
            self._embedder = None


def warm_up_engine() -> None:
    """Engine lane, after the first paint: import the engine's heavy modules before the examiner needs them.

    Initialising a compiled extension (onnxruntime, OpenCV, hnswlib) holds the interpreter lock for
    tens of milliseconds at a time; done now, while the window is idle, it cannot stall the first import
    or search. Models are not loaded here (they may not be installed, and they use memory).
    """
    import insightface.model_zoo  # onnxruntime and onnx, imported when the pipeline loads

    import engine.faces.pipeline
    import engine.gallery
    import engine.search
    import engine.sketch

    del insightface, engine


def _load_settings() -> Settings:
    try:
        return settings_mod.load()
    except Exception as exc:  # a broken settings file must not stop the app: defaults, and say so in the log
        log.warning("settings not loaded (%s); using defaults", exc)
        return settings_mod.Settings()
