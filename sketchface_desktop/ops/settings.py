"""Settings reads and writes for the Settings dialog: the settings file, the data locations, the memory plan.

All of it is file reads and arithmetic, cheap enough for the GUI thread (the GPU facts the memory plan
needs come from an op in the engine lane). Each call answers with the text the dialog shows when
something is refused, so the dialog needs none of the engine's error types.
"""

from __future__ import annotations

import os
from pathlib import Path

from engine import demo, examiners, paths, settings, workstation_key
from engine.errors import CaseError, ConfigError, EngineError
from engine.generate import memory
from engine.settings import Settings

__all__ = ["DEVICES", "ExaminerProfile", "Settings", "accept_examiner_key", "acting_examiner", "add_examiner",
           "cases_dir_default", "demo_notice", "examiner_profiles", "export_examiner_key", "import_agency_keys",
           "key_unlocked", "locations", "memory_plan_text", "needs_passphrase", "read_settings", "revoke_examiner_key",
           "save_settings", "trusted_examiner_keys", "use_examiner", "window_passphrase_policy"]

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


# -- examiner profiles and the trust list (small file reads and writes; the key is unlocked here, on the
# GUI thread, so case-lane writes never need to ask for a passphrase) ---------------------------------

ExaminerProfile = examiners.Profile


def examiner_profiles() -> list[ExaminerProfile]:
    """Every examiner profile of this workstation, oldest first ([] when the list cannot be read)."""
    try:
        return examiners.profiles()
    except EngineError:
        return []


def acting_examiner() -> ExaminerProfile | None:
    """The profile this window acts as (None: nobody chosen yet, the window asks who is working)."""
    try:
        return examiners.current()
    except EngineError:
        return None


def needs_passphrase() -> bool:
    """True where no OS keyring holds examiner keys: a new profile's key file needs a passphrase."""
    return workstation_key.store_kind() != "keyring"


def add_examiner(name: str, identifier: str, passphrase: str | None = None) -> tuple[ExaminerProfile | None, str]:
    """Create a profile (it becomes the acting one); (profile, '') or (None, the engine's reason)."""
    try:
        profile = examiners.add(name, identifier, passphrase=passphrase or None)
    except EngineError as exc:
        return None, str(exc)
    examiners.act_as(profile.fingerprint)
    return profile, ""


def _never_ask(profile: ExaminerProfile, _new: bool) -> str:
    """The window's passphrase source: a write in a worker thread never asks on a terminal; the key is
    unlocked when the examiner switches to the profile (status bar or Settings > Examiners)."""
    raise CaseError(f"The examiner key of {profile.name} ({profile.identifier}) is locked in this window.",
                    hint="Choose the profile again in the status bar's examiner switcher and give its passphrase.")


def window_passphrase_policy() -> None:
    """Install :func:`_never_ask` for this process (the window calls it once at start)."""
    examiners.set_passphrase_source(_never_ask)


def use_examiner(fingerprint: str, passphrase: str | None = None) -> tuple[ExaminerProfile | None, str]:
    """Act as this profile in this window and make it the workstation's current one; its key is unlocked
    now (``passphrase`` for a key file), so a wrong passphrase is said here and not at the first write."""
    try:
        profile = examiners.find(fingerprint)
        if passphrase:
            examiners.set_passphrase_source(lambda _p, _new: passphrase)
        try:
            examiners.private_key(profile)
        finally:
            examiners.set_passphrase_source(_never_ask)
        examiners.act_as(profile.fingerprint)
        examiners.use(profile.fingerprint)
    except EngineError as exc:
        return None, str(exc)
    return profile, ""


def key_unlocked(profile: ExaminerProfile) -> bool:
    """True when the profile's key signs in this process without asking (keyring, unlocked, environment)."""
    examiners.set_passphrase_source(_never_ask)
    try:
        examiners.private_key(profile)
    except EngineError:
        return False
    return True


def export_examiner_key(fingerprint: str) -> dict[str, str]:
    """The profile's public half, as another workstation's trust list accepts it."""
    return examiners.export_key(fingerprint)


def trusted_examiner_keys() -> tuple[list[dict[str, object]], str]:
    """(the trust list, '') or ([], why it cannot be used)."""
    try:
        return list(examiners.trusted_keys()), ""
    except EngineError as exc:
        return [], str(exc)


def accept_examiner_key(path: Path) -> str:
    """Accept one exported examiner key file; '' when accepted, else the reason."""
    import json

    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(entry, dict):
            return f"{path} is not an exported examiner key."
        examiners.accept(entry, source=f"key file {path.name}")
    except (OSError, ValueError) as exc:
        return f"The key file {path} cannot be read ({exc})."
    except EngineError as exc:
        return str(exc)
    return ""


def import_agency_keys(path: Path) -> tuple[int, str]:
    """Accept every key of an agency file; (how many, '') or (0, the reason)."""
    try:
        return len(examiners.import_agency_file(path)), ""
    except EngineError as exc:
        return 0, str(exc)


def revoke_examiner_key(fingerprint: str, reason: str) -> str:
    """Revoke a key from now on; '' when revoked, else the reason."""
    try:
        examiners.revoke(fingerprint, reason=reason)
    except EngineError as exc:
        return str(exc)
    return ""


def demo_notice() -> str:
    """The DEMO notice when this workstation runs on the demo home (stand-in models), else ''."""
    home = os.environ.get("SKETCHFACE_HOME")
    if home and (Path(home).expanduser() / demo.MARKER).is_file():  # only ``sketchface demo`` writes it
        return demo.DEMO_NOTICE
    return ""
