"""Distributed set-up (torchrun) and mixed-precision choice for the trainer."""

from __future__ import annotations

import contextlib
import datetime
import os
from dataclasses import dataclass

import torch

from engine import runtime


@dataclass(frozen=True)
class DistInfo:
    """This process's place in a (possibly single-process) run."""

    world: int
    rank: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def init_distributed(device_pref: str = "auto", timeout_min: float = 60.0) -> DistInfo:
    """Join the torchrun process group when WORLD_SIZE > 1 (NCCL on GPUs, Gloo on CPUs).

    The collective timeout is explicit (default 60 min): set-up steps such as embedding a shard of
    the photos can take longer than torch's default before every rank meets again.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = runtime.resolve_device(device_pref) == "cuda"
    device = torch.device(f"cuda:{local_rank}") if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="nccl" if use_cuda else "gloo",
                                             timeout=datetime.timedelta(minutes=timeout_min))
    return DistInfo(world, rank, local_rank, device)


def barrier(dist: DistInfo) -> None:
    if dist.distributed:
        torch.distributed.barrier()


def shutdown(dist: DistInfo) -> None:
    if dist.distributed and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype: bf16 where the GPU supports it, else fp16; none on CPU or when "off"."""
    if device.type != "cuda" or amp == "off":
        return None
    if amp == "bf16" or (amp == "auto" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return torch.float16


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager[object]:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
