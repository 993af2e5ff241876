"""SearchController: runs searches in the engine lane and keeps the query for "more like this" and "exclude".

The query images are exactly the bytes that are embedded and recorded (convention 10): a sketch with
the face guide shown is cropped to the guide's square (plus margin) before it becomes a query, because
``engine.search.Query`` carries no face box; refining adds a candidate's photo as a further fused query
("more like this") or a ``photo_sha256!=`` filter ("exclude"), both recorded in the run manifest.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from sketchface_desktop.engine_session import EngineSession
from sketchface_desktop.workers import Job, JobHub

GUIDE_MARGIN = 0.12  # the preprocessing margin around a face box (engine.sketch's baseline margin)


@dataclass(frozen=True)
class QueryImage:
    """One query image: kind ("sketch" or "photo"), its bytes, fusion weight and a display name."""

    kind: str
    data: bytes
    weight: float = 1.0
    name: str = ""


@dataclass(frozen=True)
class SearchRequest:
    """Everything a search needs; refinements derive a new request from the last one."""

    queries: tuple[QueryImage, ...]
    gallery_ids: tuple[str, ...]
    k: int = 50
    filters: tuple[str, ...] = ()
    group_by_subject: bool = False
    blind: bool = False
    label: str = ""
    excluded: tuple[str, ...] = field(default=())


def crop_to_guide(png: bytes, box: tuple[float, float, float, float], margin: float = GUIDE_MARGIN) -> bytes:
    """The sheet cropped to the guide box's square plus ``margin`` on each side (paper-padded), as PNG."""
    import cv2
    import numpy as np

    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
    x1, y1, x2, y2 = box
    side = int(round(max(x2 - x1, y2 - y1) * (1 + 2 * margin)))
    x0, y0 = int(round((x1 + x2) / 2 - side / 2)), int(round((y1 + y2) / 2 - side / 2))
    out = np.full((side, side), 255, np.uint8)
    h, w = img.shape
    sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(w, x0 + side), min(h, y0 + side)
    out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = img[sy0:sy1, sx0:sx1]
    ok, buf = cv2.imencode(".png", out)
    if not ok:  # pragma: no cover - encoding a valid array does not fail
        raise RuntimeError("PNG encoding failed")
    return bytes(buf)


def run_search(session: EngineSession, request: SearchRequest, cancel: Any) -> tuple[Any, dict[int, bytes]]:
    """Engine lane: the search itself plus the face thumbnails of its matches (for the case record)."""
    from engine.search import Query, Searcher

    galleries = [session.gallery(gid) for gid in request.gallery_ids]
    has_sketch = any(q.kind == "sketch" for q in request.queries)
    pipeline = session.pipeline()
    embedder = session.sketch_embedder() if has_sketch else None
    searcher = Searcher(pipeline, embedder, session.settings)
    queries = [Query(q.kind, q.data, q.weight, q.name) for q in request.queries]
    filters = list(request.filters) + [f"photo_sha256!={sha}" for sha in request.excluded]
    result = searcher.search(queries, galleries, k=request.k, filters=filters,
                             group_by_subject=request.group_by_subject, cancel=cancel)
    owners = {g.id: g for g in galleries}
    thumbs = {m.face_id: t for m in result.matches if (t := owners[m.gallery_id].thumbnail(m.face_id))}
    return result, thumbs


class SearchController(QObject):
    """Starts searches and refinements; the window shows what it reports.

    Signals:
        search_started(object): the SearchRequest being run.
        search_finished(object, object, dict): request, engine SearchResult, face thumbnails by face id.
    """

    search_started = Signal(object)
    search_finished = Signal(object, object, object)

    def __init__(self, hub: JobHub, session: EngineSession, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.hub = hub
        self.session = session
        self.last_request: SearchRequest | None = None
        self.last_result: Any = None
        self.job: Job | None = None

    def run(self, request: SearchRequest) -> Job:
        session = self.session
        kinds = " + ".join(sorted({q.kind for q in request.queries}))
        title = request.label or f"Searching {len(request.gallery_ids)} gallery(ies) by {kinds}"
        self.search_started.emit(request)
        self.job = self.hub.submit(title, lambda _p, cancel: run_search(session, request, cancel),
                                   on_result=lambda res: self._finished(request, res))
        return self.job

    def _finished(self, request: SearchRequest, res: tuple[Any, dict[int, bytes]]) -> None:
        result, thumbs = res
        self.last_request, self.last_result = request, result
        self.search_finished.emit(request, result, thumbs)

    @staticmethod
    def sketch_request(png: bytes, face_box: tuple[float, float, float, float] | None, gallery_ids: list[str],
                       k: int, filters: list[str], *, extra_sketches: list[bytes] | None = None,
                       group_by_subject: bool = False, blind: bool = False) -> SearchRequest:
        """A sketch search (fused with ``extra_sketches``, e.g. the case's other saved versions)."""
        data = crop_to_guide(png, face_box) if face_box is not None else png
        queries = [QueryImage("sketch", data, 1.0, "current sketch")]
        queries += [QueryImage("sketch", s, 1.0, f"saved sketch {i + 1}") for i, s in enumerate(extra_sketches or [])]
        label = "Sketch search" + (f" (fusion of {len(queries)})" if len(queries) > 1 else "")
        return SearchRequest(tuple(queries), tuple(gallery_ids), k, tuple(filters), group_by_subject, blind, label)

    @staticmethod
    def photo_request(path: str, gallery_ids: list[str], k: int, filters: list[str], *,
                      group_by_subject: bool = False, blind: bool = False) -> SearchRequest:
        data = Path(path).read_bytes()
        return SearchRequest((QueryImage("photo", data, 1.0, Path(path).name),), tuple(gallery_ids), k,
                             tuple(filters), group_by_subject, blind, f"Photo search: {Path(path).name}")

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
        new = replace(req, excluded=(*req.excluded, photo_sha256),
                      label=f"Excluding {name or photo_sha256[:12]}")
        return self.run(new)
