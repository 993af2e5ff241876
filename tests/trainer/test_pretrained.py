"""Pretrained weights: a managed model by default, never silently random, activation from the weights' tag."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from engine.errors import ConfigError, ModelMissing, ModelTampered
from tests.trainer import synthetic
from tests.trainer.conftest import tiny_overrides
from trainer.__main__ import main
from trainer.config import PRETRAINED_MODEL_ID, load_config
from trainer.loop import Trainer
from trainer.setup import encoder_config, pretrained_source


def test_train_refuses_to_start_without_the_pretrained_weights(tmp_path: Path, tiny_models_dir: Path) -> None:
    root = tmp_path / "ds"
    synthetic.write_dataset(root, 12, seed=0)
    sets = [*tiny_overrides(root, tiny_models_dir, tmp_path / "run"), f"model.pretrained='{PRETRAINED_MODEL_ID}'"]
    buf = io.StringIO()
    with redirect_stdout(buf):
        code = main(["train", *[a for s in sets for a in ("--set", s)]])
    last = json.loads(buf.getvalue().strip().splitlines()[-1])
    assert code == 1 and last["event"] == "error" and last["type"] == "ModelMissing"
    assert "not installed" in last["message"] and "training the sketch encoder" in last["message"]
    assert not (root / "arcface_prototypes.npz").exists()  # refused before any photo was embedded
    with pytest.raises(ConfigError, match="empty"):
        load_config(None, ["model.pretrained=''"])
    with pytest.raises(ModelMissing):
        pretrained_source(load_config())  # the default is the managed model


def test_explicit_none_trains_from_random_weights_and_says_so(tmp_path: Path, make_config: Any) -> None:
    root = tmp_path / "ds"
    synthetic.write_dataset(root, 20, seed=1)
    trainer = Trainer(make_config(root, tmp_path / "run", "optim.batch_size=8", "optim.epochs=1"),
                      stream=io.StringIO())
    summary = trainer.fit()
    warnings = [e["message"] for e in trainer.reporter.history if e["event"] == "warning"]
    assert any("random weights" in w for w in warnings)
    exported = json.loads((Path(summary["export"]) / "config.json").read_text("utf-8"))
    assert exported["pretrained"]["kind"] == "none" and "random" in exported["pretrained"]["warning"]


def _vit_b16(*extra: str) -> Any:
    return load_config(None, ["model.architecture='ViT-B-16'", *extra])


def test_activation_follows_the_pretrained_tag_and_a_contrary_setting_is_refused() -> None:
    # ViT-B-16 + OpenAI weights: open_clip's config builds GELU, the weights were trained with QuickGELU.
    cfg = _vit_b16("model.pretrained='openai'")
    src = pretrained_source(cfg)  # a tag: resolved without downloading anything
    assert src.kind == "tag" and src.quick_gelu is True
    assert encoder_config(cfg, "0" * 64, {}, src).model_cfg["quick_gelu"] is True
    explicit = _vit_b16("model.pretrained='openai'")
    from engine.sketch.model import resolve_model_cfg

    explicit.model.model_cfg = {**resolve_model_cfg("ViT-B-16"), "quick_gelu": False}
    with pytest.raises(ConfigError, match="trained with QuickGELU"):
        encoder_config(explicit, "0" * 64, {}, pretrained_source(explicit))
    laion = load_config(None, ["model.architecture='ViT-B-16-quickgelu'", "model.pretrained='laion2b_s34b_b88k'"])
    with pytest.raises(ConfigError, match="trained with GELU"):
        encoder_config(laion, "0" * 64, {}, pretrained_source(laion))
    assert encoder_config(_vit_b16("model.pretrained='none'"), "0" * 64, {},
                          pretrained_source(_vit_b16("model.pretrained='none'"))).model_cfg["quick_gelu"] is False


def test_a_checkpoint_file_records_its_digest_and_its_tags_activation(tmp_path: Path) -> None:
    import open_clip
    from safetensors.torch import save_file

    from engine.fsutil import sha256_file
    from engine.sketch.model import build_encoder, load_pretrained_visual
    from tests.fixtures.tiny_sketch import TINY_MODEL_CFG

    clip = open_clip.CLIP(embed_dim=64, vision_cfg=TINY_MODEL_CFG["vision_cfg"],
                          text_cfg={"context_length": 8, "vocab_size": 32, "width": 32, "heads": 2, "layers": 1})
    path = tmp_path / "clip.safetensors"
    save_file({k: v.contiguous() for k, v in clip.state_dict().items()}, str(path))
    cfg = load_config(None, ["model.architecture='ViT-B-16'", f"model.pretrained='{path}'",
                             "model.pretrained_tag='openai'"])
    cfg.model.model_cfg = {k: v for k, v in TINY_MODEL_CFG.items() if k != "quick_gelu"}  # the tag decides
    src = pretrained_source(cfg)
    enc = encoder_config(cfg, "0" * 64, {}, src)
    assert enc.model_cfg["quick_gelu"] is True and enc.pretrained["sha256"] == sha256_file(path)
    assert enc.pretrained["tag"] == "openai" and enc.pretrained["file"] == "clip.safetensors"
    assert "clip.safetensors" in load_pretrained_visual(build_encoder(enc), src)


def test_a_weights_file_without_a_tag_is_refused_unless_the_activation_is_stated(tmp_path: Path) -> None:
    """A local file says nothing about its activation: the default GELU would be a silent guess."""
    import open_clip
    from safetensors.torch import save_file

    from tests.fixtures.tiny_sketch import TINY_MODEL_CFG

    clip = open_clip.CLIP(embed_dim=64, vision_cfg=TINY_MODEL_CFG["vision_cfg"],
                          text_cfg={"context_length": 8, "vocab_size": 32, "width": 32, "heads": 2, "layers": 1})
    path = tmp_path / "clip.safetensors"
    save_file({k: v.contiguous() for k, v in clip.state_dict().items()}, str(path))
    tower = {k: v for k, v in TINY_MODEL_CFG.items() if k != "quick_gelu"}

    def cfg_with(*extra: str) -> Any:
        cfg = load_config(None, ["model.architecture='ViT-B-16'", f"model.pretrained='{path}'", *extra])
        cfg.model.model_cfg = dict(tower)
        return cfg

    untagged = cfg_with()
    with pytest.raises(ConfigError, match="activation the pretrained weights .* is unknown") as info:
        encoder_config(untagged, "0" * 64, {}, pretrained_source(untagged))
    assert "model.pretrained_tag" in str(info.value.hint) and "model.activation" in str(info.value.hint)
    for stated, quick in (("quick_gelu", True), ("gelu", False)):
        ok = cfg_with(f"model.activation='{stated}'")
        assert encoder_config(ok, "0" * 64, {}, pretrained_source(ok)).model_cfg["quick_gelu"] is quick
    tagged_and_stated = cfg_with("model.pretrained_tag='openai'", "model.activation='gelu'")
    with pytest.raises(ConfigError, match="trained with QuickGELU"):  # a stated activation cannot overrule the tag
        encoder_config(tagged_and_stated, "0" * 64, {}, pretrained_source(tagged_and_stated))
    with pytest.raises(ConfigError, match="model.activation must be"):
        load_config(None, ["model.activation='relu'"])
    # Random weights need no statement: there is nothing to mismatch.
    none = load_config(None, ["model.architecture='ViT-B-16'", "model.pretrained='none'"])
    assert encoder_config(none, "0" * 64, {}, pretrained_source(none)).model_cfg["quick_gelu"] is False


@pytest.mark.real_manifest
def test_a_managed_checkpoint_that_is_not_the_published_file_is_refused(tmp_path: Path) -> None:
    from engine import models

    dest = models.model_dir(PRETRAINED_MODEL_ID)
    dest.mkdir(parents=True)
    (dest / "open_clip_model.safetensors").write_bytes(b"not the LAION checkpoint")
    with pytest.raises(ModelTampered):
        pretrained_source(load_config())


def test_models_status_shows_what_the_installed_encoder_was_trained_from(
        installed_models: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from engine.cli import main as cli
    from engine.sketch.config import EncoderConfig
    from tests.fixtures import tiny_sketch

    dest = tiny_sketch.build(installed_models)
    cfg = EncoderConfig.load(dest / "config.json")
    cfg.pretrained = {"source": "open_clip.vit_b_16_laion2b (open_clip_model.safetensors)", "sha256": "ab" * 32}
    cfg.save(dest / "config.json")
    capsys.readouterr()
    assert cli(["models", "status"]) == 0
    out = capsys.readouterr().out
    assert f"trained from: open_clip.vit_b_16_laion2b (open_clip_model.safetensors), sha256 {'ab' * 32}" in out
    assert cli(["models", "status", "--json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["sketch_encoder"]["pretrained"]["sha256"] == "ab" * 32
