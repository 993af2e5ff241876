"""The run's schedule in optimiser steps, derived from epochs, dataset size, batch and accumulation.

Why: a sketch dataset holds 500-5,000 pairs. At 600 pairs, batch 64 and 30 epochs a run has ~240
steps; step counts made for large datasets (unfreeze at 1,500) then never happen. Every schedule is
set in epochs and converted here, once, so the trainer, ``show-config`` and ``check`` agree.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from trainer.config import TrainConfig
from trainer.schedules import ema_decay


@dataclass(frozen=True)
class StepPlan:
    """Every schedule of a run in optimiser steps (zeros: no ramp, e.g. for benchmarks)."""

    train_ids: int = 0
    world: int = 1
    train_classes: int = 0  # training identities (train_ids counts samples: synthetic pairs add samples)
    steps_per_epoch: int = 1
    total_steps: int = 0
    warmup: int = 0
    unfreeze_step: int | None = None
    backbone_warmup: int = 0
    margin_ramp: int = 0
    ema_ramp: int = 0
    consistency_decay: int = 0

    def unfreezes(self) -> bool:
        """Whether the backbone is unfrozen before the run ends."""
        return self.unfreeze_step is not None and self.unfreeze_step < self.total_steps

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def steps_per_epoch(n_train: int, batch: int, world: int, accum: int) -> int:
    """Optimiser steps per epoch: each rank drops its incomplete last batch, then accumulates."""
    per_rank = n_train // max(1, world)
    return max(1, (per_rank // batch) // max(1, accum))


def plan_steps(cfg: TrainConfig, n_train: int, world: int = 1, classes: int | None = None) -> StepPlan:
    """Convert the config's epoch-based schedules to steps for ``n_train`` samples on ``world`` ranks.

    ``classes``: the training identities when they are fewer than the samples (synthetic pairs).
    """
    o, lo = cfg.optim, cfg.loss
    spe = steps_per_epoch(n_train, o.batch_size, world, o.accum_steps)
    total = spe * o.epochs

    def epochs(value: float) -> int:
        return int(round(value * spe))

    warmup = o.warmup_steps or min(max(epochs(o.warmup_epochs), o.warmup_min_steps), o.warmup_max_steps)
    if o.unfreeze_last_blocks <= 0:
        unfreeze: int | None = None
    else:
        unfreeze = o.unfreeze_after_steps if o.unfreeze_after_steps is not None else epochs(o.unfreeze_after_epochs)
    return StepPlan(
        train_ids=n_train, world=world, train_classes=n_train if classes is None else classes, steps_per_epoch=spe, total_steps=total, warmup=warmup,
        unfreeze_step=unfreeze,
        backbone_warmup=o.backbone_warmup_steps or max(1, epochs(o.backbone_warmup_epochs)),
        margin_ramp=lo.margin_ramp_steps or (epochs(lo.margin_ramp_epochs) if lo.margin_ramp_epochs > 0 else 2 * warmup),
        ema_ramp=epochs(lo.ema_ramp_epochs),
        consistency_decay=lo.consistency_decay_steps or epochs(lo.consistency_decay_epochs),
    )


def plan_warnings(plan: StepPlan, cfg: TrainConfig) -> list[str]:
    """Notes a person should read before a long run: phases that never happen in this many steps."""
    notes: list[str] = []
    if cfg.optim.unfreeze_last_blocks > 0 and not plan.unfreezes():
        notes.append(f"The backbone would never unfreeze: unfreezing is due at step {plan.unfreeze_step} but the "
                     f"run has {plan.total_steps} steps ({plan.steps_per_epoch} per epoch); lower "
                     "optim.unfreeze_after_epochs or raise optim.epochs.")
    if plan.margin_ramp >= plan.total_steps > 0:
        notes.append(f"The ArcFace margin would not reach {cfg.loss.margin_m} (ramp of {plan.margin_ramp} steps, "
                     f"run of {plan.total_steps}).")
    if plan.warmup >= plan.total_steps > 0:
        notes.append(f"The LR warm-up ({plan.warmup} steps) is as long as the run ({plan.total_steps} steps).")
    return notes + inert_parts(plan, cfg)


def inert_parts(plan: StepPlan, cfg: TrainConfig) -> list[str]:
    """Parts of the recipe that cannot act at this dataset size, said rather than left to look active.

    - Semi-hard mining only chooses *which* negatives enter the sampled softmax; with no more
      training identities than ``sampled_softmax_classes`` every one of them is in every step's
      softmax, so mining changes nothing.
    - The EMA ramp may be longer than the run: the decay then never reaches ``ema_decay_end``.
    """
    lo = cfg.loss
    notes = []
    classes = plan.train_classes or plan.train_ids
    if lo.semi_hard_fraction > 0 and 0 < classes <= lo.sampled_softmax_classes:
        notes.append(f"Semi-hard negative mining is inert: all {classes} training identities fit in the sampled "
                     f"softmax (loss.sampled_softmax_classes={lo.sampled_softmax_classes}), so every negative is in "
                     "every step's softmax whatever is mined.")
    if plan.total_steps > 0:
        reached = ema_decay(plan.total_steps - 1, plan.ema_ramp, lo, plan.warmup)
        if reached < lo.ema_decay_end - 1e-9:
            notes.append(f"The EMA decay reaches only {reached:.4f} by the last step (ramp to {lo.ema_decay_end} over "
                         f"{plan.ema_ramp} steps, run of {plan.total_steps}).")
    return notes
