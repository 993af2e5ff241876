"""Schedules pinned to hand-computed values; the per-group LR scheduler keeps step alignment."""

from __future__ import annotations

import math

import pytest
import torch

from trainer.config import LossConfig, OptimConfig
from trainer.schedules import WarmupCosine, consistency_weight, ema_decay, lr_factor, ramp, scale_and_margin


def test_warmup_then_cosine_to_the_final_multiplier() -> None:
    f = [lr_factor(s, warmup=10, total=110, final_mul=0.1) for s in (0, 4, 9, 10, 60, 110, 500)]
    assert f == pytest.approx([0.1, 0.5, 1.0, 1.0, 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 2)), 0.1, 0.1])
    assert f[4] == pytest.approx(0.55)
    assert lr_factor(35, warmup=10, total=110, final_mul=0.0) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))


def test_scale_and_margin_ramp_over_the_plans_ramp() -> None:
    loss = LossConfig(scale_s=32.0, scale_s_start=16.0, margin_m=0.4)
    assert scale_and_margin(0, loss, 20) == (16.0, 0.0)
    assert scale_and_margin(10, loss, 20) == pytest.approx((24.0, 0.2))
    assert scale_and_margin(20, loss, 20) == pytest.approx((32.0, 0.4))
    assert scale_and_margin(1000, loss, 20) == pytest.approx((32.0, 0.4))
    assert scale_and_margin(1, loss, 4) == pytest.approx((20.0, 0.1))


def test_ema_decay_warms_up_briefly_then_follows_the_seeds_0996_to_0999_ramp() -> None:
    loss = LossConfig()
    # The horizon 1 / (1 - d) grows linearly over the 50-step warm-up: d 0 at step 0 (the student)...
    assert ema_decay(0, 500, loss, 50) == pytest.approx(0.0)
    d0 = ema_decay(25, 500, loss, 50)
    ramp25 = 0.996 + 0.003 * 25 / 500
    assert 1 / (1 - d0) == pytest.approx(1 + (1 / (1 - ramp25) - 1) * 0.5)
    # ...and from the warm-up's end on, the seed's ramp itself (the old cap kept it < 0.996 until ~2,240).
    assert ema_decay(50, 500, loss, 50) == pytest.approx(0.996 + 0.003 * 50 / 500)
    assert ema_decay(250, 500, loss, 50) == pytest.approx(0.9975)
    assert ema_decay(10_000, 500, loss, 50) == pytest.approx(0.999)
    assert all(ema_decay(t, 500, loss, 50) <= ema_decay(t + 1, 500, loss, 50) for t in range(600))
    # The random step-0 weights are gone after the first update; without the warm-up 38 % remain at step 240.
    keep_fixed = math.prod(ema_decay(t, 80, LossConfig(ema_warmup=False), 50) for t in range(240))
    keep_warm = math.prod(ema_decay(t, 80, loss, 50) for t in range(240))
    assert keep_fixed > 0.3 and keep_warm == 0.0
    off = LossConfig(ema_warmup=False)
    assert ema_decay(0, 50, off, 50) == pytest.approx(0.996) and ema_decay(25, 50, off) == pytest.approx(0.9975)


def test_consistency_weight_decays_only_after_unfreezing() -> None:
    loss = LossConfig(lambda_consistency=2.0, consistency_final_mul=0.1)
    assert consistency_weight(500, None, loss, 100) == 2.0
    assert consistency_weight(99, 100, loss, 100) == 2.0
    assert consistency_weight(100, 100, loss, 100) == 2.0
    assert consistency_weight(150, 100, loss, 100) == pytest.approx(1.1)
    assert consistency_weight(200, 100, loss, 100) == pytest.approx(0.2)
    assert consistency_weight(900, 100, loss, 100) == pytest.approx(0.2)
    assert ramp(5, 1.0, 3.0, 0) == 3.0


def test_a_group_added_later_follows_the_global_cosine_without_shifting_the_others() -> None:
    w = torch.nn.Parameter(torch.zeros(2))
    v = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.AdamW([{"params": [w], "lr": 1e-2}])
    cfg = OptimConfig(cosine_final_lr_mul=0.0)
    sched = WarmupCosine(opt, cfg, total_steps=110, warmup=10)
    sched.apply(40)
    head_before = opt.param_groups[0]["lr"]
    opt.add_param_group({"params": [v], "lr": 1e-3})
    sched.add_group(1e-3, start_step=40, warmup=4)
    assert opt.param_groups[0]["lr"] == head_before == pytest.approx(1e-2 * lr_factor(40, 10, 110, 0.0))
    assert opt.param_groups[1]["lr"] == pytest.approx(1e-3 * lr_factor(40, 10, 110, 0.0) * 0.25)
    sched.apply(43)
    assert opt.param_groups[1]["lr"] == pytest.approx(1e-3 * lr_factor(43, 10, 110, 0.0))
    state = sched.state_dict()
    other = WarmupCosine(torch.optim.AdamW([{"params": [w], "lr": 5.0}, {"params": [v], "lr": 5.0}]), cfg, 110,
                         warmup=10)
    other.load_state_dict(state)
    assert [g["lr"] for g in other.optimizer.param_groups] == pytest.approx([g["lr"] for g in opt.param_groups])
