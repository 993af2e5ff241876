"""The GPU memory plan (from a faked ``torch.cuda.mem_get_info``), placement, mode switching, safety, structure."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from engine import runtime
from engine.generate import device as dev
from engine.generate import memory
from engine.generate.imaging import lineart_control, plain_inversion
from engine.generate.model_set import SAFETY, ModelLocator
from engine.generate.reconstruct import Reconstructor
from engine.generate.types import ReconstructionRequest, RuntimeOptions
from engine.generate.variations import LocalEditor
from tests.fixtures import tiny_diffusion

GB = 1024**3
SIZE = 32


@pytest.fixture
def fake_gpu(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A CUDA machine as far as the plan can tell: ``set(free_gb)`` fakes ``torch.cuda.mem_get_info``."""
    monkeypatch.setattr(runtime, "cuda_usable", lambda: True)

    class Gpu:
        def set(self, free_gb: float, total_gb: float = 24.0) -> None:
            monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *a: (int(free_gb * GB), int(total_gb * GB)))

    return Gpu()


@pytest.mark.parametrize(("free", "placement", "attributes"), [
    (6, "sequential_offload", "cpu"), (10, "model_offload", "cpu"), (24, "resident", "cuda")])
def test_plan_follows_free_vram(fake_gpu: Any, free: float, placement: str, attributes: str) -> None:
    fake_gpu.set(free)
    rt = dev.resolve(RuntimeOptions(device="auto"))
    assert rt.device == "cuda" and rt.half
    plan = rt.plan
    assert plan.placement == placement and plan.chosen_by == "auto"
    assert plan.free_gb == pytest.approx(free) and plan.total_gb == pytest.approx(24.0)
    assert plan.attributes_device == attributes
    assert f"{free:.1f} GB" in plan.reason


def test_user_override_and_budget_cap(fake_gpu: Any) -> None:
    fake_gpu.set(6)
    plan = dev.resolve(RuntimeOptions(memory_plan="resident")).plan
    assert plan.placement == "resident" and plan.chosen_by == "user" and "Settings > Generation" in plan.reason
    fake_gpu.set(40, 80)
    capped = dev.resolve(RuntimeOptions(vram_budget_gb=8)).plan  # e.g. set_per_process_memory_fraction
    assert capped.placement == "model_offload" and "capped at 8 GB" in capped.reason
    assert dev.resolve(RuntimeOptions(cpu_offload=True)).plan.placement == "model_offload"  # older flag
    with pytest.raises(ValueError, match="GPU memory plan"):
        dev.resolve(RuntimeOptions(memory_plan="everything"))


def test_no_gpu_plans_for_the_cpu() -> None:
    plan = dev.resolve(RuntimeOptions()).plan  # the test session forces the CPU
    assert plan.placement == "cpu" and plan.free_gb is None and plan.attributes_device == "cpu"


def test_vae_tiling_above_768_px_unless_overridden() -> None:
    auto = memory.MemoryPlan("resident")
    assert not auto.tiles(512, 512) and not auto.tiles(768, 768) and auto.tiles(1024, 768)
    assert memory.MemoryPlan("resident", vae_tiling="on").tiles(512, 512)
    assert not memory.MemoryPlan("resident", vae_tiling="off").tiles(1024, 1024)
    assert RuntimeOptions(vae_tiling=True).tiling == "on" and RuntimeOptions(vae_tiling=False).tiling == "off"


class FakePipe:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def to(self, device: str) -> None:
        self.calls.append(f"to:{device}")

    def enable_model_cpu_offload(self) -> None:
        self.calls.append("model_offload")

    def enable_sequential_cpu_offload(self) -> None:
        self.calls.append("sequential_offload")


@pytest.mark.parametrize(("placement", "call"), [("resident", "to:cuda"), ("model_offload", "model_offload"),
                                                 ("sequential_offload", "sequential_offload")])
def test_plan_places_the_pipeline(placement: str, call: str) -> None:
    pipe = FakePipe()
    memory.apply(pipe, memory.MemoryPlan(placement), "cuda")
    assert pipe.calls == [call]


def test_residency_releases_the_previous_holder_on_the_gpu_only() -> None:
    res = memory.Residency()
    released: list[str] = []
    a, b = object(), object()
    res.claim(a, lambda: released.append("a"), "cuda")
    res.claim(a, lambda: released.append("a"), "cuda")  # the holder again: nothing released
    assert released == [] and res.holder() is a
    res.claim(b, lambda: released.append("b"), "cuda")
    assert released == ["a"] and res.holder() is b
    res.claim(a, lambda: released.append("a"), "cpu")  # on the CPU nothing moves
    assert released == ["a"] and res.holder() is b


# ------------------------------------------------------------------------------------------- pipelines
@pytest.fixture(scope="session")
def gen_models(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_diffusion.session_models(request, tmp_path_factory)


@pytest.fixture(scope="module", autouse=True)
def single_thread() -> Iterator[None]:
    with tiny_diffusion.one_thread():
        yield


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=512).astype(np.float32)
    return v / np.linalg.norm(v)


def request(**kw: Any) -> ReconstructionRequest:
    args: dict[str, Any] = {"embedding": unit(2), "prompt": "portrait", "seeds": (1,), "steps": 1, "width": SIZE,
                            "height": SIZE}
    args.update(kw)
    return ReconstructionRequest(**args)


def shaded_sketch(size: int = 128) -> np.ndarray:
    """A face outline, eyes and mouth in pencil, and a shaded cheek (a grey gradient) — BGR uint8."""
    img = np.full((size, size), 235, np.uint8)
    c = size // 2
    cv2.circle(img, (c, c), int(size * 0.35), 40, max(1, size // 128))
    cv2.line(img, (int(size * .39), int(size * .43)), (int(size * .47), int(size * .43)), 30, max(1, size // 128))
    cv2.line(img, (int(size * .55), int(size * .43)), (int(size * .63), int(size * .43)), 30, max(1, size // 128))
    cv2.line(img, (int(size * .43), int(size * .66)), (int(size * .59), int(size * .66)), 30, max(1, size // 128))
    yy, xx = np.mgrid[0:size, 0:size]
    shade = (xx > size * .18) & (xx < size * .39) & (yy > size * .35) & (yy < size * .74)
    img[shade] = np.minimum(img[shade], (120 + (xx[shade] - size * .18) * 300 / size).astype(np.uint8))
    img = cv2.GaussianBlur(img, (0, 0), size / 170)
    return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)


def ink(image: Image.Image) -> int:
    return int((np.asarray(image.convert("L")) > 128).sum())


def test_structure_image_keeps_strokes_not_shading() -> None:
    sketch = shaded_sketch(256)
    lines, inverted = lineart_control(sketch, 256, 256), plain_inversion(sketch, 256, 256)
    assert ink(lines) < 0.6 * ink(inverted)
    # Inside the shaded area the inversion is bright; the line image is dark there.
    inner = (slice(110, 170), slice(60, 90))
    assert np.asarray(inverted.convert("L"))[inner].mean() > 100 > np.asarray(lines.convert("L"))[inner].mean()
    # The outline stroke is still a line.
    ring = np.asarray(lines.convert("L"))[128, 190:250]
    assert ring.max() > 200
    assert ink(lineart_control(np.full((64, 64, 3), 240, np.uint8), 64, 64)) == 0  # blank paper: no lines


def test_switching_modes_frees_the_previous_pipeline(gen_models: Path) -> None:
    rec = Reconstructor(models=ModelLocator(gen_models), runtime=RuntimeOptions(allow_cpu=True), identity=None,
                        face_crop=None)
    try:
        face = Image.fromarray(np.random.default_rng(1).integers(0, 255, (40, 40, 3), dtype=np.uint8))
        result = rec.reconstruct(request(structure_image=shaded_sketch(64), face_image=face))
        assert result.control_image is not None and result.control_image.size == (SIZE, SIZE)
        control, controlnet = weakref.ref(rec._pipes._control), weakref.ref(rec._pipes._controlnet)
        encoder = weakref.ref(rec._pipes._image_encoder)
        rec.reconstruct(request())  # plain FaceID: ControlNet and the ViT-H encoder must go
        gc.collect()
        assert control() is None and controlnet() is None and encoder() is None
        base = weakref.ref(rec._pipes.base())
        editor = LocalEditor(models=ModelLocator(gen_models), runtime=RuntimeOptions(allow_cpu=True))
        memory.RESIDENCY.claim(rec, rec._release, "cuda")  # as on a GPU: the editor takes it over
        memory.RESIDENCY.claim(editor, editor._release, "cuda")
        gc.collect()
        assert base() is None
        memory.RESIDENCY.forget(editor)
    finally:
        rec.close()


def test_safety_checker_choice_is_in_every_provenance(gen_models: Path) -> None:
    off = Reconstructor(models=ModelLocator(gen_models), identity=None, face_crop=None,
                        runtime=RuntimeOptions(allow_cpu=True, safety_checker=False))
    cand = off.reconstruct(request()).candidates[0]
    assert cand.provenance["safety_checker"]["enabled"] is False and SAFETY not in cand.provenance["models"]
    on = Reconstructor(models=ModelLocator(gen_models), identity=None, face_crop=None,
                       runtime=RuntimeOptions(allow_cpu=True))
    assert on.safety is not None
    model, _ = on.safety._load()
    with torch.no_grad():
        model.concept_embeds_weights.fill_(-2.0)  # every image now scores above the threshold
    flagged = on.reconstruct(request()).candidates[0]
    assert flagged.provenance["safety_checker"] == {"enabled": True, "model": SAFETY, "flagged": True,
                                                    "action": "replaced by a black image"}
    assert np.asarray(flagged.unmarked).max() == 0 and SAFETY in flagged.provenance["models"]


def test_settings_reach_the_runtime_options_and_bad_values_are_refused() -> None:
    from engine import settings
    from engine.errors import ConfigError

    s = settings.Settings(gen_memory_plan="sequential_offload", gen_vae_tiling="on", gen_safety_checker=False,
                          gen_vram_budget_gb=7.5, gen_batch_candidates=2, gen_half_precision=False)
    settings.save(s)
    opts = memory.runtime_options(settings.load(), allow_cpu=True, memory_plan=None)
    assert (opts.placement, opts.tiling, opts.safety_checker, opts.vram_budget_gb, opts.batch_candidates,
            opts.half_precision, opts.allow_cpu) == ("sequential_offload", "on", False, 7.5, 2, False, True)
    assert memory.runtime_options(settings.Settings()).vram_budget_gb is None  # 0 = no cap
    assert memory.runtime_options(s, memory_plan="resident").placement == "resident"  # a CLI flag wins
    with pytest.raises(ConfigError, match="GPU memory plan"):
        settings.Settings(gen_memory_plan="all").validate()


def test_attribute_model_placement_follows_the_plan(fake_gpu: Any) -> None:
    from engine.generate.attributes import placement

    fake_gpu.set(6)
    assert placement("auto") == "cpu" and placement("cuda") == "cuda"
    fake_gpu.set(24)
    assert placement("auto") == "cuda" and placement("cpu") == "cpu"


@pytest.mark.parametrize(("placement", "advice"), [("resident", "'Model CPU offload'"),
                                                   ("model_offload", "'Sequential CPU offload'"),
                                                   ("sequential_offload", "VAE tiling 'on'")])
def test_out_of_memory_names_the_setting_that_helps(placement: str, advice: str) -> None:
    from engine.generate.reconstruct import out_of_memory

    err = out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory"), memory.MemoryPlan(placement))
    assert err is not None and advice in str(err) and "Settings > Generation > GPU memory" in str(err)
    assert out_of_memory(RuntimeError("other"), memory.MemoryPlan(placement)) is None


def test_unreadable_vram_plans_offload_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "cuda_usable", lambda: True)

    def broken(*a: Any) -> Any:
        raise RuntimeError("CUDA error: device busy")

    monkeypatch.setattr(torch.cuda, "mem_get_info", broken)
    plan = dev.resolve(RuntimeOptions()).plan
    assert plan.placement == "model_offload" and "could not be read" in plan.reason and plan.free_gb is None
    assert dev.resolve(RuntimeOptions(vram_budget_gb=6)).plan.placement == "sequential_offload"
