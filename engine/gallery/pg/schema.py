"""The server schema of shared galleries: tables, row-level security, the append-only access log, search functions.

Why this shape:
- Faces carry their photo's metadata in columns/JSONB (copied at insert), so a filter is a plain ``WHERE``
  on the table the HNSW index scans; with ``hnsw.iterative_scan`` a selective filter still yields k rows.
- Embeddings are stored exactly as ``vector(512)``; each gallery has its own partial HNSW index on the
  ``halfvec(512)`` cast (half the index memory), and every candidate is re-scored from the stored vector.
- A photo is unique per gallery by its SHA-256, so parallel or re-run imports never duplicate.
- Entitlement: each unit is a database role (``sf_unit_<unit>``, no login); an examiner's login role is a
  member of the units it serves. Row-level security shows a role only its units' galleries, photos and
  faces; a gallery whose owner is not such a unit role (the application role, a login) is seen by nobody.
  Embeddings, thumbnails and metadata are not readable by the application role at all: they come back
  only through the ``SECURITY DEFINER`` functions below, and every one of them checks the caller's
  membership itself (row-level security does not apply to the functions' owner).
- Every read of faces is logged, and the log row is committed before anything is handed out. The client
  owns its transaction (``BEGIN ... ROLLBACK``, savepoints), so a log row written in the same transaction
  as the results could be rolled back after the results were read. Reads therefore take two steps: a
  *request* (``search``, ``request_faces``) writes the log row (and, for a search, the hits it found)
  and returns its id; the results (``search_results``, ``face_details``, ``thumbnails``) are handed out
  only to the same examiner, and only once ``pg_xact_status`` says the request's transaction committed.
  A request made inside an open transaction block or savepoint cannot be redeemed inside it, and rolling
  it back removes the request with its row. Why not an autonomous commit: dblink and background workers
  are extensions that not every server has (the embedded test server ships only plpgsql and pgvector),
  and a procedure that COMMITs cannot be SECURITY DEFINER; the committed-request check is core PostgreSQL.
- The log (``access_log`` and the hits of each search, ``access_hits``) is append-only: no examiner may
  write it directly, only the functions do, and a trigger refuses UPDATE/DELETE/TRUNCATE for every role.
- Nothing an examiner writes can meet another unit's rows in a unique key or a foreign key: gallery names
  are unique per unit, gallery ids are drawn by the server, face numbers are unique per (gallery, photo),
  a face's photo must be in the face's own gallery, and face ids are never chosen by the client. So an
  error never tells one unit what another holds.
- ``content_version`` is bumped by a trigger in the writing transaction (strictly increasing, never by hand).
- Versioned: ``meta.schema_version``. ``server init`` brings an older server up to date in one
  transaction (:data:`MIGRATE`); workstations refuse a server whose schema is older or newer than theirs.
"""

from __future__ import annotations

import re

from engine.errors import GalleryError

SCHEMA = "sketchface"
SCHEMA_VERSION = 2
APP_ROLE = "sketchface_app"
UNIT_PREFIX = "sf_unit_"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
REQUEST_TTL = "10 minutes"  # how long a committed request may be redeemed for its results
MAX_FACES = 10_000  # faces per request (a search's k, a read of details or thumbnails)

# Columns a search filter may name (engine.gallery.filters keys -> faces columns), with their SQL type.
FILTER_COLUMNS: dict[str, tuple[str, str]] = {
    "subject_id": ("subject_id", "text"), "sex": ("sex", "text"), "birth_year": ("birth_year", "int"),
    "source": ("source", "text"), "date": ("date", "text"), "quality": ("quality", "real"),
    "det_score": ("det_score", "real"), "blur": ("blur", "real"), "primary": ("is_primary", "bool"),
    "photo_sha256": ("photo_sha256", "text"), "path": ("path", "text"),
    "face_id": ("id", "bigint"),  # faces added after a watch last ran (engine.workstation.watch)
}


def unit_role(unit: str) -> str:
    """The database role of a unit (``sf_unit_<unit>``); refuses names that are not plain identifiers."""
    if not _NAME.match(unit):
        raise GalleryError(f"{unit!r} is not a usable unit name.",
                           hint="Use lower-case letters, digits and underscores, starting with a letter.")
    return UNIT_PREFIX + unit



# Tables in their current shape (a fresh server); MIGRATE brings an older server's tables to the same shape.
TABLES = f"""
CREATE EXTENSION IF NOT EXISTS vector;
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
SET LOCAL search_path = {SCHEMA}, public;
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN CREATE ROLE {APP_ROLE} NOLOGIN; END IF;
END $$;
CREATE TABLE IF NOT EXISTS meta (key text PRIMARY KEY, value text NOT NULL);
INSERT INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}') ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS galleries (
  id text PRIMARY KEY, name text NOT NULL, unit_role name NOT NULL,
  model_sha256 text, content_version bigint NOT NULL DEFAULT 0, dim int NOT NULL DEFAULT 512,
  hnsw_m int NOT NULL, hnsw_ef_construction int NOT NULL, ef_search int NOT NULL DEFAULT 200,
  created timestamptz NOT NULL DEFAULT now(), CONSTRAINT galleries_unit_name UNIQUE (unit_role, name));
CREATE TABLE IF NOT EXISTS photos (
  id bigserial PRIMARY KEY, gallery_id text NOT NULL REFERENCES galleries(id) ON DELETE CASCADE,
  sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{{64}}$'), path text, status text NOT NULL DEFAULT 'ok',
  width int, height int, face_count int NOT NULL DEFAULT 0, added timestamptz NOT NULL DEFAULT now(),
  added_by name NOT NULL DEFAULT session_user, UNIQUE (gallery_id, sha256),
  CONSTRAINT photos_id_gallery UNIQUE (id, gallery_id));
CREATE TABLE IF NOT EXISTS faces (
  id bigserial PRIMARY KEY, gallery_id text NOT NULL, photo_id bigint NOT NULL,
  face_no int NOT NULL, photo_sha256 text NOT NULL, path text, bbox real[] NOT NULL,
  det_score real, quality real, blur real, is_primary boolean NOT NULL,
  subject_id text, sex text, birth_year int, source text, date text, extras jsonb NOT NULL DEFAULT '{{}}',
  embedding vector(512) NOT NULL, thumbnail bytea,
  CONSTRAINT faces_photo_same_gallery FOREIGN KEY (photo_id, gallery_id) REFERENCES photos (id, gallery_id)
    ON DELETE CASCADE,
  CONSTRAINT faces_gallery_photo_face UNIQUE (gallery_id, photo_id, face_no));
-- Fresh statistics soon after bulk pushes, so the planner picks the HNSW scan (not a sort of every row).
ALTER TABLE faces SET (autovacuum_analyze_scale_factor = 0.02, autovacuum_analyze_threshold = 1000);
CREATE INDEX IF NOT EXISTS faces_gallery ON faces (gallery_id);
CREATE INDEX IF NOT EXISTS faces_subject ON faces (gallery_id, subject_id);
CREATE TABLE IF NOT EXISTS access_log (
  id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp(),
  who name NOT NULL DEFAULT session_user, galleries text[] NOT NULL, requested text[] NOT NULL,
  query_sha256 text NOT NULL, k int NOT NULL, filters jsonb NOT NULL DEFAULT '[]', exact boolean NOT NULL,
  workstation text, kind text NOT NULL DEFAULT 'search', faces bigint[], xact xid8);
CREATE TABLE IF NOT EXISTS access_hits (
  log_id bigint NOT NULL REFERENCES access_log(id), gallery_id text NOT NULL, face_id bigint, score float8,
  content_version bigint);
CREATE INDEX IF NOT EXISTS access_hits_log ON access_hits (log_id);
"""

# An older server (schema version 1) to the current shape; every statement is a no-op on a current one.
MIGRATE = f"""
SET LOCAL search_path = {SCHEMA}, public;
-- Gallery names unique per unit (a global key told one unit the names of another's galleries).
ALTER TABLE galleries DROP CONSTRAINT IF EXISTS galleries_name_key;
ALTER TABLE access_log ADD COLUMN IF NOT EXISTS kind text NOT NULL DEFAULT 'search';
ALTER TABLE access_log ADD COLUMN IF NOT EXISTS faces bigint[];
ALTER TABLE access_log ADD COLUMN IF NOT EXISTS xact xid8;
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = '{SCHEMA}.galleries'::regclass
                 AND conname = 'galleries_unit_name') THEN
    ALTER TABLE {SCHEMA}.galleries ADD CONSTRAINT galleries_unit_name UNIQUE (unit_role, name);
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = '{SCHEMA}.photos'::regclass
                 AND conname = 'photos_id_gallery') THEN
    ALTER TABLE {SCHEMA}.photos ADD CONSTRAINT photos_id_gallery UNIQUE (id, gallery_id);
  END IF;
  -- (photo, face number) was unique across units, and a face could name any unit's photo.
  ALTER TABLE {SCHEMA}.faces DROP CONSTRAINT IF EXISTS faces_photo_id_face_no_key;
  ALTER TABLE {SCHEMA}.faces DROP CONSTRAINT IF EXISTS faces_photo_id_fkey;
  IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = '{SCHEMA}.faces'::regclass
                 AND conname = 'faces_gallery_photo_face') THEN
    ALTER TABLE {SCHEMA}.faces ADD CONSTRAINT faces_gallery_photo_face UNIQUE (gallery_id, photo_id, face_no);
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = '{SCHEMA}.faces'::regclass
                 AND conname = 'faces_photo_same_gallery') THEN
    -- Enforced for every new face at once; faces stored earlier are checked, and any that name another
    -- gallery's photo are reported (not deleted: they are evidence of what happened).
    ALTER TABLE {SCHEMA}.faces ADD CONSTRAINT faces_photo_same_gallery FOREIGN KEY (photo_id, gallery_id)
      REFERENCES {SCHEMA}.photos (id, gallery_id) ON DELETE CASCADE NOT VALID;
    BEGIN
      ALTER TABLE {SCHEMA}.faces VALIDATE CONSTRAINT faces_photo_same_gallery;
    EXCEPTION WHEN foreign_key_violation THEN
      RAISE WARNING 'some stored faces name a photo of another gallery; find them with: SELECT f.id FROM'
        ' {SCHEMA}.faces f LEFT JOIN {SCHEMA}.photos p ON p.id = f.photo_id AND p.gallery_id = f.gallery_id'
        ' WHERE p.id IS NULL';
    END;
  END IF;
END $$;
-- The signatures of version 1 that handed out rows in the caller's transaction, or trusted their caller.
DROP FUNCTION IF EXISTS search(text[], vector, int, int, int, jsonb, text, boolean, text);
DROP FUNCTION IF EXISTS face_details(bigint[]);
DROP FUNCTION IF EXISTS thumbnail(bigint);
DROP FUNCTION IF EXISTS allowed_galleries(text[]);
DROP FUNCTION IF EXISTS create_gallery(text, text, name, int, int);
DROP POLICY IF EXISTS own_log_rows ON access_log;
"""

# Membership, row-level security, the append-only log and the version trigger.
POLICIES = f"""
SET LOCAL search_path = {SCHEMA}, public;
-- A member of a unit: the role is a unit role (never the application role or a login) and the session's
-- login belongs to it. session_user, not current_user: inside the functions below current_user is their owner.
CREATE OR REPLACE FUNCTION is_member(p_role name) RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT starts_with(p_role::text, '{UNIT_PREFIX}') AND pg_has_role(session_user, p_role, 'MEMBER') $$;
-- The schema's owner (the administrator who ran "server init"), or a superuser.
CREATE OR REPLACE FUNCTION is_admin() RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT pg_has_role(session_user, n.nspowner, 'MEMBER') FROM pg_namespace n WHERE n.nspname = '{SCHEMA}' $$;

CREATE OR REPLACE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'the access log is append-only'; END $$;
DROP TRIGGER IF EXISTS access_log_append_only ON access_log;
CREATE TRIGGER access_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON access_log
  FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
DROP TRIGGER IF EXISTS access_hits_append_only ON access_hits;
CREATE TRIGGER access_hits_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON access_hits
  FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- SECURITY DEFINER (galleries is not writable by examiners); refuses rows of galleries the writer may not
-- use, although row-level security already refused them on the photos table: the function does not rely on it.
CREATE OR REPLACE FUNCTION bump_version() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = {SCHEMA}, public, pg_temp AS $$
BEGIN
  IF NOT is_admin() AND EXISTS (SELECT 1 FROM changed c LEFT JOIN galleries g ON g.id = c.gallery_id
                                 WHERE g.id IS NULL OR NOT is_member(g.unit_role)) THEN
    RAISE EXCEPTION 'photos may be written only into your units'' galleries' USING ERRCODE = 'insufficient_privilege';
  END IF;
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

ALTER TABLE galleries ENABLE ROW LEVEL SECURITY;
ALTER TABLE photos ENABLE ROW LEVEL SECURITY;
ALTER TABLE faces ENABLE ROW LEVEL SECURITY;
ALTER TABLE access_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE access_hits ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS unit_galleries ON galleries;
CREATE POLICY unit_galleries ON galleries FOR SELECT USING (is_member(unit_role));
DROP POLICY IF EXISTS unit_photos ON photos;
CREATE POLICY unit_photos ON photos USING (gallery_id IN (SELECT id FROM galleries))
  WITH CHECK (gallery_id IN (SELECT id FROM galleries));
DROP POLICY IF EXISTS unit_faces ON faces;
CREATE POLICY unit_faces ON faces USING (gallery_id IN (SELECT id FROM galleries))
  WITH CHECK (gallery_id IN (SELECT id FROM galleries));
"""

# Requests and their results, creation and the model pin: every one SECURITY DEFINER, and every one checks
# the caller's membership itself. Filters arrive as JSON and are quoted with format().
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

-- The requested galleries, each one the caller's units may use; refuses the whole request otherwise
-- (a gallery of another unit and one that does not exist get the same answer).
CREATE OR REPLACE FUNCTION member_galleries(p_galleries text[]) RETURNS text[] LANGUAGE plpgsql STABLE
SECURITY DEFINER SET search_path = {SCHEMA}, public, pg_temp AS $$
DECLARE wanted text[]; ok text[];
BEGIN
  SELECT coalesce(array_agg(DISTINCT x ORDER BY x), '{{}}') INTO wanted FROM unnest(p_galleries) x;
  SELECT coalesce(array_agg(g.id ORDER BY g.id), '{{}}') INTO ok FROM galleries g
   WHERE g.id = ANY(wanted) AND is_member(g.unit_role);
  IF cardinality(wanted) = 0 OR ok IS DISTINCT FROM wanted THEN
    RAISE EXCEPTION 'not every requested gallery is one your units may use' USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN ok;
END $$;

-- The caller's own request, committed, recent, and still within the caller's units: else refused.
CREATE OR REPLACE FUNCTION redeem(p_ticket bigint, p_kind text) RETURNS access_log LANGUAGE plpgsql VOLATILE
SECURITY DEFINER SET search_path = {SCHEMA}, public, pg_temp AS $$
DECLARE r access_log;
BEGIN
  SELECT * INTO r FROM access_log l WHERE l.id = p_ticket AND l.kind = p_kind AND l.who = session_user;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'request % is not one of yours', p_ticket USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF r.xact IS NULL OR pg_xact_status(r.xact) IS DISTINCT FROM 'committed' THEN
    RAISE EXCEPTION 'request % is not committed: its access-log row could still be rolled back', p_ticket
      USING ERRCODE = 'invalid_transaction_state',
            HINT = 'Make the request outside an open transaction block, commit, then ask for its results.';
  END IF;
  IF r.at < clock_timestamp() - interval '{REQUEST_TTL}' THEN
    RAISE EXCEPTION 'request % has expired; make it again', p_ticket USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF EXISTS (SELECT 1 FROM unnest(r.galleries) x LEFT JOIN galleries g ON g.id = x
              WHERE g.id IS NULL OR NOT is_member(g.unit_role)) THEN
    RAISE EXCEPTION 'request % names a gallery your units may no longer use', p_ticket
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN r;
END $$;

-- A search request: the log row, then per gallery an HNSW (or exact) top-n re-scored from the stored
-- float32 vectors, the best k kept with the log row. Returns the request id for search_results.
CREATE OR REPLACE FUNCTION search(p_galleries text[], p_query vector, p_k int, p_candidates int, p_ef int,
    p_filters jsonb, p_query_sha256 text, p_exact boolean, p_workstation text)
RETURNS bigint LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = {SCHEMA}, public, pg_temp AS $$
DECLARE allowed text[]; g text; w text; ticket bigint; n int;
BEGIN
  allowed := member_galleries(p_galleries);
  IF p_k IS NULL OR p_k < 1 OR p_k > {MAX_FACES} THEN
    RAISE EXCEPTION 'k must be between 1 and {MAX_FACES}' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  w := filter_sql(p_filters);
  n := least(greatest(coalesce(p_candidates, p_k), p_k), 10 * {MAX_FACES});
  INSERT INTO access_log (who, kind, galleries, requested, query_sha256, k, filters, exact, workstation, xact)
  VALUES (session_user, 'search', allowed, p_galleries, coalesce(p_query_sha256, ''), p_k,
          coalesce(p_filters, '[]'), coalesce(p_exact, false), p_workstation, pg_current_xact_id())
  RETURNING id INTO ticket;
  PERFORM set_config('hnsw.ef_search', least(greatest(coalesce(p_ef, 1), 1), 1000)::text, true);
  PERFORM set_config('hnsw.iterative_scan', 'relaxed_order', true);
  PERFORM set_config('enable_indexscan', CASE WHEN p_exact THEN 'off' ELSE 'on' END, true);
  PERFORM set_config('enable_bitmapscan', CASE WHEN p_exact THEN 'off' ELSE 'on' END, true);
  FOREACH g IN ARRAY allowed LOOP
    IF p_exact THEN
      EXECUTE format('INSERT INTO access_hits (log_id, gallery_id, face_id, score) SELECT $3, %L, f.id,'
        ' -(f.embedding <#> $1)::float8 FROM faces f WHERE f.gallery_id = %L%s ORDER BY f.embedding <#> $1, f.id'
        ' LIMIT $2', g, g, w) USING p_query, p_k, ticket;
    ELSE
      EXECUTE format('INSERT INTO access_hits (log_id, gallery_id, face_id, score) SELECT $4, %L, c.id, c.score'
        ' FROM (SELECT f.id, -(f.embedding <#> $1)::float8 AS score FROM faces f WHERE f.gallery_id = %L%s'
        ' ORDER BY f.embedding::halfvec(512) <#> $1::halfvec(512) LIMIT $3) c ORDER BY c.score DESC, c.id LIMIT $2',
        g, g, w) USING p_query, p_k, n, ticket;
    END IF;
  END LOOP;
  INSERT INTO access_hits (log_id, gallery_id, content_version)
  SELECT ticket, id, content_version FROM galleries WHERE id = ANY(allowed);
  RETURN ticket;
END $$;

-- The hits of a committed search request (one row per gallery with face_id NULL carries its version).
CREATE OR REPLACE FUNCTION search_results(p_ticket bigint)
RETURNS TABLE (gallery_id text, face_id bigint, score float8, content_version bigint)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = {SCHEMA}, public, pg_temp AS $$
#variable_conflict use_column
DECLARE r access_log;
BEGIN
  r := redeem(p_ticket, 'search');
  RETURN QUERY SELECT h.gallery_id, h.face_id, h.score, v.content_version FROM access_hits h
    JOIN access_hits v ON v.log_id = h.log_id AND v.gallery_id = h.gallery_id AND v.face_id IS NULL
   WHERE h.log_id = r.id ORDER BY h.gallery_id, h.score DESC NULLS FIRST, h.face_id;
END $$;

-- A request to read faces ('details': photo, box and metadata; 'thumbnails'): every face must be in a
-- gallery of the caller's units. Returns the request id for face_details / thumbnails.
CREATE OR REPLACE FUNCTION request_faces(p_faces bigint[], p_purpose text, p_workstation text) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = {SCHEMA}, public, pg_temp AS $$
DECLARE wanted bigint[]; seen bigint[]; gals text[]; ticket bigint;
BEGIN
  IF p_purpose IS NULL OR p_purpose NOT IN ('details', 'thumbnails') THEN
    RAISE EXCEPTION 'faces are requested for details or thumbnails' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  SELECT coalesce(array_agg(DISTINCT x ORDER BY x), '{{}}') INTO wanted FROM unnest(p_faces) x;
  IF cardinality(wanted) NOT BETWEEN 1 AND {MAX_FACES} THEN
    RAISE EXCEPTION 'a request names 1 to {MAX_FACES} faces' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  SELECT coalesce(array_agg(f.id ORDER BY f.id), '{{}}'), coalesce(array_agg(DISTINCT f.gallery_id), '{{}}')
    INTO seen, gals FROM faces f JOIN galleries g ON g.id = f.gallery_id
   WHERE f.id = ANY(wanted) AND is_member(g.unit_role);
  IF seen IS DISTINCT FROM wanted THEN
    RAISE EXCEPTION 'not every requested face is in a gallery your units may use'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  INSERT INTO access_log (who, kind, galleries, requested, faces, query_sha256, k, exact, workstation, xact)
  VALUES (session_user, p_purpose, gals, gals, wanted, '', cardinality(wanted), false, p_workstation,
          pg_current_xact_id())
  RETURNING id INTO ticket;
  RETURN ticket;
END $$;

CREATE OR REPLACE FUNCTION face_details(p_ticket bigint)
RETURNS TABLE (face_id bigint, gallery_id text, photo_id bigint, photo_sha256 text, path text, bbox real[],
               quality real, is_primary boolean, subject_id text, sex text, birth_year int, source text,
               date text, extras jsonb)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = {SCHEMA}, public, pg_temp AS $$
#variable_conflict use_column
DECLARE r access_log;
BEGIN
  r := redeem(p_ticket, 'details');
  RETURN QUERY SELECT f.id, f.gallery_id, f.photo_id, f.photo_sha256, f.path, f.bbox, f.quality, f.is_primary,
         f.subject_id, f.sex, f.birth_year, f.source, f.date, f.extras
    FROM faces f JOIN galleries g ON g.id = f.gallery_id
   WHERE f.id = ANY(r.faces) AND is_member(g.unit_role) ORDER BY f.id;
END $$;

CREATE OR REPLACE FUNCTION thumbnails(p_ticket bigint) RETURNS TABLE (face_id bigint, thumbnail bytea)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = {SCHEMA}, public, pg_temp AS $$
#variable_conflict use_column
DECLARE r access_log;
BEGIN
  r := redeem(p_ticket, 'thumbnails');
  RETURN QUERY SELECT f.id, f.thumbnail FROM faces f JOIN galleries g ON g.id = f.gallery_id
   WHERE f.id = ANY(r.faces) AND is_member(g.unit_role) ORDER BY f.id;
END $$;

-- A gallery for a unit the caller belongs to; the id is drawn here (a client's id could collide with,
-- and so reveal, another unit's). A unit is a role named sf_unit_* that cannot log in; a role that does
-- not exist and one the caller is not in get the same answer.
CREATE OR REPLACE FUNCTION create_gallery(p_name text, p_unit_role name, p_m int, p_efc int)
RETURNS text LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = {SCHEMA}, public, pg_temp AS $$
DECLARE new_id text;
BEGIN
  IF p_unit_role IS NULL OR NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = p_unit_role
       AND starts_with(r.rolname::text, '{UNIT_PREFIX}') AND NOT r.rolcanlogin AND NOT r.rolsuper) THEN
    RAISE EXCEPTION '% is not a member of a unit %', session_user, p_unit_role USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF NOT is_member(p_unit_role) THEN
    RAISE EXCEPTION '% is not a member of a unit %', session_user, p_unit_role USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF p_name IS NULL OR btrim(p_name) = '' OR length(p_name) > 200 THEN
    RAISE EXCEPTION 'a gallery name has 1 to 200 characters' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF EXISTS (SELECT 1 FROM galleries WHERE unit_role = p_unit_role AND name = p_name) THEN
    RAISE EXCEPTION 'a gallery named % already exists in this unit', p_name USING ERRCODE = 'unique_violation';
  END IF;
  LOOP
    new_id := substr(md5(gen_random_uuid()::text), 1, 12);
    EXIT WHEN NOT EXISTS (SELECT 1 FROM galleries WHERE id = new_id);
  END LOOP;
  BEGIN
    INSERT INTO galleries (id, name, unit_role, hnsw_m, hnsw_ef_construction)
    VALUES (new_id, p_name, p_unit_role, p_m, p_efc);
  EXCEPTION WHEN unique_violation THEN  -- the same name created at the same moment in this unit
    RAISE EXCEPTION 'a gallery named % already exists in this unit', p_name USING ERRCODE = 'unique_violation';
  END;
  EXECUTE format('CREATE INDEX %I ON faces USING hnsw ((embedding::halfvec(512)) halfvec_ip_ops)'
                 ' WITH (m = %s, ef_construction = %s) WHERE gallery_id = %L',
                 'faces_hnsw_' || new_id, p_m, p_efc, new_id);
  RETURN new_id;
END $$;

-- The ArcFace digest of the first push; a gallery the caller's units may not use is refused, not written.
CREATE OR REPLACE FUNCTION set_model(p_gallery text, p_sha text) RETURNS text LANGUAGE plpgsql
SECURITY DEFINER SET search_path = {SCHEMA}, public, pg_temp AS $$
DECLARE cur text;
BEGIN
  PERFORM 1 FROM galleries g WHERE g.id = p_gallery AND is_member(g.unit_role) FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'gallery % is not one your units may use', p_gallery USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF p_sha IS NULL OR p_sha !~ '^[0-9a-f]{{64}}$' THEN
    RAISE EXCEPTION 'a model digest is 64 lower-case hex digits' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  SELECT model_sha256 INTO cur FROM galleries WHERE id = p_gallery;
  IF cur IS NULL THEN UPDATE galleries SET model_sha256 = p_sha WHERE id = p_gallery; RETURN p_sha; END IF;
  RETURN cur;
END $$;
"""

# What the application role may do, granted afresh on every install (so an upgrade also takes rights away).
GRANTS = f"""
SET LOCAL search_path = {SCHEMA}, public;
REVOKE ALL ON ALL TABLES IN SCHEMA {SCHEMA} FROM PUBLIC, {APP_ROLE};
REVOKE ALL ON ALL SEQUENCES IN SCHEMA {SCHEMA} FROM PUBLIC, {APP_ROLE};
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA {SCHEMA} FROM PUBLIC, {APP_ROLE};
GRANT USAGE ON SCHEMA {SCHEMA} TO {APP_ROLE};
GRANT SELECT ON meta, galleries TO {APP_ROLE};
GRANT SELECT (id, gallery_id, sha256, status, face_count, added) ON photos TO {APP_ROLE};
GRANT INSERT (gallery_id, sha256, path, status, width, height, face_count) ON photos TO {APP_ROLE};
GRANT SELECT (id, gallery_id, photo_id, face_no) ON faces TO {APP_ROLE};
GRANT INSERT (gallery_id, photo_id, face_no, photo_sha256, path, bbox, det_score, quality, blur, is_primary,
              subject_id, sex, birth_year, source, date, extras, embedding, thumbnail) ON faces TO {APP_ROLE};
GRANT USAGE ON SEQUENCE photos_id_seq, faces_id_seq TO {APP_ROLE};
GRANT EXECUTE ON FUNCTION is_member(name), search(text[], vector, int, int, int, jsonb, text, boolean, text),
  search_results(bigint), request_faces(bigint[], text, text), face_details(bigint), thumbnails(bigint),
  create_gallery(text, name, int, int), set_model(text, text) TO {APP_ROLE};
INSERT INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}') ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;
"""

INSTALL = (TABLES, MIGRATE, POLICIES, FUNCTIONS, GRANTS)  # in this order, in one transaction
