"""The models page and the status bar hold a ModelsController, never the job runner; changes are broadcast."""

from __future__ import annotations

from typing import Any

import pytest

from sketchface_desktop.controllers.models_controller import ModelsController
from sketchface_desktop.views.models_page import ModelsPage
from sketchface_desktop.views.status_bar import WorkstationStatusBar
from tests.desktop.fakes import InlineRunner

pytestmark = pytest.mark.gui


def test_models_page_and_status_bar_work_through_the_models_controller(qtbot: Any) -> None:
    runner = InlineRunner()
    models = ModelsController(runner)
    bar, page = WorkstationStatusBar(models), ModelsPage(models)
    qtbot.addWidget(bar)
    qtbot.addWidget(page)
    assert not hasattr(bar, "hub") and not hasattr(page, "hub"), "views are given the controller only"
    assert page.table.rowCount() >= 2, "the page read the manifest's models through the controller"
    bar.refresh_models()
    assert "missing" in bar.models_label.text(), "a fresh home has no face models"
    bar.refresh_device("cpu")
    assert bar.device_label.text().startswith("Device: ")
    assert ("Reading model status", "io") in runner.submitted and ("Checking models", "io") in runner.submitted
    assert ("Detecting compute device", "engine") in runner.submitted
    changed: list[str] = []
    models.models_changed.connect(lambda: changed.append("models"))
    page.refresh()
    assert changed == [], "negative control: a read changes nothing"
    page.verify_all()
    assert changed == ["models"] and runner.submitted[-2] == ("Verifying model files (SHA-256)", "engine")
    assert runner.submitted[-1] == ("Reading model status", "io"), "the page shows the result of the change"
