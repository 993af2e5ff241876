"""Record a finished search in a case: run manifest, query images, ranked list and candidate thumbnails.

One function for every front-end (the ``search --case`` command, the demo, the window), so a search
stored headless is the same record as one stored from the window.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.cases import Case, SearchRecord
    from engine.gallery import Gallery
    from engine.search.core import Query, SearchResult


def candidate_thumbnails(result: SearchResult, galleries: Sequence[Gallery]) -> dict[int | tuple[str, int], bytes]:
    """The stored face thumbnail of each match, keyed by (gallery id, face id)."""
    owners = {g.id: g for g in galleries}
    out: dict[int | tuple[str, int], bytes] = {}
    for m in result.matches:
        owner = owners.get(m.gallery_id)
        thumb = owner.thumbnail(m.face_id) if owner is not None else None
        if thumb is not None:
            out[(m.gallery_id, m.face_id)] = thumb
    return out


def record_search(case: Case, result: SearchResult, queries: Sequence[Query], galleries: Sequence[Gallery], *,
                  label: str = "", blind: bool = False, user: str | None = None) -> SearchRecord:
    """Store ``result`` in ``case`` (one audited entry) with the query images and candidate thumbnails.

    Args:
        galleries: the open galleries the search ran on (their thumbnails are copied into the case).
        blind: store for blind review (shuffled, scores hidden until every candidate is decided).
    """
    from engine.cases import add_search

    return add_search(case, result.run, result.matches, [q.data for q in queries],
                      thumbnails=candidate_thumbnails(result, galleries), blind=blind, label=label, user=user)
