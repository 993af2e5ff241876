"""Shared galleries against a real PostgreSQL + pgvector server (started by the tests; no mock)."""

from __future__ import annotations

import hashlib
import secrets
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psycopg
import pytest

from engine.errors import GalleryError
from engine.gallery.pg import (
    PgGallery,
    UploadFace,
    UploadPhoto,
    create_examiner,
    index_matches_table,
    install_schema,
    search_many,
)
from tests.engine import conftest_pg
from tests.engine.conftest_pg import PgServer, synthetic_photos

pg_server = conftest_pg.pg_server  # the shared server fixtures
pg_database = conftest_pg.pg_database

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Agency:
    admin: str
    alice: str  # unit A
    bob: str  # unit B
    unit_a: str
    unit_b: str


@pytest.fixture
def agency(pg_server: PgServer, pg_database: str) -> Agency:
    """A database with the schema, two units and one examiner in each (login roles unique per test)."""
    tag = secrets.token_hex(3)
    install_schema(pg_database)
    db = pg_database.rsplit("/", 1)[1]
    create_examiner(pg_database, f"alice_{tag}", "pw-alice", [f"a_{tag}"])
    create_examiner(pg_database, f"bob_{tag}", "pw-bob", [f"b_{tag}"])
    return Agency(pg_database, pg_server.url(f"alice_{tag}", "pw-alice", db), pg_server.url(f"bob_{tag}", "pw-bob", db),
                  f"a_{tag}", f"b_{tag}")


def _unit(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, 512)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_parallel_and_killed_imports_store_each_photo_once(agency: Agency) -> None:
    g = PgGallery.create(agency.alice, "Bookings", agency.unit_a)
    worker = "from tests.engine.conftest_pg import push_worker as w; import sys; w(*sys.argv[1:3], *map(int, sys.argv[3:6]), float(sys.argv[6]))"

    def start(lo: int, hi: int, batch: int, pause: float) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-c", worker, agency.alice, g.id, str(lo), str(hi), str(batch),
                                 str(pause)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    one, two = start(0, 400, 40, 0.0), start(200, 600, 40, 0.0)
    third = start(0, 600, 20, 0.2)
    assert third.stdout is not None
    for _ in range(2):  # two batches committed, then killed mid-import
        assert third.stdout.readline().startswith("batch"), third.stderr.read() if third.stderr else ""
    third.send_signal(signal.SIGKILL)
    third.wait()
    assert third.returncode == -signal.SIGKILL
    for p in (one, two):
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    rerun = start(0, 600, 100, 0.0)
    _, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err

    expected_faces = sum(len(p.faces) for p in synthetic_photos(0, 600))
    with psycopg.connect(agency.admin) as conn:
        photos, distinct = conn.execute("SELECT count(*), count(DISTINCT sha256) FROM sketchface.photos"
                                        " WHERE gallery_id = %s", (g.id,)).fetchone()
        faces, dup = conn.execute("SELECT count(*), count(*) - count(DISTINCT (photo_id, face_no))"
                                  " FROM sketchface.faces WHERE gallery_id = %s", (g.id,)).fetchone()
    assert (photos, distinct) == (600, 600)
    assert (faces, dup) == (expected_faces, 0)
    assert g.info().faces == expected_faces
    check = index_matches_table(agency.admin, g.id)
    assert check["ok"], check


def test_index_check_notices_faces_outside_the_index(agency: Agency) -> None:
    """Negative control of the index/table check: a face the HNSW index cannot reach is reported."""
    g = PgGallery.create(agency.alice, "Controls", agency.unit_a)
    g.push(synthetic_photos(0, 40))
    with psycopg.connect(agency.admin) as conn:
        conn.execute(f"DROP INDEX sketchface.faces_hnsw_{g.id}")
    assert not index_matches_table(agency.admin, g.id)["ok"]


def test_unit_a_gets_nothing_from_unit_b(agency: Agency) -> None:
    gb = PgGallery.create(agency.bob, "Unit B bookings", agency.unit_b)
    gb.push(synthetic_photos(0, 50))
    q = _unit(1, 1)[0]
    hits, _ = gb.search(q, 5)
    assert len(hits) == 5  # control: unit B itself finds its faces
    with pytest.raises(GalleryError):
        PgGallery(agency.alice, gb.id)
    with psycopg.connect(agency.alice) as conn:
        from pgvector.psycopg import register_vector

        register_vector(conn)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # another unit's gallery: refused, not empty
            conn.execute("SELECT sketchface.search(%s, %s, 5, 20, 40, '[]', %s, false, '')", ([gb.id], q, "0" * 64))
    with psycopg.connect(agency.alice) as conn:
        assert conn.execute("SELECT count(*) FROM sketchface.photos").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM sketchface.galleries").fetchone()[0] == 0
    for purpose in ("details", "thumbnails"):
        with psycopg.connect(agency.alice) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT sketchface.request_faces(ARRAY[1, 2, 3]::bigint[], %s, '')", (purpose,))
    with psycopg.connect(agency.alice) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT embedding, thumbnail FROM sketchface.faces").fetchall()
    with psycopg.connect(agency.alice) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("INSERT INTO sketchface.photos (gallery_id, sha256) VALUES (%s, %s)", (gb.id, "a" * 64))
    ga = PgGallery.create(agency.alice, "Own", agency.unit_a)
    with psycopg.connect(agency.alice) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("INSERT INTO sketchface.photos (gallery_id, sha256, added_by) VALUES (%s, %s, 'someone')",
                     (ga.id, "b" * 64))  # who added a photo is the server's to say
    with psycopg.connect(agency.alice) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT sketchface.create_gallery('x', %s, 16, 64)", (f"sf_unit_{agency.unit_b}",))


def test_exact_server_search_equals_embedded_exact_scan(agency: Agency) -> None:
    g = PgGallery.create(agency.alice, "Exact", agency.unit_a)
    vecs = _unit(400, 42)
    photos = [UploadPhoto(hashlib.sha256(b"exact%d" % i).hexdigest(), f"/e/{i}.jpg",
                          [UploadFace((0, 0, 1, 1), 1, 1, 1, True, vecs[i])]) for i in range(400)]
    g.push(photos)
    with psycopg.connect(agency.admin) as conn:
        stored = [r[0] for r in conn.execute("SELECT id FROM sketchface.faces WHERE gallery_id = %s", (g.id,))]
    details = g.face_details(stored)
    ids = np.asarray(sorted(details))
    by_sha = {p.sha256: i for i, p in enumerate(photos)}
    vectors = vecs[[by_sha[details[f]["photo_sha256"]] for f in ids]]
    for seed in range(5):
        q = _unit(1, 100 + seed)[0]
        scores = vectors @ q
        order = np.lexsort((ids, -scores))[:10]
        exact, _ = g.search(q, 10, exact=True)
        assert [f for f, _ in exact] == ids[order].tolist()
        np.testing.assert_allclose([s for _, s in exact], scores[order], atol=1e-5)
        approx, _ = g.search(q, 10)  # HNSW candidates, exact re-rank: same list on a small gallery
        assert [f for f, _ in approx] == ids[order].tolist()


def test_one_percent_filter_returns_k(agency: Agency) -> None:
    g = PgGallery.create(agency.alice, "Selective", agency.unit_a, m=16, ef_construction=64)
    g.push(synthetic_photos(0, 1500))  # sex=F on 1 % of the photos (i % 100 == 7)
    q = _unit(1, 5)[0]
    hits, _ = g.search(q, 10, filters=["sex=F"], ef=20)
    assert len(hits) == 10
    details = g.face_details([f for f, _ in hits])
    assert all(details[f]["sex"] == "F" for f, _ in hits)
    red, _ = g.search(q, 10, filters=["hair=red", "sex!=F"])  # a free-text extra from the metadata
    assert len(red) == 10 and all(d["extras"] == {"hair": "red"} and d["sex"] == "M"
                                  for d in g.face_details([f for f, _ in red]).values())
    # The same through the HNSW index for sure (planner steered off the btree + sort plan): still k.
    steer = ("SET enable_bitmapscan = off", "SET enable_sort = off", "SET enable_seqscan = off")
    from pgvector.psycopg import register_vector

    with psycopg.connect(agency.alice, autocommit=True) as conn:
        register_vector(conn)
        for statement in steer:
            conn.execute(statement)
        ticket = conn.execute("SELECT sketchface.search(%s, %s, 10, 10, 20, %s, %s, false, '')",
                              ([g.id], q, '[{"column": "sex", "op": "=", "value": "F"}]', "0" * 64)).fetchone()[0]
        rows = conn.execute("SELECT face_id FROM sketchface.search_results(%s) WHERE face_id IS NOT NULL",
                            (ticket,)).fetchall()
    assert len(rows) == 10
    # Control: that index scan without pgvector's iterative scan comes back short of k.
    sql = (f"SELECT id FROM sketchface.faces WHERE gallery_id = '{g.id}' AND sex = 'F'"
           " ORDER BY embedding::halfvec(512) <#> %s::halfvec(512) LIMIT 10")
    with psycopg.connect(agency.admin) as conn:
        register_vector(conn)
        for statement in (*steer, "SET hnsw.ef_search = 20", "SET hnsw.iterative_scan = off"):
            conn.execute(statement)
        plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + sql, (q,)))
        short = conn.execute(sql, (q,)).fetchall()
    assert f"faces_hnsw_{g.id}" in plan
    assert len(short) < 10


def test_every_search_is_logged_and_the_log_is_append_only(agency: Agency) -> None:
    g = PgGallery.create(agency.alice, "Logged", agency.unit_a)
    gb = PgGallery.create(agency.bob, "Other unit", agency.unit_b)
    g.push(synthetic_photos(0, 30))
    sha = hashlib.sha256(b"sketch.png").hexdigest()
    g.search(_unit(1, 1)[0], 5, query_sha256=sha)
    g.search(_unit(1, 2)[0], 5, filters=["sex=F"], exact=True, query_sha256=sha)
    with psycopg.connect(agency.alice) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        from pgvector.psycopg import register_vector

        register_vector(conn)  # a search of another unit's gallery is refused, and so hands out nothing
        conn.execute("SELECT sketchface.search(%s, %s, 5, 20, 40, '[]', %s, false, 'ws1')",
                     ([gb.id], _unit(1, 3)[0], sha))
    with psycopg.connect(agency.admin) as conn:
        rows = conn.execute("SELECT who, galleries, requested, query_sha256, exact, at FROM sketchface.access_log"
                            " ORDER BY id").fetchall()
    user = agency.alice.split("://")[1].split(":")[0]
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in rows] == [
        (user, [g.id], [g.id], sha, False), (user, [g.id], [g.id], sha, True)]
    for statement in ("DELETE FROM sketchface.access_log", "UPDATE sketchface.access_log SET who = 'x'",
                      "TRUNCATE sketchface.access_log"):
        with psycopg.connect(agency.alice) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)
    with psycopg.connect(agency.alice) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("INSERT INTO sketchface.access_log (galleries, requested, query_sha256, k, exact, who)"
                     " VALUES ('{}', '{}', 'x', 1, false, 'someone_else')")
    with psycopg.connect(agency.admin) as conn, pytest.raises(psycopg.errors.RaiseException):
        conn.execute("DELETE FROM sketchface.access_log")  # even the owner: the trigger refuses


def test_content_version_grows_with_every_change_only(agency: Agency) -> None:
    g = PgGallery.create(agency.alice, "Versions", agency.unit_a)
    v0 = g.content_version
    g.push(synthetic_photos(0, 10))
    v1 = g.content_version
    g.push(synthetic_photos(0, 10))  # nothing new: same version
    assert g.content_version == v1 > v0
    g.push(synthetic_photos(10, 12))
    assert g.content_version > v1
    _, seen = g.search(_unit(1, 1)[0], 3)
    assert seen == g.content_version


def test_push_rejects_bad_sha256_whole_batch(agency: Agency) -> None:
    g = PgGallery.create(agency.alice, "Strict", agency.unit_a)
    v = _unit(1, 0)[0]
    bad = [UploadPhoto("not-a-digest", "/x.jpg", [UploadFace((0, 0, 1, 1), 1, 1, 1, True, v)])]
    with pytest.raises(psycopg.errors.CheckViolation):
        g.push(synthetic_photos(0, 5) + bad)
    assert g.info().photos == 0  # the batch is one transaction: nothing half-stored


def test_search_many_reads_each_gallery_version(agency: Agency) -> None:
    g1 = PgGallery.create(agency.alice, "One", agency.unit_a)
    g2 = PgGallery.create(agency.alice, "Two", agency.unit_a)
    g1.push(synthetic_photos(0, 20))
    g2.push(synthetic_photos(20, 30))
    out = search_many([g1, g2], _unit(1, 9)[0], 5)
    assert set(out) == {g1.id, g2.id}
    assert out[g1.id][1] == g1.content_version and out[g2.id][1] == g2.content_version
