"""Server administration: install or upgrade the schema, create units (roles) and examiner logins, check the index.

Run by the database owner (an administrator's profile), never by the application role. Every name that
becomes an SQL identifier is validated and quoted with :mod:`psycopg.sql`. ``install_schema`` and
``create_examiner`` each run in one transaction: a failure part-way leaves the server as it was (no
half-upgraded schema, no login without its units).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.errors import GalleryError
from engine.gallery.pg.schema import APP_ROLE, INSTALL, SCHEMA, SCHEMA_VERSION, UNIT_PREFIX, unit_role

_LOGIN = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")


def installed_version(conn: Any) -> int | None:
    """The schema version recorded on the server (None: no SketchFace schema there)."""
    if conn.execute("SELECT to_regclass(%s)", (f"{SCHEMA}.meta",)).fetchone()[0] is None:
        return None
    row = conn.execute(f"SELECT value FROM {SCHEMA}.meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else None


def install_schema(conninfo: str) -> None:
    """Create the SketchFace schema, or bring an older one up to this version, in one transaction; idempotent.

    A server whose schema is newer than this SketchFace is left alone: downgrading it would hand back rights
    that the newer schema took away.
    """
    import psycopg

    try:
        with psycopg.connect(conninfo) as conn:
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('sketchface-schema'))")
            found = installed_version(conn)
            if found is not None and found > SCHEMA_VERSION:
                raise GalleryError(f"The server's gallery schema is version {found}, newer than this SketchFace's "
                                   f"({SCHEMA_VERSION}); nothing was changed.",
                                   hint="Update SketchFace on this workstation, then run 'sketchface server init'.")
            for part in INSTALL:
                conn.execute(part)
    except psycopg.Error as exc:
        raise GalleryError(f"Cannot install the gallery schema ({exc}).",
                           hint="Use an administrator profile: the database owner, with CREATE on the database "
                                "and CREATEROLE.") from exc


def _check_login(user: str) -> None:
    if not _LOGIN.match(user):
        raise GalleryError(f"{user!r} is not a usable login name.",
                           hint="Use letters, digits and underscores, starting with a letter.")
    if user.lower().startswith(UNIT_PREFIX) or user.lower() == APP_ROLE:
        raise GalleryError(f"{user!r} is reserved for units and the application role; it cannot be a login.",
                           hint="Choose another login name for the examiner.")


def check_examiner(user: str, units: Sequence[str]) -> list[str]:
    """The unit roles of a future examiner login, every name checked before anything is written."""
    _check_login(user)
    if not units:
        raise GalleryError("Name at least one unit for the examiner.")
    return [unit_role(u) for u in units]


def _ensure_unit(conn: Any, role: str) -> None:
    from psycopg import sql

    row = conn.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    if row is None:
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
    elif row[0]:
        raise GalleryError(f"The role {role} can log in, so it is not a unit.",
                           hint="A unit is a role without login; rename that login or choose another unit name.")


def create_unit(conninfo: str, unit: str) -> str:
    """Create the unit's role (no login) if missing; returns its name."""
    import psycopg

    role = unit_role(unit)
    with psycopg.connect(conninfo) as conn:
        _ensure_unit(conn, role)
    return role


def create_examiner(conninfo: str, user: str, password: str, units: Sequence[str]) -> None:
    """Create (or re-password) an examiner login in the application role and the given units, all or nothing."""
    import psycopg
    from psycopg import sql

    roles = check_examiner(user, units)
    if not password:
        raise GalleryError("An examiner's login needs a password; an empty one was given.")
    try:
        with psycopg.connect(conninfo) as conn:  # one transaction: roles and grants are transactional
            ident = sql.Identifier(user)
            row = conn.execute("SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = %s", (user,)).fetchone()
            if row is not None and (not row[0] or row[1]):
                raise GalleryError(f"The role {user} exists and is not an examiner's login (it "
                                   f"{'is a superuser' if row[1] else 'cannot log in'}).",
                                   hint="Choose another login name.")
            verb = "ALTER" if row else "CREATE"
            conn.execute(sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(ident, sql.Literal(password)))
            conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(APP_ROLE), ident))
            for role in roles:
                _ensure_unit(conn, role)
                conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(role), ident))
    except psycopg.Error as exc:
        raise GalleryError(f"Cannot create the login {user} ({exc.diag.message_primary or exc}); nothing was changed.",
                           hint="Use an administrator profile with CREATEROLE, after 'sketchface server init'.") from exc


def index_matches_table(conninfo: str, gallery_id: str, probes: int = 8) -> dict[str, Any]:
    """Whether the gallery's HNSW index reaches every stored face: an unbounded index-only walk must return
    exactly the table's face ids (admin check; the table is the truth)."""
    import psycopg
    from pgvector.psycopg import register_vector

    if not re.fullmatch(r"[0-9a-f]{12}", gallery_id):
        raise GalleryError(f"{gallery_id!r} is not a gallery id.")
    with psycopg.connect(conninfo) as conn:
        register_vector(conn)
        table = {r[0] for r in conn.execute(f"SELECT id FROM {SCHEMA}.faces WHERE gallery_id = %s", (gallery_id,))}
        conn.execute("SET LOCAL enable_seqscan = off")
        conn.execute("SET LOCAL enable_sort = off")
        conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        conn.execute("SET LOCAL hnsw.max_scan_tuples = 2000000000")
        rng = np.random.default_rng(0)
        walked: set[int] = set()
        uses_index = False
        for _ in range(probes):
            q = rng.standard_normal(512).astype(np.float32)
            q /= np.linalg.norm(q)
            query = (f"SELECT id FROM {SCHEMA}.faces WHERE gallery_id = '{gallery_id}' ORDER BY"
                     " embedding::halfvec(512) <#> %s::halfvec(512) LIMIT %s")
            if not uses_index:
                plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + query, (q, len(table) + 1)))
                uses_index = f"faces_hnsw_{gallery_id}" in plan
            walked |= {r[0] for r in conn.execute(query, (q, len(table) + 1))}
            if walked == table:
                break
    return {"ok": uses_index and walked == table, "table": len(table), "reached": len(walked & table),
            "foreign": len(walked - table), "uses_index": uses_index}
