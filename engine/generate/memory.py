"""The GPU memory plan: how much of the diffusion stack stays on the GPU, from the VRAM that is free.

Why: agency workstations often have 8 GB cards. SD 1.5 + FaceID in fp16 needs ~4 GB resident, the
ViT-H image encoder ~1.3 GB, the ControlNet ~0.7 GB, the InstructPix2Pix editor ~2.1 GB; kept resident
together they exhaust such a card. The engine therefore reads the free VRAM and picks a placement:

- ``resident``: everything on the GPU (>= 16 GB free), fastest;
- ``model_offload``: each model moves to the GPU only while it runs (8-16 GB), ~20 % slower;
- ``sequential_offload``: layer by layer (< 8 GB), slow but fits in ~2 GB;

decodes in VAE tiles above ~768 px, keeps one generation pipeline on the GPU at a time (see
:class:`Residency`) and runs the attribute model in fp16 on the GPU only when everything fits.
The user can override every choice (Settings > Generation); the plan says why it chose what it did.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from engine import runtime
from engine.errors import InvalidRequest
from engine.generate.types import RuntimeOptions

log = logging.getLogger(__name__)

PLACEMENTS = ("auto", "resident", "model_offload", "sequential_offload")
RESIDENT_MIN_GB = 16.0
OFFLOAD_MIN_GB = 8.0
TILE_ABOVE_PX = 768
SETTING = "Settings > Generation > GPU memory"

PLACEMENT_LABELS = {
    "resident": "Everything on the GPU (fastest)",
    "model_offload": "Model CPU offload (each model on the GPU only while it runs)",
    "sequential_offload": "Sequential CPU offload (layer by layer; slow, fits small GPUs)",
    "cpu": "CPU only (no usable GPU)",
}


@dataclass(frozen=True)
class MemoryPlan:
    """Where the diffusion models live and how large images are decoded.

    Attributes:
        placement: "resident", "model_offload", "sequential_offload" or "cpu".
        vae_tiling: "auto" (tiles above ``tile_above_px``), "on" or "off".
        tile_above_px: the long side above which "auto" decodes in tiles.
        attributes_device: where the attribute model runs ("cuda" in fp16, or "cpu").
        free_gb, total_gb: the VRAM read when the plan was made (None without a GPU).
        chosen_by: "auto" (from free VRAM) or "user" (a setting overrode it).
        reason: one line saying why.
    """

    placement: str
    vae_tiling: str = "auto"
    tile_above_px: int = TILE_ABOVE_PX
    attributes_device: str = "cpu"
    free_gb: float | None = None
    total_gb: float | None = None
    chosen_by: str = "auto"
    reason: str = ""

    def tiles(self, width: int, height: int) -> bool:
        """Whether to decode a ``width`` x ``height`` image in VAE tiles."""
        if self.vae_tiling in ("on", "off"):
            return self.vae_tiling == "on"
        return max(width, height) > self.tile_above_px

    @property
    def label(self) -> str:
        return PLACEMENT_LABELS.get(self.placement, self.placement)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (doctor, provenance)."""
        return asdict(self)


def read_vram() -> tuple[float, float] | None:
    """(free GB, total GB) of GPU 0 from ``torch.cuda.mem_get_info``; None without a usable GPU."""
    if not runtime.cuda_usable():
        return None
    import torch

    try:
        free, total = torch.cuda.mem_get_info()
    except RuntimeError as exc:  # a busy or failing driver: plan without the figure, and say so
        log.warning("free GPU memory could not be read: %s", exc)
        return None
    return free / 1024**3, total / 1024**3


def placement_for(free_gb: float) -> str:
    """The automatic placement for this much free VRAM (GB)."""
    if free_gb >= RESIDENT_MIN_GB:
        return "resident"
    if free_gb >= OFFLOAD_MIN_GB:
        return "model_offload"
    return "sequential_offload"


def choose(device: str, *, placement: str = "auto", vae_tiling: str = "auto",
           vram_budget_gb: float | None = None, vram: tuple[float, float] | None = None) -> MemoryPlan:
    """The plan for ``device`` ("cuda" or "cpu"), honouring the user's overrides.

    Args:
        device: the resolved device.
        placement: one of :data:`PLACEMENTS` ("auto" decides from free VRAM).
        vae_tiling: "auto", "on" or "off".
        vram_budget_gb: use at most this much VRAM (e.g. a shared GPU or a per-process cap).
        vram: (free, total) GB when already read (else read now).
    """
    if placement not in PLACEMENTS:
        raise InvalidRequest(f"Unknown GPU memory plan {placement!r}; choose one of {', '.join(PLACEMENTS)}.")
    if vae_tiling not in ("auto", "on", "off"):
        raise InvalidRequest(f"VAE tiling must be auto, on or off, not {vae_tiling!r}.")
    if device != "cuda":
        return MemoryPlan("cpu", vae_tiling, reason="No usable NVIDIA GPU: everything runs on the CPU.")
    vram = vram if vram is not None else read_vram()
    free, total = vram if vram is not None else (None, None)
    usable = free
    if vram_budget_gb is not None:
        usable = vram_budget_gb if usable is None else min(usable, vram_budget_gb)
    if placement != "auto":
        chosen, by = placement, "user"
        reason = f"Chosen in {SETTING}."
    elif usable is None:
        chosen, by, reason = "model_offload", "auto", "Free GPU memory could not be read: model CPU offload."
    else:
        chosen, by = placement_for(usable), "auto"
        cap = f" (capped at {vram_budget_gb:g} GB)" if vram_budget_gb is not None and usable < (free or 0) else ""
        reason = f"{usable:.1f} GB of GPU memory free{cap}: {PLACEMENT_LABELS[chosen].split(' (')[0].lower()}."
    attributes = "cuda" if chosen == "resident" else "cpu"
    return MemoryPlan(chosen, vae_tiling, attributes_device=attributes,
                      free_gb=None if free is None else round(free, 2),
                      total_gb=None if total is None else round(total, 2), chosen_by=by, reason=reason)


def apply(pipe: Any, plan: MemoryPlan, device: str) -> None:
    """Place a diffusers pipeline according to the plan (offload hooks or ``.to(device)``)."""
    if plan.placement == "model_offload":
        pipe.enable_model_cpu_offload()
    elif plan.placement == "sequential_offload":
        pipe.enable_sequential_cpu_offload()
    else:
        pipe.to(device)


def set_tiling(pipe: Any, plan: MemoryPlan, width: int, height: int) -> bool:
    """Switch the pipeline's VAE tiling for this image size; returns whether it tiles."""
    vae = getattr(pipe, "vae", None)
    on = plan.tiles(width, height)
    if vae is not None:
        if on:
            vae.enable_tiling()
        else:
            vae.disable_tiling()
    return on


def free_cuda_cache() -> None:
    """Return cached GPU blocks to the driver (after models were dropped)."""

    gc.collect()
    if runtime.cuda_usable():
        import torch

        torch.cuda.empty_cache()


def runtime_options(settings: Any, *, allow_cpu: bool = False, **overrides: Any) -> Any:
    """The :class:`RuntimeOptions` the user's settings ask for (Settings > Generation), plus overrides.

    One place for the mapping, so the desktop, the CLI and ``sketchface doctor`` run the same options.
    """

    budget = float(getattr(settings, "gen_vram_budget_gb", 0.0) or 0.0)
    values: dict[str, Any] = {
        "device": getattr(settings, "device", "auto"),
        "half_precision": bool(getattr(settings, "gen_half_precision", True)),
        "compile_unet": bool(getattr(settings, "gen_compile_unet", False)),
        "memory_plan": getattr(settings, "gen_memory_plan", "auto"),
        "vae_tiling": getattr(settings, "gen_vae_tiling", "auto"),
        "vram_budget_gb": budget if budget > 0 else None,
        "safety_checker": bool(getattr(settings, "gen_safety_checker", True)),
        "batch_candidates": int(getattr(settings, "gen_batch_candidates", 1)),
        "allow_cpu": allow_cpu,
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    return RuntimeOptions(**values)


class Residency:
    """Which generation component holds the GPU; claiming it releases the previous holder.

    Why: the reconstructor (SD + adapters, ~4-6 GB) and the editor (InstructPix2Pix, ~2.1 GB fp16) must
    never both sit on an 8 GB card. Each claims the GPU before running; the previous holder's release
    callback drops its pipelines. On the CPU nothing is released (RAM is not the scarce resource there).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holder: Any = None
        self._release: Callable[[], None] | None = None

    def claim(self, owner: Any, release: Callable[[], None], device: str) -> None:
        """Make ``owner`` the GPU holder, calling the previous holder's ``release`` first."""
        if device != "cuda":
            return
        with self._lock:
            if self._holder is owner:
                self._release = release
                return
            previous, self._release = self._release, release
            self._holder = owner
        if previous is not None:
            log.info("releasing the GPU held by another generation component")
            previous()
            free_cuda_cache()

    def holder(self) -> Any:
        """The component holding the GPU now (None when none)."""
        with self._lock:
            return self._holder

    def forget(self, owner: Any) -> None:
        """``owner`` released the GPU by itself (closed)."""
        with self._lock:
            if self._holder is owner:
                self._holder, self._release = None, None


RESIDENCY = Residency()
