"""The Gallery tab holds a GalleryController, never the job runner or the engine session; changes are broadcast."""

from __future__ import annotations

from typing import Any

import pytest

from sketchface_desktop.controllers.gallery_controller import GalleryController
from sketchface_desktop.engine_session import EngineSession
from sketchface_desktop.views.gallery_panel import GalleryPanel
from sketchface_desktop.views.thumbnails import ThumbnailLoader
from tests.desktop.fakes import InlineRunner

pytestmark = pytest.mark.gui


def test_gallery_panel_works_through_the_gallery_controller(qtbot: Any) -> None:
    runner = InlineRunner()
    session = EngineSession()
    galleries = GalleryController(runner, session)
    panel = GalleryPanel(galleries, ThumbnailLoader(runner))
    qtbot.addWidget(panel)
    assert not hasattr(panel, "hub") and not hasattr(panel, "session"), "the panel is given the controller only"
    changed: list[str] = []
    galleries.changed.connect(changed.append)
    panel.refresh()
    assert panel.infos == [] and changed == [], "negative control: a read changes nothing"
    panel.create_gallery("Mugshots 2026")
    (info,) = panel.infos
    assert info.name == "Mugshots 2026" and panel.current_id == info.id and changed == [info.id]
    panel.verify()
    assert changed == [info.id], "verifying changes nothing"
    panel.delete_gallery(confirm=False)
    assert panel.infos == [] and changed == [info.id, info.id]
    lanes = dict(runner.submitted)
    assert lanes["Listing galleries"] == "io" and lanes["Creating gallery Mugshots 2026"] == "engine"
    assert lanes["Deleting gallery Mugshots 2026"] == "engine"
    session.close()
