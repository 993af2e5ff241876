"""Compute device and ONNX Runtime provider choice, in one place.

Why the ONNX check: onnxruntime-gpu lists ``CUDAExecutionProvider`` as available whether or not the
CUDA libraries it links against (``libcublas``, ``libcurand``, ``libcudnn`` ...) can be loaded. A
session that asks for CUDA but cannot load it runs on the CPU and says so only in onnxruntime's log
(on a CPU-only machine it logs a loud error). So the CUDA libraries are preloaded from the NVIDIA
wheels (``onnxruntime.preload_dlls``), a one-node probe session checks that the provider really
loaded (``session.get_providers()``), and only then do the face models ask for it. Whatever happens,
:func:`onnx_status` says which provider runs and why: the status bar shows "GPU (CUDA)" or "CPU".
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

CUDA_EP = "CUDAExecutionProvider"
CPU_EP = "CPUExecutionProvider"
GPU_LABEL = "GPU (CUDA)"
CPU_LABEL = "CPU"
SETUP_HINT = "run 'python tools/dev.py setup' to install the CUDA libraries it needs"


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
    return "cuda" if cuda_usable() else "cpu"


@dataclass(frozen=True)
class OnnxStatus:
    """What ONNX Runtime really runs on.

    Attributes:
        providers: the providers sessions are created with (CUDA first only when it really loaded).
        label: "GPU (CUDA)" or "CPU", for the status bar.
        reason: why it is the CPU (empty on the GPU).
        available: what the installed onnxruntime build lists.
    """

    providers: tuple[str, ...]
    label: str
    reason: str = ""
    available: tuple[str, ...] = ()

    @property
    def on_gpu(self) -> bool:
        return self.label == GPU_LABEL


def preload_cuda_libraries() -> str:
    """Load the CUDA/cuDNN libraries from the NVIDIA wheels (onnxruntime >= 1.21); returns its messages."""
    import onnxruntime as ort

    preload = getattr(ort, "preload_dlls", None)
    if preload is None:
        return ""
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            preload(cuda=True, cudnn=True, msvc=False)
    except Exception as exc:  # a failed preload is reported; the probe decides
        return f"{out.getvalue()} {exc}".strip()
    return out.getvalue().strip()


def _probe_model() -> bytes:
    """A one-node ONNX graph (y = x + x), enough to make onnxruntime load an execution provider."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Add", ["x", "x"], ["y"])], "probe", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


def session_providers(session: Any) -> list[str]:
    """The providers a created session really uses (not those it asked for)."""
    return list(session.get_providers())


def onnx_status(preference: str = "auto") -> OnnxStatus:
    """Which provider ONNX models will run on for the preference, checked once with a probe session."""
    return _onnx_status(preference)


@functools.lru_cache(maxsize=4)
def _onnx_status(preference: str) -> OnnxStatus:
    import onnxruntime as ort

    ort.set_default_logger_severity(3)  # warnings about pruned initializers are noise to a user
    available = tuple(ort.get_available_providers())
    if resolve_device(preference) != "cuda":
        why = "CPU chosen (device setting)" if preference == "cpu" else "no usable NVIDIA GPU"
        return OnnxStatus((CPU_EP,), CPU_LABEL, why, available)
    if CUDA_EP not in available:
        return OnnxStatus((CPU_EP,), CPU_LABEL, "the installed onnxruntime has no CUDA provider "
                          "(onnxruntime-gpu is needed; " + SETUP_HINT + ")", available)
    messages = preload_cuda_libraries()
    ort.set_default_logger_severity(4)  # the probe's load error is reported below, in words
    try:
        probe = ort.InferenceSession(_probe_model(), providers=[CUDA_EP, CPU_EP])
        loaded = session_providers(probe)
    except Exception as exc:  # any failure means: not on the GPU
        loaded, messages = [], f"{messages} {exc}".strip()
    finally:
        ort.set_default_logger_severity(3)
    if CUDA_EP in loaded:
        return OnnxStatus((CUDA_EP, CPU_EP), GPU_LABEL, "", available)
    detail = f" ({messages.splitlines()[0]})" if messages else ""
    reason = f"the CUDA provider did not load{detail}; {SETUP_HINT}"
    log.warning("ONNX models run on the CPU: %s", reason)
    return OnnxStatus((CPU_EP,), CPU_LABEL, reason, available)


def ort_providers(preference: str = "auto") -> list[str]:
    """ONNX Runtime execution providers for the preference, CUDA first only when it really loads."""
    return list(onnx_status(preference).providers)


def check_session(session: Any, preference: str = "auto") -> str:
    """"GPU (CUDA)" or "CPU" for a created session; logs a warning when CUDA was expected but is absent."""
    used = session_providers(session)
    if CUDA_EP in used:
        return GPU_LABEL
    if onnx_status(preference).on_gpu:
        log.warning("an ONNX session fell back to the CPU although the CUDA provider loaded in the probe")
    return CPU_LABEL


def forget_onnx_status() -> None:
    """Probe again on next use (after the set-up installed CUDA libraries, or in tests)."""
    _onnx_status.cache_clear()


def describe(preference: str = "auto") -> str:
    """A one-line description of the compute devices, for status bars and reports (never silent on CPU)."""
    onnx = onnx_status(preference)
    if resolve_device(preference) == "cuda":
        import torch

        name = torch.cuda.get_device_name(0)
        if onnx.on_gpu:
            return f"{GPU_LABEL}: {name}"
        return f"{GPU_LABEL}: {name} · face models on {CPU_LABEL} ({onnx.reason})"
    return f"{CPU_LABEL} ({os.cpu_count()} threads; {onnx.reason})"
