"""Server administration attacks and upgrades, against the real embedded PostgreSQL (no mock).

``server grant`` must be all or nothing and must say clearly when it has no password to read; the hints must
name commands that exist; and a server installed by an older SketchFace must get every fix of the access log
and of unit membership from ``server init``, its galleries and log kept.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from engine import servers
from engine.cli import build_parser
from engine.errors import GalleryError
from engine.gallery.pg import PgGallery, create_examiner, install_schema
from tests.engine import conftest_pg
from tests.engine.conftest_pg import Agency, PgServer, make_agency, synthetic_photos

pg_server = conftest_pg.pg_server  # the shared server fixtures
pg_database = conftest_pg.pg_database


def _db(url: str, autocommit: bool = False) -> Any:
    """A connection typed loosely: the rows of raw SQL are checked by the assertions, not by the type checker."""
    return psycopg.connect(url, autocommit=autocommit)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def agency(pg_server: PgServer, pg_database: str) -> Agency:
    return make_agency(pg_server, pg_database)


def _role_exists(admin: str, name: str) -> bool:
    with _db(admin) as conn:
        return conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone() is not None


def _grant_cli(pg_server: PgServer, admin: str, *args: str, stdin: str | None) -> subprocess.CompletedProcess[str]:
    """``sketchface server grant adm ARGS`` in a fresh process with no controlling terminal."""
    db = admin.rsplit("/", 1)[1]
    servers.add_profile("adm", f"postgresql://postgres@127.0.0.1:{pg_server.port}/{db}")
    env = {**os.environ, servers.PASSWORD_ENV: pg_server.password,
           "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    return subprocess.run([sys.executable, "-m", "engine.cli", "server", "grant", "adm", *args], cwd=REPO,
                          input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=120, env=env, start_new_session=True)


def test_grant_with_a_bad_unit_creates_no_login(agency: Agency) -> None:
    with pytest.raises(GalleryError):
        create_examiner(agency.admin, "carol_x1", "pw-carol", ["good_unit", "Bad-Unit"])
    assert not _role_exists(agency.admin, "carol_x1")
    assert not _role_exists(agency.admin, "sf_unit_good_unit")  # nothing half-done


def test_grant_refuses_unit_and_application_roles_as_logins(agency: Agency) -> None:
    for name in (f"sf_unit_{agency.unit_a}", "sketchface_app"):
        with pytest.raises(GalleryError):
            create_examiner(agency.admin, name, "pw", [agency.unit_b])
    with _db(agency.admin) as conn:
        assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolcanlogin AND rolname IN (%s, 'sketchface_app')",
                            (f"sf_unit_{agency.unit_a}",)).fetchone()[0] == 0


def test_grant_command_with_a_bad_unit_or_no_terminal(pg_server: PgServer, agency: Agency) -> None:
    bad = _grant_cli(pg_server, agency.admin, "dave_x1", "good_unit", "Bad-Unit", stdin="pw-dave\n")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr, bad.stderr
    assert not _role_exists(agency.admin, "dave_x1")
    blind = _grant_cli(pg_server, agency.admin, "erin_x1", agency.unit_a, stdin=None)
    assert blind.returncode == 1, blind.stderr
    assert "Traceback" not in blind.stderr and "EOFError" not in blind.stderr, blind.stderr
    assert "password" in blind.stderr.lower()
    assert not _role_exists(agency.admin, "erin_x1")
    ok = _grant_cli(pg_server, agency.admin, "frank_x1", agency.unit_a, stdin="pw-frank\n")  # control
    assert ok.returncode == 0, ok.stderr
    db = agency.admin.rsplit("/", 1)[1]
    frank = pg_server.url("frank_x1", "pw-frank", db)
    g = PgGallery.create(frank, "Frank's", agency.unit_a)
    assert g.id in {gid for gid, _, _ in PgGallery.list_all(agency.alice)}


def test_the_hint_for_an_unknown_gallery_names_a_real_command(agency: Agency) -> None:
    with pytest.raises(GalleryError) as err:
        PgGallery.open(agency.alice, "no such gallery", "hq")
    hint = err.value.hint or ""
    assert "sketchface " in hint, hint
    command = hint.split("sketchface ", 1)[1].split("'", 1)[0]
    args = build_parser().parse_args(shlex.split(command.replace("PROFILE", "hq")))
    assert args.func is not None


# -- an existing server gets the fixes on "server init" ---------------------------------------------------
V1_SCHEMA = r'''

CREATE EXTENSION IF NOT EXISTS vector;
CREATE SCHEMA IF NOT EXISTS sketchface;
SET LOCAL search_path = sketchface, public;
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sketchface_app') THEN CREATE ROLE sketchface_app NOLOGIN; END IF;
END $$;
CREATE TABLE IF NOT EXISTS meta (key text PRIMARY KEY, value text NOT NULL);
INSERT INTO meta VALUES ('schema_version', '1') ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS galleries (
  id text PRIMARY KEY, name text NOT NULL UNIQUE, unit_role name NOT NULL,
  model_sha256 text, content_version bigint NOT NULL DEFAULT 0, dim int NOT NULL DEFAULT 512,
  hnsw_m int NOT NULL, hnsw_ef_construction int NOT NULL, ef_search int NOT NULL DEFAULT 200,
  created timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS photos (
  id bigserial PRIMARY KEY, gallery_id text NOT NULL REFERENCES galleries(id) ON DELETE CASCADE,
  sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'), path text, status text NOT NULL DEFAULT 'ok',
  width int, height int, face_count int NOT NULL DEFAULT 0, added timestamptz NOT NULL DEFAULT now(),
  added_by name NOT NULL DEFAULT session_user, UNIQUE (gallery_id, sha256));
CREATE TABLE IF NOT EXISTS faces (
  id bigserial PRIMARY KEY, gallery_id text NOT NULL, photo_id bigint NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
  face_no int NOT NULL, photo_sha256 text NOT NULL, path text, bbox real[] NOT NULL,
  det_score real, quality real, blur real, is_primary boolean NOT NULL,
  subject_id text, sex text, birth_year int, source text, date text, extras jsonb NOT NULL DEFAULT '{}',
  embedding vector(512) NOT NULL, thumbnail bytea, UNIQUE (photo_id, face_no));
-- Fresh statistics soon after bulk pushes, so the planner picks the HNSW scan (not a sort of every row).
ALTER TABLE faces SET (autovacuum_analyze_scale_factor = 0.02, autovacuum_analyze_threshold = 1000);
CREATE INDEX IF NOT EXISTS faces_gallery ON faces (gallery_id);
CREATE INDEX IF NOT EXISTS faces_subject ON faces (gallery_id, subject_id);
CREATE TABLE IF NOT EXISTS access_log (
  id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp(),
  who name NOT NULL DEFAULT session_user, galleries text[] NOT NULL, requested text[] NOT NULL,
  query_sha256 text NOT NULL, k int NOT NULL, filters jsonb NOT NULL DEFAULT '[]', exact boolean NOT NULL,
  workstation text);

CREATE OR REPLACE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'the access log is append-only'; END $$;
DROP TRIGGER IF EXISTS access_log_append_only ON access_log;
CREATE TRIGGER access_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON access_log
  FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

CREATE OR REPLACE FUNCTION bump_version() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = sketchface, public, pg_temp AS $$
BEGIN
  UPDATE galleries g SET content_version = content_version + 1
   WHERE g.id IN (SELECT DISTINCT gallery_id FROM changed);
  RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS photos_bump_ins ON photos;
CREATE TRIGGER photos_bump_ins AFTER INSERT ON photos REFERENCING NEW TABLE AS changed
  FOR EACH STATEMENT EXECUTE FUNCTION bump_version();
DROP TRIGGER IF EXISTS photos_bump_del ON photos;
CREATE TRIGGER photos_bump_del AFTER DELETE ON photos REFERENCING OLD TABLE AS changed
  FOR EACH STATEMENT EXECUTE FUNCTION bump_version();

CREATE OR REPLACE FUNCTION is_member(p_role name) RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT pg_has_role(session_user, p_role, 'MEMBER') $$;

ALTER TABLE galleries ENABLE ROW LEVEL SECURITY;
ALTER TABLE photos ENABLE ROW LEVEL SECURITY;
ALTER TABLE faces ENABLE ROW LEVEL SECURITY;
ALTER TABLE access_log ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS unit_galleries ON galleries;
CREATE POLICY unit_galleries ON galleries FOR SELECT USING (is_member(unit_role));
DROP POLICY IF EXISTS unit_photos ON photos;
CREATE POLICY unit_photos ON photos USING (gallery_id IN (SELECT id FROM galleries))
  WITH CHECK (gallery_id IN (SELECT id FROM galleries));
DROP POLICY IF EXISTS unit_faces ON faces;
CREATE POLICY unit_faces ON faces USING (gallery_id IN (SELECT id FROM galleries))
  WITH CHECK (gallery_id IN (SELECT id FROM galleries));
DROP POLICY IF EXISTS own_log_rows ON access_log;
CREATE POLICY own_log_rows ON access_log FOR INSERT WITH CHECK (who = session_user);

REVOKE ALL ON ALL TABLES IN SCHEMA sketchface FROM PUBLIC, sketchface_app;
GRANT USAGE ON SCHEMA sketchface TO sketchface_app;
GRANT SELECT ON meta, galleries TO sketchface_app;
GRANT SELECT (id, gallery_id, sha256, status, face_count, added) ON photos TO sketchface_app;
GRANT INSERT (gallery_id, sha256, path, status, width, height, face_count) ON photos TO sketchface_app;
GRANT INSERT ON faces TO sketchface_app;
GRANT SELECT (id, gallery_id, photo_id, face_no) ON faces TO sketchface_app;
GRANT INSERT (galleries, requested, query_sha256, k, filters, exact, workstation) ON access_log TO sketchface_app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA sketchface TO sketchface_app;


SET LOCAL search_path = sketchface, public;
CREATE OR REPLACE FUNCTION filter_sql(p_filters jsonb) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE f jsonb; sql text := ''; op text; col text; typ text;
BEGIN
  FOR f IN SELECT * FROM jsonb_array_elements(coalesce(p_filters, '[]')) LOOP
    op := f->>'op';
    IF op NOT IN ('=', '!=', '>=', '<=', '>', '<') THEN RAISE EXCEPTION 'bad filter operator %', op; END IF;
    col := f->>'column'; typ := f->>'type';
    IF col IS NOT NULL THEN
      IF col NOT IN ('subject_id', 'sex', 'birth_year', 'source', 'date', 'quality', 'det_score', 'blur', 'is_primary', 'photo_sha256', 'path') THEN
        RAISE EXCEPTION 'bad filter column %', col; END IF;
      sql := sql || format(' AND %I %s %L', col, op, f->>'value');
    ELSIF typ = 'number' THEN
      sql := sql || format(' AND (extras->>%L)::float8 %s %L::float8', f->>'key', op, f->>'value');
    ELSE
      sql := sql || format(' AND extras->>%L %s %L', f->>'key', op, f->>'value');
    END IF;
  END LOOP;
  RETURN sql;
END $$;

CREATE OR REPLACE FUNCTION allowed_galleries(p_galleries text[]) RETURNS text[] LANGUAGE sql STABLE
SECURITY DEFINER SET search_path = sketchface, public, pg_temp AS $$
  SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM galleries
   WHERE id = ANY(p_galleries) AND pg_has_role(session_user, unit_role, 'MEMBER') $$;

CREATE OR REPLACE FUNCTION search(p_galleries text[], p_query vector, p_k int, p_candidates int, p_ef int,
    p_filters jsonb, p_query_sha256 text, p_exact boolean, p_workstation text)
RETURNS TABLE (gallery_id text, face_id bigint, score float8) LANGUAGE plpgsql VOLATILE
SECURITY DEFINER SET search_path = sketchface, public, pg_temp AS $$
DECLARE allowed text[]; g text; w text;
BEGIN
  allowed := allowed_galleries(p_galleries);
  INSERT INTO access_log (who, galleries, requested, query_sha256, k, filters, exact, workstation)
  VALUES (session_user, allowed, p_galleries, p_query_sha256, p_k, coalesce(p_filters, '[]'), p_exact,
          p_workstation);
  w := filter_sql(p_filters);
  PERFORM set_config('hnsw.ef_search', greatest(p_ef, 1)::text, true);
  PERFORM set_config('hnsw.iterative_scan', 'relaxed_order', true);
  PERFORM set_config('enable_indexscan', CASE WHEN p_exact THEN 'off' ELSE 'on' END, true);
  PERFORM set_config('enable_bitmapscan', CASE WHEN p_exact THEN 'off' ELSE 'on' END, true);
  FOREACH g IN ARRAY allowed LOOP
    IF p_exact THEN
      RETURN QUERY EXECUTE format('SELECT %L::text, f.id, -(f.embedding <#> $1)::float8 FROM faces f'
        ' WHERE f.gallery_id = %L%s ORDER BY f.embedding <#> $1, f.id LIMIT $2', g, g, w) USING p_query, p_k;
    ELSE
      RETURN QUERY EXECUTE format('SELECT %L::text, c.id, -(c.embedding <#> $1)::float8 FROM (SELECT f.id,'
        ' f.embedding FROM faces f WHERE f.gallery_id = %L%s ORDER BY f.embedding::halfvec(512) <#>'
        ' $1::halfvec(512) LIMIT $2) c', g, g, w) USING p_query, greatest(p_candidates, p_k);
    END IF;
  END LOOP;
END $$;

CREATE OR REPLACE FUNCTION face_details(p_ids bigint[])
RETURNS TABLE (face_id bigint, gallery_id text, photo_id bigint, photo_sha256 text, path text, bbox real[],
               quality real, is_primary boolean, subject_id text, sex text, birth_year int, source text,
               date text, extras jsonb)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = sketchface, public, pg_temp AS $$
  SELECT f.id, f.gallery_id, f.photo_id, f.photo_sha256, f.path, f.bbox, f.quality, f.is_primary, f.subject_id,
         f.sex, f.birth_year, f.source, f.date, f.extras
    FROM faces f JOIN galleries g ON g.id = f.gallery_id
   WHERE f.id = ANY(p_ids) AND pg_has_role(session_user, g.unit_role, 'MEMBER') $$;

CREATE OR REPLACE FUNCTION thumbnail(p_face bigint) RETURNS bytea LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = sketchface, public, pg_temp AS $$
  SELECT f.thumbnail FROM faces f JOIN galleries g ON g.id = f.gallery_id
   WHERE f.id = p_face AND pg_has_role(session_user, g.unit_role, 'MEMBER') $$;

CREATE OR REPLACE FUNCTION create_gallery(p_id text, p_name text, p_unit_role name, p_m int, p_efc int)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = sketchface, public, pg_temp AS $$
BEGIN
  IF NOT pg_has_role(session_user, p_unit_role, 'MEMBER') THEN
    RAISE EXCEPTION 'role % is not a member of unit role %', session_user, p_unit_role
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF p_id !~ '^[0-9a-f]{12}$' THEN RAISE EXCEPTION 'bad gallery id %', p_id; END IF;
  INSERT INTO galleries (id, name, unit_role, hnsw_m, hnsw_ef_construction) VALUES (p_id, p_name, p_unit_role, p_m, p_efc);
  EXECUTE format('CREATE INDEX %I ON faces USING hnsw ((embedding::halfvec(512)) halfvec_ip_ops)'
                 ' WITH (m = %s, ef_construction = %s) WHERE gallery_id = %L',
                 'faces_hnsw_' || p_id, p_m, p_efc, p_id);
END $$;

CREATE OR REPLACE FUNCTION set_model(p_gallery text, p_sha text) RETURNS text LANGUAGE plpgsql
SECURITY DEFINER SET search_path = sketchface, public, pg_temp AS $$
DECLARE cur text;
BEGIN
  SELECT model_sha256 INTO cur FROM galleries g WHERE id = p_gallery
     AND pg_has_role(session_user, g.unit_role, 'MEMBER') FOR UPDATE;
  IF cur IS NULL THEN UPDATE galleries SET model_sha256 = p_sha WHERE id = p_gallery; RETURN p_sha; END IF;
  RETURN cur;
END $$;

REVOKE ALL ON FUNCTION search, face_details, thumbnail, create_gallery, set_model, allowed_galleries FROM PUBLIC;
GRANT EXECUTE ON FUNCTION search, face_details, thumbnail, create_gallery, set_model, allowed_galleries
  TO sketchface_app;
'''


def _vector_text(v: Any) -> str:
    return "[" + ",".join(repr(float(x)) for x in np.asarray(v, np.float32)) + "]"


def _v1_server(pg_server: PgServer, admin: str) -> tuple[str, str, str]:
    """The schema as an earlier SketchFace installed it, two units, one gallery with faces, a log row and a
    gallery planted for the application role; returns (alice url, bob url, alice's gallery id)."""
    db = admin.rsplit("/", 1)[1]
    with _db(admin, autocommit=True) as conn:
        with conn.transaction():
            conn.execute(V1_SCHEMA)
        for user, unit in (("alice_v1", "sf_unit_a_v1"), ("bob_v1", "sf_unit_b_v1")):
            conn.execute(f"CREATE ROLE {unit} NOLOGIN")
            conn.execute(f"CREATE ROLE {user} LOGIN PASSWORD 'pw'")
            conn.execute(f"GRANT sketchface_app, {unit} TO {user}")
    alice, bob = pg_server.url("alice_v1", "pw", db), pg_server.url("bob_v1", "pw", db)
    with _db(alice, autocommit=True) as conn:
        conn.execute("SELECT sketchface.create_gallery('a1a1a1a1a1a1', 'Old bookings', 'sf_unit_a_v1', 16, 64)")
        conn.execute("SELECT sketchface.create_gallery('b2b2b2b2b2b2', 'Planted', 'sketchface_app', 16, 64)")
        conn.execute("INSERT INTO sketchface.access_log (galleries, requested, query_sha256, k, exact)"
                     " VALUES ('{a1a1a1a1a1a1}', '{a1a1a1a1a1a1}', 'old', 5, false)")
    with _db(admin) as conn:  # faces as an older workstation pushed them
        for p in synthetic_photos(0, 6):
            pid = conn.execute("INSERT INTO sketchface.photos (gallery_id, sha256, path, face_count) VALUES"
                               " ('a1a1a1a1a1a1', %s, %s, %s) RETURNING id",
                               (p.sha256, p.path, len(p.faces))).fetchone()[0]
            for n, f in enumerate(p.faces):
                conn.execute("INSERT INTO sketchface.faces (gallery_id, photo_id, face_no, photo_sha256, bbox,"
                             " is_primary, embedding, thumbnail) VALUES ('a1a1a1a1a1a1', %s, %s, %s, '{0,0,1,1}', %s,"
                             " %s::vector, 'x')", (pid, n, p.sha256, n == 0, _vector_text(f.embedding)))
    with _db(admin) as conn:
        photo_a = conn.execute("SELECT min(id) FROM sketchface.photos").fetchone()[0]
    with _db(bob) as conn:  # the old attack: a face of unit B attached to unit A's photo
        conn.execute("SELECT sketchface.create_gallery('c3c3c3c3c3c3', 'Bob old', 'sf_unit_b_v1', 16, 64)")
        conn.execute("INSERT INTO sketchface.faces (gallery_id, photo_id, face_no, photo_sha256, bbox, is_primary,"
                     " embedding) VALUES ('c3c3c3c3c3c3', %s, 9, %s, '{0,0,1,1}', true, %s::vector)",
                     (photo_a, "9" * 64, _vector_text(np.ones(512) / np.sqrt(512))))
    return alice, bob, "a1a1a1a1a1a1"


def test_server_init_upgrades_an_older_schema(pg_server: PgServer, pg_database: str) -> None:
    alice, bob, gid = _v1_server(pg_server, pg_database)
    with pytest.raises(GalleryError, match="server init"):  # an old server is named as such, not misused
        PgGallery.open(alice, gid)
    install_schema(pg_database)
    install_schema(pg_database)  # idempotent
    with _db(pg_database) as conn:
        assert conn.execute("SELECT value FROM sketchface.meta WHERE key = 'schema_version'").fetchone()[0] == "2"
        assert conn.execute("SELECT count(*) FROM sketchface.access_log").fetchone()[0] == 1  # the log is kept
        old = [r[0] for r in conn.execute("SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON"
                                          " n.oid = p.pronamespace WHERE n.nspname = 'sketchface' AND (proname IN"
                                          " ('allowed_galleries', 'thumbnail') OR (proname = 'face_details' AND"
                                          " proargtypes[0] = 'bigint[]'::regtype) OR (proname = 'search' AND"
                                          " prorettype <> 'bigint'::regtype))")]
    assert old == [], f"functions of the old schema still installed: {old}"
    g = PgGallery.open(alice, gid)
    hits, _ = g.search(synthetic_photos(0, 1)[0].faces[0].embedding, 3)
    assert len(hits) == 3
    assert [r[1] for r in PgGallery.list_all(bob)] == ["Bob old"]  # the planted gallery is hidden
    with _db(pg_database) as conn:  # the stored cross-unit face is kept (evidence) and reported
        assert conn.execute("SELECT convalidated FROM pg_constraint WHERE conname = 'faces_photo_same_gallery'"
                            ).fetchone()[0] is False
        photo_a = conn.execute("SELECT min(id) FROM sketchface.photos").fetchone()[0]
    with _db(bob) as conn, pytest.raises(psycopg.errors.ForeignKeyViolation):  # new ones refused
        conn.execute("INSERT INTO sketchface.faces (gallery_id, photo_id, face_no, photo_sha256, bbox, is_primary,"
                     " embedding) VALUES ('c3c3c3c3c3c3', %s, 10, %s, '{0,0,1,1}', true, %s::vector)",
                     (photo_a, "9" * 64, _vector_text(np.ones(512) / np.sqrt(512))))
    with _db(alice) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("INSERT INTO sketchface.access_log (galleries, requested, query_sha256, k, exact)"
                     " VALUES ('{}', '{}', 'x', 1, false)")
    with _db(bob) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT sketchface.set_model(%s, %s)", (gid, "ab" * 32))
    other = PgGallery.create(bob, "Old bookings", "b_v1")  # existing units are units: bob creates in his
    assert other.name == "Old bookings"
