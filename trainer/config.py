"""Typed training configuration: dataclass defaults (seed 000's recipe) + a TOML/JSON file + ``--set`` overrides.

Why not a ``class Config`` to edit: agencies train on their own data from the desktop app, which
writes a config file and passes overrides; nobody edits source, and every run stores the exact
config it used (in its checkpoints and in ``out_dir/config.json``).
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import ConfigError
from engine.sketch.transforms import AugmentConfig, strong_augment, weak_augment

# The managed OpenCLIP checkpoint the recipe fine-tunes (engine.models manifest id).
PRETRAINED_MODEL_ID = "open_clip.vit_b_16_laion2b"
NO_PRETRAINED = "none"


@dataclass
class DataConfig:
    """Dataset: ``root/real`` and ``root/sketch`` paired by file stem.

    Attributes:
        root: DATASET_ROOT.
        val_fraction: share of identities held out for validation (split by a hash of id and seed):
            checkpoint and student/EMA selection use them.
        test_fraction: share of identities held out for the final test: never used for any choice,
            scored once at the end for the chosen checkpoint, beside a linear probe (0: no test split).
        split_seed: changes which identities are held out.
        min_val_ids: at least this many validation identities.
        num_workers: data-loader worker processes (0: load in the training process).
        cache_images: keep prepared (cropped, resized) sketches in memory.
        prototype_cache: ArcFace prototype cache file ("" = ``root/arcface_prototypes.npz``).
        no_face: a photo without a detectable face: "skip" its pair (listed), or "centre_crop" it.
        max_skipped_fraction: abort when more than this share of the pairs is unusable (unreadable
            photo or sketch, no face): above it the data, not a few bad files, is the problem.
        min_side: images whose shorter side is below this many pixels are reported as tiny.
        hflip_p: chance that each training view (weak and strong, independently) is mirrored
            left-right, as in the reference (0.5).
    """

    root: str = ""
    val_fraction: float = 0.1
    split_seed: int = 0
    min_val_ids: int = 2
    test_fraction: float = 0.1
    min_test_ids: int = 2
    num_workers: int = 2
    cache_images: bool = True
    prototype_cache: str = ""
    no_face: str = "skip"
    max_skipped_fraction: float = 0.2
    min_side: int = 64
    hflip_p: float = 0.5


# Recipe parts an ablation run can switch off (trainer.ablation.PARTS says how each is switched off).
ABLATION_PARTS = ("ema", "coral", "mining", "margin", "unfreeze", "flip", "consistency", "proto_reg")


@dataclass
class SyntheticConfig:
    """Synthetic identities for small datasets (seed 003, IDiff-Face): an optional extra data source.

    For each *training* identity the product's own IP-Adapter FaceID (the workstation's
    reconstruction, :class:`engine.generate.Reconstructor`) makes ``per_identity`` extra photos
    conditioned on the identity's ArcFace prototype, each with its own prompt (pose, light, age drawn
    per photo); a photo is kept only when the teacher ArcFace's cosine between it and the prototype
    reaches ``min_cosine``, and its sketch comes from the existing photo-to-sketch synthesis
    (:func:`trainer.sketches.sketch_image`). Kept pairs are extra samples of their source identity's
    class, marked synthetic in ``DATASET_ROOT/synthetic/manifest.json`` and in the run's report; they
    never enter validation or test (only training identities get any).

    Attributes:
        per_identity: K photos attempted per training identity (0: off).
        min_cosine: the bar. 0.5 is a guess, not measured on this product: IP-Adapter FaceID images
            usually sit well above unrelated faces (cosine ~0) for ArcFace; raise it to keep only
            close likenesses, and read the manifest's cosines to choose.
        poses, lights, ages: prompt parts; each photo draws one of each (seeded per identity and k).
        prompt: the template they fill.
        steps, guidance_scale, likeness_strength, size: generation settings (the workstation's defaults).
        sketch_method: "xdog" or "dodge" (as ``make-sketches``).
        photo_seed: fixes every photo's seed and prompt draw.
        models_dir: the generation models' folder ("" = the installed models).
        device: "auto", "cuda" or "cpu"; allow_cpu: generate even on a CPU (minutes per photo).
        safety_checker: screen every photo with the Stable Diffusion safety checker (flagged photos come
            back blank, have no face and are rejected).
    """

    per_identity: int = 0
    min_cosine: float = 0.5
    poses: list[str] = field(default_factory=lambda: ["facing the camera", "head turned slightly left",
                                                      "head turned slightly right", "chin slightly raised",
                                                      "chin slightly lowered"])
    lights: list[str] = field(default_factory=lambda: ["soft studio light", "harsh side light",
                                                       "overcast daylight", "indoor fluorescent light",
                                                       "warm evening light"])
    ages: list[str] = field(default_factory=lambda: ["", "looking a few years younger",
                                                     "looking about ten years older"])
    prompt: str = "RAW photo, head and shoulders portrait of a person, {pose}, {light}, {age}, neutral background"
    steps: int = 30
    guidance_scale: float = 7.5
    likeness_strength: float = 1.1
    size: int = 512
    sketch_method: str = "xdog"
    photo_seed: int = 0
    models_dir: str = ""
    device: str = "auto"
    allow_cpu: bool = False
    safety_checker: bool = True


@dataclass
class TeacherConfig:
    """The frozen ArcFace teacher that turns photos into class prototypes.

    Attributes:
        arcface_onnx / detector_onnx: model files ("" = the installed buffalo_l models).
        det_size, det_thresh: detector input size and score threshold.
        device: "auto", "cuda" or "cpu" for the teacher's onnxruntime sessions.
    """

    arcface_onnx: str = ""
    detector_onnx: str = ""
    det_size: int = 640
    det_thresh: float = 0.5
    device: str = "auto"


@dataclass
class ModelConfig:
    """The student: an open_clip image tower + projection head.

    Attributes:
        architecture: open_clip name (default ViT-B-16).
        model_cfg: custom open_clip config (dict or JSON path) overriding the name's.
        pretrained: CLIP weights for the tower: a managed model id (default: the installed OpenCLIP
            ViT-B-16 LAION-2B checkpoint), a local open_clip checkpoint file, an open_clip tag, or
            "none" for a randomly initialised tower (a warning is recorded; never the default, because
            with the frozen phase most of a random tower would stay random for the whole run).
        pretrained_tag: the open_clip pretrained tag a local file was trained as (e.g. "openai"): it
            decides the activation (QuickGELU or GELU); managed models and tags know their own.
        activation: "quick_gelu" or "gelu" to state the tower's activation; "" lets the weights' tag
            decide. A weights file with neither a tag nor a stated activation is refused: the
            activation would be a guess, and a wrong one loads silently.
        head_hidden: hidden width of the head (0: linear).
        margin, ink_threshold: face-region crop parameters of the shared preprocessing.
    """

    architecture: str = "ViT-B-16"
    model_cfg: Any = None
    pretrained: str = PRETRAINED_MODEL_ID
    pretrained_tag: str = ""
    activation: str = ""
    head_hidden: int = 1024
    margin: float = 0.08
    ink_threshold: int = 200


@dataclass
class OptimConfig:
    """Optimisation, schedules and progressive unfreezing.

    Schedules are set in epochs and turned into optimiser steps from the dataset size, batch and
    accumulation (:func:`trainer.plan.plan_steps`; ``show-config`` and ``check`` print them): sketch
    datasets hold 500-5,000 pairs, where fixed step counts made for large datasets never happen.
    A ``*_steps`` value above 0 (for ``unfreeze_after_steps``: any value) overrides its epoch-based
    counterpart.

    Attributes:
        warmup_epochs: LR warm-up (the reference: ~2 epochs), clamped to
            [warmup_min_steps, warmup_max_steps] so tiny sets still warm up and huge ones do not crawl.
        unfreeze_after_epochs: the frozen phase (the reference unfreezes after ~2 epochs).
        backbone_warmup_epochs: the unfrozen blocks' own LR warm-up.
    """

    batch_size: int = 64
    epochs: int = 30
    accum_steps: int = 1
    lr_head: float = 1e-3
    lr_backbone: float = 2e-5
    wd: float = 0.05
    warmup_epochs: float = 2.0
    warmup_min_steps: int = 50
    warmup_max_steps: int = 400
    warmup_steps: int = 0
    cosine_final_lr_mul: float = 0.05
    grad_clip_norm: float = 1.0
    amp: str = "auto"
    unfreeze_after_epochs: float = 2.0
    unfreeze_after_steps: int | None = None
    unfreeze_last_blocks: int = 4
    backbone_warmup_epochs: float = 1.0
    backbone_warmup_steps: int = 0
    train_tail: bool = True


@dataclass
class LossConfig:
    """Loss weights and the schedules of margin, scale, EMA decay and consistency.

    Defaults follow the seed's reference implementation:
    - scale_s 64: with few classes per batch a low scale saturates the softmax early (the reference
      uses 64, as ArcFace itself does);
    - sampled_softmax_classes 8,192, capped at the number of training classes (all of them for a
      dataset of 500-5,000 identities: the softmax then sees every negative);
    - lambda_consistency 0.1: the EMA teacher is a stabiliser, not a target; at 1.0 the student is
      pulled towards a lagging copy of itself as hard as towards ArcFace;
    - lambda_coral 0.005: the covariance term sums 512 x 512 squared entries; at 1.0 it dominates
      the ArcFace loss in the first steps;
    - arcface_both_views: the ArcFace loss is averaged over the weak and the strong view, as in the
      reference (the strong view alone makes the weak view, the one most like real queries, unseen).

    Ramps: ``margin_ramp_epochs`` 0 means twice the LR warm-up; ``consistency_decay_epochs`` is the
    decay after unfreezing; ``ema_ramp_epochs`` the 0.996 -> 0.999 ramp.
    """

    scale_s: float = 64.0
    scale_s_start: float = 16.0
    margin_m: float = 0.3
    margin_ramp_epochs: float = 0.0
    margin_ramp_steps: int = 0
    sampled_softmax_classes: int = 8192
    semi_hard_fraction: float = 0.5
    arcface_both_views: bool = True
    lambda_consistency: float = 0.1
    consistency_final_mul: float = 0.1
    consistency_decay_epochs: float = 5.0
    consistency_decay_steps: int = 0
    lambda_reg: float = 1.0
    lambda_coral: float = 0.005
    coral_sample: int = 512
    ema_decay_start: float = 0.996
    ema_decay_end: float = 0.999
    ema_ramp_epochs: float = 10.0
    ema_warmup: bool = True


@dataclass
class EvalConfig:
    """Evaluation: Recall@1 (full and val-only gallery), CMC, TPR at fixed FPR.

    Attributes:
        model: which weights are scored: "both" (student and EMA teacher; ``best`` keeps whichever
            scores higher, and records which), "ema" or "student".
    """

    eval_every_epochs: int = 1
    eval_at_start: bool = False
    val_negatives_per_query: int = 1000
    cmc_max_rank: int = 50
    model: str = "both"
    batch_size: int = 128


@dataclass
class RunConfig:
    """Where and how the run executes.

    Attributes:
        out_dir: logs, TensorBoard events, last.pt/best.pt.
        resume: "auto" (continue from out_dir/last.pt when present), "never", or a state file.
        max_steps: stop after this many optimiser steps (0: train all epochs); schedules still span all epochs.
        save_every_steps: also save last.pt every N steps (0: at epoch ends only).
        threads: torch CPU threads (0: torch's default).
        weights: which weights ``export`` writes by default: "best" (those that scored higher at the
            best evaluation), "ema" or "student".
        force_resume: resume although the world size, batch or dataset changed (logged).
        dist_timeout_min: collective-operation timeout of a distributed run (prototypes of a large
            dataset take minutes on one rank; the default 10 minutes made slow ranks fail).
        ablate: recipe parts to switch off, one extra run each after the full recipe (see
            :data:`trainer.ablation.PARTS`: ema, coral, mining, margin, unfreeze, flip, consistency,
            proto_reg); their test figures are reported beside the full recipe's (``report.json``,
            ``export/config.json``). Why: at agency sizes some parts may not act; switching one off
            and scoring the same test split is the only way to know.
        ablated: set by the trainer in an ablation run's own config: the part that run has off.
    """

    out_dir: str = "runs/sketch_encoder"
    seed: int = 0
    device: str = "auto"
    log_every: int = 20
    save_best: bool = True
    resume: str = "auto"
    max_steps: int = 0
    save_every_steps: int = 0
    tensorboard: bool = True
    threads: int = 0
    weights: str = "best"
    force_resume: bool = False
    dist_timeout_min: float = 60.0
    ablate: list[str] = field(default_factory=list)
    ablated: str = ""


@dataclass
class TrainConfig:
    """The whole training configuration (sections as TOML tables)."""

    data: DataConfig = field(default_factory=DataConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    run: RunConfig = field(default_factory=RunConfig)
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    augment_weak: AugmentConfig = field(default_factory=weak_augment)
    augment_strong: AugmentConfig = field(default_factory=strong_augment)

    def validate(self) -> None:
        o, lo = self.optim, self.loss
        if o.batch_size < 2 or o.accum_steps < 1 or o.epochs < 1:
            raise ConfigError("optim.batch_size must be >= 2, accum_steps and epochs >= 1.")
        if o.amp not in ("auto", "bf16", "fp16", "off"):
            raise ConfigError(f"optim.amp must be auto, bf16, fp16 or off (got {o.amp!r}).")
        if not 0.0 <= lo.semi_hard_fraction <= 1.0 or lo.sampled_softmax_classes < 2:
            raise ConfigError("loss.semi_hard_fraction must be in [0, 1] and sampled_softmax_classes >= 2.")
        if not 0.0 < self.data.val_fraction < 1.0 or not 0.0 <= self.data.test_fraction < 1.0 \
                or self.data.val_fraction + self.data.test_fraction >= 1.0:
            raise ConfigError("data.val_fraction must be between 0 and 1, data.test_fraction in [0, 1), and together "
                              "below 1.")
        if self.eval.model not in ("both", "ema", "student") or self.run.weights not in ("best", "ema", "student"):
            raise ConfigError("eval.model must be 'both', 'ema' or 'student'; run.weights 'best', 'ema' or 'student'.")
        if self.data.no_face not in ("skip", "centre_crop"):
            raise ConfigError(f"data.no_face must be 'skip' or 'centre_crop' (got {self.data.no_face!r}).")
        if not 0.0 <= self.data.hflip_p <= 1.0:
            raise ConfigError("data.hflip_p must be between 0 and 1.")
        if not 0.0 <= self.data.max_skipped_fraction <= 1.0:
            raise ConfigError("data.max_skipped_fraction must be between 0 and 1.")
        if self.model.activation not in ("", "gelu", "quick_gelu"):
            raise ConfigError(f"model.activation must be '', 'gelu' or 'quick_gelu' (got {self.model.activation!r}).")
        unknown = [p for p in self.run.ablate if p not in ABLATION_PARTS]
        if unknown or (self.run.ablated and self.run.ablated not in ABLATION_PARTS):
            raise ConfigError(f"Unknown recipe part to ablate: {', '.join(unknown) or self.run.ablated}.",
                              hint=f"Parts: {', '.join(ABLATION_PARTS)}.")
        if len(set(self.run.ablate)) != len(self.run.ablate):
            raise ConfigError("run.ablate names a part twice.")
        sy = self.synthetic
        if sy.per_identity < 0 or sy.steps < 1 or sy.size < 8 or not (sy.poses and sy.lights and sy.ages):
            raise ConfigError("synthetic.per_identity must be >= 0, steps >= 1, size >= 8, and poses, lights and "
                              "ages need at least one entry each (\"\" is an entry).")
        if sy.sketch_method not in ("xdog", "dodge"):
            raise ConfigError(f"synthetic.sketch_method must be 'xdog' or 'dodge' (got {sy.sketch_method!r}).")
        if not self.model.pretrained:
            raise ConfigError("model.pretrained is empty.",
                              hint=f"Use the managed '{PRETRAINED_MODEL_ID}' (the default), a checkpoint file, "
                                   f"an open_clip tag, or '{NO_PRETRAINED}' to train from random weights.")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check/convert one value against a field's annotation (TOML gives ints where floats are meant)."""
    origin = typing.get_origin(tp)
    if tp is Any or tp is typing.Any:
        return value
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            try:
                return _coerce(value, arg, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: {value!r} has the wrong type.")
    if tp is type(None):
        if value is None:
            return None
        raise ConfigError(f"{key}: expected nothing, got {value!r}.")
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp is bool and isinstance(value, bool):
        return value
    if tp is str and isinstance(value, str):
        return value
    if origin is list and isinstance(value, list | tuple):
        (item,) = typing.get_args(tp) or (Any,)
        return [_coerce(v, item, f"{key}[{k}]") for k, v in enumerate(value)]
    raise ConfigError(f"{key}: expected {getattr(tp, '__name__', tp)}, got {value!r}.")


def _apply(obj: Any, doc: dict[str, Any], prefix: str = "") -> None:
    hints = typing.get_type_hints(type(obj))
    names = {f.name for f in dataclasses.fields(obj)}
    for key, value in doc.items():
        if key not in names:
            raise ConfigError(f"Unknown config key '{prefix}{key}'.",
                              hint=f"Known keys here: {', '.join(sorted(names))}.")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{prefix}{key} is a section; give a table.")
            _apply(current, value, f"{prefix}{key}.")
        else:
            setattr(obj, key, _coerce(value, hints[key], f"{prefix}{key}"))


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text  # a bare word: a string


def _resolve_key(cfg: TrainConfig, key: str) -> list[str]:
    """``optim.lr_head`` as is; a bare ``lr_head`` when exactly one section has that field."""
    if "." in key:
        return key.split(".")
    owners = [f.name for f in dataclasses.fields(cfg)
              if key in {g.name for g in dataclasses.fields(getattr(cfg, f.name))}]
    if len(owners) != 1:
        where = f"it is in {', '.join(owners)}" if owners else "no section has it"
        raise ConfigError(f"Config key {key!r} is ambiguous or unknown ({where}); write section.key.")
    return [owners[0], key]


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """Defaults, then the TOML/JSON file at ``path``, then ``key=value`` overrides (TOML values)."""
    cfg = TrainConfig()
    if path:
        p = Path(path)
        try:
            text = p.read_text("utf-8")
            doc = json.loads(text) if p.suffix == ".json" else tomllib.loads(text)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"Cannot read the training config {p}: {exc}") from exc
        _apply(cfg, doc)
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"Override {item!r} is not key=value.")
        parts = _resolve_key(cfg, key.strip())
        nested: dict[str, Any] = {parts[-1]: _parse_value(raw.strip())}
        for part in reversed(parts[:-1]):
            nested = {part: nested}
        _apply(cfg, nested)
    cfg.validate()
    return cfg


def to_toml(cfg: TrainConfig) -> str:
    """The config as TOML (``None`` values are left out: TOML has no null)."""
    import tomli_w

    def strip(d: Any) -> Any:
        if isinstance(d, dict):
            return {k: strip(v) for k, v in d.items() if v is not None}
        if isinstance(d, tuple):
            return list(d)
        return d

    return tomli_w.dumps(strip(cfg.to_dict()))
