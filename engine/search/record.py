"""A finished search, ready to record: the result, its query images and each candidate's own thumbnail.

Recording has two steps because the window reads galleries in its engine lane and writes the case in
its case lane: :func:`finish_search` (here) reads each candidate's thumbnail from the gallery that
returned it, while the galleries are open (one batch per gallery where the gallery can give several
at once); :func:`engine.workstation.record.record_finished` stores that in the case, in the use-case
layer, so search itself never imports cases.

Every thumbnail is keyed by (gallery id, face id): each local gallery numbers its faces from 1, so a
face id alone names a face in every gallery of a multi-gallery search, and the wrong one would be
recorded (and signed) as evidence.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from engine.types import Match

if TYPE_CHECKING:
    from engine.search.core import Query, SearchResult

FaceKey = tuple[str, int]
"""A candidate's identity in a search over several galleries: (gallery id, face id)."""


class ThumbnailSource(Protocol):
    """A gallery that can give a face's stored thumbnail (local and server galleries alike)."""

    @property
    def id(self) -> str: ...

    def thumbnail(self, face_id: int) -> bytes | None: ...


@runtime_checkable
class BatchThumbnailSource(Protocol):
    """A gallery that gives many faces' thumbnails in one request (a server gallery: one logged read)."""

    def thumbnails(self, face_ids: Iterable[int]) -> dict[int, bytes]: ...


def face_key(m: Match) -> FaceKey:
    """The key a candidate's thumbnail is stored and looked up under."""
    return (str(m.gallery_id), int(m.face_id))


def candidate_thumbnails(matches: Iterable[Match], galleries: Sequence[ThumbnailSource]) -> dict[FaceKey, bytes]:
    """The stored face thumbnail of each match, read from the gallery that returned it.

    A match whose gallery is not among ``galleries`` gets no thumbnail rather than another gallery's.
    A gallery offering ``thumbnails(ids)`` is asked once for all of its candidates: for a server gallery
    every read of faces is a logged request with its own round trips, so one per candidate would write
    one access-log row per face and cost two round trips each.
    """
    owners = {g.id: g for g in galleries}
    wanted: dict[str, dict[int, None]] = {}  # gallery id -> its candidates' face ids, in rank order, once each
    for m in matches:
        if m.gallery_id in owners:
            wanted.setdefault(m.gallery_id, {})[int(m.face_id)] = None
    out: dict[FaceKey, bytes] = {}
    for gallery_id, face_ids in wanted.items():
        owner = owners[gallery_id]
        if isinstance(owner, BatchThumbnailSource):
            found = owner.thumbnails(list(face_ids))
            thumbs = {f: found.get(f) for f in face_ids}
        else:
            thumbs = {f: owner.thumbnail(f) for f in face_ids}
        for face_id, thumb in thumbs.items():
            if thumb is not None:
                out[(str(gallery_id), face_id)] = thumb
    return out


@dataclass(frozen=True)
class FinishedSearch:
    """A search ready to be recorded: the result, its query images in manifest order, and each
    candidate's own thumbnail keyed by (gallery id, face id)."""

    result: SearchResult
    query_images: tuple[bytes, ...]
    thumbnails: Mapping[FaceKey, bytes] = field(default_factory=dict)

    @property
    def matches(self) -> list[Match]:
        return self.result.matches

    @property
    def manifest(self) -> dict[str, Any]:
        return self.result.manifest


def finish_search(result: SearchResult, queries: Sequence[Query],
                  galleries: Sequence[ThumbnailSource] | None = None) -> FinishedSearch:
    """Pair a result with its query images and its candidates' thumbnails (the galleries must be open;
    by default the galleries that answered the search)."""
    owners = list(galleries) if galleries is not None else list(result.galleries)
    return FinishedSearch(result, tuple(q.data for q in queries), candidate_thumbnails(result.matches, owners))
