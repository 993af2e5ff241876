"""SketchEncoder: open_clip towers by name or custom config, unit outputs, checkpoints that never unpickle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.errors import ConfigError, ModelInvalid, ModelMissing
from engine.sketch.checkpoint import export_train_state, load_encoder, read_train_state, save_encoder
from engine.sketch.config import EncoderConfig, check_arcface_compatible
from engine.sketch.model import SketchEncoder, build_encoder, load_pretrained_visual, resolve_model_cfg
from tests.fixtures.tiny_sketch import TINY_MODEL_CFG, tiny_config

SHA_A = "a" * 64
SHA_B = "b" * 64


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture
def registered_tiny(tmp_path: Path) -> str:
    """The tiny config registered with open_clip under a name (text tower included, as open_clip wants)."""
    import open_clip

    name = f"sketchface-tiny-{tmp_path.name}"
    doc = {**TINY_MODEL_CFG, "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 32, "heads": 2, "layers": 1}}
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(doc), "utf-8")
    open_clip.add_model_config(path)
    return name


def test_output_is_512d_unit_vectors() -> None:
    torch.manual_seed(0)
    model = build_encoder(tiny_config()).eval()
    out = model(torch.randn(3, 3, 64, 64))
    assert out.shape == (3, 512)
    assert torch.allclose(out.norm(dim=1), torch.ones(3), atol=1e-5)


def test_tower_is_open_clips_own_by_name_or_by_dict(registered_tiny: str) -> None:
    import open_clip

    by_name = resolve_model_cfg(registered_tiny)
    assert by_name == {**TINY_MODEL_CFG, "quick_gelu": False}
    assert resolve_model_cfg("anything", TINY_MODEL_CFG) == by_name
    clip = open_clip.create_model(registered_tiny, load_weights=False)
    ours = SketchEncoder(by_name)
    theirs = {k: v.shape for k, v in clip.visual.state_dict().items()}
    assert {k: v.shape for k, v in ours.visual.state_dict().items()} == theirs
    vit_b16 = resolve_model_cfg("ViT-B-16")
    assert vit_b16["vision_cfg"]["width"] == 768 and vit_b16["vision_cfg"]["layers"] == 12
    with pytest.raises(ConfigError):
        resolve_model_cfg("no-such-architecture")
    with pytest.raises(ConfigError):
        resolve_model_cfg("hf-hub:someone/something")


def test_pretrained_clip_weights_load_into_the_tower_from_a_file(registered_tiny: str, tmp_path: Path) -> None:
    import open_clip
    from safetensors.torch import save_file

    clip = open_clip.create_model(registered_tiny, load_weights=False)
    full = tmp_path / "clip.safetensors"
    save_file({k: v.contiguous() for k, v in clip.state_dict().items()}, str(full))
    model = SketchEncoder(resolve_model_cfg(registered_tiny))
    assert "clip.safetensors" in load_pretrained_visual(model, str(full), registered_tiny)
    for k, v in clip.visual.state_dict().items():
        assert torch.equal(model.visual.state_dict()[k], v)
    pth = tmp_path / "clip.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in clip.state_dict().items()}}, pth)
    load_pretrained_visual(SketchEncoder(resolve_model_cfg(registered_tiny)), str(pth), registered_tiny)
    with pytest.raises(ModelInvalid):
        wrong = SketchEncoder({**TINY_MODEL_CFG, "vision_cfg": {**TINY_MODEL_CFG["vision_cfg"], "width": 32}})
        load_pretrained_visual(wrong, str(full), registered_tiny)


class _Payload:
    """A pickled object: loading it with plain torch.load would run this class's code."""

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (print, ("executed!",))


def test_pickled_code_is_never_loaded(tmp_path: Path) -> None:
    evil = tmp_path / "evil.pth"
    torch.save({"state_dict": {"x": torch.zeros(1)}, "extra": _Payload()}, evil)
    with pytest.raises(ModelInvalid) as err:
        load_pretrained_visual(build_encoder(tiny_config()), str(evil), "x")
    assert "pickled code is never loaded" in str(err.value)
    state = tmp_path / "last.pt"
    torch.save({"format": "sketchface.train_state", "model": _Payload()}, state)
    with pytest.raises(ModelInvalid):
        read_train_state(state)


def test_checkpoint_round_trip_carries_its_whole_config(tmp_path: Path) -> None:
    torch.manual_seed(1)
    cfg = tiny_config(SHA_A)
    cfg.metrics = {"recall@1_val": 0.5}
    model = build_encoder(cfg).eval()
    save_encoder(tmp_path / "ck", model.state_dict(), cfg)
    doc = json.loads((tmp_path / "ck" / "config.json").read_text())
    assert doc["format"] == "sketchface.sketch_encoder" and doc["embed_dim"] == 512
    assert doc["preprocess"]["input_size"] == 64 and len(doc["preprocess"]["mean"]) == 3
    assert doc["arcface_sha256"] == SHA_A and doc["model_cfg"]["vision_cfg"]["width"] == 64
    loaded, loaded_cfg = load_encoder(tmp_path / "ck")
    x = torch.randn(2, 3, 64, 64)
    assert torch.equal(loaded(x), model(x))
    assert loaded_cfg.metrics == {"recall@1_val": 0.5} and loaded_cfg.preprocess == cfg.preprocess


def test_damaged_or_foreign_checkpoints_are_refused(tmp_path: Path) -> None:
    cfg = tiny_config(SHA_A)
    save_encoder(tmp_path / "ck", build_encoder(cfg).state_dict(), cfg)
    with pytest.raises(ModelMissing):
        load_encoder(tmp_path / "nothing")
    doc = json.loads((tmp_path / "ck" / "config.json").read_text())
    (tmp_path / "ck" / "config.json").write_text(json.dumps({**doc, "format_version": 99}))
    with pytest.raises(ModelInvalid, match="newer"):
        load_encoder(tmp_path / "ck")
    (tmp_path / "ck" / "config.json").write_text(json.dumps({**doc, "head_hidden": 32}))
    with pytest.raises(ModelInvalid, match="do not match"):
        load_encoder(tmp_path / "ck")
    (tmp_path / "ck" / "config.json").write_text(json.dumps(doc))
    (tmp_path / "ck" / "model.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(ModelInvalid, match="unreadable"):
        load_encoder(tmp_path / "ck")
    bad = EncoderConfig.from_dict(doc)
    bad.preprocess.input_size = 96
    with pytest.raises(ModelInvalid, match="differs"):
        bad.validate()


def test_arcface_mismatch_is_refused_with_both_digests() -> None:
    check_arcface_compatible(SHA_A, SHA_A, against="gallery 'g'")
    check_arcface_compatible(SHA_A, None, against="gallery 'g'")
    with pytest.raises(ModelInvalid) as err:
        check_arcface_compatible(SHA_A, SHA_B, against="gallery 'g'")
    assert "aaaaaaaaaaaa" in str(err.value) and "bbbbbbbbbbbb" in str(err.value) and "gallery 'g'" in str(err.value)
    with pytest.raises(ModelInvalid, match="does not record"):
        check_arcface_compatible(None, SHA_B, against="installed ArcFace model")


def test_trainer_state_exports_the_ema_or_student_weights(tmp_path: Path) -> None:
    cfg = tiny_config(SHA_A)
    torch.manual_seed(2)
    student, ema = build_encoder(cfg), build_encoder(cfg)
    state = {"format": "sketchface.train_state", "format_version": 1, "encoder_config": cfg.to_dict(),
             "model": student.state_dict(), "ema": ema.state_dict(), "step": 12, "epoch": 3,
             "metrics": {"recall@1_val": 0.25}}
    torch.save(state, tmp_path / "best.pt")
    out = export_train_state(tmp_path / "best.pt", tmp_path / "export")
    exported, exported_cfg = load_encoder(out)
    x = torch.randn(1, 3, 64, 64)
    assert torch.equal(exported(x), ema.eval()(x)) and not torch.equal(exported(x), student.eval()(x))
    assert exported_cfg.weights == "ema" and exported_cfg.training["step"] == 12
    assert exported_cfg.metrics == {"recall@1_val": 0.25}
    out = export_train_state(tmp_path / "best.pt", tmp_path / "export_s", weights="student")
    assert np.allclose(load_encoder(out)[0](x).detach().numpy(), student(x).detach().numpy())
