"""``sketchface doctor [--json]``: the machine report of :mod:`engine.doctor`, for a user or support."""

from __future__ import annotations

import argparse
from typing import Any

from engine.cli.output import print_json
from engine.doctor import collect, render


def _doctor(args: argparse.Namespace) -> int:
    report = collect()
    if args.json:
        print_json(report)
    else:
        print(render(report))
    return 0


def register(subparsers: Any) -> None:
    """Add ``doctor`` to the ``sketchface`` command."""
    p = subparsers.add_parser(
        "doctor", help="show the machine as the app sees it (devices, VRAM, memory plan, models, folders)",
        description="JSON keys: python, libraries, environment (lock, lock_digest, matches_lock, "
                    "differences), torch_device, cuda_version, gpu, vram_free_gb, vram_total_gb, "
                    "onnx_providers (really loaded), onnx_device, memory_plan, safety_checker, models, folders.")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_doctor)
