"""Connection pools to gallery servers: one psycopg_pool per connection string, vector types registered.

Why pooled: a workstation runs searches from the engine thread while an import pushes batches; each
takes a connection for one transaction and gives it back. Pools are shared per URL in this process
and closed at exit.
"""

from __future__ import annotations

import atexit
import threading
from typing import Any

from engine.errors import GalleryError

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
    except psycopg.Error as exc:
        raise GalleryError(f"Cannot connect to the gallery server ({str(exc).strip()}).",
                           hint="Check the server profile with 'sketchface server test PROFILE'.") from exc
    if row is None or row[0] is None or row[1] is None:
        raise GalleryError("The server has no SketchFace gallery schema (pgvector and the gallery tables).",
                           hint="An administrator installs it once: 'sketchface server init PROFILE'.")


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
