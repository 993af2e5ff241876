"""Generation models swapped between the pin check and the load, with the tiny diffusion models.

- The FaceID checkpoint is read once, checked and loaded from those bytes: a file swapped right after
  the check (or right after the read) is not the one whose LoRA ends up in the UNet.
- Every loader that can only take a path (diffusers, transformers, open_clip) is watched: a weights file
  replaced while it loads refuses the model. Here the file is replaced by an identical copy, so nothing
  but the guard can tell, and the loaders themselves succeed without it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.errors import ModelTampered
from engine.generate import device as dev
from engine.generate.model_set import (
    ATTRIBUTES,
    BASE,
    CONTROLNET,
    EDITOR,
    FACEID,
    IMAGE_ENCODER,
    SAFETY,
    VAE,
    ModelLocator,
)
from engine.generate.types import GenerationFailed, RuntimeOptions
from engine.models import model_dir
from tests.fixtures import tiny_diffusion

MODELS = (BASE, VAE, FACEID, IMAGE_ENCODER, CONTROLNET, EDITOR, SAFETY, ATTRIBUTES)


@pytest.fixture(scope="module")
def gen_models(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_diffusion.session_models(request, tmp_path_factory)


@pytest.fixture(scope="module", autouse=True)
def single_thread() -> Iterator[None]:
    with tiny_diffusion.one_thread():
        yield


@pytest.fixture
def installed(gen_models: Path) -> Path:
    """The tiny generation models copied into this test's models folder (pinned when first loaded)."""
    for model_id in MODELS:
        shutil.copytree(gen_models / model_id, model_dir(model_id), dirs_exist_ok=True)
    return model_dir(BASE).parent


def _replace(source: Path, target: Path) -> None:
    """Put ``source``'s bytes at ``target`` as a new file, renamed over it (as an attacker would)."""
    tmp = target.with_name(f".{target.name}.swap")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)


def _pipelines() -> Any:
    from engine.generate.faceid import FaceIDPipelines

    return FaceIDPipelines(ModelLocator(), dev.resolve(RuntimeOptions(allow_cpu=True)))


# -- the FaceID checkpoint: loaded from the bytes that were checked ----------------------------------------------


def test_the_faceid_checkpoint_swapped_after_its_check_is_not_the_one_applied(
        installed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from engine.generate import faceid
    from engine.models import digests

    target = model_dir(FACEID) / "ip-adapter-faceid_sd15.bin"
    good = torch.load(target, map_location="cpu", weights_only=True)
    evil_state = tiny_diffusion.faceid_state_dict(tiny_diffusion.tiny_unet(seed=0), seed=99)
    evil = tmp_path / "evil.bin"
    torch.save(evil_state, evil)
    swapped: list[str] = []

    def swap_after(real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(path: Path, *args: Any, **kwargs: Any) -> Any:
            out = real(path, *args, **kwargs)
            if Path(path).name == target.name and not swapped:  # right after the file was hashed or read
                _replace(evil, target)
                swapped.append(real.__name__)
            return out
        return wrapper

    monkeypatch.setattr(digests, "sha256_cached", swap_after(digests.sha256_cached))
    monkeypatch.setattr(digests, "read_once", swap_after(digests.read_once))
    pipes = _pipelines()
    pipes.use_adapter("faceid")
    assert swapped
    unet = pipes.base().unet
    with pytest.raises(GenerationFailed, match="weights differ"):
        faceid.verify_lora(unet, evil_state, f"{faceid.LORA_PREFIX}0")  # the attacker's LoRA did not get in
    assert faceid.verify_lora(unet, good, f"{faceid.LORA_PREFIX}0") > 0  # the checked file's LoRA did


def test_read_adapter_returns_the_checked_digest_and_refuses_a_changed_file(installed: Path, tmp_path: Path) -> None:
    import torch

    from engine.fsutil import sha256_bytes
    from engine.generate.faceid import read_adapter

    target = model_dir(FACEID) / "ip-adapter-faceid_sd15.bin"
    state, digest = read_adapter(ModelLocator(), FACEID)
    assert digest == sha256_bytes(target.read_bytes()) and {"image_proj", "ip_adapter"} <= set(state)
    evil = tmp_path / "evil.bin"
    torch.save(tiny_diffusion.faceid_state_dict(tiny_diffusion.tiny_unet(seed=0), seed=99), evil)
    _replace(evil, target)
    with pytest.raises(ModelTampered, match="has changed"):
        read_adapter(ModelLocator(), FACEID)


# -- path-based loaders: a file replaced during the load refuses the model ---------------------------------------


def _load_base(_: Any) -> Any:
    return _pipelines().base()


def _load_encoder(_: Any) -> Any:
    return _pipelines()._encoder()


def _load_controlnet(arm: Callable[[], None]) -> Any:
    pipes = _pipelines()
    pipes.pipeline("faceid", structure=False)  # base and adapter first: the swap is meant for ControlNet
    arm()
    try:
        return pipes.pipeline("faceid", structure=True)
    except ModelTampered:
        assert pipes._controlnet is None, "a ControlNet whose file changed during its load was kept"
        raise


def _load_editor(_: Any) -> Any:
    from engine.generate.variations import LocalEditor

    return LocalEditor(models=ModelLocator(), runtime=RuntimeOptions(allow_cpu=True, safety_checker=False))._pipeline()


def _load_safety(_: Any) -> Any:
    from engine.generate.safety import SafetyChecker

    checker = SafetyChecker(ModelLocator())
    try:
        return checker._load()
    except ModelTampered:
        assert checker._model is None, "a safety checker whose file changed during its load was kept"
        raise


def _load_attributes(_: Any) -> Any:
    from engine.generate.attributes import AttributeModel

    return AttributeModel.from_models(locator=ModelLocator(), device="cpu")


CASES = {
    "sd15 base": (_load_base, BASE, "unet/diffusion_pytorch_model.safetensors"),
    "vae": (_load_base, VAE, "diffusion_pytorch_model.safetensors"),
    "clip image encoder": (_load_encoder, IMAGE_ENCODER, "model.safetensors"),
    "controlnet": (_load_controlnet, CONTROLNET, "diffusion_pytorch_model.safetensors"),
    "instruct_pix2pix": (_load_editor, EDITOR, "unet/diffusion_pytorch_model.safetensors"),
    "safety checker": (_load_safety, SAFETY, "safety_checker/model.safetensors"),
    "open_clip attributes": (_load_attributes, ATTRIBUTES, "open_clip_pytorch_model.bin"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_file_replaced_while_a_path_loader_reads_it_refuses_the_model(
        case: str, installed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import open_clip

    load, model_id, rel = CASES[case]
    target = model_dir(model_id) / rel
    copy = tmp_path / "copy"
    shutil.copyfile(target, copy)
    armed: list[bool] = [load is not _load_controlnet]
    swapped: list[bool] = []

    def swap() -> None:
        if armed and armed[0] and not swapped:
            _replace(copy, target)
            swapped.append(True)

    real_quiet = dev.quiet_loading

    @contextlib.contextmanager
    def swapping_quiet() -> Iterator[None]:  # every diffusers / transformers load runs inside it
        swap()
        with real_quiet():
            yield

    real_create = open_clip.create_model_and_transforms

    def swapping_create(*args: Any, **kwargs: Any) -> Any:
        swap()
        return real_create(*args, **kwargs)

    monkeypatch.setattr(dev, "quiet_loading", swapping_quiet)
    monkeypatch.setattr(open_clip, "create_model_and_transforms", swapping_create)
    with pytest.raises(ModelTampered, match="changed while"):
        load(lambda: armed.__setitem__(0, True))
    assert swapped


def test_negative_control_untouched_models_load_through_the_guard(installed: Path) -> None:
    for load, _model_id, _rel in CASES.values():
        assert load(lambda: None) is not None
