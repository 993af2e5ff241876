"""``python -m trainer`` / ``sketchface-train``: train, export, make-sketches, show-config.

Every sub-command writes JSON lines to stdout (one event per line, the last one ``done`` or ``error``)
so the desktop app can run it as a subprocess; messages for people go to stderr.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.errors import Cancelled, EngineError


def _emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}, default=str) + "\n")
    sys.stdout.flush()


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="base config file (TOML or JSON)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set optim.batch_size=32 (repeatable; TOML values)")


def cmd_train(args: argparse.Namespace) -> int:
    from trainer.config import load_config
    from trainer.loop import Trainer

    cfg = load_config(args.config, args.overrides)
    out = Path(cfg.run.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2, default=str), "utf-8")
    trainer = Trainer(cfg)

    def stop(signum: int, _frame: object) -> None:
        # First signal: finish the step, save last.pt, exit; a second one stops at once.
        trainer.request_stop()
        signal.signal(signum, signal.SIG_DFL)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    summary = trainer.fit()
    return 130 if summary.get("cancelled") else 0


def cmd_show_config(args: argparse.Namespace) -> int:
    from trainer.config import load_config, to_toml

    sys.stdout.write(to_toml(load_config(args.config, args.overrides)))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from engine.sketch.checkpoint import export_train_state
    from trainer.config import load_config

    src = args.source
    if src is None:
        run = Path(load_config(args.config, args.overrides).run.out_dir)
        src = run / "best.pt" if (run / "best.pt").is_file() else run / "last.pt"
    elif src.is_dir():
        src = src / "best.pt" if (src / "best.pt").is_file() else src / "last.pt"
    out = export_train_state(src, args.out_dir, weights=args.weights)
    _emit("done", exported=str(out), source=str(src), weights=args.weights)
    return 0


def cmd_make_sketches(args: argparse.Namespace) -> int:
    from trainer.sketches import make_sketch_dataset

    result = make_sketch_dataset(args.photos, args.out, method=args.method, copy_photos=not args.no_copy,
                                 max_side=args.max_side, overwrite=args.overwrite,
                                 on_event=lambda ev, doc: _emit(ev, **doc))
    _emit("done", **result)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m trainer", description="Train the SketchFace sketch encoder.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    tr = sub.add_parser("train", help="train (resumes from out_dir/last.pt by default)")
    _config_args(tr)
    tr.set_defaults(func=cmd_train)
    sc = sub.add_parser("show-config", help="print the effective config as TOML")
    _config_args(sc)
    sc.set_defaults(func=cmd_show_config)
    ex = sub.add_parser("export", help="write an engine checkpoint (model.safetensors + config.json)")
    ex.add_argument("out_dir", type=Path)
    ex.add_argument("--from", dest="source", type=Path, help="best.pt/last.pt or a run folder (default: run.out_dir)")
    ex.add_argument("--weights", choices=("ema", "student"), default="ema")
    _config_args(ex)
    ex.set_defaults(func=cmd_export)
    ms = sub.add_parser("make-sketches", help="pencil-style sketches of photos: OUT/sketch (+ OUT/real)")
    ms.add_argument("photos", type=Path)
    ms.add_argument("out", type=Path)
    ms.add_argument("--method", choices=("xdog", "dodge"), default="xdog")
    ms.add_argument("--max-side", type=int, default=1024)
    ms.add_argument("--no-copy", action="store_true", help="do not copy the photos to OUT/real")
    ms.add_argument("--overwrite", action="store_true")
    ms.set_defaults(func=cmd_make_sketches)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except Cancelled:
        _emit("cancelled")
        return 130
    except KeyboardInterrupt:
        _emit("cancelled", message="interrupted")
        return 130
    except EngineError as exc:
        _emit("error", message=str(exc), type=type(exc).__name__)
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
