"""Settings reads and writes for the Settings dialog: the settings file, the data locations, the memory plan.

All of it is file reads and arithmetic, cheap enough for the GUI thread (the GPU facts the memory plan
needs come from an op in the engine lane). Each call answers with the text the dialog shows when
something is refused, so the dialog needs none of the engine's error types.
"""

from __future__ import annotations

from pathlib import Path

from engine import paths, settings
from engine.errors import ConfigError
from engine.generate import memory
from engine.settings import Settings

__all__ = ["DEVICES", "Settings", "cases_dir_default", "locations", "memory_plan_text", "read_settings",
           "save_settings"]

DEVICES: tuple[str, ...] = tuple(settings.DEVICES)


def read_settings() -> tuple[Settings, str]:
    """The saved settings, or the defaults and why the file could not be read ('' when it was)."""
    try:
        return settings.load(), ""
    except ConfigError as exc:
        return Settings(), str(exc)


def save_settings(new: Settings) -> str:
    """Validate and save ``new``; '' when saved, else the engine's reason (nothing is written then)."""
    try:
        settings.save(new)
    except ConfigError as exc:
        return str(exc)
    return ""


def cases_dir_default() -> Path:
    """Where new cases go when the examiner has not chosen a folder."""
    return paths.cases_dir()


def locations() -> list[tuple[str, Path, str]]:
    """(title, folder, environment variable that moves it) for each place SketchFace keeps data."""
    return [("Data", paths.data_dir(), "SKETCHFACE_DATA_DIR"),
            ("Models", paths.models_dir(), "SKETCHFACE_MODELS_DIR"),
            ("Galleries", paths.galleries_dir(), "SKETCHFACE_DATA_DIR"),
            ("Settings", paths.config_dir(), "SKETCHFACE_CONFIG_DIR"),
            ("Logs", paths.log_dir(), "SKETCHFACE_LOG_DIR")]


def memory_plan_text(device: str, placement: str, vae_tiling: str, vram_budget_gb: float | None,
                     vram: tuple[float, float] | None) -> str:
    """One line: the generation memory plan the engine would choose with these values, and why.

    ``vram`` is the (free, total) GB reading from the models controller's ``gpu_facts``, so the dialog
    can show the plan as the examiner changes the values without touching the GPU again.
    """
    plan = memory.choose(device, placement=placement, vae_tiling=vae_tiling, vram_budget_gb=vram_budget_gb,
                         vram=vram)
    free = f"{plan.free_gb:.1f} of {plan.total_gb:.1f} GB free · " if plan.free_gb is not None else ""
    return f"{plan.label} — {free}{plan.reason}"
