"""``sketchface sketch ...``: install a trained encoder, export it to ONNX, embed a sketch, show what is installed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from engine import models
from engine.cli.output import plain_value, print_json
from engine.faces import load_image
from engine.faces.pipeline import load_pipeline
from engine.fsutil import sha256_file
from engine.progress import ProgressEvent
from engine.sketch.checkpoint import load_config
from engine.sketch.embedder import (
    MODEL_ID,
    ArcFaceBaselineEmbedder,
    installed_arcface_sha256,
    load_sketch_embedder,
)
from engine.sketch.install import export_installed_onnx, install_checkpoint


def _box(text: str) -> tuple[float, float, float, float]:
    try:
        vals = tuple(float(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("a box is x1,y1,x2,y2 in pixels") from None
    if len(vals) != 4:
        raise argparse.ArgumentTypeError("a box is x1,y1,x2,y2 in pixels")
    return vals  # type: ignore[return-value]


def _say(event: ProgressEvent) -> None:
    print(f"[{event.done}/{event.total}] {event.message}", file=sys.stderr, flush=True)


def _emit(doc: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(doc)
    else:
        for key, value in doc.items():
            print(f"{key}: {plain_value(value)}")


def cmd_install(args: argparse.Namespace) -> int:
    report = install_checkpoint(args.checkpoint, onnx=not args.no_onnx, tolerance=args.tolerance,
                                progress=None if args.json else _say)
    _emit(report.to_dict(), args.json)
    if not report.arcface_verified:
        print("warning: no ArcFace model is installed, so the encoder's ArcFace SHA-256 was not checked; "
              "it will be when a gallery is searched.", file=sys.stderr)
    return 0


def cmd_export_onnx(args: argparse.Namespace) -> int:
    _emit(export_installed_onnx(tolerance=args.tolerance, opset=args.opset), args.json)
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    image = load_image(args.image)
    embedder: Any
    if args.baseline:
        embedder = ArcFaceBaselineEmbedder(load_pipeline(args.device))
    else:
        embedder = load_sketch_embedder(device=args.device, backend=args.backend)
    vec = embedder.embed(image, args.box)
    if args.out:
        np.save(args.out, vec.astype(np.float32))
    doc = {"image": str(args.image), "image_sha256": sha256_file(args.image), "face_box": args.box,
           **embedder.describe(), "dim": int(vec.shape[0])}
    if args.json:
        doc["embedding"] = [round(float(v), 7) for v in vec]
    _emit(doc, args.json)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    if not models.installed(MODEL_ID):
        _emit({"installed": False, "note": "sketch search uses the ArcFace-on-sketch baseline"}, args.json)
        return 0
    cfg = load_config(models.model_dir(MODEL_ID))
    arc = installed_arcface_sha256()
    _emit({"installed": True, "path": str(models.model_dir(MODEL_ID)), "architecture": cfg.architecture,
           "input_size": cfg.preprocess.input_size, "arcface_sha256": cfg.arcface_sha256,
           "matches_installed_arcface": None if arc is None else arc == cfg.arcface_sha256,
           "onnx": (models.model_dir(MODEL_ID) / "model.onnx").is_file(), "metrics": cfg.metrics}, args.json)
    return 0


def register(subparsers: Any) -> None:
    """Add ``sketch install | export-onnx | embed | info`` to the ``sketchface`` parser."""
    p = subparsers.add_parser("sketch", help="the trained sketch encoder: install, export, embed")
    sub = p.add_subparsers(dest="sketch_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda a: (p.print_help(), 0)[1])

    ins = sub.add_parser("install", help="verify and install a trained encoder (export folder, run folder or best.pt)")
    ins.add_argument("checkpoint", type=Path)
    ins.add_argument("--no-onnx", action="store_true", help="do not export model.onnx")
    ins.add_argument("--tolerance", type=float, default=1e-4, help="max abs ONNX/PyTorch difference")
    ins.add_argument("--json", action="store_true")
    ins.set_defaults(func=cmd_install)

    exp = sub.add_parser("export-onnx", help="export the installed encoder to ONNX with a parity check")
    exp.add_argument("--opset", type=int, default=17)
    exp.add_argument("--tolerance", type=float, default=1e-4)
    exp.add_argument("--json", action="store_true")
    exp.set_defaults(func=cmd_export_onnx)

    emb = sub.add_parser("embed", help="embed one sketch image into ArcFace space")
    emb.add_argument("image", type=Path)
    emb.add_argument("--box", type=_box, default=None, help="face region x1,y1,x2,y2 (default: the ink's box)")
    emb.add_argument("--backend", choices=("auto", "onnx", "torch"), default="auto")
    emb.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto")
    emb.add_argument("--baseline", action="store_true", help="use ArcFace on the sketch even if an encoder is installed")
    emb.add_argument("--out", type=Path, help="also save the vector as .npy")
    emb.add_argument("--json", action="store_true")
    emb.set_defaults(func=cmd_embed)

    info = sub.add_parser("info", help="show the installed encoder")
    info.add_argument("--json", action="store_true")
    info.set_defaults(func=cmd_info)
