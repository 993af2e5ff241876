"""Recording a search over a server gallery reads its candidates' thumbnails in one logged request.

Every read of faces from a server gallery writes an access-log row and costs two round trips, so reading
the thumbnails one face at a time would log one request per candidate. Against the real embedded
PostgreSQL: the access-log rows written while a search is finished for recording, and the thumbnails
still keyed by (gallery, face) beside a local gallery that numbers its faces the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
import pytest

from engine.gallery.pg import PgGallery
from engine.search.core import Query
from engine.search.record import candidate_thumbnails, finish_search
from engine.types import Match
from tests.engine import conftest_pg
from tests.engine.conftest_pg import Agency, PgServer, make_agency, synthetic_photos

pg_server = conftest_pg.pg_server  # the shared server fixtures
pg_database = conftest_pg.pg_database

K = 12


@pytest.fixture
def agency(pg_server: PgServer, pg_database: str) -> Agency:
    return make_agency(pg_server, pg_database)


@pytest.fixture
def gallery(agency: Agency) -> PgGallery:
    """Unit A's server gallery with 30 photos, opened as its examiner."""
    g = PgGallery.create(agency.alice, "Bookings", agency.unit_a)
    g.push(synthetic_photos(0, 30))
    return g


@dataclass
class LocalStandIn:
    """A local gallery as the recorder sees it: one thumbnail per call, numbered from 1 like every local gallery."""

    id: str
    calls: int = 0

    def thumbnail(self, face_id: int) -> bytes | None:
        self.calls += 1
        return f"local {face_id}".encode()


@dataclass
class Result:
    matches: list[Match]
    manifest: dict[str, Any]
    run: Any = None


def _log_rows(agency: Agency) -> int:
    with psycopg.connect(agency.admin) as conn:
        row = conn.execute("SELECT count(*) FROM sketchface.access_log").fetchone()
        assert row is not None
        return int(row[0])


def _search(g: PgGallery) -> list[Match]:
    q = np.random.default_rng(3).standard_normal(512).astype(np.float32)
    hits, _ = g.search(q / np.linalg.norm(q), K)
    return [Match(rank, score, g.id, face_id, 0, "", "") for rank, (face_id, score) in enumerate(hits, 1)]


def test_a_server_gallerys_thumbnails_are_one_logged_request_not_one_per_face(
        agency: Agency, gallery: PgGallery) -> None:
    matches = _search(gallery)
    assert len(matches) == K
    local = LocalStandIn("local")
    # The local gallery's candidates carry the same face ids as the server's: keying must keep them apart.
    both = [*matches, *(Match(K + i, 0.1, local.id, m.face_id, 0, "", "") for i, m in enumerate(matches, 1))]
    before = _log_rows(agency)
    finished = finish_search(Result(both, {}), [Query("sketch", b"sketch")], [gallery, local])  # type: ignore[arg-type]
    logged = _log_rows(agency) - before
    assert logged == 1, f"{logged} access-log rows for the thumbnails of {K} server faces (one batch expected)"
    assert local.calls == K
    expected_server = gallery.thumbnails([m.face_id for m in matches])
    assert len(expected_server) == K
    assert {key: t for key, t in finished.thumbnails.items() if key[0] == gallery.id} == {
        (gallery.id, f): t for f, t in expected_server.items()}
    assert all(finished.thumbnails[(local.id, m.face_id)] == f"local {m.face_id}".encode() for m in matches)
    assert finished.query_images == (b"sketch",)


def test_a_match_from_a_gallery_not_given_gets_no_thumbnail_and_no_request(
        agency: Agency, gallery: PgGallery) -> None:
    matches = _search(gallery)
    before = _log_rows(agency)
    stray = Match(1, 0.9, "elsewhere", matches[0].face_id, 0, "", "")
    assert candidate_thumbnails([stray], [gallery]) == {}
    assert _log_rows(agency) == before
