"""Schedules as pure functions of the global optimiser step, plus a per-group LR scheduler.

Pure functions of the step make exact resume trivial (nothing to restore but the step) and let tests
pin every value by hand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from trainer.config import LossConfig, OptimConfig


def ramp(step: int, start: float, end: float, steps: int) -> float:
    """Linear from ``start`` (step 0) to ``end`` (step >= ``steps``)."""
    if steps <= 0:
        return end
    t = min(max(step / steps, 0.0), 1.0)
    return start + (end - start) * t


def lr_factor(step: int, warmup: int, total: int, final_mul: float) -> float:
    """Linear warmup to 1 over ``warmup`` steps, then cosine decay from 1 to ``final_mul`` at ``total``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    span = max(1, total - warmup)
    progress = min(max((step - warmup) / span, 0.0), 1.0)
    return final_mul + (1.0 - final_mul) * 0.5 * (1.0 + math.cos(math.pi * progress))


def scale_and_margin(step: int, loss: LossConfig, ramp_steps: int) -> tuple[float, float]:
    """ArcFace ``s``: scale_s_start -> scale_s and ``m``: 0 -> margin_m over ``ramp_steps`` (the plan's margin_ramp).

    Why: with a full margin at step 0 the randomly initialised head cannot reach any positive, and
    the softmax saturates; ramping both lets the embedding organise first.
    """
    return ramp(step, loss.scale_s_start, loss.scale_s, ramp_steps), ramp(step, 0.0, loss.margin_m, ramp_steps)


def ema_decay(step: int, ramp_steps: int, loss: LossConfig, warmup_steps: int = 0) -> float:
    """EMA teacher decay: the seed's ema_decay_start -> ema_decay_end ramp over ``ramp_steps``, after a short warm-up.

    During the warm-up (``warmup_steps``, the run's LR warm-up: ~2 epochs, 50-400 steps) the EMA's
    averaging horizon ``1 / (1 - d)`` grows linearly from 1 step (d = 0: the EMA is the student) to
    the ramp's (250 steps at 0.996), so the randomly initialised head is forgotten at once and the
    seed's 0.996 -> 0.999 ramp acts from the end of the warm-up on.

    How it was chosen: the earlier cap ``min(d, (1 + t) / (10 + t))`` stays below 0.996 until step
    ~2,240, longer than a whole run on 1,000 pairs (~450 steps), so the seed's schedule never acted.
    The cost is lag: on such a run a 250-step horizon spans half of it. That is why every
    evaluation scores the student and the EMA and keeps the better (``eval.model="both"``), and why
    the choice is made on validation identities only.
    """
    decay = ramp(step, loss.ema_decay_start, loss.ema_decay_end, ramp_steps)
    if loss.ema_warmup and warmup_steps > 0 and step < warmup_steps:
        horizon = 1.0 + (1.0 / (1.0 - decay) - 1.0) * step / warmup_steps
        decay = 1.0 - 1.0 / horizon
    return decay


def consistency_weight(step: int, unfreeze_step: int | None, loss: LossConfig, decay_steps: int) -> float:
    """lambda_consistency until the backbone unfreezes, then linear decay to consistency_final_mul of it.

    Why: while only the head trains, agreement with the EMA teacher stabilises it; once the backbone
    moves, a strong pull towards a lagging teacher slows learning.
    """
    base = loss.lambda_consistency
    if unfreeze_step is None or step < unfreeze_step:
        return base
    return ramp(step - unfreeze_step, base, base * loss.consistency_final_mul, decay_steps)


@dataclass
class GroupSchedule:
    """One optimiser param group's schedule: base LR, the step it joined, its own warmup."""

    base_lr: float
    start_step: int = 0
    warmup: int = 0


class WarmupCosine:
    """Sets every param group's LR from the global step: ``base * lr_factor(step) * group warmup``.

    Groups added later (unfrozen blocks) follow the same global cosine from the step they join,
    after a short warmup of their own, so adding them never shifts the other groups' schedule.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, optim: OptimConfig, total_steps: int,
                 warmup: int | None = None) -> None:
        self.optimizer = optimizer
        self.warmup = optim.warmup_steps if warmup is None else warmup
        self.final_mul = optim.cosine_final_lr_mul
        self.total = total_steps
        self.groups = [GroupSchedule(float(g["lr"])) for g in optimizer.param_groups]
        self.step_num = 0
        self.apply(0)

    def add_group(self, base_lr: float, start_step: int, warmup: int) -> None:
        """Track a param group just appended to the optimizer."""
        self.groups.append(GroupSchedule(base_lr, start_step, warmup))
        self.apply(self.step_num)

    def lr(self, group: int, step: int) -> float:
        g = self.groups[group]
        own = 1.0 if g.warmup <= 0 else min(1.0, (step - g.start_step + 1) / g.warmup)
        return g.base_lr * lr_factor(step, self.warmup, self.total, self.final_mul) * max(own, 0.0)

    def apply(self, step: int) -> None:
        """Set the LRs for optimiser step ``step``."""
        self.step_num = step
        for i, pg in enumerate(self.optimizer.param_groups):
            pg["lr"] = self.lr(i, step)

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step_num, "total": self.total,
                "groups": [[g.base_lr, g.start_step, g.warmup] for g in self.groups]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the groups and the step; the total stays this run's (a longer run extends the cosine)."""
        self.groups = [GroupSchedule(float(b), int(s), int(w)) for b, s, w in state["groups"]]
        self.apply(int(state["step"]))
