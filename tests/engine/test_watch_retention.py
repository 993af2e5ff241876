"""Gallery retention: a dry run lists without removing; a real run removes from store, index and server, logs
why, and a case that recorded a removed face keeps its thumbnail and is told the face left the gallery."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import psycopg
import pytest

from engine import policy, servers
from engine.cases import create_case, open_case, watch_records
from engine.errors import ConfigError, GalleryError
from engine.gallery import retention
from engine.gallery.pg import PgGallery, UploadFace, UploadPhoto
from engine.search import Query
from engine.workstation import Workstation, server_key
from engine.workstation import watch as watch_mod
from tests.engine import conftest_pg
from tests.engine.conftest_pg import Agency, PgServer, make_agency
from tests.fixtures.photos import small_photo_folder

pg_server = conftest_pg.pg_server
pg_database = conftest_pg.pg_database

RULES = """
[[rule]]
name = "retention date passed"
field = "retain_until"
passed = true

[[rule]]
name = "released"
field = "status"
equals = "released"
"""


def _policy(text: str = RULES) -> None:
    path = policy.retention_policy_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_local_retention_dry_run_lists_and_real_run_removes_and_logs(installed_models: Path, tmp_path: Path) -> None:
    photos = small_photo_folder(tmp_path / "gallery", 5, seed=1)
    ws = Workstation()
    g = ws.create_gallery("Bookings")
    ws.add_photos(g.id, [tmp_path / "gallery"])
    with open(tmp_path / "meta.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "status", "retain_until"])
        w.writerow([photos[0], "released", ""])
        w.writerow([photos[1], "held", "2001-01-01"])
        w.writerow([photos[2], "held", "2999-01-01"])  # negative control: not yet due
    g.import_metadata(tmp_path / "meta.csv")
    with pytest.raises(ConfigError, match="No retention policy"):
        retention.retain(g)  # nothing is removed without the administrator's rules
    _policy()
    gone = {str(photos[0]), str(photos[1])}
    doomed = [f for pid, p in g.store.photo_paths() if p in gone for f in g.store.faces_of_photo(pid)]
    with create_case("2026-0300", "Retention") as case:  # a case recorded a face that will leave
        ws.record(case, ws.search([Query.from_path(photos[0], "photo")], [g.id], k=10))
        assert any(m.face_id in doomed for m in watch_records.searches.stored_matches(case, 1))
        watch_mod.add_watch(ws, case, 1, bar="rank<=1")
    count = g.store.face_count()
    dry = retention.retain(g, dry_run=True)
    assert {r.path for r in dry.removals} == gone and g.store.face_count() == count
    assert not (g.dir / retention.LOG_FILE).exists()
    real = retention.retain(g)
    assert {r.path for r in real.removals} == gone
    assert g.store.face_count() == count - len(doomed) and not g.store.face_infos(doomed)
    assert not set(doomed) & {int(i) for i in g.index.labels()}  # gone from the index
    for mode in ("exact", "hnsw"):
        hits = ws.search([Query.from_path(photos[0], "photo")], [g.id], k=50, mode=mode).matches
        assert not {m.face_id for m in hits} & set(doomed)  # and from either search
    log = [json.loads(line) for line in (g.dir / retention.LOG_FILE).read_text().splitlines()]
    assert {e["path"]: e["rule"] for e in log} == {str(photos[0]): "released", str(photos[1]): "retention date passed"}
    report = watch_mod.run_watches(ws)
    assert "left the gallery" in report.rows[0]["reason"]
    with open_case("2026-0300") as case:
        [run] = watch_records.list_runs(case)
        assert set(run["galleries"][0]["left_gallery"]) == {m.face_id for m in watch_records.searches.stored_matches(
            case, 1) if m.face_id in doomed}
        rows = case.conn.execute("SELECT thumbnail_path, thumbnail_sha256 FROM results WHERE search_id = 1 AND "
                                 f"face_id IN ({','.join(map(str, doomed))})").fetchall()
        assert rows and all(case.read_file(p, s) for p, s in rows)  # the case keeps its own thumbnails
    ws.close()


def _photo(i: int, meta: dict[str, str]) -> UploadPhoto:
    v = np.random.default_rng(i).standard_normal(512).astype(np.float32)
    face = UploadFace((0.0, 0.0, 10.0, 10.0), 0.9, 0.5, 1.0, True, v / np.linalg.norm(v), b"\xff\xd8thumb")
    return UploadPhoto(hashlib.sha256(str(i).encode()).hexdigest(), f"/photos/{i}.jpg", [face], meta=meta)


@pytest.fixture
def agency(pg_server: PgServer, pg_database: str) -> Agency:
    return make_agency(pg_server, pg_database)


def test_server_retention_dry_run_lists_and_real_run_removes_and_logs(agency: Agency, monkeypatch: pytest.MonkeyPatch,
                                                                      pg_server: PgServer) -> None:
    _policy()
    g = PgGallery.create(agency.alice, "Bookings", agency.unit_a, server="hq")
    g.push([_photo(1, {"status": "released"}), _photo(2, {"retain_until": "2001-01-01"}),
            _photo(3, {"retain_until": "2999-01-01"}), _photo(4, {})])
    ws = Workstation()
    monkeypatch.setenv(servers.PASSWORD_ENV, "pw-alice")
    servers.add_profile("hq", agency.alice.replace(":pw-alice@", "@"), agency.unit_a)
    with pytest.raises(GalleryError, match="administrator"):
        retention.retain(ws.open_any(server_key("hq", g.id)))  # an examiner may not purge
    monkeypatch.setenv(servers.PASSWORD_ENV, pg_server.password)
    servers.add_profile("admin", agency.admin)  # the administrator: the schema's owner
    admin_g = ws.open_any(server_key("admin", g.id))
    version = g.content_version
    dry = retention.retain(admin_g, dry_run=True)
    assert {r.path for r in dry.removals} == {"/photos/1.jpg", "/photos/2.jpg"} and g.face_count() == 4
    assert g.content_version == version
    real = retention.retain(admin_g)
    assert len(real.removals) == 2 and g.face_count() == 2 and g.content_version > version
    found, _ = g.search(_photo(1, {}).faces[0].embedding, 4, exact=True)
    assert {f for f, _ in found}.isdisjoint({f for r in real.removals for f in r.faces})
    with psycopg.connect(agency.admin) as conn:
        log = conn.execute("SELECT path, rule FROM sketchface.retention_log ORDER BY path").fetchall()
        assert log == [("/photos/1.jpg", "released"), ("/photos/2.jpg", "retention date passed")]
        with pytest.raises(psycopg.Error, match="append-only"):
            conn.execute("DELETE FROM sketchface.retention_log")
    ws.close()
