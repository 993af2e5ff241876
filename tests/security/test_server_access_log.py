"""Attacks on the server's access log, against the real embedded PostgreSQL (no mock).

An examiner talks SQL to the server directly, so the client's transaction is the attacker's: a search or
a read of faces inside ``BEGIN ... ROLLBACK`` or a savepoint must hand out nothing, or leave its log row.
Each attack below counts the log rows (as the administrator) and the faces the attacker obtained.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import psycopg
import pytest
from pgvector.psycopg import register_vector
from psycopg.pq import TransactionStatus

from engine.gallery.pg import PgGallery
from tests.engine import conftest_pg
from tests.engine.conftest_pg import Agency, PgServer, make_agency, synthetic_photos

pg_server = conftest_pg.pg_server  # the shared server fixtures
pg_database = conftest_pg.pg_database


def _db(url: str, autocommit: bool = False) -> Any:
    """A connection typed loosely: the rows of raw SQL are checked by the assertions, not by the type checker."""
    return psycopg.connect(url, autocommit=autocommit)

SHA = "ab" * 32


@pytest.fixture
def agency(pg_server: PgServer, pg_database: str) -> Agency:
    return make_agency(pg_server, pg_database)


@pytest.fixture
def filled(agency: Agency) -> PgGallery:
    """Unit A's gallery with 40 photos (48 faces)."""
    g = PgGallery.create(agency.alice, "Bookings", agency.unit_a)
    g.push(synthetic_photos(0, 40))
    return g


def _query(seed: int = 1) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(512).astype(np.float32)
    return v / np.linalg.norm(v)


def _log_rows(agency: Agency) -> int:
    with _db(agency.admin) as conn:
        return int(conn.execute("SELECT count(*) FROM sketchface.access_log").fetchone()[0])


def _face_ids(agency: Agency, gallery_id: str) -> list[int]:
    with _db(agency.admin) as conn:
        return [int(r[0]) for r in conn.execute("SELECT id FROM sketchface.faces WHERE gallery_id = %s ORDER BY id",
                                                (gallery_id,))]


def _guarded(conn: Any, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    """Run one attempt inside a savepoint of the attacker's open transaction: a refusal yields nothing."""
    if conn.info.transaction_status == TransactionStatus.IDLE:
        conn.execute("SELECT 1")  # BEGIN: the attempt below is then a savepoint, never a transaction of its own
    try:
        with conn.transaction():
            return list(conn.execute(sql, params).fetchall())
    except psycopg.Error:
        return []


def _search_hits(conn: Any, gallery_id: str) -> list[int]:
    """Every face id a raw ``sketchface.search`` call yields in this transaction, however the server hands them out
    (rows of hits, or a request whose results are then asked for)."""
    rows = _guarded(conn, "SELECT * FROM sketchface.search(%s, %s, 5, 20, 40, '[]', %s, false, 'attacker')",
                    ([gallery_id], _query(), SHA))
    if rows and len(rows[0]) >= 3:  # hits straight away
        return [int(r[1]) for r in rows]
    ids: list[int] = []
    for (ticket,) in rows:  # a request: try to redeem it in the same transaction
        ids += [int(r[1]) for r in _guarded(conn, "SELECT gallery_id, face_id FROM sketchface.search_results(%s)"
                                                  " WHERE face_id IS NOT NULL", (ticket,))]
    return ids


def _read(conn: Any, ids: list[int], purpose: str, direct: str, reader: str) -> list[Any]:
    """Rows a raw read of faces yields in this transaction: the direct call (if the server has one), else a
    request and then its results."""
    rows = [r for i in ([ids] if "[]" in direct else ids) for r in _guarded(conn, direct, (i,)) if r[-1] is not None]
    if rows:
        return rows
    tickets = _guarded(conn, "SELECT sketchface.request_faces(%s, %s, 'attacker')", (ids, purpose))
    return [r for (t,) in tickets for r in _guarded(conn, f"SELECT * FROM sketchface.{reader}(%s)", (t,))]


def _details(conn: Any, ids: list[int]) -> list[Any]:
    return _read(conn, ids, "details", "SELECT * FROM sketchface.face_details(%s::bigint[])", "face_details")


def _thumbnails(conn: Any, ids: list[int]) -> list[Any]:
    return _read(conn, ids, "thumbnails", "SELECT sketchface.thumbnail(%s::bigint)", "thumbnails")


def test_begin_search_rollback_hands_out_nothing(agency: Agency, filled: PgGallery) -> None:
    before = _log_rows(agency)
    with _db(agency.alice) as conn:
        register_vector(conn)
        got = _search_hits(conn, filled.id)
        conn.rollback()
    assert _log_rows(agency) == before, "the rolled-back attempt left a row: then it may hand out results"
    assert got == [], f"BEGIN; search; ROLLBACK handed out {len(got)} face(s) with no access-log row"


def test_search_in_a_savepoint_rolled_back_hands_out_nothing(agency: Agency, filled: PgGallery) -> None:
    before = _log_rows(agency)
    with _db(agency.alice) as conn:
        register_vector(conn)
        conn.execute("SELECT 1")  # an open transaction block
        conn.execute("SAVEPOINT hide")
        got = _search_hits(conn, filled.id)
        conn.execute("ROLLBACK TO SAVEPOINT hide")
        conn.commit()
    assert _log_rows(agency) == before
    assert got == [], f"a savepoint search handed out {len(got)} face(s) with no access-log row"


def test_a_request_rolled_back_cannot_be_redeemed_later(agency: Agency, filled: PgGallery) -> None:
    """The request of a rolled-back transaction is gone with its log row: a later transaction gets nothing."""
    with _db(agency.alice) as conn:
        register_vector(conn)
        tickets = _guarded(conn, "SELECT * FROM sketchface.search(%s, %s, 5, 20, 40, '[]', %s, false, 'x')",
                           ([filled.id], _query(), SHA))
        conn.rollback()
        if tickets and len(tickets[0]) == 1:
            later = _guarded(conn, "SELECT * FROM sketchface.search_results(%s)", (tickets[0][0],))
            conn.commit()
            assert later == []


def test_face_details_and_thumbnails_in_a_rolled_back_transaction_hand_out_nothing(
        agency: Agency, filled: PgGallery) -> None:
    ids = _face_ids(agency, filled.id)
    before = _log_rows(agency)
    with _db(agency.alice) as conn:
        details, thumbs = _details(conn, ids), _thumbnails(conn, ids[:5])
        conn.rollback()
    assert _log_rows(agency) == before
    assert details == [], f"metadata of {len(details)} face(s) read in bulk with no access-log row"
    assert thumbs == [], f"{len(thumbs)} thumbnail(s) read with no access-log row"


def test_every_read_of_faces_is_logged(agency: Agency, filled: PgGallery) -> None:
    """Control and rule: the product's own reads work, and each one leaves exactly one row naming what it read."""
    ids = _face_ids(agency, filled.id)
    before = _log_rows(agency)
    hits, _ = filled.search(_query(), 5, query_sha256=SHA)
    assert len(hits) == 5
    assert _log_rows(agency) == before + 1
    details = filled.face_details(ids[:7])
    assert sorted(details) == ids[:7] and all(d["photo_sha256"] for d in details.values())
    assert _log_rows(agency) == before + 2
    assert filled.thumbnail(ids[0]) == b"\xff\xd8thumb"
    assert _log_rows(agency) == before + 3
    with _db(agency.admin) as conn:
        rows = conn.execute("SELECT who, kind, galleries, faces FROM sketchface.access_log ORDER BY id").fetchall()
    assert [(r[0], r[1], r[2]) for r in rows[-3:]] == [
        (agency.alice_user, "search", [filled.id]), (agency.alice_user, "details", [filled.id]),
        (agency.alice_user, "thumbnails", [filled.id])]
    assert rows[-2][3] == ids[:7] and rows[-1][3] == ids[:1]


def test_a_committed_search_is_handed_out_to_its_examiner(agency: Agency, filled: PgGallery) -> None:
    """Control: the raw two-step protocol works for the member, outside an open transaction block."""
    with _db(agency.alice, autocommit=True) as conn:
        register_vector(conn)
        (ticket,) = conn.execute("SELECT sketchface.search(%s, %s, 5, 20, 40, '[]', %s, false, 'ws')",
                                 ([filled.id], _query(), SHA)).fetchone()
        rows = conn.execute("SELECT face_id FROM sketchface.search_results(%s) WHERE face_id IS NOT NULL",
                            (ticket,)).fetchall()
    assert len(rows) == 5


def test_an_examiner_cannot_insert_into_the_log(agency: Agency, filled: PgGallery) -> None:
    before = _log_rows(agency)
    for who in ("", ", 'someone_else'"):
        column = ", who" if who else ""
        with _db(agency.alice) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f"INSERT INTO sketchface.access_log (galleries, requested, query_sha256, k, exact{column})"
                         f" VALUES (ARRAY[%s], ARRAY[%s], %s, 5, false{who})", (filled.id, filled.id, SHA))
    assert _log_rows(agency) == before
    for statement in ("DELETE FROM sketchface.access_log", "UPDATE sketchface.access_log SET who = 'x'",
                      "TRUNCATE sketchface.access_log", "INSERT INTO sketchface.access_hits VALUES (1, 'x', 1, 1, 1)",
                      "SELECT * FROM sketchface.access_hits"):
        with _db(agency.alice) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)


def test_an_open_request_cannot_be_redeemed_from_another_connection(agency: Agency, filled: PgGallery) -> None:
    """A second connection of the same examiner does not see the uncommitted request: nothing is handed out."""
    with _db(agency.alice) as conn, _db(agency.alice, autocommit=True) as other:
        register_vector(conn)
        (ticket,) = conn.execute("SELECT sketchface.search(%s, %s, 5, 20, 40, '[]', %s, false, 'x')",
                                 ([filled.id], _query(), SHA)).fetchone()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            other.execute("SELECT * FROM sketchface.search_results(%s)", (ticket,)).fetchall()
        conn.rollback()


def test_a_request_is_redeemed_only_for_what_it_logged(agency: Agency, filled: PgGallery) -> None:
    """A search request does not open face details, nor a details request thumbnails; a request that names one
    face or gallery of another unit is refused whole, and leaves no row."""
    other = PgGallery.create(agency.bob, "Unit B", agency.unit_b)
    other.push(synthetic_photos(200, 203))
    own, foreign = _face_ids(agency, filled.id)[0], _face_ids(agency, other.id)[0]
    with _db(agency.alice, autocommit=True) as conn:
        register_vector(conn)
        (ticket,) = conn.execute("SELECT sketchface.search(%s, %s, 5, 20, 40, '[]', %s, false, 'x')",
                                 ([filled.id], _query(), SHA)).fetchone()
        (details,) = conn.execute("SELECT sketchface.request_faces(%s, 'details', 'x')", ([own],)).fetchone()
        for reader, t in (("face_details", ticket), ("thumbnails", details), ("search_results", details)):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"SELECT * FROM sketchface.{reader}(%s)", (t,)).fetchall()
        before = _log_rows(agency)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT sketchface.request_faces(%s, 'details', 'x')", ([own, foreign],))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT sketchface.search(%s, %s, 5, 20, 40, '[]', %s, false, 'x')",
                         ([filled.id, other.id], _query(), SHA))
        assert _log_rows(agency) == before
