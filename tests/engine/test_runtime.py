"""ONNX Runtime provider choice: CUDA only when its provider really loads; the app says "CPU" otherwise."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch

from engine import runtime


@pytest.fixture(autouse=True)
def fresh_status() -> Iterator[None]:
    runtime.forget_onnx_status()
    yield
    runtime.forget_onnx_status()


def fake_cuda(monkeypatch: pytest.MonkeyPatch, loads: bool) -> list[list[str]]:
    """A GPU machine whose onnxruntime lists CUDA; ``loads`` says whether the provider really loads."""
    asked: list[list[str]] = []

    class Session:
        def __init__(self, model: Any, providers: list[str]) -> None:
            asked.append(list(providers))
            self.providers = [p for p in providers if loads or p != runtime.CUDA_EP]

        def get_providers(self) -> list[str]:
            return self.providers

    monkeypatch.setattr(runtime, "cuda_usable", lambda: True)
    monkeypatch.setattr(ort, "get_available_providers", lambda: [runtime.CUDA_EP, runtime.CPU_EP])
    monkeypatch.setattr(ort, "InferenceSession", Session)
    monkeypatch.setattr(ort, "preload_dlls", lambda **kw: print("Failed to load libcurand.so.10") if not loads else None)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "NVIDIA Test GPU")
    return asked


def test_cuda_provider_is_used_when_it_really_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = fake_cuda(monkeypatch, loads=True)
    status = runtime.onnx_status()
    assert status.label == "GPU (CUDA)" and status.on_gpu and status.reason == ""
    assert runtime.ort_providers() == [runtime.CUDA_EP, runtime.CPU_EP]
    assert asked == [[runtime.CUDA_EP, runtime.CPU_EP]]  # the probe asked for CUDA
    session = ort.InferenceSession(b"model", providers=runtime.ort_providers())
    assert runtime.check_session(session) == "GPU (CUDA)"
    assert runtime.describe() == "GPU (CUDA): NVIDIA Test GPU"


def test_a_listed_but_unloadable_cuda_provider_is_reported_as_cpu(monkeypatch: pytest.MonkeyPatch,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    fake_cuda(monkeypatch, loads=False)
    with caplog.at_level(logging.WARNING, logger="engine.runtime"):
        status = runtime.onnx_status()
    assert status.label == "CPU" and not status.on_gpu
    assert "did not load" in status.reason and "libcurand.so.10" in status.reason and "tools/dev.py" in status.reason
    assert any("run on the CPU" in r.getMessage() for r in caplog.records)  # never silently
    assert runtime.ort_providers() == [runtime.CPU_EP]  # sessions no longer ask for what cannot load
    assert "face models on CPU" in runtime.describe()


def test_onnxruntime_without_cuda_provider_says_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_cuda(monkeypatch, loads=True)
    monkeypatch.setattr(ort, "get_available_providers", lambda: [runtime.CPU_EP])
    status = runtime.onnx_status()
    assert status.label == "CPU" and "no CUDA provider" in status.reason


def test_cpu_machine_says_cpu_with_the_reason() -> None:
    status = runtime.onnx_status()  # the test session forces the CPU
    assert status.label == "CPU" and status.reason == "no usable NVIDIA GPU"
    assert runtime.describe().startswith("CPU (") and "no usable NVIDIA GPU" in runtime.describe()
    assert runtime.onnx_status("cpu").reason == "CPU chosen (device setting)"


def test_probe_model_runs_on_the_real_onnxruntime() -> None:
    session = ort.InferenceSession(runtime._probe_model(), providers=[runtime.CPU_EP])
    out = session.run(None, {"x": np.array([1.5], np.float32)})[0]
    assert out.tolist() == [3.0] and runtime.check_session(session) == "CPU"
