"""Reconstruction on tiny real-diffusers pipelines: FaceID + LoRA, Plus v2, ControlNet, cancel, CPU refusal."""

from __future__ import annotations

import importlib.util
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.errors import Cancelled, ModelMissing
from engine.generate import faceid
from engine.generate.model_set import FACEID, FACEID_PLUS, ModelLocator
from engine.generate.reconstruct import Reconstructor
from engine.generate.types import GenerationFailed, GenerationRefused, ReconstructionRequest, RuntimeOptions
from engine.progress import CancelToken, ProgressEvent
from tests.fixtures import tiny_diffusion

SIZE = 32


@pytest.fixture(scope="session")
def gen_models(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_diffusion.session_models(request, tmp_path_factory)


@pytest.fixture(scope="module", autouse=True)
def single_thread() -> Iterator[None]:
    with tiny_diffusion.one_thread():
        yield


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Local generation must never open a connection (model hubs included)."""
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=512).astype(np.float32)
    return v / np.linalg.norm(v)


EMB = unit(1)


def pixel_identity(bgr: np.ndarray) -> np.ndarray:
    """A stand-in ArcFace: a fixed random projection of the downsampled image (same image, same vector)."""
    small = bgr[::4, ::4].astype(np.float32).reshape(-1) / 255.0
    proj = np.random.default_rng(7).normal(size=(512, small.size)).astype(np.float32)
    v = proj @ (small - small.mean())
    return v / max(float(np.linalg.norm(v)), 1e-12)


@pytest.fixture(scope="module")
def rec(gen_models: Path) -> Iterator[Reconstructor]:
    r = Reconstructor(models=ModelLocator(gen_models), runtime=RuntimeOptions(allow_cpu=True),
                      identity=pixel_identity, face_crop=None)
    yield r
    r.close()


def request(**kw: object) -> ReconstructionRequest:
    args: dict = {"embedding": EMB, "prompt": "RAW photo, portrait of a man", "num_candidates": 1, "seed": 3,
                  "steps": 2, "width": SIZE, "height": SIZE}
    args.update(kw)
    return ReconstructionRequest(**args)


def pixels(result: object, i: int = 0) -> np.ndarray:
    return np.asarray(result.candidates[i].unmarked, dtype=np.float32)  # type: ignore[attr-defined]


def test_faceid_candidates_have_seeds_progress_and_are_reproducible(rec: Reconstructor) -> None:
    events: list[ProgressEvent] = []
    result = rec.reconstruct(request(num_candidates=2, steps=3), progress=events.append)
    assert result.mode == "faceid" and not result.structure and result.device == "cpu"
    assert sorted(c.seed for c in result.candidates) == [3, 4]
    assert all(c.image.size == (SIZE, SIZE) for c in result.candidates)
    steps = [e for e in events if "step" in e.message]
    assert [e.done for e in steps] == [1, 2, 3, 4, 5, 6] and all(e.total == 6 for e in steps)
    again = rec.reconstruct(request(seeds=(4,), steps=3))
    by_seed = {c.seed: c for c in result.candidates}
    assert np.array_equal(np.asarray(again.candidates[0].unmarked), np.asarray(by_seed[4].unmarked))
    assert not np.array_equal(np.asarray(by_seed[3].unmarked), np.asarray(by_seed[4].unmarked))


def test_sdpa_attention_is_used_with_the_adapter(rec: Reconstructor) -> None:
    rec.reconstruct(request())
    procs = rec._pipes.base().unet.attn_processors.values()
    assert all(type(p).__name__.endswith("2_0") for p in procs)
    assert any(type(p).__name__ == "IPAdapterAttnProcessor2_0" for p in procs)


def test_faceid_lora_is_really_applied(rec: Reconstructor, gen_models: Path) -> None:
    rec.reconstruct(request())
    unet = rec._pipes.base().unet
    n_procs = len(unet.attn_processors)
    assert rec._pipes.lora_layers == 4 * n_procs
    assert faceid.lora_layer_count(unet, "faceid_0") == 4 * n_procs
    state = torch.load(gen_models / FACEID / "ip-adapter-faceid_sd15.bin", weights_only=True)
    name = next(iter(unet.attn_processors)).rsplit(".processor", 1)[0]
    weight = unet.get_submodule(f"{name}.to_q").lora_B["faceid_0"].weight
    assert torch.equal(weight.detach(), state["ip_adapter"]["0.to_q_lora.up.weight"])
    # ...and it changes what the UNet computes.
    x, t = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)), torch.tensor([500])
    ctx = torch.randn(1, 77, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ids = [torch.zeros(1, 1, 1, 512)]
        with_lora = unet(x, t, encoder_hidden_states=ctx, added_cond_kwargs={"image_embeds": ids}).sample
        unet.disable_adapters()
        try:
            without = unet(x, t, encoder_hidden_states=ctx, added_cond_kwargs={"image_embeds": ids}).sample
        finally:
            unet.enable_adapters()
    assert (with_lora - without).abs().max() > 1e-4


def test_missing_peft_fails_loudly(gen_models: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "peft" else real(name, *a))
    r = Reconstructor(models=ModelLocator(gen_models), runtime=RuntimeOptions(allow_cpu=True), identity=None)
    with pytest.raises(GenerationFailed, match="peft"):
        r.reconstruct(request())


def test_lora_silently_dropped_by_diffusers_is_detected(gen_models: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import diffusers.loaders.ip_adapter as ipa

    monkeypatch.setattr(ipa, "USE_PEFT_BACKEND", False)  # what diffusers does without peft: log and skip
    r = Reconstructor(models=ModelLocator(gen_models), runtime=RuntimeOptions(allow_cpu=True), identity=None)
    with pytest.raises(GenerationFailed, match="LoRA was not applied"):
        r.reconstruct(request())


def test_switching_to_plus_replaces_the_lora(rec: Reconstructor, gen_models: Path) -> None:
    plus = torch.load(gen_models / FACEID_PLUS / "ip-adapter-faceid-plusv2_sd15.bin", weights_only=True)
    rec.reconstruct(request())
    rec.reconstruct(request(face_image=np.full((48, 48, 3), 120, np.uint8)))
    unet = rec._pipes.base().unet
    assert list(unet.peft_config) == ["faceid_0"]
    name = next(iter(unet.attn_processors)).rsplit(".processor", 1)[0]
    weight = unet.get_submodule(f"{name}.to_q").lora_B["faceid_0"].weight
    assert torch.equal(weight.detach(), plus["ip_adapter"]["0.to_q_lora.up.weight"])


def test_plus_v2_uses_the_face_image_and_face_strength(gen_models: Path) -> None:
    crops: list[int] = []

    def crop(bgr: np.ndarray, size: int) -> np.ndarray:
        crops.append(size)
        return bgr[:size, :size]

    r = Reconstructor(models=ModelLocator(gen_models), runtime=RuntimeOptions(allow_cpu=True), identity=None,
                      face_crop=crop)
    face = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)
    weak = r.reconstruct(request(face_image=face, face_strength=0.2))
    layer = r._pipes.base().unet.encoder_hid_proj.image_projection_layers[0]
    assert weak.mode == "faceid_plusv2" and crops == [32]
    assert layer.shortcut is True and layer.shortcut_scale == pytest.approx(0.2)
    assert layer.clip_embeds.shape[0] == 2  # negative + positive for classifier-free guidance
    strong = r.reconstruct(request(face_image=face, face_strength=3.0))
    assert not np.allclose(pixels(weak), pixels(strong))
    assert strong.candidates[0].provenance["parameters"]["face_strength"] == 3.0
    assert "face_image_sha256" in strong.candidates[0].provenance["sources"]


def test_structure_mode_follows_the_sketch_through_controlnet(rec: Reconstructor) -> None:
    sketch = np.full((64, 64), 255, np.uint8)
    sketch[20:44, 30:34] = 0
    plain = rec.reconstruct(request())
    off = rec.reconstruct(request(structure_image=sketch, structure_strength=0.0))
    on = rec.reconstruct(request(structure_image=sketch, structure_strength=1.0))
    assert on.structure and type(rec._pipes._control).__name__ == "StableDiffusionControlNetPipeline"
    assert np.allclose(pixels(plain), pixels(off), atol=1.0)  # scale 0: the ControlNet adds nothing
    assert not np.allclose(pixels(plain), pixels(on), atol=1.0)


def test_plus_v2_and_structure_together(rec: Reconstructor) -> None:
    sketch = np.full((64, 64), 255, np.uint8)
    sketch[10:50, 30:33] = 0
    face = (np.random.default_rng(4).random((48, 48, 3)) * 255).astype(np.uint8)
    result = rec.reconstruct(request(face_image=face, structure_image=sketch))
    assert result.mode == "faceid_plusv2" and result.structure
    assert rec._pipes._control.image_encoder is rec._pipes.base().image_encoder is not None


def test_gpu_out_of_memory_becomes_an_actionable_error(rec: Reconstructor, monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.generate.reconstruct as module

    def oom(*a: object, **k: object) -> None:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(module, "run_pipeline", oom)
    with pytest.raises(GenerationFailed, match="ran out of memory") as info:
        rec.reconstruct(request())
    assert "CPU offload" in str(info.value)


def test_candidates_are_ordered_by_identity_with_faceless_last(gen_models: Path) -> None:
    other = unit(99)
    answers = iter([other, None, EMB])  # candidate 0 weak, 1 no face, 2 the sketch's identity
    r = Reconstructor(models=ModelLocator(gen_models), runtime=RuntimeOptions(allow_cpu=True),
                      identity=lambda bgr: next(answers), face_crop=None)
    seen: list[int] = []
    result = r.reconstruct(request(num_candidates=3, seed=10), on_candidate=lambda c: seen.append(c.seed))
    assert seen == [10, 11, 12]
    assert [c.seed for c in result.candidates] == [12, 10, 11]
    assert result.candidates[0].identity_score == pytest.approx(1.0, abs=1e-5)
    assert result.candidates[1].identity_score == pytest.approx(float(other @ EMB), abs=1e-5)
    assert result.candidates[2].identity_score is None and result.candidates[2].embedding is None


def test_cancel_stops_within_one_step_and_skips_decoding(rec: Reconstructor, monkeypatch: pytest.MonkeyPatch) -> None:
    rec.reconstruct(request())  # loaded
    pipe = rec._pipes.base()
    calls = {"unet": 0, "decode": 0}
    handle = pipe.unet.register_forward_hook(lambda *a: calls.__setitem__("unet", calls["unet"] + 1))
    real_decode = pipe.vae.decode

    def decode(*a: object, **k: object) -> object:
        calls["decode"] += 1
        return real_decode(*a, **k)

    monkeypatch.setattr(pipe.vae, "decode", decode)
    token = CancelToken()
    done: list[object] = []

    def on_progress(event: ProgressEvent) -> None:
        if event.done == 7:  # first step of the second candidate (5 steps each)
            token.cancel()

    try:
        with pytest.raises(Cancelled):
            rec.reconstruct(request(num_candidates=3, steps=5), progress=on_progress, cancel=token,
                            on_candidate=done.append)
    finally:
        handle.remove()
    assert calls["unet"] == 7  # 5 + 2: nothing ran after the step during which cancel came
    assert calls["decode"] == 1  # only the finished first candidate was decoded
    assert len(done) == 1


def test_cancel_arriving_mid_step_stops_after_that_step(rec: Reconstructor) -> None:
    rec.reconstruct(request())
    unet = rec._pipes.base().unet
    token, count = CancelToken(), [0]

    def hook(*a: object) -> None:
        count[0] += 1
        if count[0] == 2:
            token.cancel()  # as if the user pressed Cancel while step 2 was computing

    handle = unet.register_forward_hook(hook)
    try:
        with pytest.raises(Cancelled):
            rec.reconstruct(request(steps=6), cancel=token)
    finally:
        handle.remove()
    assert count[0] == 2


def test_cpu_only_machine_refuses_with_an_estimate_before_loading(gen_models: Path) -> None:
    r = Reconstructor(models=ModelLocator(gen_models), runtime=RuntimeOptions(), identity=None)
    with pytest.raises(GenerationRefused, match="no usable NVIDIA GPU") as info:
        r.reconstruct(request(steps=2))
    assert info.value.estimated_seconds > 0
    assert r._pipes._base is None
    assert r.estimate_seconds(request(steps=8)) > 3 * r.estimate_seconds(request(steps=2))


def test_missing_model_says_how_to_get_it(tmp_path: Path) -> None:
    r = Reconstructor(models=ModelLocator(tmp_path), runtime=RuntimeOptions(allow_cpu=True), identity=None)
    with pytest.raises(ModelMissing, match="sketchface models import"):
        r.reconstruct(request())


def test_bad_requests_are_rejected_before_any_work(rec: Reconstructor) -> None:
    with pytest.raises(ValueError, match="multiples of 8"):
        rec.reconstruct(request(width=30))
    with pytest.raises(ValueError, match="512-D"):
        rec.reconstruct(request(embedding=np.zeros(512, np.float32)))


def test_identity_check_with_the_real_face_pipeline(gen_models: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not (gen_models / "buffalo_l.w600k_r50").is_dir():
        pytest.skip("the face models are built by tests/fixtures/tiny_models.py, absent in this checkout")
    monkeypatch.setenv("SKETCHFACE_MODELS_DIR", str(gen_models))
    r = Reconstructor(models=ModelLocator(gen_models), runtime=RuntimeOptions(allow_cpu=True))
    face = (np.random.default_rng(2).random((96, 96, 3)) * 255).astype(np.uint8)
    result = r.reconstruct(request(num_candidates=2, width=64, height=64, face_image=face))
    assert result.identity_note == ""
    scores = [c.identity_score for c in result.candidates]
    for cand in result.candidates:
        if cand.identity_score is None:
            assert cand.embedding is None
        else:
            assert -1.0 <= cand.identity_score <= 1.0
            assert float(np.linalg.norm(cand.embedding)) == pytest.approx(1.0, abs=1e-4)
    known = [s for s in scores if s is not None]
    assert known and known == sorted(known, reverse=True)
    assert result.candidates[0].provenance["parameters"]["face_aligned"] is True
