"""Compute device and ONNX Runtime provider choice, in one place.

The GPU build of onnxruntime loads on CPU-only machines but logs a loud error when asked for CUDA
there, so providers are chosen from what really works, not from what is merely listed.
"""

from __future__ import annotations

import functools
import os


@functools.lru_cache(maxsize=1)
def cuda_usable() -> bool:
    """True when torch sees a CUDA device (imports torch lazily; False without torch)."""
    if os.environ.get("SKETCHFACE_FORCE_CPU"):
        return False
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return bool(torch.cuda.is_available())


def resolve_device(preference: str = "auto") -> str:
    """Map a user preference ("auto", "cuda", "cpu") to the device to use: "cuda" or "cpu"."""
    if preference == "cpu":
        return "cpu"
    if preference == "cuda":
        return "cuda" if cuda_usable() else "cpu"
    return "cuda" if cuda_usable() else "cpu"


def ort_providers(preference: str = "auto") -> list[str]:
    """ONNX Runtime execution providers for the preference, CUDA first only when it is usable."""
    import onnxruntime as ort

    ort.set_default_logger_severity(3)  # warnings about pruned initializers are noise to a user
    available = set(ort.get_available_providers())
    providers: list[str] = []
    if resolve_device(preference) == "cuda" and "CUDAExecutionProvider" in available:
        providers.append("CUDAExecutionProvider")
    providers.append("CPUExecutionProvider")
    return providers


def describe(preference: str = "auto") -> str:
    """A one-line description of the compute device, for status bars and reports."""
    dev = resolve_device(preference)
    if dev == "cuda":
        import torch

        return f"CUDA: {torch.cuda.get_device_name(0)}"
    return f"CPU ({os.cpu_count()} threads)"
