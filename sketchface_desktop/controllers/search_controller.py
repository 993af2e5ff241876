"""SearchController: runs searches and keeps the last query for "more like this" and "exclude".

Refining adds a candidate's photo as a further fused query ("more like this") or a
``photo_sha256!=`` filter ("exclude"); both are recorded in the run manifest.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from sketchface_desktop.engine_session import EngineSession
from sketchface_desktop.ops import Runner
from sketchface_desktop.ops import search as search_ops
from sketchface_desktop.ops.search import QueryImage, SearchRequest
from sketchface_desktop.workers import Job


class SearchController(QObject):
    """Starts searches and refinements; the examiner flow shows what it reports.

    Signals:
        search_started(object): the SearchRequest being run.
        search_finished(object, object): the request and the engine's FinishedSearch (result, query
            images, and each candidate's thumbnail keyed by (gallery id, face id)).
    """

    search_started = Signal(object)
    search_finished = Signal(object, object)

    def __init__(self, runner: Runner, session: EngineSession, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.session = session
        self.last_request: SearchRequest | None = None
        self.last_result: Any = None
        self.job: Job | None = None

    def run(self, request: SearchRequest) -> Job:
        self.search_started.emit(request)
        self.job = search_ops.search(self.session, request).success(
            lambda res: self._finished(request, res)).run(self.runner)
        return self.job

    def _finished(self, request: SearchRequest, finished: Any) -> None:
        self.last_request, self.last_result = request, finished.result
        self.search_finished.emit(request, finished)

    def more_like_this(self, photo_path: str, weight: float = 1.0) -> Job | None:
        """Repeat the last search with the candidate's photo fused into the query."""
        req = self.last_request
        if req is None:
            return None
        data = Path(photo_path).read_bytes()
        new = replace(req, queries=(*req.queries, QueryImage("photo", data, weight, Path(photo_path).name)),
                      label=f"More like {Path(photo_path).name}")
        return self.run(new)

    def exclude(self, photo_sha256: str, name: str = "") -> Job | None:
        """Repeat the last search without this photo (recorded as a filter in the manifest)."""
        req = self.last_request
        if req is None:
            return None
        new = replace(req, excluded=(*req.excluded, photo_sha256), label=f"Excluding {name or photo_sha256[:12]}")
        return self.run(new)
