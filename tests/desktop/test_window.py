"""Main window behaviour: layout memory, settings, status bar, engine error dialogs, crash hook, guide at start-up."""

from __future__ import annotations

import logging
import sys

import pytest
from PySide6.QtWidgets import QMessageBox

from engine import settings as engine_settings
from engine.errors import BadImage, Cancelled
from sketchface_desktop import crash
from sketchface_desktop.views.main_window import MainWindow
from sketchface_desktop.views.settings_dialog import SettingsDialog
from tests.desktop.conftest import wait_idle, wait_job

pytestmark = pytest.mark.gui


def test_window_layout_is_remembered_between_runs(qtbot, window) -> None:
    window.resize(1100, 720)  # within any screen, so restoring the geometry is not clamped
    qtbot.wait(50)
    window.jobs_dock.hide()
    window.tabs.setCurrentIndex(1)
    window.splitter.setSizes([500, 300])
    sizes = window.splitter.sizes()
    window.save_layout()
    again = MainWindow(show_guide=False)
    qtbot.addWidget(again)
    again.show()
    qtbot.waitExposed(again)
    qtbot.wait(50)
    assert not again.jobs_dock.isVisible()
    assert again.tabs.currentIndex() == 1
    assert (again.width(), again.height()) == (window.width(), window.height())
    assert [abs(a - b) <= 2 for a, b in zip(again.splitter.sizes(), sizes, strict=True)] == [True, True]
    again.setProperty("confirm_close", False)
    again.close()


def test_settings_dialog_saves_device_through_engine_settings(qtbot, window) -> None:
    dialog = SettingsDialog(window.hub, window)
    qtbot.addWidget(dialog)
    dialog.device.setCurrentIndex(dialog.device.findData("cpu"))
    dialog.examiner.setText("Examiner Two")
    dialog.top_k.setValue(77)
    dialog.accept()
    saved = engine_settings.load()
    assert (saved.device, saved.examiner, saved.search_top_k) == ("cpu", "Examiner Two", 77)
    reopened = SettingsDialog(window.hub, window)
    qtbot.addWidget(reopened)
    assert reopened.device.currentData() == "cpu" and reopened.top_k.value() == 77
    wait_idle(qtbot, window.hub)
    assert reopened.models_page.table.rowCount() >= 2, "the Models page lists the manifest's models"


def test_status_bar_shows_device_from_the_engine_and_model_state(qtbot, window) -> None:
    qtbot.waitUntil(lambda: window.status.device_text != "")
    assert window.status.device_text.startswith("CPU")
    assert "missing" in window.status.models_label.text()


def test_engine_error_is_shown_with_its_own_message_and_cancel_is_silent(qtbot, window) -> None:
    def bad(_p, _c):  # type: ignore[no-untyped-def]
        raise BadImage("sketch.png is truncated.", hint="Export it again.")

    def cancelled(_p, _c):  # type: ignore[no-untyped-def]
        raise Cancelled()

    wait_job(qtbot, window.hub, window.hub.submit("Reading sketch", bad))
    wait_job(qtbot, window.hub, window.hub.submit("Stopping", cancelled))
    boxes = [b for b in window.findChildren(QMessageBox) if b.objectName() == "EngineErrorDialog" and b.isVisible()]
    assert len(boxes) == 1
    assert "sketch.png is truncated." in boxes[0].text() and "Export it again." in boxes[0].informativeText()
    assert window.errors.shown == ["Reading sketch: sketch.png is truncated."]


def test_unhandled_exception_is_logged_and_reported(qtbot, window, sketchface_home, monkeypatch) -> None:
    seen: list[str] = []
    monkeypatch.setitem(crash._state, "test_hook", lambda t, e, tb: seen.append(str(e)))
    crash.init_logging()
    try:
        raise RuntimeError("boom in a slot")
    except RuntimeError:
        crash.excepthook(*sys.exc_info())  # type: ignore[arg-type]
    for handler in logging.getLogger().handlers:
        handler.flush()
    assert seen == ["boom in a slot"]
    assert "boom in a slot" in crash.log_file().read_text(encoding="utf-8")
    assert crash.log_file().parent == sketchface_home / "logs"


def test_first_run_guide_opens_at_start_without_models_and_can_be_dismissed(qtbot) -> None:
    from sketchface_desktop.controllers.window_state import guide_dismissed

    w = MainWindow(show_guide=True)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.dialogs.guide is not None and w.dialogs.guide.isVisible(), timeout=10_000)
    guide = w.dialogs.guide
    guide.dont_show.setChecked(True)
    guide.accept()
    assert guide_dismissed()
    w.setProperty("confirm_close", False)
    w.close()
    w.hub.shutdown()


def test_shortcuts_dialog_lists_the_common_actions_without_clashes(qtbot, window) -> None:
    dialog = window.show_shortcuts()
    rows = [tuple(dialog.table.item(r, c).text() for c in range(3)) for r in range(dialog.table.rowCount())]
    actions = {a for _, a, _ in rows}
    assert {"Search with sketch", "Undo", "New case…", "Mark possible", "Pen", "Eraser"} <= actions
    window_keys = [k for area, _, k in rows if area != "Results"]
    assert len(window_keys) == len(set(window_keys)), "two window actions share a shortcut"
