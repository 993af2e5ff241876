"""Attacks across units on the server, against the real embedded PostgreSQL (no mock).

Bob (unit B) calls every ``SECURITY DEFINER`` function of the schema on Alice's (unit A) gallery, faces and
requests; creates galleries for roles that are not units; probes unique keys and foreign keys for what
unit A holds; and attaches a face to unit A's photo. Each attack has its control: Alice can do the thing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import psycopg
import pytest
from pgvector.psycopg import register_vector

from engine.errors import GalleryError
from engine.gallery.pg import PgGallery
from tests.engine import conftest_pg
from tests.engine.conftest_pg import Agency, PgServer, make_agency, synthetic_photos

pg_server = conftest_pg.pg_server  # the shared server fixtures
pg_database = conftest_pg.pg_database


def _db(url: str, autocommit: bool = False) -> Any:
    """A connection typed loosely: the rows of raw SQL are checked by the assertions, not by the type checker."""
    return psycopg.connect(url, autocommit=autocommit)

SHA = "cd" * 32


@pytest.fixture
def agency(pg_server: PgServer, pg_database: str) -> Agency:
    return make_agency(pg_server, pg_database)


def _query() -> np.ndarray:
    v = np.random.default_rng(3).standard_normal(512).astype(np.float32)
    return v / np.linalg.norm(v)


def _connect(url: str) -> Any:
    conn = _db(url, autocommit=True)
    register_vector(conn)
    return conn


def _admin_one(agency: Agency, sql: str, params: tuple[Any, ...] = ()) -> Any:
    with _db(agency.admin) as conn:
        return conn.execute(sql, params).fetchone()


def _create_raw(conn: Any, name: str, role: str) -> None:
    """``create_gallery`` as an examiner would call it, whichever signature the server has."""
    nargs = conn.execute("SELECT pronargs FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
                         " WHERE n.nspname = 'sketchface' AND proname = 'create_gallery'").fetchone()[0]
    if nargs == 5:
        conn.execute("SELECT sketchface.create_gallery('0123456789ab', %s, %s, 16, 64)", (name, role))
    else:
        conn.execute("SELECT sketchface.create_gallery(%s, %s, 16, 64)", (name, role))


# -- set_model and every other SECURITY DEFINER function, as a non-member ---------------------------------
def test_set_model_as_a_non_member_writes_nothing(agency: Agency) -> None:
    ga = PgGallery.create(agency.alice, "Unit A", agency.unit_a)
    with _connect(agency.bob) as bob, pytest.raises(psycopg.errors.InsufficientPrivilege):
        bob.execute("SELECT sketchface.set_model(%s, %s)", (ga.id, SHA))
    assert _admin_one(agency, "SELECT model_sha256 FROM sketchface.galleries WHERE id = %s", (ga.id,))[0] is None
    ga.set_model_sha256("ef" * 32)  # control: the member sets it, once
    assert ga.model_sha256 == "ef" * 32
    with pytest.raises(GalleryError, match="embedded with ArcFace"):
        ga.set_model_sha256(SHA)


def _definer_functions(agency: Agency) -> set[str]:
    with _db(agency.admin) as conn:
        return {r[0] for r in conn.execute("SELECT proname FROM pg_proc p JOIN pg_namespace n ON n.oid ="
                                           " p.pronamespace WHERE n.nspname = 'sketchface' AND p.prosecdef")}


def test_every_security_definer_function_refuses_a_non_member(agency: Agency) -> None:
    ga = PgGallery.create(agency.alice, "Unit A", agency.unit_a)
    ga.push(synthetic_photos(0, 10))
    face = int(_admin_one(agency, "SELECT min(id) FROM sketchface.faces WHERE gallery_id = %s", (ga.id,))[0])
    with _connect(agency.alice) as alice:  # committed requests of Alice's that Bob will try to redeem
        search_ticket = alice.execute("SELECT sketchface.search(%s, %s, 3, 10, 40, '[]', %s, false, 'a')",
                                      ([ga.id], _query(), SHA)).fetchone()[0]
        details_ticket = alice.execute("SELECT sketchface.request_faces(%s, 'details', 'a')", ([face],)).fetchone()[0]
        thumbs_ticket = alice.execute("SELECT sketchface.request_faces(%s, 'thumbnails', 'a')",
                                      ([face],)).fetchone()[0]
        # controls: Alice redeems her own requests
        assert alice.execute("SELECT count(*) FROM sketchface.search_results(%s) WHERE face_id IS NOT NULL",
                             (search_ticket,)).fetchone()[0] == 3
        assert alice.execute("SELECT count(*) FROM sketchface.face_details(%s)", (details_ticket,)).fetchone()[0] == 1
        assert alice.execute("SELECT count(*) FROM sketchface.thumbnails(%s)", (thumbs_ticket,)).fetchone()[0] == 1
    version = ga.content_version
    calls: dict[str, Callable[[Any], object]] = {
        "search": lambda c: c.execute("SELECT sketchface.search(%s, %s, 3, 10, 40, '[]', %s, false, 'b')",
                                      ([ga.id], _query(), SHA)).fetchall(),
        "search_results": lambda c: c.execute("SELECT * FROM sketchface.search_results(%s)",
                                              (search_ticket,)).fetchall(),
        "request_faces": lambda c: c.execute("SELECT sketchface.request_faces(%s, 'details', 'b')",
                                             ([face],)).fetchall(),
        "face_details": lambda c: c.execute("SELECT * FROM sketchface.face_details(%s)", (details_ticket,)).fetchall(),
        "thumbnails": lambda c: c.execute("SELECT * FROM sketchface.thumbnails(%s)", (thumbs_ticket,)).fetchall(),
        "create_gallery": lambda c: _create_raw(c, "Planted", f"sf_unit_{agency.unit_a}"),
        "set_model": lambda c: c.execute("SELECT sketchface.set_model(%s, %s)", (ga.id, SHA)).fetchall(),
        # internal helpers: examiners may not execute them, and (granted below) they check membership too
        "member_galleries": lambda c: c.execute("SELECT sketchface.member_galleries(%s)", ([ga.id],)).fetchall(),
        "redeem": lambda c: c.execute("SELECT sketchface.redeem(%s, 'search')", (search_ticket,)).fetchall(),
        # a trigger function: reached only by writing photos, which row security refuses for another unit
        "bump_version": lambda c: c.execute("INSERT INTO sketchface.photos (gallery_id, sha256) VALUES (%s, %s)",
                                            (ga.id, "1" * 64)),
    }
    found = _definer_functions(agency)
    assert found <= set(calls), f"SECURITY DEFINER functions with no non-member test: {sorted(found - set(calls))}"
    for name in sorted(found):
        with _connect(agency.bob) as bob, pytest.raises(psycopg.errors.InsufficientPrivilege):
            calls[name](bob)
    # Each function's own check, not only the missing EXECUTE right: grant Bob every one, and try again.
    with _db(agency.admin, autocommit=True) as admin:
        for (signature,) in admin.execute("SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n"
                                          " ON n.oid = p.pronamespace WHERE n.nspname = 'sketchface' AND p.prosecdef"
                                          " AND p.prorettype <> 'trigger'::regtype").fetchall():
            admin.execute(f'GRANT EXECUTE ON FUNCTION {signature} TO "{agency.bob_user}"')
    for name in sorted(found):
        with _connect(agency.bob) as bob, pytest.raises(psycopg.errors.InsufficientPrivilege) as refused:
            calls[name](bob)
        assert "permission denied" not in str(refused.value), f"{name}: {refused.value}"
    with _connect(agency.bob) as bob, pytest.raises((psycopg.errors.InsufficientPrivilege,
                                                     psycopg.errors.FeatureNotSupported)):
        bob.execute("SELECT sketchface.bump_version()")  # not callable, and never outside a trigger
    assert ga.content_version == version and ga.model_sha256 is None
    assert _admin_one(agency, "SELECT count(*) FROM sketchface.access_log WHERE who = %s", (agency.bob_user,))[0] == 0


def test_a_request_is_refused_once_its_examiner_leaves_the_unit(agency: Agency) -> None:
    ga = PgGallery.create(agency.alice, "Unit A", agency.unit_a)
    ga.push(synthetic_photos(0, 5))
    with _connect(agency.alice) as alice:
        ticket = alice.execute("SELECT sketchface.search(%s, %s, 3, 10, 40, '[]', %s, false, 'a')",
                               ([ga.id], _query(), SHA)).fetchone()[0]
    with _db(agency.admin, autocommit=True) as admin:
        admin.execute(f'REVOKE "sf_unit_{agency.unit_a}" FROM "{agency.alice_user}"')
    with _connect(agency.alice) as alice, pytest.raises(psycopg.errors.InsufficientPrivilege):
        alice.execute("SELECT * FROM sketchface.search_results(%s)", (ticket,)).fetchall()


# -- units are unit roles only ----------------------------------------------------------------------------
def test_galleries_are_created_for_unit_roles_only(agency: Agency) -> None:
    for role in ("sketchface_app", agency.alice_user, "pg_read_all_data", "public", "nobody_here",
                 f"sf_unit_{agency.unit_b}"):
        with _connect(agency.alice) as alice, pytest.raises(psycopg.errors.InsufficientPrivilege):
            _create_raw(alice, f"Planted for {role}", role)
    assert _admin_one(agency, "SELECT count(*) FROM sketchface.galleries")[0] == 0
    assert PgGallery.list_all(agency.bob) == []
    g = PgGallery.create(agency.alice, "Real", agency.unit_a)  # control: the member's own unit
    assert [gid for gid, _, _ in PgGallery.list_all(agency.alice)] == [g.id]


def test_a_gallery_planted_for_the_application_role_is_hidden(agency: Agency) -> None:
    """A gallery that an older server accepted for a non-unit role is seen by no examiner."""
    with _db(agency.admin) as conn:
        conn.execute("INSERT INTO sketchface.galleries (id, name, unit_role, hnsw_m, hnsw_ef_construction)"
                     " VALUES ('aaaaaaaaaaaa', 'Planted', 'sketchface_app', 16, 64)")
    assert PgGallery.list_all(agency.bob) == [] and PgGallery.list_all(agency.alice) == []


# -- errors reveal nothing about other units --------------------------------------------------------------
def test_a_gallery_name_of_another_unit_is_not_revealed(agency: Agency) -> None:
    PgGallery.create(agency.alice, "Homicide 2024", agency.unit_a)
    gb = PgGallery.create(agency.bob, "Homicide 2024", agency.unit_b)  # no "already exists" from unit A
    assert gb.name == "Homicide 2024"
    with pytest.raises(GalleryError, match="already exists") as err:  # control: within the own unit it is refused
        PgGallery.create(agency.bob, "Homicide 2024", agency.unit_b)
    assert agency.unit_a not in str(err.value)


def _bob_photo(agency: Agency) -> tuple[PgGallery, int]:
    gb = PgGallery.create(agency.bob, "Unit B", agency.unit_b)
    gb.push(synthetic_photos(100, 101))
    return gb, int(_admin_one(agency, "SELECT min(id) FROM sketchface.photos WHERE gallery_id = %s", (gb.id,))[0])


def _insert_face(conn: Any, gallery: str, photo: int, face_no: int, face_id: int | None = None
                 ) -> None:
    cols, vals = ("id, ", "%s, ") if face_id is not None else ("", "")
    params = (face_id,) if face_id is not None else ()
    conn.execute(f"INSERT INTO sketchface.faces ({cols}gallery_id, photo_id, face_no, photo_sha256, bbox, is_primary,"
                 f" embedding) VALUES ({vals}%s, %s, %s, %s, '{{0,0,1,1}}', true, %s)",
                 (*params, gallery, photo, face_no, "9" * 64, _query()))


def _error(fn: Callable[[], object]) -> psycopg.Error:
    try:
        fn()
    except psycopg.Error as exc:
        return exc
    raise AssertionError("the write was accepted")


def _said(exc: psycopg.Error) -> str:
    diag = exc.diag
    return " ".join(x for x in (diag.message_primary, diag.message_detail, diag.message_hint) if x)


def test_unique_keys_do_not_reveal_another_units_faces(agency: Agency) -> None:
    ga = PgGallery.create(agency.alice, "Unit A", agency.unit_a)
    ga.push(synthetic_photos(0, 3))
    photo_a, face_a = (int(x) for x in _admin_one(agency, "SELECT min(photo_id), min(id) FROM sketchface.faces"
                                                          " WHERE gallery_id = %s", (ga.id,)))
    gb, photo_b = _bob_photo(agency)
    with _connect(agency.bob) as bob:
        probe_id = _error(lambda: _insert_face(bob, gb.id, photo_b, 5, face_id=face_a))
        assert not isinstance(probe_id, psycopg.errors.UniqueViolation), _said(probe_id)
        # (photo, face number) of unit A's photo, and of a photo id that exists nowhere: the same answer
        taken = _error(lambda: _insert_face(bob, gb.id, photo_a, 0))
        nowhere = _error(lambda: _insert_face(bob, gb.id, 10_000_000, 0))
    assert type(taken) is type(nowhere) and not isinstance(taken, psycopg.errors.UniqueViolation), _said(taken)
    assert re.sub(r"\d+", "N", _said(taken)) == re.sub(r"\d+", "N", _said(nowhere))


def test_a_face_cannot_be_attached_to_another_units_photo(agency: Agency) -> None:
    ga = PgGallery.create(agency.alice, "Unit A", agency.unit_a)
    ga.push(synthetic_photos(0, 1))
    photo_a = int(_admin_one(agency, "SELECT min(id) FROM sketchface.photos WHERE gallery_id = %s", (ga.id,))[0])
    gb, photo_b = _bob_photo(agency)
    with _connect(agency.bob) as bob:
        _error(lambda: _insert_face(bob, gb.id, photo_a, 7))
        _insert_face(bob, gb.id, photo_b, 7)  # control: a face on the unit's own photo is stored
    assert _admin_one(agency, "SELECT count(*) FROM sketchface.faces WHERE photo_id = %s AND gallery_id <> %s",
                      (photo_a, ga.id))[0] == 0
