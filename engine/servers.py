"""Gallery server profiles: a name for a PostgreSQL URL, with its password kept in the OS keyring.

Why a profile: an examiner types the server once (``sketchface server add bookings URL``) and then names
it. The profile file (``servers.toml`` in the config dir) never holds a password: a password given in
the URL (or typed) goes to the OS keyring through ``keyring``. Where no keyring backend exists (a
headless Linux box), nothing is stored and the message says what to do instead: libpq's own password
file (``~/.pgpass``, which the connection reads by itself) or ``SKETCHFACE_SERVER_PASSWORD`` for one session.

URLs: ``postgresql://user@host:5432/db`` over TCP, ``postgresql://user@/db?host=/run/postgresql`` over a
Unix socket; TLS through libpq's ``sslmode`` (``verify-full`` checks the certificate chain against
``sslrootcert`` and the host name). A TCP host other than this machine without ``sslmode`` gets
``verify-full``: a search sends a face to the server, so the default is an authenticated channel.
"""

from __future__ import annotations

import contextlib
import os
import re
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import tomli_w

from engine import paths
from engine.errors import ConfigError
from engine.fsutil import atomic_write_text
from engine.gallery.pg.gallery import PgGallery
from engine.gallery.pg.schema import SCHEMA, UNIT_PREFIX

KEYRING_SERVICE = "SketchFace gallery server"
PASSWORD_ENV = "SKETCHFACE_SERVER_PASSWORD"
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "")
_PROFILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class ServerProfile:
    """A named server: its URL without password, the login user, and the default unit for new galleries."""

    name: str
    url: str
    unit: str = ""

    @property
    def user(self) -> str:
        return unquote(urlsplit(self.url).username or "")

    @property
    def sslmode(self) -> str:
        return dict(parse_qsl(urlsplit(self.url).query)).get("sslmode", "")

    @property
    def where(self) -> str:
        """Host and database for display (socket path for Unix sockets)."""
        parts = urlsplit(self.url)
        query = dict(parse_qsl(parts.query))
        host = query.get("host") or parts.hostname or "localhost"
        return f"{host}:{parts.port or query.get('port', 5432)}{parts.path}"


def servers_path() -> Path:
    return paths.config_dir() / "servers.toml"


def parse_url(url: str) -> tuple[str, str | None]:
    """(URL without password, the password it carried or None); ``ConfigError`` for what libpq would refuse."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigError(f"{url!r} is not a PostgreSQL URL.",
                          hint="Write postgresql://USER@HOST:5432/DATABASE or postgresql://USER@/DATABASE?host=/socket/dir")
    if not parts.username:
        raise ConfigError("The server URL names no user.", hint="Write postgresql://USER@HOST/DATABASE.")
    if not parts.path.strip("/"):
        raise ConfigError("The server URL names no database.", hint="Add /DATABASE after the host.")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    if "password" in query:
        raise ConfigError("Put the password in the keyring, not in the URL's query.",
                          hint="Give it as postgresql://USER:PASSWORD@HOST/DB once, or type it when asked.")
    mode = query.get("sslmode", "")
    if mode and mode not in SSLMODES:
        raise ConfigError(f"sslmode={mode} is not one of {', '.join(SSLMODES)}.")
    socket_host = query.get("host", "")
    if socket_host and not socket_host.startswith("/"):
        raise ConfigError(f"?host={socket_host} must be an absolute socket directory.")
    tcp_host = parts.hostname or ""
    if not socket_host and tcp_host not in _LOCAL_HOSTS and not mode:
        query["sslmode"] = "verify-full"
    if query.get("sslmode") == "verify-full" and query.get("sslrootcert"):
        cert = Path(query["sslrootcert"]).expanduser()
        if not cert.is_file():
            raise ConfigError(f"sslrootcert {cert} does not exist.",
                              hint="Give the CA certificate that signed the server's certificate.")
    netloc = quote(unquote(parts.username), safe="")
    if parts.hostname:
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        netloc += "@" + host + (f":{parts.port}" if parts.port else "")
    else:
        netloc += "@"
    clean = urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, safe="/"), ""))
    return clean, unquote(parts.password) if parts.password else None


def load_profiles() -> dict[str, ServerProfile]:
    path = servers_path()
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"Cannot read the server profiles {path}: {exc}.",
                          hint="Fix or delete the file; passwords are not in it.") from exc
    return {name: ServerProfile(name, str(d["url"]), str(d.get("unit", "")))
            for name, d in data.get("servers", {}).items()}


def _save(profiles: dict[str, ServerProfile]) -> None:
    doc = {"servers": {p.name: {k: v for k, v in asdict(p).items() if k != "name"} for p in profiles.values()}}
    atomic_write_text(servers_path(), tomli_w.dumps(doc))


def get_profile(name: str) -> ServerProfile:
    profiles = load_profiles()
    if name not in profiles:
        known = ", ".join(sorted(profiles)) or "none yet"
        raise ConfigError(f"No server profile '{name}'.",
                          hint=f"Profiles: {known}. Add one with 'sketchface server add NAME URL'.")
    return profiles[name]


def keyring_available() -> bool:
    """Whether an OS keyring backend exists (``keyring``'s fail backend means none)."""
    import keyring
    from keyring.backends import fail

    return not isinstance(keyring.get_keyring(), fail.Keyring)


def store_password(profile: str, password: str) -> str:
    """Put the password in the OS keyring; without one, store nothing and return what to do instead."""
    import keyring
    from keyring.errors import KeyringError

    if keyring_available():
        try:
            keyring.set_password(KEYRING_SERVICE, profile, password)
            return "password saved in the OS keyring"
        except KeyringError as exc:
            reason = str(exc)
    else:
        reason = "no OS keyring backend is available"
    return (f"password NOT saved: {reason}. Put it in libpq's password file (~/.pgpass, mode 600) or set "
            f"{PASSWORD_ENV} in the environment of this session")


def password_for(profile: str) -> str | None:
    """The keyring's password for the profile, else ``SKETCHFACE_SERVER_PASSWORD``, else None (libpq may use .pgpass)."""
    import keyring
    from keyring.errors import KeyringError

    if keyring_available():
        try:
            pw = keyring.get_password(KEYRING_SERVICE, profile)
        except KeyringError:
            pw = None
        if pw:
            return pw
    return os.environ.get(PASSWORD_ENV) or None


def add_profile(name: str, url: str, unit: str = "", password: str | None = None) -> tuple[ServerProfile, str]:
    """Save a profile (replacing one of that name); returns it and a line about where the password went."""
    if not _PROFILE_NAME.match(name):
        raise ConfigError(f"{name!r} is not a usable profile name.", hint="Use letters, digits, '.', '_' or '-'.")
    clean, in_url = parse_url(url)
    profile = ServerProfile(name, clean, unit)
    profiles = load_profiles()
    profiles[name] = profile
    _save(profiles)
    pw = password or in_url
    note = store_password(name, pw) if pw else "no password given (libpq may use ~/.pgpass or a client certificate)"
    return profile, note


def remove_profile(name: str) -> None:
    import keyring
    from keyring.errors import KeyringError

    profiles = load_profiles()
    if profiles.pop(name, None) is None:
        get_profile(name)  # raises with the list of profiles
    _save(profiles)
    if keyring_available():
        with contextlib.suppress(KeyringError):
            keyring.delete_password(KEYRING_SERVICE, name)


def conninfo(profile: ServerProfile) -> str:
    """The libpq connection string for a profile, its password from the keyring when there is one."""
    from psycopg.conninfo import make_conninfo

    extra: dict[str, Any] = {"application_name": "sketchface", "connect_timeout": 10}
    pw = password_for(profile.name)
    if pw:
        extra["password"] = pw
    return make_conninfo(profile.url, **extra)


def test_profile(profile: ServerProfile) -> dict[str, Any]:
    """Connect once and report server, pgvector and schema versions, TLS use and the user's units."""
    import psycopg


    try:
        with psycopg.connect(conninfo(profile)) as conn:
            out: dict[str, Any] = {"profile": profile.name, "where": profile.where, "user": profile.user,
                                   "server_version": conn.info.server_version,
                                   "tls": bool(conn.pgconn.ssl_in_use), "sslmode": profile.sslmode or "default"}
            row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
            out["pgvector"] = row[0] if row else None
            row = conn.execute("SELECT to_regclass(%s)", (f"{SCHEMA}.meta",)).fetchone()
            out["schema_installed"] = bool(row and row[0])
            out["units"] = [r[0][len(UNIT_PREFIX):] for r in conn.execute(
                "SELECT rolname FROM pg_roles WHERE rolname LIKE %s AND pg_has_role(session_user, oid, 'MEMBER')",
                (UNIT_PREFIX + "%",))]
    except psycopg.Error as exc:
        raise ConfigError(f"Cannot reach server '{profile.name}' ({profile.where}): {exc}".strip(),
                          hint="Check the URL, the password (keyring or ~/.pgpass) and, for TLS, sslrootcert.") from exc
    return out


def open_server_gallery(profile_name: str, ref: str) -> PgGallery:
    """A gallery (name or id) on the server of a saved profile; its connection pool is shared per server."""
    profile = get_profile(profile_name)
    return PgGallery.open(conninfo(profile), ref, profile.name)
