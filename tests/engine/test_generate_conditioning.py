"""FaceID conditioning on tiny real-diffusers pipelines: every guidance value, batches, unit embeddings.

The UNet's IP-attention input (the projected identity tokens the attention processors receive) is
captured with a hook and compared with a reference computation: the projection layer applied to the
zero negative and the embedding with classifier-free guidance, to the embedding alone without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from engine.generate import faceid
from engine.generate.model_set import ModelLocator
from engine.generate.reconstruct import Reconstructor
from engine.generate.types import ReconstructionRequest, RuntimeOptions
from tests.fixtures import tiny_diffusion

SIZE = 32


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


EMB = unit(11)


def face_image() -> Image.Image:
    rng = np.random.default_rng(5)
    return Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def rec(gen_models: Path) -> Iterator[Reconstructor]:
    r = Reconstructor(models=ModelLocator(gen_models), runtime=RuntimeOptions(allow_cpu=True), identity=None,
                      face_crop=None)
    yield r
    r.close()


def request(**kw: Any) -> ReconstructionRequest:
    args: dict[str, Any] = {"embedding": EMB, "prompt": "RAW photo, portrait", "seeds": (3,), "steps": 2,
                            "width": SIZE, "height": SIZE, "mark": False}
    args.update(kw)
    return ReconstructionRequest(**args)


@pytest.fixture
def ip_inputs(monkeypatch: pytest.MonkeyPatch) -> list[torch.Tensor]:
    """Every IP-attention call's identity tokens (the hook on diffusers' IP-Adapter processor)."""
    from diffusers.models.attention_processor import IPAdapterAttnProcessor2_0

    seen: list[torch.Tensor] = []
    original = IPAdapterAttnProcessor2_0.__call__

    def hooked(self: Any, attn: Any, hidden_states: Any, encoder_hidden_states: Any = None, *a: Any,
               **kw: Any) -> Any:
        if isinstance(encoder_hidden_states, tuple):
            seen.append(encoder_hidden_states[1][0].detach().clone())
        return original(self, attn, hidden_states, encoder_hidden_states, *a, **kw)

    monkeypatch.setattr(IPAdapterAttnProcessor2_0, "__call__", hooked)
    return seen


def reference_tokens(rec: Reconstructor, guidance: bool) -> torch.Tensor:
    """The IP-Adapter reference: projected [zeros, embedding] with guidance, [embedding] without."""
    layer = rec._pipes.base().unet.encoder_hid_proj.image_projection_layers[0]
    ref = torch.from_numpy(EMB).reshape(1, 1, 512)
    rows = [torch.zeros_like(ref), ref] if guidance else [ref]
    with torch.no_grad():
        return torch.cat([layer(r).unsqueeze(1) for r in rows])


@pytest.mark.parametrize(("scale", "guidance"), [(1.0, False), (7.5, True)])
def test_ip_attention_input_matches_the_reference_for_each_guidance(rec: Reconstructor, ip_inputs: list,
                                                                     scale: float, guidance: bool) -> None:
    result = rec.reconstruct(request(guidance_scale=scale))
    assert ip_inputs, "the IP-Adapter attention processors were not called"
    expected = reference_tokens(rec, guidance)
    for got in ip_inputs:
        assert got.shape == expected.shape
        assert torch.allclose(got, expected, atol=1e-5)
    assert result.candidates[0].provenance["parameters"]["classifier_free_guidance"] is guidance


def test_zero_negative_without_guidance_would_mix_into_the_image(rec: Reconstructor, ip_inputs: list) -> None:
    """Negative control: the old conditioning ([zeros, ref] at guidance 1) differs from the reference."""
    pipe = rec._pipes.pipeline("faceid", False)
    old = rec._pipes.id_embeds(pipe, EMB, guidance=True)  # built as if guidance ran
    pipe.set_ip_adapter_scale(1.0)
    pipe("portrait", ip_adapter_image_embeds=[old], num_inference_steps=1, guidance_scale=1.0, width=SIZE,
         height=SIZE, output_type="latent", generator=torch.Generator().manual_seed(0))
    expected = reference_tokens(rec, guidance=False)
    assert ip_inputs and ip_inputs[0].shape != expected.shape


def test_guidance_helper_follows_diffusers_rule(rec: Reconstructor) -> None:
    pipe = rec._pipes.base()
    assert faceid.uses_guidance(pipe, 7.5) and not faceid.uses_guidance(pipe, 1.0)
    assert not faceid.uses_guidance(pipe, 0.5)


def test_two_images_per_call_with_plus_v2_equal_the_single_images(gen_models: Path, rec: Reconstructor) -> None:
    batched = Reconstructor(models=ModelLocator(gen_models), identity=None, face_crop=None,
                            runtime=RuntimeOptions(allow_cpu=True, batch_candidates=2))
    try:
        req = request(seeds=(5, 6, 7), face_image=face_image())
        together = {c.seed: np.asarray(c.image, np.float32) for c in batched.reconstruct(req).candidates}
    finally:
        batched.close()
    singles = {s: np.asarray(rec.reconstruct(request(seeds=(s,), face_image=face_image())).candidates[0].image,
                             np.float32) for s in (5, 6, 7)}
    assert sorted(together) == [5, 6, 7]
    for seed in (5, 6, 7):
        assert np.abs(together[seed] - singles[seed]).max() <= 2.0, seed  # same image, up to batched rounding
    assert np.abs(singles[5] - singles[6]).max() > 10  # and the seeds do differ


def test_plus_v2_clip_embeddings_are_built_for_the_batch(rec: Reconstructor) -> None:
    pipe = rec._pipes.pipeline("faceid_plusv2", False)
    layer = pipe.unet.encoder_hid_proj.image_projection_layers[0]
    rec._pipes.set_face_structure(pipe, face_image().resize((32, 32)), 1.0, guidance=True, num_images=2)
    assert layer.clip_embeds.shape[0] == 4  # 2 negatives + 2 positives, as diffusers orders the id embeddings
    rec._pipes.set_face_structure(pipe, face_image().resize((32, 32)), 1.0, guidance=False, num_images=3)
    assert layer.clip_embeds.shape[0] == 3


def test_a_non_unit_embedding_is_normalised_and_recorded(rec: Reconstructor) -> None:
    plain = rec.reconstruct(request()).candidates[0]
    scaled = rec.reconstruct(request(embedding=EMB * 3.0)).candidates[0]
    assert np.array_equal(np.asarray(plain.image), np.asarray(scaled.image))
    params = scaled.provenance["parameters"]
    assert params["embedding_normalised"] is True and params["embedding_norm"] == pytest.approx(3.0, rel=1e-5)
    assert plain.provenance["parameters"]["embedding_normalised"] is False


def test_plus_v2_without_guidance_conditions_one_image_with_one_identity(rec: Reconstructor,
                                                                       ip_inputs: list) -> None:
    rec.reconstruct(request(guidance_scale=1.0, face_image=face_image()))
    assert ip_inputs and all(t.shape[0] == 1 for t in ip_inputs)  # no zero negative mixed into the image
    layer = rec._pipes.base().unet.encoder_hid_proj.image_projection_layers[0]
    assert layer.clip_embeds.shape[0] == 1
