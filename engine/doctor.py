"""``sketchface doctor [--json]``: the machine as the app sees it, in one report for a user or support.

Why one command: "it is slow" or "it runs out of memory" is usually the machine, not the case. The
report says which Python and libraries are installed, where torch runs (device, CUDA version), which
ONNX providers really loaded (a probe session, not the provider list), free and total VRAM, the
memory plan generation would choose, which models are installed and how each is trusted (published
digest, pinned at first import), the data folders and the free disk under each. No network, no
hashing of model files (the digest cache answers), so it runs in seconds.
"""

from __future__ import annotations

import platform
import shutil
import sys
from importlib import metadata
from typing import Any

from engine import environment, models, paths, runtime, settings
from engine.errors import ConfigError
from engine.generate import memory

LIBRARIES = ("sketchface", "torch", "torchvision", "diffusers", "transformers", "peft", "accelerate",
             "onnxruntime-gpu", "onnxruntime", "insightface", "open_clip_torch", "hnswlib", "numpy",
             "opencv-python-headless", "scikit-image", "PySide6-Essentials")


def _versions() -> dict[str, str]:
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _torch(preference: str) -> dict[str, Any]:
    info: dict[str, Any] = {"torch_device": runtime.resolve_device(preference), "cuda_version": None,
                            "gpu": None, "vram_free_gb": None, "vram_total_gb": None}
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return info
    info["cuda_version"] = torch.version.cuda
    info["torch_cuda_available"] = bool(torch.cuda.is_available())
    if info["torch_device"] == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
        vram = memory.read_vram()
        if vram is not None:
            info["vram_free_gb"], info["vram_total_gb"] = round(vram[0], 2), round(vram[1], 2)
    return info


def _onnx(preference: str) -> dict[str, Any]:
    try:
        status = runtime.onnx_status(preference)
    except ImportError as exc:
        return {"onnx_providers": [], "onnx_device": "unavailable", "onnx_reason": str(exc)}
    build = ""
    try:
        from onnxruntime.capi import build_and_package_info as b

        build = str(getattr(b, "cuda_version", "") or "")
    except ImportError:  # pragma: no cover - CPU builds may lack it
        pass
    return {"onnx_providers": list(status.providers), "onnx_available": list(status.available),
            "onnx_device": status.label, "onnx_reason": status.reason, "onnx_cuda_build": build or None}


def _models() -> list[dict[str, Any]]:
    rows = []
    for st in models.status():
        rows.append({"id": st.id, "installed": st.installed, "trust": st.verified,
                     "pinned": any(f.trust != "not pinned" for f in st.files),
                     "published": bool(st.files) and all(f.trust == "published" for f in st.files),
                     "missing": list(st.missing)})
    return rows


def _folders() -> dict[str, dict[str, Any]]:
    out = {}
    for name, fn in (("data", paths.data_dir), ("models", paths.models_dir), ("galleries", paths.galleries_dir),
                     ("cases", paths.cases_dir), ("config", paths.config_dir), ("logs", paths.log_dir)):
        path = fn()
        probe = path
        while not probe.exists() and probe.parent != probe:
            probe = probe.parent
        free = shutil.disk_usage(probe).free / 1024**3
        out[name] = {"path": str(path), "exists": path.exists(), "free_disk_gb": round(free, 1)}
    return out


def collect() -> dict[str, Any]:
    """Everything the report shows, as a JSON-ready dict (keys documented in ``sketchface doctor --help``)."""

    try:
        s = settings.load()
        settings_note = ""
    except ConfigError as exc:  # a broken settings file is part of the diagnosis
        s, settings_note = settings.Settings(), str(exc)
    report: dict[str, Any] = {
        "python": sys.version.split()[0], "python_executable": sys.executable, "platform": platform.platform(),
        "libraries": _versions(), "settings_device": s.device,
        "environment": environment.current().to_dict(),
    }
    report.update(_torch(s.device))
    report.update(_onnx(s.device))
    opts = memory.runtime_options(s)
    vram = ((report["vram_free_gb"], report["vram_total_gb"]) if report["vram_free_gb"] is not None else None)
    plan = memory.choose(report["torch_device"], placement=opts.placement, vae_tiling=opts.tiling,
                         vram_budget_gb=opts.vram_budget_gb, vram=vram)
    report["memory_plan"] = plan.to_dict()
    report["safety_checker"] = opts.safety_checker
    report["models"] = _models()
    report["folders"] = _folders()
    if settings_note:
        report["settings_error"] = settings_note
    return report


def render(report: dict[str, Any]) -> str:
    """The report as lines for a terminal (or a support e-mail)."""
    plan = report["memory_plan"]
    lines = [
        f"Python       {report['python']} ({report['platform']})",
        "Libraries    " + ", ".join(f"{k} {v}" for k, v in report["libraries"].items()),
        *_environment_lines(report["environment"]),
        f"Torch        {report['torch_device']}" + (f" ({report['gpu']})" if report.get("gpu") else "")
        + f", CUDA build {report['cuda_version'] or 'none'}",
        f"ONNX         {report['onnx_device']}: {', '.join(report['onnx_providers'])}"
        + (f" - {report['onnx_reason']}" if report.get("onnx_reason") else ""),
        "VRAM         " + (f"{report['vram_free_gb']} GB free of {report['vram_total_gb']} GB"
                           if report.get("vram_free_gb") is not None else "no GPU"),
        f"Memory plan  {plan['placement']} ({plan['chosen_by']}): {plan['reason']}",
        f"Safety check {'on' if report['safety_checker'] else 'off'} (Settings > Generation)",
        "Models:",
    ]
    for m in report["models"]:
        state = m["trust"] if m["installed"] else "not installed"
        lines.append(f"  {m['id']:<34} {state}")
    lines.append("Folders:")
    for name, f in report["folders"].items():
        lines.append(f"  {name:<10} {f['path']} ({f['free_disk_gb']} GB free{'' if f['exists'] else ', not created yet'})")
    if report.get("settings_error"):
        lines.append(f"Settings     {report['settings_error']}")
    return "\n".join(lines)


def _environment_lines(env: dict[str, Any]) -> list[str]:
    """The lock line, and one line per package that differs from it."""
    if env["lock_digest"] is None:
        return ["Lock         none for this platform: library versions are not pinned (see the README)"]
    state = "matches it" if env["matches_lock"] else f"DIFFERS in {len(env['differences'])} package(s)"
    return [f"Lock         {env['lock']} sha256 {env['lock_digest']}: this environment {state}",
            *(f"  {d}" for d in env["differences"])]
