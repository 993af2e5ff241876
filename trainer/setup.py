"""Everything a run needs before its first step: data, split, ArcFace prototypes, model, optimiser."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.errors import ConfigError
from engine.faces import load_image
from engine.sketch.config import EncoderConfig, PreprocessConfig
from engine.sketch.model import SketchEncoder, build_encoder, load_pretrained_visual, resolve_model_cfg
from engine.sketch.transforms import eval_tensor
from trainer.config import TrainConfig
from trainer.data import EpochSampler, SketchViews, pair_dataset, split_by_identity
from trainer.optim import EMATeacher, build_optimizer
from trainer.reporting import RunReporter
from trainer.runtime import DistInfo, amp_dtype, barrier
from trainer.schedules import WarmupCosine
from trainer.teacher import CACHE_NAME, Prototypes, compute_prototypes


@dataclass
class Setup:
    """The built pieces of a run (see :func:`build_setup`)."""

    train_ids: list[str]
    val_ids: list[str]
    all_ids: list[str]
    protos: torch.Tensor          # (C_train, 512) on the device: the classifier weights
    all_protos: np.ndarray        # (C_all, 512): the evaluation gallery
    val_inputs: torch.Tensor      # (Q, 3, S, S): validation sketches, no augmentation
    dataset: SketchViews
    sampler: EpochSampler
    model: SketchEncoder
    ema: EMATeacher
    optimizer: torch.optim.AdamW
    scheduler: WarmupCosine
    scaler: torch.amp.GradScaler
    amp: torch.dtype | None
    steps_per_epoch: int
    total_steps: int
    encoder_config: EncoderConfig


def _prototypes(cfg: TrainConfig, pairs: list[Any], dist: DistInfo, reporter: RunReporter) -> Prototypes:
    cache = Path(cfg.data.prototype_cache) if cfg.data.prototype_cache else Path(cfg.data.root) / CACHE_NAME

    def progress(done: int, total: int) -> None:
        reporter.emit("prototypes_progress", done=done, total=total)

    if dist.is_main:
        protos = compute_prototypes(pairs, cfg.teacher, cache, on_progress=progress)
    barrier(dist)
    if not dist.is_main:
        protos = compute_prototypes(pairs, cfg.teacher, cache)
    reporter.emit("prototypes", arcface_sha256=protos.arcface_sha256, computed=protos.computed, reused=protos.reused,
                  fallback_centre_crop=len(protos.fallback_ids), fallback_examples=protos.fallback_ids[:20],
                  cache=str(cache))
    return protos


def architecture_label(cfg: TrainConfig) -> str:
    """The architecture's name for people: the open_clip name, or "custom" for an unnamed custom config."""
    default = type(cfg.model)().architecture
    if cfg.model.model_cfg is not None and cfg.model.architecture == default:
        return "custom"
    return cfg.model.architecture


def encoder_config(cfg: TrainConfig, arcface_sha256: str, extra: dict[str, Any]) -> EncoderConfig:
    """The self-describing config the run's checkpoints (and the app) will carry."""
    model_cfg = resolve_model_cfg(cfg.model.architecture, cfg.model.model_cfg)
    probe = EncoderConfig(architecture=architecture_label(cfg), model_cfg=model_cfg)
    pre = PreprocessConfig(input_size=probe.vision_image_size(), margin=cfg.model.margin,
                           ink_threshold=cfg.model.ink_threshold)
    return EncoderConfig(architecture=probe.architecture, model_cfg=model_cfg, head_hidden=cfg.model.head_hidden,
                         preprocess=pre, arcface_sha256=arcface_sha256, weights=cfg.run.weights,
                         training={"config": json.loads(json.dumps(cfg.to_dict(), default=str)), **extra})


def build_setup(cfg: TrainConfig, dist: DistInfo, reporter: RunReporter) -> Setup:
    """Pair, split, compute prototypes, build the model/EMA/optimiser/scheduler and the data pipeline."""
    if not cfg.data.root:
        raise ConfigError("No dataset: set data.root (a folder with real/ and sketch/).")
    torch.manual_seed(cfg.run.seed)  # the same initial weights on every rank and every resume
    pairing = pair_dataset(cfg.data.root)
    reporter.emit("data", **pairing.summary())
    train_ids, val_ids = split_by_identity([p.id for p in pairing.pairs], cfg.data.val_fraction,
                                           cfg.data.split_seed, cfg.data.min_val_ids)
    reporter.emit("split", train_ids=len(train_ids), val_ids=len(val_ids))
    by_id = {p.id: p for p in pairing.pairs}
    protos = _prototypes(cfg, pairing.pairs, dist, reporter)
    all_ids = [p.id for p in pairing.pairs]
    enc_cfg = encoder_config(cfg, protos.arcface_sha256, {"dataset": str(cfg.data.root),
                                                          "train_ids": len(train_ids), "val_ids": len(val_ids),
                                                          "fallback_centre_crop": len(protos.fallback_ids)})
    model = build_encoder(enc_cfg)
    if cfg.model.pretrained:
        reporter.emit("pretrained", source=load_pretrained_visual(model, cfg.model.pretrained, cfg.model.architecture))
    model.to(dist.device)
    optimizer = build_optimizer(model, cfg.optim)
    ema = EMATeacher(model)
    pre = enc_cfg.preprocess
    dataset = SketchViews([by_id[i].sketch for i in train_ids], pre, cfg.augment_weak, cfg.augment_strong,
                          seed=cfg.run.seed, cache=cfg.data.cache_images)
    if len(dataset) < cfg.optim.batch_size * dist.world:
        raise ConfigError(f"{len(dataset)} training identities are fewer than one batch "
                          f"({cfg.optim.batch_size} x {dist.world} processes); lower optim.batch_size.")
    sampler = EpochSampler(len(dataset), dist.world, dist.rank, cfg.run.seed, cfg.optim.batch_size)
    steps_per_epoch = max(1, sampler.full_batches() // cfg.optim.accum_steps)
    total = steps_per_epoch * cfg.optim.epochs
    scheduler = WarmupCosine(optimizer, cfg.optim, total)
    amp = amp_dtype(cfg.optim.amp, dist.device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp is torch.float16)
    val_inputs = torch.stack([eval_tensor(load_image(by_id[i].sketch), None, pre) for i in val_ids])
    reporter.emit("start", device=str(dist.device), world_size=dist.world,
                  amp=str(amp).replace("torch.", "") if amp else "off", steps_per_epoch=steps_per_epoch,
                  total_steps=total, params_trainable=sum(p.numel() for p in model.parameters() if p.requires_grad),
                  params_total=sum(p.numel() for p in model.parameters()), architecture=enc_cfg.architecture)
    return Setup(train_ids=train_ids, val_ids=val_ids, all_ids=all_ids,
                 protos=torch.from_numpy(protos.take(train_ids)).to(dist.device),
                 all_protos=protos.take(all_ids), val_inputs=val_inputs, dataset=dataset, sampler=sampler,
                 model=model, ema=ema, optimizer=optimizer, scheduler=scheduler, scaler=scaler, amp=amp,
                 steps_per_epoch=steps_per_epoch, total_steps=total, encoder_config=enc_cfg)
