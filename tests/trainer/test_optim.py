"""Progressive unfreezing extends the optimiser by exactly the last N blocks; the EMA teacher's arithmetic."""

from __future__ import annotations

import pytest
import torch

from engine.sketch.model import SketchEncoder
from tests.fixtures.tiny_sketch import TINY_MODEL_CFG
from trainer.config import OptimConfig
from trainer.optim import EMATeacher, build_optimizer, optimizer_param_ids, unfreeze
from trainer.schedules import WarmupCosine, lr_factor


def _encoder(layers: int = 4) -> SketchEncoder:
    cfg = {**TINY_MODEL_CFG, "vision_cfg": {**TINY_MODEL_CFG["vision_cfg"], "layers": layers}}
    torch.manual_seed(0)
    return SketchEncoder(cfg, head_hidden=32)


def _step(model: SketchEncoder, opt: torch.optim.Optimizer) -> None:
    out = model(torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1)))
    out.sum().backward()
    opt.step()
    opt.zero_grad()


def test_unfreezing_adds_exactly_the_last_n_blocks_parameters() -> None:
    model = _encoder(layers=4)
    cfg = OptimConfig(unfreeze_last_blocks=2, lr_head=1e-3, lr_backbone=1e-5, backbone_warmup_steps=5)
    opt = build_optimizer(model, cfg)
    sched = WarmupCosine(opt, cfg, total_steps=100)
    before = optimizer_param_ids(opt)
    head_ids = {id(p) for p in model.head_parameters()}
    assert before == head_ids
    assert all(not p.requires_grad for b in model.blocks() for p in b.parameters())
    _step(model, opt)
    head_state = {id(p): opt.state[p]["exp_avg"].clone() for p in model.head.parameters()}
    sched.apply(7)
    added = unfreeze(model, opt, sched, cfg, step=7)
    blocks = model.blocks()
    expected = {id(p) for b in blocks[-2:] for p in b.parameters()}
    assert {id(p) for p in added} == expected
    assert optimizer_param_ids(opt) == before | expected
    assert all(not p.requires_grad for b in blocks[:2] for p in b.parameters())
    assert not model.visual.conv1.weight.requires_grad  # the stem is not a block
    assert len(sched.groups) == len(opt.param_groups)
    assert {g["name"] for g in opt.param_groups} == {"head", "head_no_decay", "backbone", "backbone_no_decay"}
    backbone_lr = [g["lr"] for g in opt.param_groups if g["name"].startswith("backbone")]
    # lr_backbone on the global warmup/cosine at step 7, times the group's own warmup (1 of 5 steps)
    expected_lr = 1e-5 * lr_factor(7, cfg.warmup_steps, 100, cfg.cosine_final_lr_mul) / 5
    assert backbone_lr == pytest.approx([expected_lr] * 2)
    for p in model.head.parameters():  # Adam moments of the head survive the extension
        assert torch.equal(opt.state[p]["exp_avg"], head_state[id(p)])
    assert unfreeze(model, opt, sched, cfg, step=8) == []  # already unfrozen: nothing is added twice


def test_the_backbone_tail_trains_with_the_head_unless_disabled() -> None:
    model = _encoder()
    build_optimizer(model, OptimConfig(train_tail=True))
    assert model.visual.proj.requires_grad and model.visual.ln_post.weight.requires_grad
    model = _encoder()
    opt = build_optimizer(model, OptimConfig(train_tail=False))
    assert not model.visual.proj.requires_grad
    assert optimizer_param_ids(opt) == {id(p) for p in model.head.parameters()}


def test_ema_update_is_a_lerp_of_trained_parameters_only() -> None:
    model = _encoder(layers=2)
    build_optimizer(model, OptimConfig())
    ema = EMATeacher(model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    head_w = model.head[0].weight
    frozen_w = model.visual.conv1.weight
    ema_head_before = ema.model.head[0].weight.clone()
    ema_frozen_before = ema.model.visual.conv1.weight.clone()
    ema.update(model, decay=0.9)
    assert torch.allclose(ema.model.head[0].weight, 0.9 * ema_head_before + 0.1 * head_w.detach(), atol=1e-6)
    assert torch.equal(ema.model.visual.conv1.weight, ema_frozen_before)  # frozen in the student: untouched
    assert not frozen_w.requires_grad
    assert all(not p.requires_grad for p in ema.model.parameters())
