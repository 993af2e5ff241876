"""Connection pools to gallery servers: one psycopg_pool per connection string, vector types registered.

Before the pool opens, one direct connection checks the server: reachable, pgvector and the gallery
schema present, and the schema at this SketchFace's version (an older one lacks the access-log
guarantees this client relies on; ``server init`` upgrades it).

Why pooled: a workstation runs searches from the engine thread while an import pushes batches; each
takes a connection for one transaction and gives it back. Pools are shared per URL in this process
and closed at exit.
"""

from __future__ import annotations

import atexit
import threading
from typing import Any

from engine.errors import GalleryError
from engine.gallery.pg.admin import installed_version
from engine.gallery.pg.schema import SCHEMA_VERSION

_POOLS: dict[str, Any] = {}
_LOCK = threading.Lock()


def _configure(conn: Any) -> None:
    from pgvector.psycopg import register_vector

    register_vector(conn)
    conn.commit()


def _check(conninfo: str, timeout_s: float) -> None:
    """One direct connection first: a wrong password or a server without the schema fails at once, clearly."""
    import psycopg

    try:
        with psycopg.connect(conninfo, connect_timeout=max(1, int(timeout_s))) as conn:
            row = conn.execute("SELECT to_regtype('vector'), to_regclass('sketchface.galleries')").fetchone()
            version = installed_version(conn) if row is not None and row[1] is not None else None
    except psycopg.Error as exc:
        raise GalleryError(f"Cannot connect to the gallery server ({str(exc).strip()}).",
                           hint="Check the server profile with 'sketchface server test PROFILE'.") from exc
    if row is None or row[0] is None or row[1] is None:
        raise GalleryError("The server has no SketchFace gallery schema (pgvector and the gallery tables).",
                           hint="An administrator installs it once: 'sketchface server init PROFILE'.")
    if version is None or version < SCHEMA_VERSION:
        raise GalleryError(f"The server's gallery schema is version {version or 'unknown'}; this SketchFace needs "
                           f"version {SCHEMA_VERSION} (it logs every read before handing anything out).",
                           hint="An administrator upgrades it once: 'sketchface server init PROFILE'.")
    if version > SCHEMA_VERSION:
        raise GalleryError(f"The server's gallery schema is version {version}, newer than this SketchFace's "
                           f"({SCHEMA_VERSION}).", hint="Update SketchFace on this workstation.")


def get_pool(conninfo: str, max_size: int = 4, timeout_s: float = 30.0) -> Any:
    """The open pool for ``conninfo`` (created on first use); :class:`GalleryError` if the server is unreachable."""
    import psycopg
    from psycopg_pool import ConnectionPool, PoolTimeout

    with _LOCK:
        pool = _POOLS.get(conninfo)
        if pool is not None:
            return pool
        _check(conninfo, timeout_s)
        pool = ConnectionPool(conninfo, min_size=1, max_size=max_size, configure=_configure, open=False,
                              timeout=timeout_s, name="sketchface-gallery-server")
        try:
            pool.open(wait=True, timeout=timeout_s)
        except (PoolTimeout, psycopg.Error) as exc:
            pool.close()
            raise GalleryError(f"Cannot connect to the gallery server ({exc}).",
                               hint="Check the server profile with 'sketchface server test PROFILE'.") from exc
        _POOLS[conninfo] = pool
        return pool


def close_pools() -> None:
    """Close every pool (at exit, or when a profile changes)."""
    with _LOCK:
        pools = list(_POOLS.values())
        _POOLS.clear()
    for pool in pools:
        pool.close()


atexit.register(close_pools)
