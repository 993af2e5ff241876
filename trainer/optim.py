"""AdamW with separate head/backbone learning rates, progressive unfreezing, and the EMA mean teacher."""

from __future__ import annotations

import copy

import torch
from torch import nn

from engine.sketch.model import SketchEncoder
from trainer.config import OptimConfig
from trainer.schedules import WarmupCosine

_NO_DECAY_NAMES = ("class_embedding", "positional_embedding")


def _split_decay(model: nn.Module, params: list[nn.Parameter]) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(decay, no_decay): biases, norms and token/position embeddings get no weight decay."""
    names = {id(p): n for n, p in model.named_parameters()}
    decay, no_decay = [], []
    for p in params:
        name = names.get(id(p), "")
        if p.ndim < 2 or any(k in name for k in _NO_DECAY_NAMES):
            no_decay.append(p)
        else:
            decay.append(p)
    return decay, no_decay


def _groups(model: nn.Module, params: list[nn.Parameter], lr: float, wd: float, tag: str) -> list[dict]:  # type: ignore[type-arg]
    decay, no_decay = _split_decay(model, params)
    groups = []
    if decay:
        groups.append({"params": decay, "lr": lr, "weight_decay": wd, "name": f"{tag}"})
    if no_decay:
        groups.append({"params": no_decay, "lr": lr, "weight_decay": 0.0, "name": f"{tag}_no_decay"})
    return groups


def build_optimizer(model: SketchEncoder, cfg: OptimConfig) -> torch.optim.AdamW:
    """AdamW over the head (and backbone tail) only: the backbone starts frozen."""
    model.freeze_backbone(include_tail=cfg.train_tail)
    params = [p for p in model.head_parameters(include_tail=cfg.train_tail) if p.requires_grad]
    return torch.optim.AdamW(_groups(model, params, cfg.lr_head, cfg.wd, "head"), betas=(0.9, 0.999))


def unfreeze(model: SketchEncoder, optimizer: torch.optim.Optimizer, scheduler: WarmupCosine, cfg: OptimConfig,
             step: int, warmup: int | None = None) -> list[nn.Parameter]:
    """Unfreeze the last ``cfg.unfreeze_last_blocks`` blocks and add them to optimizer and scheduler.

    The new groups get ``lr_backbone`` on the same global cosine (joined at ``step``, with their own
    short warmup of ``warmup`` steps, the plan's backbone_warmup); existing groups and their Adam moments are untouched, so step alignment holds.

    Returns:
        The parameters added to the optimizer (exactly the newly unfrozen ones).
    """
    newly = model.unfreeze_last_blocks(cfg.unfreeze_last_blocks)
    for group in _groups(model, newly, cfg.lr_backbone, cfg.wd, "backbone"):
        optimizer.add_param_group(group)
        scheduler.add_group(cfg.lr_backbone, start_step=step,
                            warmup=cfg.backbone_warmup_steps if warmup is None else warmup)
    return newly


def optimizer_param_ids(optimizer: torch.optim.Optimizer) -> set[int]:
    return {id(p) for g in optimizer.param_groups for p in g["params"]}


class EMATeacher:
    """An exponential moving average of the student (the mean teacher), never trained directly.

    Only parameters the student trains change, so only those are averaged (frozen ones are equal in
    both by construction); buffers are copied.
    """

    def __init__(self, student: nn.Module) -> None:
        self.model = copy.deepcopy(student).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, student: nn.Module, decay: float) -> None:
        for p_t, p_s in zip(self.model.parameters(), student.parameters(), strict=True):
            if p_s.requires_grad:
                p_t.lerp_(p_s.detach().to(p_t.dtype), 1.0 - decay)
        for b_t, b_s in zip(self.model.buffers(), student.buffers(), strict=True):
            b_t.copy_(b_s)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state, strict=True)
