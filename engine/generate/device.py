"""Where and how diffusion runs: device and dtype, memory options, and the CPU time estimate.

Why an estimate: SD 1.5 at 512x512 takes seconds on a GPU but many minutes on a laptop CPU. Rather
than let an examiner wait without knowing, the engine refuses on CPU with the expected time, unless
the user insists. The estimate counts the UNet's (and ControlNet's, VAE decoder's) floating-point
operations exactly on the ``meta`` device (no weights, no compute) and divides by a short measured
matrix-multiply rate of this CPU, scaled by the efficiency convolution-heavy networks reach.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from engine import runtime
from engine.generate import memory
from engine.generate.memory import MemoryPlan
from engine.generate.types import GenerationRefused, RuntimeOptions

log = logging.getLogger(__name__)

# Fraction of the probed fp32 matmul rate that SD 1.5 reaches on CPU (oneDNN convolutions, attention,
# memory traffic): 0.9-1.2 measured for one real-size UNet step when the probe saw the same load (see
# bench/README_reconstruct.md); 0.8 keeps the estimate on the slow side.
CPU_EFFICIENCY = 0.8


@dataclass(frozen=True)
class ResolvedRuntime:
    """The options as they apply on this machine: the actual device, dtype and memory plan."""

    device: str
    half: bool
    options: RuntimeOptions
    plan: MemoryPlan = field(default_factory=lambda: MemoryPlan("cpu"))

    @property
    def torch_dtype(self) -> Any:
        import torch

        return torch.float16 if self.half else torch.float32


def resolve(options: RuntimeOptions) -> ResolvedRuntime:
    """Pick device, precision and memory plan: fp16 only on CUDA (CPU fp16 kernels are slow or missing)."""
    device = runtime.resolve_device(options.device)
    plan = memory.choose(device, placement=options.placement, vae_tiling=options.tiling,
                         vram_budget_gb=options.vram_budget_gb)
    return ResolvedRuntime(device=device, half=device == "cuda" and options.half_precision, options=options,
                           plan=plan)


def dtype_kwargs(torch_dtype: Any) -> dict[str, Any]:
    """``from_pretrained`` dtype argument: diffusers >= 0.42 renamed ``torch_dtype`` to ``dtype``."""
    try:
        from diffusers.utils.deprecation_utils import _resolve_dtype  # noqa: F401 - only present with ``dtype``
    except ImportError:
        return {"torch_dtype": torch_dtype}
    return {"dtype": torch_dtype}


def transformers_dtype_kwargs(torch_dtype: Any) -> dict[str, Any]:
    """``from_pretrained`` dtype argument for transformers models (renamed to ``dtype`` in 4.56)."""

    from packaging.version import Version

    new = Version(metadata.version("transformers")) >= Version("4.56")
    return {"dtype": torch_dtype} if new else {"torch_dtype": torch_dtype}


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """Silence diffusers/transformers info-level chatter while loading (our own checks report problems)."""
    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog

    levels = dlog.get_verbosity(), tlog.get_verbosity()
    bars = dlog.is_progress_bar_enabled(), tlog.is_progress_bar_enabled()
    for lib in (dlog, tlog):
        lib.set_verbosity_error()
        lib.disable_progress_bar()
    try:
        yield
    finally:
        for lib, level, bar in zip((dlog, tlog), levels, bars, strict=True):
            lib.set_verbosity(level)
            if bar:
                lib.enable_progress_bar()


def place(pipe: Any, rt: ResolvedRuntime) -> None:
    """Move a pipeline onto its device or install the memory plan's offload hooks.

    Called again whenever a component was added (image encoder, ControlNet), so everything is placed.
    VAE tiling is switched per request (:func:`engine.generate.memory.set_tiling`), by image size.
    """
    memory.apply(pipe, rt.plan, rt.device)


def maybe_compile(unet: Any, rt: ResolvedRuntime) -> None:
    """``torch.compile`` the UNet in place (CUDA only; it recompiles when adapters change)."""
    if rt.plan.placement == "sequential_offload":  # layer-by-layer hooks and a compiled graph do not mix
        return
    if rt.options.compile_unet and rt.device == "cuda" and not getattr(unet, "_sketchface_compiled", False):
        unet.compile(fullgraph=False, dynamic=False)
        unet._sketchface_compiled = True


# --------------------------------------------------------------------------------------- estimates
@functools.lru_cache(maxsize=1)
def cpu_matmul_flops() -> float:
    """fp32 matmul rate of this CPU (FLOP/s) with the threads torch uses: best of three ~70 ms bursts.

    The best burst measures what the machine can do; a single burst on a busy machine varied tenfold.
    """
    import torch

    a, b = torch.randn(768, 768), torch.randn(768, 768)
    torch.mm(a, b)
    best = 0.0
    for _ in range(3):
        n, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < 0.07:
            torch.mm(a, b)
            n += 1
        best = max(best, 2 * 768**3 * n / elapsed)
    return best


@functools.lru_cache(maxsize=32)
def _flops(kind: str, config_json: str, width: int, height: int, batch: int) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    config = json.loads(config_json)
    lw, lh = width // 8, height // 8
    inputs: tuple[Any, ...]
    kwargs: dict[str, Any]
    with torch.device("meta"):
        if kind == "unet":
            from diffusers import UNet2DConditionModel

            net = UNet2DConditionModel.from_config(config)
            inputs = (torch.empty(batch, config.get("in_channels", 4), lh, lw), torch.tensor([10]))
            kwargs = {"encoder_hidden_states": torch.empty(batch, 77, config["cross_attention_dim"])}
            call = net
        elif kind == "controlnet":
            from diffusers import ControlNetModel

            net = ControlNetModel.from_config(config)
            inputs = (torch.empty(batch, config.get("in_channels", 4), lh, lw), torch.tensor([10]))
            kwargs = {"encoder_hidden_states": torch.empty(batch, 77, config["cross_attention_dim"]),
                      "controlnet_cond": torch.empty(batch, 3, height, width)}
            call = net
        else:
            from diffusers import AutoencoderKL

            net = AutoencoderKL.from_config(config)
            inputs = (torch.empty(batch, config.get("latent_channels", 4), lh, lw),)
            kwargs = {}
            call = net.decode
        with FlopCounterMode(display=False) as counter:
            call(*inputs, **kwargs)
    return float(counter.get_total_flops())


def module_flops(kind: str, config_path: Path, width: int, height: int, batch: int = 1) -> float:
    """FLOPs of one forward of a UNet / ControlNet ("unet", "controlnet") or a VAE decode ("vae")."""
    config = {k: v for k, v in json.loads(Path(config_path).read_text("utf-8")).items() if not k.startswith("_")}
    return _flops(kind, json.dumps(config, sort_keys=True), width, height, batch)


def estimate_cpu_seconds(step_flops: float, steps: int, images: int, decode_flops: float) -> float:
    """Seconds for ``images`` images of ``steps`` denoising steps each on this CPU."""
    rate = cpu_matmul_flops() * CPU_EFFICIENCY
    return images * (steps * step_flops + decode_flops) / rate


def describe_duration(seconds: float) -> str:
    if seconds < 90:
        return f"about {max(1, round(seconds))} s"
    if seconds < 5400:
        return f"about {round(seconds / 60)} min"
    return f"about {seconds / 3600:.1f} h"


def refuse_on_cpu(rt: ResolvedRuntime, estimate: float, what: str) -> None:
    """Raise :class:`GenerationRefused` on a CPU-only machine unless the user allowed it."""
    if rt.device != "cpu" or rt.options.allow_cpu:
        return
    raise GenerationRefused(
        f"This computer has no usable NVIDIA GPU: {what} would take {describe_duration(estimate)} on its CPU.",
        estimated_seconds=estimate,
        hint="Run it on a workstation with a CUDA GPU, reduce steps, size or candidates, "
             "or run anyway (Run on CPU / --allow-cpu).",
    )
