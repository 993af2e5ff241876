"""``sketchface doctor``: the machine as the app sees it, with the keys support scripts read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from engine import runtime
from engine.cli import main

GB = 1024**3


def run_json(capsys: pytest.CaptureFixture[str]) -> dict:
    assert main(["doctor", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_doctor_json_on_this_cpu_machine(installed_models: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = run_json(capsys)
    for key in ("python", "libraries", "torch_device", "cuda_version", "onnx_providers", "vram_free_gb",
                "memory_plan", "models", "folders", "safety_checker"):
        assert key in report, key
    assert report["torch_device"] == "cpu" and report["vram_free_gb"] is None
    assert report["onnx_providers"] == ["CPUExecutionProvider"] and report["onnx_device"] == "CPU"
    assert report["onnx_reason"] == "no usable NVIDIA GPU"
    assert report["memory_plan"]["placement"] == "cpu"
    assert "torch" in report["libraries"] and "diffusers" in report["libraries"]
    models = {m["id"]: m for m in report["models"]}
    assert models["sd15.realistic_vision_v4"]["installed"] is True  # the tiny set is installed
    assert set(report["folders"]) >= {"data", "models", "galleries", "cases"}
    assert all(f["free_disk_gb"] > 0 for f in report["folders"].values())


def test_doctor_reports_vram_and_the_plan_on_a_gpu(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(runtime, "cuda_usable", lambda: True)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *a: (10 * GB, 12 * GB))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "NVIDIA Test 12GB")
    monkeypatch.setattr(runtime, "onnx_status", lambda pref="auto": runtime.OnnxStatus(
        (runtime.CUDA_EP, runtime.CPU_EP), runtime.GPU_LABEL, "", (runtime.CUDA_EP, runtime.CPU_EP)))
    report = run_json(capsys)
    assert report["torch_device"] == "cuda" and report["gpu"] == "NVIDIA Test 12GB"
    assert report["vram_free_gb"] == 10.0 and report["vram_total_gb"] == 12.0
    assert report["memory_plan"]["placement"] == "model_offload"
    assert report["onnx_providers"][0] == "CUDAExecutionProvider" and report["onnx_device"] == "GPU (CUDA)"
    assert main(["doctor"]) == 0
    text = capsys.readouterr().out
    assert "model_offload" in text and "10.0 GB free of 12.0 GB" in text and "GPU (CUDA)" in text
