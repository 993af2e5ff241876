"""Everything a run needs before its first step: data, split, ArcFace prototypes, model, optimiser."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.errors import ConfigError
from engine.sketch.config import EncoderConfig, PreprocessConfig
from engine.sketch.model import (
    NO_PRETRAINED,
    PretrainedSource,
    SketchEncoder,
    apply_pretrained_activation,
    build_encoder,
    load_pretrained_visual,
    resolve_model_cfg,
    resolve_pretrained,
)
from engine.sketch.transforms import gray_tensor, normalize_tensor
from trainer.config import TrainConfig
from trainer.data import (
    DatasetUnusable,
    EpochSampler,
    Pair,
    Pairing,
    SketchViews,
    load_sketches,
    pair_dataset,
    split_identities,
)
from trainer.optim import EMATeacher, build_optimizer
from trainer.plan import StepPlan, plan_steps, plan_warnings
from trainer.probe import tower_features
from trainer.reporting import RunReporter
from trainer.runtime import DistInfo, amp_dtype
from trainer.schedules import WarmupCosine
from trainer.synthetic_ids import SyntheticPair, SyntheticResult, generate_synthetic
from trainer.teacher import CACHE_NAME, NO_FACE, UNREADABLE, Prototypes, compute_prototypes


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
    plan: StepPlan = field(default_factory=StepPlan)
    skipped: dict[str, str] = field(default_factory=dict)
    dataset_digest: str = ""
    test_ids: list[str] = field(default_factory=list)
    test_inputs: torch.Tensor | None = None  # (T, 3, S, S): test sketches, scored once at the end
    pairs: dict[str, Pair] = field(default_factory=dict)
    pretrained: PretrainedSource | None = None
    # The frozen pretrained tower's pooled features (rank 0 only), for the linear-probe baseline.
    probe_features: dict[str, np.ndarray] = field(default_factory=dict)
    # Synthetic pairs used in training (extra samples of training identities; never val/test).
    synthetic_ids: list[str] = field(default_factory=list)
    synthetic: dict[str, Any] = field(default_factory=dict)


def _gather(dist: DistInfo) -> Callable[[dict[str, Any]], dict[str, Any]] | None:
    """An all-gather of per-rank result dicts (prototypes are sharded over ranks), None when single-process."""
    if not dist.distributed:
        return None

    def gather(part: dict[str, Any]) -> dict[str, Any]:
        parts: list[Any] = [None] * dist.world
        torch.distributed.all_gather_object(parts, part)
        merged: dict[str, Any] = {}
        for p in parts:
            merged.update(p or {})
        return merged

    return gather


def _prototypes(cfg: TrainConfig, pairs: list[Any], dist: DistInfo, reporter: RunReporter) -> Prototypes:
    cache = Path(cfg.data.prototype_cache) if cfg.data.prototype_cache else Path(cfg.data.root) / CACHE_NAME

    def progress(done: int, total: int) -> None:
        reporter.emit("prototypes_progress", done=done, total=total)

    protos = compute_prototypes(pairs, cfg.teacher, cache, on_progress=progress, no_face=cfg.data.no_face,
                                rank=dist.rank, world=dist.world, gather=_gather(dist))
    reporter.emit("prototypes", arcface_sha256=protos.arcface_sha256, computed=protos.computed, reused=protos.reused,
                  computed_by_rank0=protos.computed_here,
                  fallback_centre_crop=len(protos.fallback_ids), fallback_examples=protos.fallback_ids[:20],
                  no_face=sum(1 for r in protos.skipped.values() if r == NO_FACE),
                  unreadable=sum(1 for r in protos.skipped.values() if r == UNREADABLE), cache=str(cache))
    return protos


def _synthetic(cfg: TrainConfig, train_pairs: list[Pair], protos: Prototypes, dist: DistInfo,
               reporter: RunReporter) -> SyntheticResult | None:
    """The synthetic source's pairs for the training identities (generated here on a single process)."""
    if cfg.synthetic.per_identity <= 0:
        return None
    vecs = dict(zip(protos.ids, protos.vectors, strict=True))

    def progress(done: int, total: int) -> None:
        reporter.emit("synthetic_progress", done=done, total=total)

    result = generate_synthetic(cfg.data.root, train_pairs, {p.id: vecs[p.id] for p in train_pairs}, cfg.synthetic,
                                cfg.teacher, protos.arcface_sha256, generate=not dist.distributed,
                                on_progress=progress)
    return result


def architecture_label(cfg: TrainConfig) -> str:
    """The architecture's name for people: the open_clip name, or "custom" for an unnamed custom config."""
    default = type(cfg.model)().architecture
    if cfg.model.model_cfg is not None and cfg.model.architecture == default:
        return "custom"
    return cfg.model.architecture


def _explicit_activation(cfg: TrainConfig) -> bool | None:
    """The activation the user asked for (None: only the architecture's default)."""
    mc = cfg.model.model_cfg
    implied: bool | None = None
    if isinstance(mc, dict) and "quick_gelu" in mc:
        implied = bool(mc["quick_gelu"])
    elif cfg.model.architecture.endswith("-quickgelu"):
        implied = True
    if not cfg.model.activation:
        return implied
    stated = cfg.model.activation == "quick_gelu"
    if implied is not None and implied != stated:
        raise ConfigError(f"model.activation='{cfg.model.activation}' contradicts the tower config "
                          f"(quick_gelu={implied}).", hint="State the activation in one place only.")
    return stated


def pretrained_source(cfg: TrainConfig) -> PretrainedSource:
    """The run's starting weights: refused when missing (a random tower is only ever explicit)."""
    return resolve_pretrained(cfg.model.pretrained, cfg.model.architecture, cfg.model.pretrained_tag)


def encoder_config(cfg: TrainConfig, arcface_sha256: str, extra: dict[str, Any],
                   pretrained: PretrainedSource | None = None) -> EncoderConfig:
    """The self-describing config the run's checkpoints (and the app) will carry."""
    model_cfg = resolve_model_cfg(cfg.model.architecture, cfg.model.model_cfg)
    if pretrained is not None:
        model_cfg = apply_pretrained_activation(model_cfg, pretrained, _explicit_activation(cfg))
    probe = EncoderConfig(architecture=architecture_label(cfg), model_cfg=model_cfg)
    pre = PreprocessConfig(input_size=probe.vision_image_size(), margin=cfg.model.margin,
                           ink_threshold=cfg.model.ink_threshold)
    return EncoderConfig(architecture=probe.architecture, model_cfg=model_cfg, head_hidden=cfg.model.head_hidden,
                         preprocess=pre, arcface_sha256=arcface_sha256, weights=cfg.run.weights,
                         training={"config": json.loads(json.dumps(cfg.to_dict(), default=str)), **extra},
                         pretrained=pretrained.record() if pretrained is not None else {})


def dataset_digest(ids: list[str], protos: np.ndarray) -> str:
    """A digest of the identities and their prototypes: a changed dataset changes it (resume check)."""
    h = hashlib.sha256()
    for i in ids:
        h.update(i.encode() + b"\0")
    h.update(np.ascontiguousarray(protos, dtype=np.float32).tobytes())
    return h.hexdigest()


def _usable(cfg: TrainConfig, pairing: Pairing, protos: Prototypes, pre: PreprocessConfig,
            reporter: RunReporter) -> tuple[list[Pair], dict[str, np.ndarray], dict[str, str]]:
    """Pairs whose photo and sketch are both usable; the others listed, the run refused above the limit."""
    sketches, bad_sketch = load_sketches([p for p in pairing.pairs if p.id not in protos.skipped], pre)
    skipped = {**protos.skipped, **{i: "unreadable sketch" for i in bad_sketch}}
    skipped = {i: ("unreadable photo" if r == UNREADABLE else "no face in photo" if r == NO_FACE else r)
               for i, r in skipped.items()}
    n = len(pairing.pairs)
    share = len(skipped) / max(1, n)
    if skipped:
        reporter.emit("skipped", count=len(skipped), share=round(share, 4),
                      pairs=[{"id": i, "reason": r} for i, r in sorted(skipped.items())[:200]])
        reporter.emit("warning", message=f"{len(skipped)} of {n} pairs skipped (unreadable or no face); "
                                         "'python -m trainer check' lists them.")
    if share > cfg.data.max_skipped_fraction:
        raise DatasetUnusable(f"{len(skipped)} of {n} pairs ({share:.0%}) are unusable (unreadable image or no face), "
                        f"more than data.max_skipped_fraction={cfg.data.max_skipped_fraction:.0%}.",
                        hint="Run 'python -m trainer check DATASET_ROOT' to list them and fix the dataset.")
    return [p for p in pairing.pairs if p.id not in skipped], sketches, skipped


def build_setup(cfg: TrainConfig, dist: DistInfo, reporter: RunReporter) -> Setup:
    """Pair, split, compute prototypes, build the model/EMA/optimiser/scheduler and the data pipeline."""
    if not cfg.data.root:
        raise ConfigError("No dataset: set data.root (a folder with real/ and sketch/).")
    torch.manual_seed(cfg.run.seed)  # the same initial weights on every rank and every resume
    pairing = pair_dataset(cfg.data.root)
    reporter.emit("data", **pairing.summary())
    pretrained = pretrained_source(cfg)  # before hours of prototypes: missing weights stop the run now
    if pretrained.kind == NO_PRETRAINED:
        reporter.emit("warning", message="model.pretrained='none': the image tower starts from random weights; "
                                         "expect much lower accuracy than from pretrained CLIP weights.")
    probe = encoder_config(cfg, "0" * 64, {}, pretrained)
    protos = _prototypes(cfg, pairing.pairs, dist, reporter)
    pairs, sketches, skipped = _usable(cfg, pairing, protos, probe.preprocess, reporter)
    train_ids, val_ids, test_ids = split_identities([p.id for p in pairs], cfg.data.val_fraction,
                                                    cfg.data.test_fraction, cfg.data.split_seed,
                                                    cfg.data.min_val_ids, cfg.data.min_test_ids)
    reporter.emit("split", train_ids=len(train_ids), val_ids=len(val_ids), test_ids=len(test_ids))
    by_id = {p.id: p for p in pairs}
    all_ids = [p.id for p in pairs]
    all_protos = protos.take(all_ids)
    digest = dataset_digest(all_ids, all_protos)
    synth = _synthetic(cfg, [by_id[i] for i in train_ids], protos, dist, reporter)
    syn_pairs: list[SyntheticPair] = []
    syn_sketches: dict[str, np.ndarray] = {}
    synth_summary: dict[str, Any] = {}
    if synth is not None:
        syn_sketches, syn_bad = load_sketches([Pair(p.id, p.real, p.sketch) for p in synth.pairs], probe.preprocess)
        syn_pairs = [p for p in synth.pairs if p.id in syn_sketches]
        synth_summary = {**synth.summary(cfg.synthetic), "synthetic_pairs": len(syn_pairs),
                         "unusable_sketches": len(syn_bad), "unusable_examples": dict(list(syn_bad.items())[:20])}
        reporter.emit("synthetic", **synth_summary)
        h = hashlib.sha256(digest.encode())
        for p in syn_pairs:  # another set of synthetic pairs is another dataset (exact resume)
            h.update(f"{p.id}:{p.source_id}:{p.sketch_sha256}\0".encode())
        digest = h.hexdigest()
    enc_cfg = encoder_config(cfg, protos.arcface_sha256, {"dataset": str(cfg.data.root), "dataset_sha256": digest,
                                                          "train_ids": len(train_ids), "val_ids": len(val_ids),
                                                          "test_ids": len(test_ids),
                                                          "skipped_pairs": len(skipped),
                                                          "synthetic_pairs": len(syn_pairs),
                                                          "fallback_centre_crop": len(protos.fallback_ids)},
                             pretrained)
    model = build_encoder(enc_cfg)
    load_pretrained_visual(model, pretrained)
    reporter.emit("pretrained", **pretrained.record())
    model.to(dist.device)
    optimizer = build_optimizer(model, cfg.optim)
    ema = EMATeacher(model)
    pre = enc_cfg.preprocess
    train_index = {i: k for k, i in enumerate(train_ids)}
    dataset = SketchViews([by_id[i].sketch for i in train_ids] + [p.sketch for p in syn_pairs], pre,
                          cfg.augment_weak, cfg.augment_strong, seed=cfg.run.seed, cache=cfg.data.cache_images,
                          prepared=[sketches[i] for i in train_ids] + [syn_sketches[p.id] for p in syn_pairs],
                          hflip_p=cfg.data.hflip_p,
                          labels=list(range(len(train_ids))) + [train_index[p.source_id] for p in syn_pairs])
    if len(dataset) < cfg.optim.batch_size * dist.world:
        raise ConfigError(f"{len(dataset)} training identities are fewer than one batch "
                          f"({cfg.optim.batch_size} x {dist.world} processes); lower optim.batch_size.")
    sampler = EpochSampler(len(dataset), dist.world, dist.rank, cfg.run.seed, cfg.optim.batch_size)
    plan = plan_steps(cfg, len(dataset), dist.world, classes=len(train_ids))
    for note in plan_warnings(plan, cfg):
        reporter.emit("warning", message=note)
    scheduler = WarmupCosine(optimizer, cfg.optim, plan.total_steps, warmup=plan.warmup)
    amp = amp_dtype(cfg.optim.amp, dist.device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp is torch.float16)
    def inputs(ids: list[str]) -> torch.Tensor:
        return torch.stack([normalize_tensor(gray_tensor(sketches[i]), pre) for i in ids])

    val_inputs = inputs(val_ids)
    test_inputs = inputs(test_ids) if test_ids else None
    probe_features: dict[str, np.ndarray] = {}
    if dist.is_main and test_ids and pretrained.kind != NO_PRETRAINED:
        # Now, while the tower is still the pretrained one (training moves it): one unaugmented pass.
        for name, ids in (("train", train_ids), ("val", val_ids), ("test", test_ids)):
            probe_features[name] = tower_features(model, ids, lambda i: normalize_tensor(gray_tensor(sketches[i]), pre),
                                                  dist.device, amp, cfg.eval.batch_size)
    reporter.emit("start", device=str(dist.device), world_size=dist.world,
                  amp=str(amp).replace("torch.", "") if amp else "off", steps_per_epoch=plan.steps_per_epoch,
                  total_steps=plan.total_steps, schedule=plan.to_dict(),
                  params_trainable=sum(p.numel() for p in model.parameters() if p.requires_grad),
                  params_total=sum(p.numel() for p in model.parameters()), architecture=enc_cfg.architecture)
    return Setup(train_ids=train_ids, val_ids=val_ids, all_ids=all_ids,
                 protos=torch.from_numpy(protos.take(train_ids)).to(dist.device),
                 all_protos=all_protos, val_inputs=val_inputs, dataset=dataset, sampler=sampler,
                 model=model, ema=ema, optimizer=optimizer, scheduler=scheduler, scaler=scaler, amp=amp,
                 steps_per_epoch=plan.steps_per_epoch, total_steps=plan.total_steps, encoder_config=enc_cfg,
                 plan=plan, skipped=skipped, dataset_digest=digest, test_ids=test_ids, test_inputs=test_inputs,
                 pairs=by_id, pretrained=pretrained, probe_features=probe_features,
                 synthetic_ids=[p.id for p in syn_pairs], synthetic=synth_summary)
