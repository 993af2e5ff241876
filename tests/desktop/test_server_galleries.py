"""Server galleries in the window, against a real PostgreSQL + pgvector (the engine tests' embedded server).

The Gallery tab lists the configured profiles' server galleries beside local ones, "New gallery" creates
one on a profile, "Add folder" embeds here and pushes, and a search over a local + server pair gives one
ranked list that the open case records with the server named in its manifest.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring
import pytest
from keyring.backends import fail

from sketchface_desktop.workers import JobState
from tests.desktop.conftest import wait_idle, wait_job
from tests.desktop.test_examiner_flow import CASE
from tests.engine import conftest_pg

pytestmark = pytest.mark.gui

pg_server = conftest_pg.pg_server  # the engine tests' session server, reused here
pg_database = conftest_pg.pg_database


@pytest.fixture
def no_keyring() -> Iterator[None]:
    """No OS keyring (as on CI): a password travels in the session's environment."""
    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(before)


@pytest.fixture
def hq_profile(pg_server: conftest_pg.PgServer, pg_database: str, no_keyring: None,
               monkeypatch: pytest.MonkeyPatch) -> str:
    """A server profile 'hq' for an examiner of one unit; the password comes from the session's environment."""
    from engine import servers
    from engine.gallery.pg import create_examiner, install_schema

    tag = secrets.token_hex(3)
    install_schema(pg_database)
    create_examiner(pg_database, f"exa_{tag}", "s3cret-pw", [f"u_{tag}"])
    monkeypatch.setenv(servers.PASSWORD_ENV, "s3cret-pw")
    db = pg_database.rsplit("/", 1)[1]
    servers.add_profile("hq", f"postgresql://exa_{tag}@127.0.0.1:{pg_server.port}/{db}", f"u_{tag}")
    return "hq"


def _add(qtbot: Any, w: Any, folder: Path) -> Any:
    job = w.gallery.add_folder(str(folder))
    wait_idle(qtbot, w.hub, timeout=120_000)
    assert job.state is JobState.DONE, w.errors.shown
    return job


def test_server_gallery_is_listed_filled_and_searched_with_a_local_one(
        qtbot: Any, hq_profile: str, window: Any, installed_models: Path, tmp_path: Path) -> None:
    from tests.fixtures.photos import small_photo_folder

    w = window
    small_photo_folder(tmp_path / "local", 3, seed=1)
    server_photos = small_photo_folder(tmp_path / "server", 3, seed=2)
    wait_job(qtbot, w.hub, w.flow.new_case(dict(CASE, case_number="2026-0077")))
    wait_job(qtbot, w.hub, w.gallery.create_gallery("Desk"))
    wait_idle(qtbot, w.hub)
    _add(qtbot, w, tmp_path / "local")

    wait_job(qtbot, w.hub, w.gallery.create_gallery("Shared", server=hq_profile))
    wait_idle(qtbot, w.hub)
    shared = w.gallery.info()
    assert shared is not None and shared.id.startswith("pg:hq:") and shared.name == "Shared [hq]"
    assert not w.gallery.act_rebuild.isEnabled(), "the server maintains its own index"
    _add(qtbot, w, tmp_path / "server")  # embedded here, pushed to the server
    wait_idle(qtbot, w.hub)
    qtbot.waitUntil(lambda: (w.gallery.info(shared.id) or shared).faces >= 3)
    names = [w.gallery.chooser.itemText(i) for i in range(w.gallery.chooser.count())]
    assert names == ["Desk", "Shared [hq]"]  # local first, then the server's, marked with the profile
    qtbot.waitUntil(lambda: len(w.navigator.checked_galleries()) == 2)
    assert shared.id in w.navigator.checked_galleries()

    w.flow.search_photo(str(server_photos[1]))
    wait_idle(qtbot, w.hub, timeout=120_000)
    model = w.results_model
    qtbot.waitUntil(lambda: model.rowCount() > 0 and w.flow.shown_search_id is not None)
    assert w.errors.shown == []
    rows = model.rows
    assert rows[0].gallery_id == shared.id and rows[0].photo_path == str(server_photos[1]) and rows[0].score > 0.99
    assert {r.gallery_name for r in rows} == {"Desk", "Shared [hq]"}, "one list over both galleries"
    scores = [r.score for r in rows]
    assert scores == sorted(scores, reverse=True) and [r.rank for r in rows] == list(range(1, len(rows) + 1))
    assert len({(r.gallery_id, r.face_id) for r in rows}) == len(rows)
    [record] = w.cases.searches
    galleries = record.manifest["galleries"]
    assert {g.get("server", "") for g in galleries} == {"", hq_profile}
    assert all(isinstance(g["content_version"], int) for g in galleries)

    dialog = w.dialogs.open_compare(rows[0])  # the candidate's face, read through the server gallery
    wait_idle(qtbot, w.hub)
    assert not dialog.pane.candidate.isNull()
    dialog.close()
    w.results.exclude_requested.emit(rows[0])  # the exclusion filter is pushed into the server's WHERE
    wait_idle(qtbot, w.hub, timeout=120_000)
    qtbot.waitUntil(lambda: len(w.cases.searches) == 2 and model.rowCount() > 0 and w.flow.shown_search_id == w.cases.searches[-1].id)
    assert rows[0].photo_sha256 not in {r.photo_sha256 for r in model.rows} and w.errors.shown == []


def test_an_unreachable_server_leaves_the_local_galleries_listed(
        qtbot: Any, no_keyring: None, window: Any) -> None:
    """Negative control: a profile whose server is down hides nothing local and raises no error dialog."""
    from engine import servers

    servers.add_profile("down", "postgresql://nobody@127.0.0.1:1/none")
    wait_job(qtbot, window.hub, window.gallery.create_gallery("Desk"))
    wait_idle(qtbot, window.hub, timeout=60_000)
    names = [window.gallery.chooser.itemText(i) for i in range(window.gallery.chooser.count())]
    assert names == ["Desk"] and window.errors.shown == []
