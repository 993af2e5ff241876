"""Record a finished search in a case: run manifest, query images, ranked list and candidate thumbnails.

One path for every front-end (the ``search --case`` command, the demo, the window and re-runs), so a
search stored headless is the same record as one stored from the window. It sits in the use-case
layer because it joins two domains: search (:func:`engine.search.finish_search` reads each candidate's
thumbnail, keyed by (gallery id, face id), while the galleries are open) and cases (the audited write).

Every thumbnail is keyed by (gallery id, face id): each local gallery numbers its faces from 1, so a
face id alone names a face in every gallery of a multi-gallery search, and the wrong one would be
recorded (and signed) as evidence.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.cases import Case, SearchRecord, add_search
from engine.cases.authorization import record_authorization
from engine.search.core import Query, SearchResult
from engine.search.record import FinishedSearch, ThumbnailSource, finish_search
from engine.workstation.authorize import Authorization, check_recordable


def record_finished(case: Case, finished: FinishedSearch, *, label: str = "", blind: bool = False,
                    user: str | None = None, authorization: Authorization | None = None) -> SearchRecord:
    """Store a finished search in ``case`` (one audited entry) with its query images and thumbnails.

    Args:
        blind: store for blind review (shuffled, scores hidden until every candidate is decided).
        authorization: the policy's authorization the search ran under, kept with it in the same
            transaction (both commit together or neither does). Under the agency's search policy
            file it is required: every front-end records through here, so none can skip it.
    """
    check_recordable(authorization)
    with case.write():
        record = add_search(case, finished.result.run, finished.matches, list(finished.query_images),
                            thumbnails=finished.thumbnails, blind=blind, label=label, user=user)
        if authorization is not None:
            record_authorization(case, record.id, authorization.fields, authorization.policy_sha256, user=user)
    return record


def record_search(case: Case, result: SearchResult, queries: Sequence[Query],
                  galleries: Sequence[ThumbnailSource] | None = None, *, label: str = "", blind: bool = False,
                  user: str | None = None) -> SearchRecord:
    """Store ``result`` in ``case`` with the query images and candidate thumbnails (both steps at once).

    Args:
        galleries: the open galleries the search ran on (default: those that answered it).
        blind: store for blind review (shuffled, scores hidden until every candidate is decided).
    """
    return record_finished(case, finish_search(result, queries, galleries), label=label, blind=blind, user=user)
