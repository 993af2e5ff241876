"""The window's watch list: Watch on a shown search, the background check, the badge counting hits, and the list
that acknowledges a hit into an ordinary search — through the real wiring (action → controller → ops → engine)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from engine.cases import create_case, open_case, watch_records
from engine.search import Query
from tests.desktop.conftest import wait_idle
from tests.fixtures.photos import small_photo_folder

pytestmark = pytest.mark.gui


def _shot(widget: Any, name: str) -> None:
    """Save a picture of ``widget`` when SKETCHFACE_SHOTS names a folder (for looking at the screen by eye)."""
    folder = os.environ.get("SKETCHFACE_SHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        widget.grab().save(str(Path(folder) / f"watch_{name}.png"))


def test_watch_action_check_badge_and_acknowledge(qtbot: Any, window: Any, installed_models: Path,
                                                  tmp_path: Path) -> None:
    w = window
    ws = w.session
    small_photo_folder(tmp_path / "gallery", 5, seed=1)
    planted = small_photo_folder(tmp_path / "planted", 1, seed=9)[0]
    gid = ws.create_gallery("Bookings").id
    ws.add_photos(gid, [tmp_path / "gallery"])
    with create_case("2026-0400", "Cold case") as case:
        ws.record(case, ws.search([Query.from_path(planted, "photo")], [gid], k=5), label="witness photo")
        case_id = case.case_id
    w.cases.open(case_id)
    qtbot.waitUntil(lambda: w.cases.is_open and bool(w.cases.searches), timeout=30_000)
    w.flow.show_search(w.cases.searches[0])
    qtbot.waitUntil(lambda: w.flow.shown_search_id == 1, timeout=30_000)
    messages: list[str] = []
    w.watches.message.connect(messages.append)
    w.act_watch.trigger()
    qtbot.waitUntil(lambda: any("is watched" in m for m in messages), timeout=30_000)
    wait_idle(qtbot, w.hub)
    assert w.watch_badge.text() == "Watch hits: 0"
    (tmp_path / "new").mkdir()
    small_photo_folder(tmp_path / "new", 2, seed=3)
    shutil.copy(planted, tmp_path / "new" / "booked_person.jpg")
    ws.add_photos(gid, [tmp_path / "new"])
    assert w.watches.timer.isActive()  # checks again on its timer; here one is asked for at once
    w.watches.check()
    wait_idle(qtbot, w.hub)
    n = len(w.watches.hits)
    assert n >= 1 and w.watch_badge.text() == f"Watch hits: {n}", messages  # the default bar: rank <= k
    dialog = w.watch_badge.open_list()
    assert dialog.list.count() == n and not dialog.list.item(0).icon().isNull()  # its own gallery thumbnail
    assert "booked_person.jpg" in dialog.list.item(0).toolTip()  # the best new face is the planted person
    _shot(w.statusBar(), "badge")
    _shot(dialog, "list")
    dialog.acknowledge.click()
    qtbot.waitUntil(lambda: w.watch_badge.text() == f"Watch hits: {n - 1}", timeout=30_000)
    wait_idle(qtbot, w.hub)
    assert dialog.list.count() == n - 1 and len(w.cases.searches) == 2  # an ordinary search of the case now
    w.watches.check()  # a later check flags nothing again
    wait_idle(qtbot, w.hub)
    assert w.watch_badge.text() == f"Watch hits: {n - 1}"
    w.cases.close()
    wait_idle(qtbot, w.hub)
    with open_case(case_id) as case:
        hits = watch_records.list_hits(case)
        assert len(hits) == n and hits[0].search_id == 2 and case.verify().ok
        assert hits[0].row["photo_path"].endswith("booked_person.jpg")
