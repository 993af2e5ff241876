"""Settings > Generation: shows the memory plan the engine would choose and saves the user's overrides."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from engine import settings as engine_settings

pytestmark = pytest.mark.gui

GB = 1024**3


@pytest.fixture
def hub(qtbot: Any) -> Iterator[Any]:
    from sketchface_desktop.workers import JobHub

    h = JobHub()
    yield h
    h.shutdown()


def test_generation_tab_shows_the_plan_and_saves_overrides(qtbot: Any, hub: Any) -> None:
    from sketchface_desktop.views.settings_dialog import SettingsDialog

    dialog = SettingsDialog(hub, start_tab="generation")
    qtbot.addWidget(dialog)
    assert dialog.tabs.tabText(dialog.tabs.currentIndex()) == "Generation"
    assert dialog.safety.isChecked()  # on by default, as the reference pipeline
    qtbot.waitUntil(lambda: dialog.gpu is not None, timeout=60_000)
    assert "CPU only" in dialog.plan_label.text()  # this machine has no GPU
    assert dialog.onnx_label.text().startswith("CPU")
    # With a GPU's free memory known, the label follows the dialog's choices before saving.
    dialog._gpu_read({"vram": (10.0, 12.0), "onnx": "GPU (CUDA)"})
    assert "Model CPU offload" in dialog.plan_label.text() and "10.0 of 12.0 GB free" in dialog.plan_label.text()
    dialog.memory_plan.setCurrentIndex(dialog.memory_plan.findData("sequential_offload"))
    assert "Sequential" in dialog.plan_label.text() and "Chosen in Settings" in dialog.plan_label.text()
    dialog.vae_tiling.setCurrentIndex(dialog.vae_tiling.findData("on"))
    dialog.safety.setChecked(False)
    dialog.vram_budget.setValue(7.5)
    dialog.batch_candidates.setValue(2)
    dialog.accept()
    saved = engine_settings.load()
    assert (saved.gen_memory_plan, saved.gen_vae_tiling, saved.gen_safety_checker, saved.gen_vram_budget_gb,
            saved.gen_batch_candidates) == ("sequential_offload", "on", False, 7.5, 2)
    reopened = SettingsDialog(hub, start_tab="generation")
    qtbot.addWidget(reopened)
    assert reopened.memory_plan.currentData() == "sequential_offload" and not reopened.safety.isChecked()
    qtbot.waitUntil(lambda: reopened.gpu is not None, timeout=60_000)
