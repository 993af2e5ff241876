"""Typed config: base file + --set overrides, type checks, unknown keys refused, TOML round trip."""

from __future__ import annotations

import io
import json
import tomllib
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from engine.errors import ConfigError
from tests.trainer import synthetic
from tests.trainer.conftest import tiny_cli_args
from trainer.__main__ import main
from trainer.config import TrainConfig, load_config, to_toml


def test_defaults_are_the_recipe_and_the_reference_implementation() -> None:
    cfg = load_config()
    assert cfg.model.architecture == "ViT-B-16" and cfg.model.pretrained == "open_clip.vit_b_16_laion2b"
    assert (cfg.loss.scale_s_start, cfg.loss.ema_decay_start, cfg.loss.ema_decay_end) == (16.0, 0.996, 0.999)
    lo = cfg.loss
    assert (lo.lambda_consistency, lo.lambda_coral, lo.scale_s, lo.sampled_softmax_classes) == (0.1, 0.005, 64.0, 8192)
    assert lo.arcface_both_views and lo.ema_warmup
    assert (cfg.eval.model, cfg.run.weights) == ("both", "best")
    assert cfg.augment_strong.rotate > cfg.augment_weak.rotate


def test_file_then_overrides(tmp_path: Path) -> None:
    base = tmp_path / "base.toml"
    base.write_text('[optim]\nbatch_size = 16\nlr_head = 1\n[data]\nroot = "/data/x"\n', "utf-8")
    cfg = load_config(base, ["optim.batch_size=8", "lr_backbone=3e-6", "run.out_dir='runs/a b'",
                             "augment_strong.invert_p=0", "amp=bf16"])
    assert cfg.optim.batch_size == 8
    assert isinstance(cfg.optim.lr_head, float) and cfg.optim.lr_head == 1.0  # int in TOML, float field
    assert cfg.optim.lr_backbone == 3e-6  # a bare key that only one section has
    assert cfg.data.root == "/data/x" and cfg.run.out_dir == "runs/a b" and cfg.optim.amp == "bf16"
    json_base = tmp_path / "base.json"
    json_base.write_text(json.dumps({"loss": {"margin_m": 0.2}}), "utf-8")
    assert load_config(json_base).loss.margin_m == 0.2


@pytest.mark.parametrize("override, needle", [
    ("optim.batch_sise=3", "Unknown config key"),
    ("batch_size=3", "ambiguous"),            # optim.batch_size and eval.batch_size
    ("optim.batch_size=3.5", "optim.batch_size"),
    ("optim.amp='fast'", "optim.amp"),
    ("optim.epochs", "key=value"),
    ("optim=3", "section"),
])
def test_bad_overrides_are_refused_with_the_key(override: str, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert needle in str(err.value)


def test_show_config_round_trips_through_toml(tmp_path: Path) -> None:
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["show-config", "--set", "optim.epochs=7", "--set", "model.model_cfg={embed_dim=8}"]) == 0
    text = buf.getvalue()
    path = tmp_path / "c.toml"
    path.write_text(text, "utf-8")
    again = load_config(path)
    assert again.optim.epochs == 7 and again.model.model_cfg == {"embed_dim": 8}
    assert tomllib.loads(to_toml(again)) == tomllib.loads(text)
    assert isinstance(again, TrainConfig)


def test_cli_reports_config_errors_as_a_json_line() -> None:
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["train", "--set", "optim.nope=1"]) == 1
    event = json.loads(buf.getvalue().strip().splitlines()[-1])
    assert event["event"] == "error" and "optim.nope" in event["message"]


def test_show_config_measures_the_loss_terms_on_a_first_batch_and_warns_about_negligible_ones(
        tmp_path: Path, tiny_models_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "ds"
    synthetic.write_dataset(root, 20, seed=2)

    def show(*extra: str) -> str:
        capsys.readouterr()
        assert main(["show-config", "--first-batch",
                             *tiny_cli_args(root, tiny_models_dir, tmp_path / "run", "optim.batch_size=8", *extra)]) == 0
        return capsys.readouterr().out

    out = show("loss.lambda_coral=1e-6")
    assert "# First batch (measured): loss " in out
    assert "WARNING: the weighted coral term is" in out
    assert not (tmp_path / "run").exists()  # a scratch run: nothing is written to run.out_dir
    # Negative controls: a heavy CORAL weight is not negligible, and a term switched off is off, not negligible.
    assert "weighted coral term" not in show("loss.lambda_coral=10.0")
    assert "weighted coral term" not in show("loss.lambda_coral=0.0")
