"""The server schema of shared galleries: tables, row-level security, the append-only access log, search functions.

Why this shape:
- Faces carry their photo's metadata in columns/JSONB (copied at insert), so a filter is a plain ``WHERE``
  on the table the HNSW index scans; with ``hnsw.iterative_scan`` a selective filter still yields k rows.
- Embeddings are stored exactly as ``vector(512)``; each gallery has its own partial HNSW index on the
  ``halfvec(512)`` cast (half the index memory), and every candidate is re-scored from the stored vector.
- A photo is unique per gallery by its SHA-256, so parallel or re-run imports never duplicate.
- Entitlement: each unit is a database role; an examiner's login role is a member of the units it serves.
  Row-level security shows a role only its units' galleries, photos and faces. Embeddings, thumbnails
  and metadata are not readable by the application role at all: they come back only through the
  ``SECURITY DEFINER`` functions below, and ``search`` writes the access-log row itself, so no search
  can skip the log. The log is append-only: the application role may insert (as itself) and nothing else,
  and a trigger refuses UPDATE/DELETE for every role.
- ``content_version`` is bumped by a trigger in the writing transaction (strictly increasing, never by hand).
"""

from __future__ import annotations

import re

from engine.errors import GalleryError

SCHEMA = "sketchface"
SCHEMA_VERSION = 1
APP_ROLE = "sketchface_app"
UNIT_PREFIX = "sf_unit_"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")

# Columns a search filter may name (engine.gallery.filters keys -> faces columns), with their SQL type.
FILTER_COLUMNS: dict[str, tuple[str, str]] = {
    "subject_id": ("subject_id", "text"), "sex": ("sex", "text"), "birth_year": ("birth_year", "int"),
    "source": ("source", "text"), "date": ("date", "text"), "quality": ("quality", "real"),
    "det_score": ("det_score", "real"), "blur": ("blur", "real"), "primary": ("is_primary", "bool"),
    "photo_sha256": ("photo_sha256", "text"), "path": ("path", "text"),
}


def unit_role(unit: str) -> str:
    """The database role of a unit (``sf_unit_<unit>``); refuses names that are not plain identifiers."""
    if not _NAME.match(unit):
        raise GalleryError(f"{unit!r} is not a usable unit name.",
                           hint="Use lower-case letters, digits and underscores, starting with a letter.")
    return UNIT_PREFIX + unit


DDL = f"""
CREATE EXTENSION IF NOT EXISTS vector;
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
SET LOCAL search_path = {SCHEMA}, public;
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN CREATE ROLE {APP_ROLE} NOLOGIN; END IF;
END $$;
CREATE TABLE IF NOT EXISTS meta (key text PRIMARY KEY, value text NOT NULL);
INSERT INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}') ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS galleries (
  id text PRIMARY KEY, name text NOT NULL UNIQUE, unit_role name NOT NULL,
  model_sha256 text, content_version bigint NOT NULL DEFAULT 0, dim int NOT NULL DEFAULT 512,
  hnsw_m int NOT NULL, hnsw_ef_construction int NOT NULL, ef_search int NOT NULL DEFAULT 200,
  created timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS photos (
  id bigserial PRIMARY KEY, gallery_id text NOT NULL REFERENCES galleries(id) ON DELETE CASCADE,
  sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{{64}}$'), path text, status text NOT NULL DEFAULT 'ok',
  width int, height int, face_count int NOT NULL DEFAULT 0, added timestamptz NOT NULL DEFAULT now(),
  added_by name NOT NULL DEFAULT session_user, UNIQUE (gallery_id, sha256));
CREATE TABLE IF NOT EXISTS faces (
  id bigserial PRIMARY KEY, gallery_id text NOT NULL, photo_id bigint NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
  face_no int NOT NULL, photo_sha256 text NOT NULL, path text, bbox real[] NOT NULL,
  det_score real, quality real, blur real, is_primary boolean NOT NULL,
  subject_id text, sex text, birth_year int, source text, date text, extras jsonb NOT NULL DEFAULT '{{}}',
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
SET search_path = {SCHEMA}, public, pg_temp AS $$
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

REVOKE ALL ON ALL TABLES IN SCHEMA {SCHEMA} FROM PUBLIC, {APP_ROLE};
GRANT USAGE ON SCHEMA {SCHEMA} TO {APP_ROLE};
GRANT SELECT ON meta, galleries TO {APP_ROLE};
GRANT SELECT (id, gallery_id, sha256, status, face_count, added) ON photos TO {APP_ROLE};
GRANT INSERT (gallery_id, sha256, path, status, width, height, face_count) ON photos TO {APP_ROLE};
GRANT INSERT ON faces TO {APP_ROLE};
GRANT SELECT (id, gallery_id, photo_id, face_no) ON faces TO {APP_ROLE};
GRANT INSERT (galleries, requested, query_sha256, k, filters, exact, workstation) ON access_log TO {APP_ROLE};
GRANT USAGE ON ALL SEQUENCES IN SCHEMA {SCHEMA} TO {APP_ROLE};
"""

# Search: membership check, access-log row, then per allowed gallery an HNSW (or exact) top-n,
# re-scored from the stored float32 vectors. Filters arrive as JSON and are quoted with format().
FUNCTIONS = f"""
SET LOCAL search_path = {SCHEMA}, public;
CREATE OR REPLACE FUNCTION filter_sql(p_filters jsonb) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE f jsonb; sql text := ''; op text; col text; typ text;
BEGIN
  FOR f IN SELECT * FROM jsonb_array_elements(coalesce(p_filters, '[]')) LOOP
    op := f->>'op';
    IF op NOT IN ('=', '!=', '>=', '<=', '>', '<') THEN RAISE EXCEPTION 'bad filter operator %', op; END IF;
    col := f->>'column'; typ := f->>'type';
    IF col IS NOT NULL THEN
      IF col NOT IN ({", ".join(f"'{c}'" for c, _ in FILTER_COLUMNS.values())}) THEN
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
SECURITY DEFINER SET search_path = {SCHEMA}, public, pg_temp AS $$
  SELECT coalesce(array_agg(id ORDER BY id), '{{}}') FROM galleries
   WHERE id = ANY(p_galleries) AND pg_has_role(session_user, unit_role, 'MEMBER') $$;

CREATE OR REPLACE FUNCTION search(p_galleries text[], p_query vector, p_k int, p_candidates int, p_ef int,
    p_filters jsonb, p_query_sha256 text, p_exact boolean, p_workstation text)
RETURNS TABLE (gallery_id text, face_id bigint, score float8) LANGUAGE plpgsql VOLATILE
SECURITY DEFINER SET search_path = {SCHEMA}, public, pg_temp AS $$
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
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = {SCHEMA}, public, pg_temp AS $$
  SELECT f.id, f.gallery_id, f.photo_id, f.photo_sha256, f.path, f.bbox, f.quality, f.is_primary, f.subject_id,
         f.sex, f.birth_year, f.source, f.date, f.extras
    FROM faces f JOIN galleries g ON g.id = f.gallery_id
   WHERE f.id = ANY(p_ids) AND pg_has_role(session_user, g.unit_role, 'MEMBER') $$;

CREATE OR REPLACE FUNCTION thumbnail(p_face bigint) RETURNS bytea LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = {SCHEMA}, public, pg_temp AS $$
  SELECT f.thumbnail FROM faces f JOIN galleries g ON g.id = f.gallery_id
   WHERE f.id = p_face AND pg_has_role(session_user, g.unit_role, 'MEMBER') $$;

CREATE OR REPLACE FUNCTION create_gallery(p_id text, p_name text, p_unit_role name, p_m int, p_efc int)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = {SCHEMA}, public, pg_temp AS $$
BEGIN
  IF NOT pg_has_role(session_user, p_unit_role, 'MEMBER') THEN
    RAISE EXCEPTION 'role % is not a member of unit role %', session_user, p_unit_role
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF p_id !~ '^[0-9a-f]{{12}}$' THEN RAISE EXCEPTION 'bad gallery id %', p_id; END IF;
  INSERT INTO galleries (id, name, unit_role, hnsw_m, hnsw_ef_construction) VALUES (p_id, p_name, p_unit_role, p_m, p_efc);
  EXECUTE format('CREATE INDEX %I ON faces USING hnsw ((embedding::halfvec(512)) halfvec_ip_ops)'
                 ' WITH (m = %s, ef_construction = %s) WHERE gallery_id = %L',
                 'faces_hnsw_' || p_id, p_m, p_efc, p_id);
END $$;

CREATE OR REPLACE FUNCTION set_model(p_gallery text, p_sha text) RETURNS text LANGUAGE plpgsql
SECURITY DEFINER SET search_path = {SCHEMA}, public, pg_temp AS $$
DECLARE cur text;
BEGIN
  SELECT model_sha256 INTO cur FROM galleries g WHERE id = p_gallery
     AND pg_has_role(session_user, g.unit_role, 'MEMBER') FOR UPDATE;
  IF cur IS NULL THEN UPDATE galleries SET model_sha256 = p_sha WHERE id = p_gallery; RETURN p_sha; END IF;
  RETURN cur;
END $$;

REVOKE ALL ON FUNCTION search, face_details, thumbnail, create_gallery, set_model, allowed_galleries FROM PUBLIC;
GRANT EXECUTE ON FUNCTION search, face_details, thumbnail, create_gallery, set_model, allowed_galleries
  TO {APP_ROLE};
"""
