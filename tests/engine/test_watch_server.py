"""A watch over a server gallery (the real embedded PostgreSQL): the planted person flagged exactly once, with
the server's own thumbnail, each delta search in the access log."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest

from engine import servers
from engine.cases import create_case, open_case, watch_records
from engine.gallery.pg import PgGallery
from engine.search import Query
from engine.workstation import Workstation, server_key
from engine.workstation import watch as watch_mod
from tests.engine import conftest_pg
from tests.engine.conftest_pg import Agency, PgServer, make_agency
from tests.fixtures.photos import small_photo_folder

pg_server = conftest_pg.pg_server
pg_database = conftest_pg.pg_database


@pytest.fixture
def agency(pg_server: PgServer, pg_database: str, monkeypatch: pytest.MonkeyPatch) -> Agency:
    found = make_agency(pg_server, pg_database)
    monkeypatch.setenv(servers.PASSWORD_ENV, "pw-alice")
    servers.add_profile("hq", found.alice.replace(":pw-alice@", "@"), found.unit_a)
    return found


def test_a_planted_person_on_a_server_gallery_is_flagged_exactly_once(agency: Agency, installed_models: Path,
                                                                     tmp_path: Path) -> None:
    small_photo_folder(tmp_path / "gallery", 5, seed=1)
    planted = small_photo_folder(tmp_path / "planted", 1, seed=9)[0]
    g = PgGallery.create(servers.conninfo(servers.get_profile("hq")), "Bookings", agency.unit_a, server="hq")
    ref = server_key("hq", g.id)
    ws = Workstation()
    ws.add_photos(ref, [tmp_path / "gallery"])
    with create_case("2026-0200", "Cold case on the server") as case:
        ws.record(case, ws.search([Query.from_path(planted, "photo")], [ref], k=5))
        watch_mod.add_watch(ws, case, 1, bar="rank<=1")
    assert watch_mod.run_watches(ws).hits == 0  # nothing new: no hit
    (tmp_path / "new").mkdir()
    small_photo_folder(tmp_path / "new", 2, seed=3)
    shutil.copy(planted, tmp_path / "new" / "booked_person.jpg")
    before = ws.server_gallery(ref).face_count()
    ws.add_photos(ref, [tmp_path / "new"])
    report = watch_mod.run_watches(ws)
    assert report.hits == 1 and report.rows[0]["faces_searched"] == ws.server_gallery(ref).face_count() - before
    with open_case("2026-0200") as case:
        [hit] = watch_records.list_hits(case)
        server = ws.server_gallery(ref)
        assert hit.gallery_id == g.id and hit.row["photo_path"].endswith("booked_person.jpg")
        assert hit.thumbnail_path is not None
        assert case.read_file(hit.thumbnail_path, hit.thumbnail_sha256) == server.thumbnail(hit.face_id)
        assert hit.content_version == server.content_version
        assert case.verify().ok
    assert watch_mod.run_watches(ws).hits == 0  # flagged once, never again
    with open_case("2026-0200") as case:
        assert len(watch_records.list_hits(case)) == 1
    with psycopg.connect(agency.admin) as conn:  # the delta search was an exact, logged request
        kinds = conn.execute("SELECT exact, filters::text FROM sketchface.access_log WHERE kind = 'search' "
                             "ORDER BY id DESC LIMIT 1").fetchone()
    assert kinds is not None and kinds[0] is True and "face_id" not in kinds[1] and '"id"' in kinds[1]
    ws.close()
