"""Generation models against their pins: weights loaded from the checked bytes, path loads watched for swaps."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from engine.errors import ModelInvalid, ModelTampered
from engine.fsutil import sha256_bytes
from engine.generate.model_set import FACEID, VAE, ModelLocator, load_weights, loading_checked
from engine.models import model_dir
from engine.models.digests import Pin, write_pins


def _install(model_id: str, files: dict[str, bytes]) -> None:
    folder = model_dir(model_id)
    folder.mkdir(parents=True, exist_ok=True)
    for rel, data in files.items():
        (folder / rel).write_bytes(data)
    write_pins(Pin(model_id, rel, sha256_bytes(data), len(data), "test") for rel, data in files.items())


def _torch_bytes(obj: object) -> bytes:
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def test_load_weights_loads_the_checked_bytes_and_returns_their_digest() -> None:
    import torch

    data = _torch_bytes({"image_proj": {"w": torch.ones(2)}, "ip_adapter": {}})
    _install(FACEID, {"ip-adapter-faceid_sd15.bin": data})
    state, digest = load_weights(ModelLocator(), FACEID)
    assert digest == sha256_bytes(data) and torch.equal(state["image_proj"]["w"], torch.ones(2))


def test_load_weights_refuses_a_changed_file_and_a_pickle_of_code() -> None:
    import torch

    _install(FACEID, {"ip-adapter-faceid_sd15.bin": _torch_bytes({"w": torch.zeros(1)})})
    (model_dir(FACEID) / "ip-adapter-faceid_sd15.bin").write_bytes(_torch_bytes({"w": torch.ones(1)}))
    with pytest.raises(ModelTampered):
        load_weights(ModelLocator(), FACEID)

    class Boom:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, ("echo owned",))

    _install("ip_adapter.faceid_plusv2_sd15", {"ip-adapter-faceid-plusv2_sd15.bin": pickle.dumps(Boom())})
    with pytest.raises(ModelInvalid, match="could not be read"):
        load_weights(ModelLocator(), "ip_adapter.faceid_plusv2_sd15")


def test_a_file_swapped_during_a_path_load_is_refused(tmp_path: Path) -> None:
    _install(VAE, {"config.json": b"{}", "diffusion_pytorch_model.safetensors": b"pinned weights"})
    target = model_dir(VAE) / "diffusion_pytorch_model.safetensors"
    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(b"attacker weights")
    good = tmp_path / "good.safetensors"
    os.link(target, good)
    with pytest.raises(ModelTampered, match="changed while"), loading_checked(ModelLocator(), VAE) as digests:
        assert digests[VAE]["config.json"] == sha256_bytes(b"{}")
        os.replace(evil, target)  # swapped in for the load ...
        target.unlink()
        os.link(good, target)  # ... and the pinned file put back before anyone looks
    assert target.read_bytes() == b"pinned weights"


def test_negative_control_an_untouched_folder_loads() -> None:
    _install(VAE, {"config.json": b"{}", "diffusion_pytorch_model.safetensors": b"pinned weights"})
    with loading_checked(ModelLocator(), VAE) as digests:
        assert set(digests[VAE]) == {"config.json", "diffusion_pytorch_model.safetensors"}
