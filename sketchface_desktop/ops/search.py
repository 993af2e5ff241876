"""Search operations: a request, run in the engine lane, returns the engine's result and face thumbnails.

The query images are the bytes that are embedded and recorded (convention 10). A sketch travels as
the whole sheet with the canvas guide box: the engine crops it (``engine.sketch.preprocess``), the
same way for search and reconstruction, and records the box in the run manifest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sketchface_desktop.ops.base import Op
from sketchface_desktop.ops.galleries import open_any, server_key

if TYPE_CHECKING:
    from engine.search.record import FinishedSearch
    from engine.workstation.authorize import Authorization
    from sketchface_desktop.engine_session import EngineSession

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class QueryImage:
    """One query image: kind ("sketch" or "photo"), bytes, fusion weight, display name, sketch face box."""

    kind: str
    data: bytes
    weight: float = 1.0
    name: str = ""
    face_box: Box | None = None


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
    # Under the agency's search policy: the engine's authorization (fields, effective list length, the
    # policy file's SHA-256), checked by the engine's search and recorded with it in its case (None: no policy).
    authorization: Authorization | None = None

    @property
    def title(self) -> str:
        kinds = " + ".join(sorted({q.kind for q in self.queries}))
        return self.label or f"Searching {len(self.gallery_ids)} gallery(ies) by {kinds}"


def window_keys(manifest: Mapping[str, Any]) -> dict[str, str]:
    """The window's key of each server gallery a run manifest names (engine id -> ``pg:PROFILE:ID``).

    The engine and the case key a candidate by the gallery id the manifest records; the window opens a
    server gallery by its profile too, so rows carry both.
    """
    out: dict[str, str] = {}
    for g in manifest.get("galleries") or []:
        if isinstance(g, Mapping) and g.get("server"):
            out[str(g["id"])] = server_key(str(g["server"]), str(g["id"]))
    return out


@dataclass(frozen=True)
class ResultRow:
    """One candidate as the grid shows it (``score``/``rank`` None while a blind review hides them).

    ``gallery_id`` is the window's key of the gallery (``pg:PROFILE:ID`` for a server gallery), used to
    open it; ``recorded_gallery_id`` is the id the engine and the case know it by ("" when the same).
    """

    position: int
    rank: int | None
    score: float | None
    gallery_id: str
    gallery_name: str
    face_id: int
    photo_id: int
    photo_path: str
    photo_sha256: str
    subject_id: str | None
    baseline: bool
    group_size: int = 1
    decision: str = "not_reviewed"
    note: str = ""
    thumbnail_file: str | None = None  # a stored case thumbnail (absolute path), else read from the gallery
    bbox: tuple[float, float, float, float] | None = None
    recorded_gallery_id: str = ""

    @property
    def case_gallery_id(self) -> str:
        """The gallery id the case records this candidate under (decisions name it)."""
        return self.recorded_gallery_id or self.gallery_id

    @classmethod
    def from_match(cls, m: Any, keys: Mapping[str, str] | None = None) -> ResultRow:
        key = (keys or {}).get(m.gallery_id, m.gallery_id)
        return cls(m.rank, m.rank, float(m.score), key, getattr(m, "gallery_name", "") or m.gallery_id,
                   m.face_id, m.photo_id, m.photo_path, m.photo_sha256, m.subject_id, bool(m.baseline),
                   int(m.group_size), bbox=getattr(m, "bbox", None),
                   recorded_gallery_id=m.gallery_id if key != m.gallery_id else "")

    @classmethod
    def from_candidate(cls, c: Any, case_folder: str | None, names: dict[str, str],
                       keys: Mapping[str, str] | None = None) -> ResultRow:
        thumb = str(Path(case_folder) / c.thumbnail_path) if case_folder and c.thumbnail_path else None
        key = (keys or {}).get(c.gallery_id, c.gallery_id)
        name = names.get(key) or getattr(c, "gallery_name", "") or c.gallery_id
        return cls(c.position, c.rank, c.score, key, name, c.face_id,
                   c.photo_id, c.photo_path, c.photo_sha256, c.subject_id, bool(c.baseline), int(c.group_size),
                   c.decision, c.note, thumb, recorded_gallery_id=c.gallery_id if key != c.gallery_id else "")


def read_face_thumbnail(session: Any, row: ResultRow) -> bytes | None:
    """The face crop of a result: the copy stored in the case when there is one, else the gallery's."""
    if row.thumbnail_file:
        try:
            return Path(row.thumbnail_file).read_bytes()
        except OSError:
            pass
    return open_any(session, row.gallery_id).thumbnail(row.face_id)


def sketch_request(png: bytes, face_box: Box | None, gallery_ids: list[str], k: int, filters: list[str], *,
                   extra_sketches: list[bytes] | None = None, group_by_subject: bool = False,
                   blind: bool = False) -> SearchRequest:
    """A sketch search (fused with ``extra_sketches``, e.g. the case's other saved versions)."""
    queries = [QueryImage("sketch", png, 1.0, "current sketch", face_box)]
    queries += [QueryImage("sketch", s, 1.0, f"saved sketch {i + 1}") for i, s in enumerate(extra_sketches or [])]
    label = "Sketch search" + (f" (fusion of {len(queries)})" if len(queries) > 1 else "")
    return SearchRequest(tuple(queries), tuple(gallery_ids), k, tuple(filters), group_by_subject, blind, label)


def photo_request(path: str, gallery_ids: list[str], k: int, filters: list[str], *,
                  group_by_subject: bool = False, blind: bool = False) -> SearchRequest:
    data = Path(path).read_bytes()
    return SearchRequest((QueryImage("photo", data, 1.0, Path(path).name),), tuple(gallery_ids), k,
                         tuple(filters), group_by_subject, blind, f"Photo search: {Path(path).name}")


def run_search(session: EngineSession, request: SearchRequest, cancel: Any) -> FinishedSearch:
    """Engine lane: the workstation's one search over the ticked galleries, local, server or both.

    The workstation opens each gallery by its key (``pg:PROFILE:ID`` names a server gallery), searches
    them as one list by exact score, and reads each candidate's thumbnail from its own gallery, keyed
    by (gallery, face): the window decides nothing about gallery kinds. The matches keep the engine's
    gallery ids (what the case records and a re-run returns); the window maps server galleries to its
    own keys with :func:`window_keys`.
    """
    from engine.search import Query

    queries = [Query(q.kind, q.data, q.weight, q.name, face_box=q.face_box) for q in request.queries]
    filters = list(request.filters) + [f"photo_sha256!={sha}" for sha in request.excluded]
    return session.search(queries, list(request.gallery_ids), k=request.k, filters=filters,
                          group_by_subject=request.group_by_subject, cancel=cancel,
                          authorization=request.authorization)


def search(session: EngineSession, request: SearchRequest) -> Op[FinishedSearch]:
    """The search op: engine lane (models and indexes), cancellable, shown in the jobs panel."""
    return Op(request.title, lambda _p, cancel: run_search(session, request, cancel), lane="engine")


def candidate_face(session: EngineSession, gallery_id: str, face_id: int, photo_path: str,
                   bbox: Box | None) -> Op[Any]:
    """The candidate's face cut from its original photo (or the stored thumbnail), for the compare view."""
    def work(_p: Any, _c: Any) -> Any:
        box = bbox
        g = open_any(session, gallery_id)
        if box is None:  # the gallery's own record of the face, whatever kind of gallery it is
            detail = g.searchable().face_details([face_id]).get(face_id)
            box = detail.bbox if detail else None
        return face_crop(photo_path, box) or g.thumbnail(face_id)

    return Op("Reading candidate photo", work, lane="io", visible=False)


def sketch_crop(png: bytes, face_box: Box | None) -> Op[bytes]:
    """The square of the sheet the encoder sees (engine preprocessing), for the compare overlay."""
    def work(_p: Any, _c: Any) -> bytes:
        from engine.sketch.preprocess import crop_sketch_png

        return crop_sketch_png(png, face_box)

    return Op("Cropping the sketch", work, lane="io", visible=False)


def face_crop(photo_path: str, bbox: Box | None, margin: float = 0.25) -> bytes | None:
    """The candidate's face from the original photo as PNG (larger than the 112 px thumbnail), or None."""
    import cv2
    import numpy as np

    data = np.fromfile(photo_path, np.uint8) if Path(photo_path).is_file() else None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data is not None and data.size else None
    if image is None:
        return None
    if bbox is not None:
        x1, y1, x2, y2 = bbox
        side = max(x2 - x1, y2 - y1) * (1 + 2 * margin)
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        h, w = image.shape[:2]
        left, top = max(0, int(cx - side / 2)), max(0, int(cy - side / 2))
        right, bottom = min(w, int(cx + side / 2)), min(h, int(cy + side / 2))
        if right > left and bottom > top:
            image = image[top:bottom, left:right]
    ok, buf = cv2.imencode(".png", image)
    return bytes(buf) if ok else None


def session_rerunner(session: EngineSession) -> Any:
    """The workstation's case re-runner, on the models and gallery objects it already holds; it returns
    the candidates' thumbnails too, so the stored re-run keeps them."""
    return session.rerunner()
