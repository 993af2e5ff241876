"""Schedules set in epochs become steps from dataset size, batch and accumulation; show-config prints them."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from pathlib import Path

from tests.trainer import synthetic
from trainer.__main__ import main
from trainer.config import load_config
from trainer.plan import plan_steps, plan_warnings


def test_the_same_data_gives_the_same_steps_and_the_schedule_scales_with_it() -> None:
    cfg = load_config()  # product defaults: batch 64, 30 epochs, warm-up 2 epochs in [50, 400], unfreeze 2 epochs
    small = plan_steps(cfg, 540)
    assert plan_steps(cfg, 540) == small
    assert (small.steps_per_epoch, small.total_steps) == (8, 240)
    assert small.unfreeze_step == 16 and small.unfreezes()
    assert small.warmup == 50 and small.margin_ramp == 100  # 2 epochs = 16 steps, clamped up to 50
    assert small.ema_ramp == 80 and small.backbone_warmup == 8
    big = plan_steps(cfg, 5400)  # ten times the data: ten times the steps, the same epochs
    assert (big.steps_per_epoch, big.total_steps, big.unfreeze_step) == (84, 2520, 168)
    assert big.warmup == 168 and big.margin_ramp == 336
    accum = load_config(None, ["optim.accum_steps=2"])
    assert plan_steps(accum, 5400).steps_per_epoch == 42 and plan_steps(accum, 5400).unfreeze_step == 84
    two_ranks = plan_steps(cfg, 5400, world=2)
    assert two_ranks.steps_per_epoch == 42
    # Agency sizes (<= 8,192 identities): every class is always in the softmax, which is said, not hidden.
    for plan in (small, big):
        notes = plan_warnings(plan, cfg)
        assert len(notes) == 1 and "mining is inert" in notes[0] and f"all {plan.train_ids} training" in notes[0]
    assert not plan_warnings(plan_steps(cfg, 9000), cfg)  # more identities than sampled classes: mining acts


def test_a_step_override_wins_and_unfreezing_that_never_happens_is_warned() -> None:
    cfg = load_config(None, ["optim.unfreeze_after_steps=1500", "optim.warmup_steps=300"])
    plan = plan_steps(cfg, 540)
    assert (plan.unfreeze_step, plan.warmup, plan.margin_ramp) == (1500, 300, 600)
    notes = plan_warnings(plan, cfg)
    assert any("never unfreeze" in n for n in notes) and any("margin would not reach" in n for n in notes)
    assert plan_steps(load_config(None, ["optim.unfreeze_last_blocks=0"]), 540).unfreeze_step is None


def test_show_config_prints_the_steps_for_the_dataset(tmp_path: Path) -> None:
    synthetic.write_dataset(tmp_path / "ds", 40, seed=2)
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["show-config", "--set", f"data.root='{tmp_path / 'ds'}'", "--set", "optim.batch_size=8"]) == 0
    text = buf.getvalue()
    split = text.split("# Identity split: ")[1].split("\n")[0]
    n_train, n_val, n_test = (int(split.split(" / ")[k].split()[0]) for k in range(3))
    assert n_train + n_val + n_test == 40 and n_val >= 2 and n_test >= 2  # three disjoint splits, sizes shown
    assert "# Schedule in steps for" in text and "#   total_steps = " in text
    spe = int(text.split("#   steps_per_epoch = ")[1].split()[0])
    assert spe == n_train // 8
    warnings = [line for line in text.splitlines() if "WARNING" in line]
    assert len(warnings) == 1 and "Semi-hard negative mining is inert" in warnings[0]  # 32 of 8,192 classes
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["show-config", "--train-ids", "540", "--set", "optim.unfreeze_after_epochs=40"]) == 0
    assert "# WARNING: The backbone would never unfreeze" in buf.getvalue()
