"""EngineSession: the window's engine workstation (galleries, models and use cases kept between jobs).

It is the engine's :class:`engine.workstation.Workstation` (one ``Gallery`` object per folder, the one
sketch-embedder choice with its ArcFace check, search over local and server galleries, record, re-run),
with the settings loaded forgivingly: a broken settings file must not stop the app. Models load inside
jobs on the engine lane, never for the GUI's first paint.
"""

from __future__ import annotations

import logging

from engine import settings as settings_mod
from engine.settings import Settings
from engine.workstation import Workstation

log = logging.getLogger(__name__)


class EngineSession(Workstation):
    """The workstation the window's jobs share; every method may be called from a worker thread."""

    def __init__(self, settings: Settings | None = None) -> None:
        super().__init__(settings or _load_settings())


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
