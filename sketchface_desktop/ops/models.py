"""Model operations: status reads in the io lane; import, download, verify and warm-up in the engine lane."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine import models
from engine.errors import ModelMissing
from sketchface_desktop.ops.base import Op, query

# What search cannot work without (the first-run guide asks for these first).
REQUIRED = ("buffalo_l.det_10g", "buffalo_l.w600k_r50")
RECOMMENDED = ("sketch_encoder",)


def missing_required() -> list[str]:
    """The required search models that are not installed (file checks only: safe in the GUI thread)."""
    return [m for m in REQUIRED if not models.installed(m)]


@dataclass(frozen=True)
class MissingModel:
    """A model the first-run guide lists: id, title, features that need it, what to do, and its importance."""

    model_id: str
    title: str
    required_for: tuple[str, ...]
    hint: str
    level: str  # "required", "recommended" or "optional"


def missing_models() -> list[MissingModel]:
    """Every manifest model that is not installed, most important first (file checks only)."""
    out: list[MissingModel] = []
    for model_id, spec in models.MODELS.items():
        if models.installed(model_id):
            continue
        try:
            models.model_path(model_id)
            hint = ""
        except ModelMissing as exc:
            hint = exc.hint
        level = "required" if model_id in REQUIRED else "recommended" if model_id in RECOMMENDED else "optional"
        out.append(MissingModel(model_id, spec.title, spec.required_for, hint, level))
    order = {"required": 0, "recommended": 1, "optional": 2}
    return sorted(out, key=lambda m: order[m.level])


def model_summary() -> dict[str, Any]:
    """Which search models are installed and which sketch embedding will be used (file checks only)."""
    missing = missing_required()
    return {"required_ok": not missing, "missing": missing, "sketch_encoder": models.installed("sketch_encoder")}


def summary() -> Op[dict[str, Any]]:
    return query("Checking models", model_summary)


def status() -> Op[list[Any]]:
    """Model status rows (``engine.models.store.status``): stats files, hashes nothing."""
    def work() -> list[Any]:
        from engine.models import store

        return list(store.status(deep=False))

    return query("Reading model status", work)


def device(preference: str) -> Op[str]:
    """Which device the models will use (may import torch: never in the GUI thread)."""
    def work() -> str:
        from engine import runtime

        return str(runtime.describe(preference))

    return query("Detecting compute device", work, lane="engine")


def import_bundle(path: str) -> Op[list[str]]:
    def work(progress: Any, cancel: Any) -> list[str]:
        from engine.models import import_bundle as engine_import

        return list(engine_import(path, progress=progress, cancel=cancel))

    return Op(f"Importing models from {path}", work, lane="engine")


def download(model_id: str, title: str) -> Op[list[str]]:
    def work(progress: Any, cancel: Any) -> list[str]:
        from engine.models import download as engine_download

        return list(engine_download(model_id, progress=progress, cancel=cancel))

    return Op(f"Downloading {title}", work, lane="engine")


def verify_all() -> Op[list[Any]]:
    def work(progress: Any, cancel: Any) -> list[Any]:
        from engine.models import store

        return [v for v in store.verify(None, progress=progress, cancel=cancel) if v.present]

    return Op("Verifying model files (SHA-256)", work, lane="engine")


def warm_up() -> Op[None]:
    """Import the engine's heavy modules after the first paint, before the examiner needs them."""
    def work() -> None:
        from sketchface_desktop.engine_session import warm_up_engine

        warm_up_engine()

    return query("Preparing the engine", work, lane="engine")


def build_demo_in_subprocess(progress: Any, cancel: Any) -> None:
    """Run ``sketchface demo`` as a child process: building the demo points SketchFace's locations at the
    demo home for a while, which must never happen inside the workstation that holds real cases."""
    import re
    import subprocess
    import sys

    from engine.errors import Cancelled, ConfigError
    from engine.progress import ProgressEvent

    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "demo"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    lines: list[str] = []
    for line in proc.stdout:
        lines.append(line.rstrip())
        if m := re.match(r"\[(\d+)/(\d+)\] (.*)", line):
            progress(ProgressEvent(int(m.group(1)), int(m.group(2)), m.group(3).strip()))
        if cancel.cancelled:
            proc.kill()
            proc.wait()
            raise Cancelled("Demo preparation cancelled.")
    if proc.wait() != 0:
        raise ConfigError("The demo could not be prepared: " + (lines[-1] if lines else "no output"),
                          hint="Run 'sketchface demo' in a terminal to see the whole message.")


def prepare_demo() -> Op[Any]:
    """Install the demo (tiny random-weight models, sample gallery, DEMO case) into the separate demo home."""
    def work(progress: Any, cancel: Any) -> Any:
        from engine.demo import prepare_demo as engine_demo

        build_demo_in_subprocess(progress, cancel)
        return engine_demo()  # already prepared: reads the demo home's marker, changes nothing

    return Op("Preparing demo data", work, lane="engine")
