"""Server administration: install the schema, create units (roles) and examiner logins, check the index.

Run by the database owner (an administrator's profile), never by the application role. Every name that
becomes an SQL identifier is validated and quoted with :mod:`psycopg.sql`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.errors import GalleryError
from engine.gallery.pg.schema import APP_ROLE, DDL, FUNCTIONS, SCHEMA, unit_role


def install_schema(conninfo: str) -> None:
    """Create (or update in place) the SketchFace schema, its policies and functions; idempotent."""
    import psycopg

    try:
        with psycopg.connect(conninfo) as conn:
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('sketchface-schema'))")
            conn.execute(DDL)
            conn.execute(FUNCTIONS)
    except psycopg.Error as exc:
        raise GalleryError(f"Cannot install the gallery schema ({exc}).",
                           hint="Use an administrator profile: the database owner, with CREATE on the database "
                                "and CREATEROLE.") from exc


def create_unit(conninfo: str, unit: str) -> str:
    """Create the unit's role (no login) if missing; returns its name."""
    import psycopg
    from psycopg import sql

    role = unit_role(unit)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is None:
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
    return role


def create_examiner(conninfo: str, user: str, password: str, units: list[str]) -> None:
    """Create (or re-password) an examiner login in the application role and the given units."""
    import psycopg
    from psycopg import sql

    if not user.replace("_", "").isalnum() or not user[:1].isalpha():
        raise GalleryError(f"{user!r} is not a usable login name.")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        ident = sql.Identifier(user)
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone()
        verb = "ALTER" if exists else "CREATE"
        conn.execute(sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(ident, sql.Literal(password)))
        conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(APP_ROLE), ident))
        for unit in units:
            conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(create_unit(conninfo, unit)), ident))


def index_matches_table(conninfo: str, gallery_id: str, probes: int = 8) -> dict[str, Any]:
    """Whether the gallery's HNSW index reaches every stored face: an unbounded index-only walk must return
    exactly the table's face ids (admin check; the table is the truth)."""
    import re

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
