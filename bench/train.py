#!/usr/bin/env python
"""Training-throughput benchmark: the trainer's real optimiser step on the realistic ViT-B-16 encoder.

    python bench/train.py --json                      # CPU: a handful of small steps; CUDA: AMP, batch 64
    python bench/train.py --json --batch 128 --steps 30 --amp bf16

It runs ``trainer.loop.Trainer._optimizer_step`` (student forward/backward on the strong view, EMA
teacher forward on the weak view, sampled ArcFace softmax with semi-hard negatives, consistency,
prototype regression, CORAL, clipping, AdamW, EMA update) on ViT-B-16 with random weights (same FLOPs
as the pretrained one; nothing is downloaded), after unfreezing the last ``--unfreeze`` blocks as the
recipe does. Inputs are random tensors of the model's input size: the data pipeline is measured
separately (``augment_images_per_s_per_worker``: one data-loader worker producing weak+strong views of
224-px sketches), so you can see how many workers keep the GPU fed.

``images_per_s`` counts training samples (one sketch = one strong + one weak view). The baseline in
the same run is the frozen encoder's forward pass alone (inference mode): ``ratio`` = training
images/s over forward-only images/s (a full training step costs several forwards, so expect ~0.2-0.35).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def log(msg: str) -> None:
    print(f"[train-bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def make_trainer(args: argparse.Namespace, out: Path) -> Any:
    """A Trainer whose set-up is the realistic model on synthetic tensors (no dataset, no teacher)."""
    import numpy as np
    import torch

    from engine.sketch.config import EncoderConfig, PreprocessConfig
    from engine.sketch.model import build_encoder, resolve_model_cfg
    from trainer.config import load_config
    from trainer.loop import Trainer
    from trainer.optim import EMATeacher, build_optimizer
    from trainer.runtime import amp_dtype
    from trainer.schedules import WarmupCosine
    from trainer.setup import Setup

    cfg = load_config(None, [f"model.architecture='{args.arch}'", f"optim.batch_size={args.batch}",
                             f"optim.amp='{args.amp}'", f"optim.unfreeze_last_blocks={args.unfreeze}",
                             f"run.out_dir='{out}'", "run.tensorboard=false", f"run.device='{args.device}'",
                             f"loss.sampled_softmax_classes={args.classes}"])
    trainer = Trainer(cfg, stream=io.StringIO())
    dev = trainer.dist.device
    model_cfg = resolve_model_cfg(args.arch)
    size = int(model_cfg["vision_cfg"].get("image_size", 224))
    enc_cfg = EncoderConfig(architecture=args.arch, model_cfg=model_cfg, preprocess=PreprocessConfig(input_size=size))
    torch.manual_seed(0)
    model = build_encoder(enc_cfg).to(dev)
    optimizer = build_optimizer(model, cfg.optim)
    scheduler = WarmupCosine(optimizer, cfg.optim, total_steps=10_000)
    protos = torch.nn.functional.normalize(torch.randn(args.identities, 512), dim=1)
    amp = amp_dtype(cfg.optim.amp, dev)
    trainer.s = Setup(train_ids=[str(i) for i in range(args.identities)], val_ids=[], all_ids=[],
                      protos=protos.to(dev), all_protos=np.zeros((0, 512), np.float32),
                      val_inputs=torch.zeros(0, 3, size, size), dataset=None, sampler=None,  # type: ignore[arg-type]
                      model=model, ema=EMATeacher(model), optimizer=optimizer, scheduler=scheduler,
                      scaler=torch.amp.GradScaler("cuda", enabled=amp is torch.float16), amp=amp,
                      steps_per_epoch=100, total_steps=10_000, encoder_config=enc_cfg)
    trainer.step = cfg.optim.warmup_steps  # past warmup: full margin, the unfrozen phase of the recipe
    trainer._unfreeze(trainer.step, announce=False)
    return trainer, size


def sync(dev: Any) -> None:
    import torch

    if dev.type == "cuda":
        torch.cuda.synchronize()


def time_train(trainer: Any, size: int, args: argparse.Namespace) -> list[float]:
    import torch

    dev = trainer.dist.device
    g = torch.Generator().manual_seed(1)
    batch = (torch.randn(args.batch, 3, size, size, generator=g), torch.randn(args.batch, 3, size, size, generator=g),
             torch.randint(0, args.identities, (args.batch,), generator=g))
    if dev.type == "cuda":
        batch = tuple(t.pin_memory() for t in batch)
    times = []
    for i in range(args.warmup + args.steps):
        sync(dev)
        t0 = time.perf_counter()
        trainer.s.scheduler.apply(trainer.step)
        trainer._optimizer_step([batch])
        trainer.step += 1
        sync(dev)
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
        log(f"train step {i + 1}/{args.warmup + args.steps}: {time.perf_counter() - t0:.2f} s")
    return times


def time_forward(trainer: Any, size: int, args: argparse.Namespace) -> list[float]:
    import torch

    from trainer.runtime import autocast

    dev = trainer.dist.device
    model = trainer.s.ema.model
    x = torch.randn(args.batch, 3, size, size).to(dev)
    times = []
    with torch.inference_mode():
        for i in range(args.warmup + args.steps):
            sync(dev)
            t0 = time.perf_counter()
            with autocast(dev, trainer.s.amp):
                model(x)
            sync(dev)
            if i >= args.warmup:
                times.append(time.perf_counter() - t0)
    return times


def time_augment(size: int, n: int) -> float:
    """Weak + strong views per second from one worker, on prepared sketches of the input size."""
    import numpy as np
    import torch

    from engine.sketch.config import PreprocessConfig
    from engine.sketch.transforms import (
        SketchAugment,
        gray_tensor,
        normalize_tensor,
        strong_augment,
        weak_augment,
    )

    pre = PreprocessConfig(input_size=size)
    rng = np.random.default_rng(0)
    gray = np.where(rng.random((size, size)) < 0.05, 0, 255).astype(np.uint8)
    weak, strong = SketchAugment(weak_augment()), SketchAugment(strong_augment())
    t0 = time.perf_counter()
    for i in range(n):
        g = torch.Generator().manual_seed(i)
        x = gray_tensor(gray)
        normalize_tensor(weak(x, g), pre)
        normalize_tensor(strong(x, g), pre)
    return n / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="ViT-B-16")
    p.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"))
    p.add_argument("--amp", default="auto", choices=("auto", "bf16", "fp16", "off"))
    p.add_argument("--batch", type=int, default=0, help="default: 64 on CUDA, 8 on CPU")
    p.add_argument("--steps", type=int, default=0, help="timed steps (default: 20 on CUDA, 3 on CPU)")
    p.add_argument("--warmup", type=int, default=-1, help="untimed steps first (default: 5 CUDA, 1 CPU)")
    p.add_argument("--unfreeze", type=int, default=4, help="last blocks trained (the recipe's unfreeze_last_blocks)")
    p.add_argument("--identities", type=int, default=10_000, help="classes (prototype matrix rows)")
    p.add_argument("--classes", type=int, default=1024, help="sampled_softmax_classes")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()

    import torch

    from engine import runtime

    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = runtime.resolve_device(args.device) == "cuda"
    args.device = "cuda" if cuda else "cpu"
    args.batch = args.batch or (64 if cuda else 8)
    args.steps = args.steps or (20 if cuda else 3)
    args.warmup = args.warmup if args.warmup >= 0 else (5 if cuda else 1)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        trainer, size = make_trainer(args, Path(tmp))
        log(f"{args.arch} on {trainer.dist.device}, amp={trainer.s.amp}, batch {args.batch}")
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        train_t = time_train(trainer, size, args)
        peak_gb = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
        fwd_t = time_forward(trainer, size, args)
        trainer.reporter.close()
    aug_ips = time_augment(size, 40)
    train_ips = args.batch / statistics.median(train_t)
    fwd_ips = args.batch / statistics.median(fwd_t)
    params = trainer.s.model
    result = {
        "benchmark": "train",
        "architecture": args.arch,
        "device": runtime.describe(args.device),
        "amp": str(trainer.s.amp).replace("torch.", "") if trainer.s.amp else "off",
        "batch": args.batch,
        "input_size": size,
        "unfrozen_blocks": args.unfreeze,
        "params_trainable": sum(q.numel() for q in params.parameters() if q.requires_grad),
        "params_total": sum(q.numel() for q in params.parameters()),
        "timed_steps": args.steps,
        "step_s_median": statistics.median(train_t),
        "images_per_s": train_ips,
        "baseline": "frozen encoder forward only (inference mode), same batch/device/amp",
        "baseline_images_per_s": fwd_ips,
        "ratio": train_ips / fwd_ips,
        "augment_images_per_s_per_worker": aug_ips,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
        "elapsed_s": time.perf_counter() - started,
        "peak_vram_gb": None if peak_gb is None else round(peak_gb, 2),
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "anchor": "ViT-B/16 training with AMP: ~391 img/s on an RTX 3090 (published; different recipe)",
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for k, v in result.items():
            print(f"{k}: {v}")


if __name__ == "__main__":
    main()
