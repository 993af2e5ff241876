"""``python -m trainer`` / ``sketchface-train``: train, check, export, make-sketches, make-synthetic, show-config.

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
    from trainer.ablation import AblationStudy
    from trainer.config import load_config
    from trainer.loop import Trainer

    cfg = load_config(args.config, args.overrides)
    if args.force:
        cfg.run.force_resume = True
    for part in args.ablate:
        if part not in cfg.run.ablate:
            cfg.run.ablate.append(part)
    cfg.validate()
    out = Path(cfg.run.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2, default=str), "utf-8")
    trainer: Trainer | AblationStudy = AblationStudy(cfg) if cfg.run.ablate else Trainer(cfg)

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
    from trainer.data import pair_dataset, split_identities
    from trainer.plan import plan_steps, plan_warnings

    cfg = load_config(args.config, args.overrides)
    sys.stdout.write(to_toml(cfg))
    n_train = args.train_ids
    if n_train is None and cfg.data.root:
        pairs = [p.id for p in pair_dataset(cfg.data.root).pairs]
        train, val, test = split_identities(pairs, cfg.data.val_fraction, cfg.data.test_fraction, cfg.data.split_seed,
                                            cfg.data.min_val_ids, cfg.data.min_test_ids)
        n_train = len(train)
        sys.stdout.write(f"\n# Identity split: {len(train)} train / {len(val)} val (checkpoint selection) / "
                         f"{len(test)} test (scored once, at the end)\n")
    if n_train is None:
        sys.stdout.write("\n# Schedule in steps: set data.root (or --train-ids N) to see it for a dataset.\n")
        return 0
    plan = plan_steps(cfg, n_train)
    sys.stdout.write(f"\n# Schedule in steps for {n_train} training identities (one process; before unusable pairs "
                     "are skipped):\n")
    for key, value in plan.to_dict().items():
        sys.stdout.write(f"#   {key} = {value}\n")
    for note in plan_warnings(plan, cfg):
        sys.stdout.write(f"# WARNING: {note}\n")
    if args.first_batch:
        _first_batch_report(cfg)
    return 0


def _first_batch_report(cfg: Any) -> None:
    """Measure each weighted loss term's share of the loss on one first batch (a scratch run, nothing kept)."""
    import copy
    import io
    import tempfile

    from trainer.loop import Trainer, negligible_terms

    scratch = copy.deepcopy(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        scratch.run.out_dir, scratch.run.resume, scratch.run.tensorboard = tmp, "never", False
        scratch.synthetic.per_identity = 0  # measuring never generates photos
        trainer = Trainer(scratch, stream=io.StringIO())
        stats = trainer.first_batch()
    lc = cfg.loss
    total = stats["loss"]
    sys.stdout.write(f"\n# First batch (measured): loss {total:.4f} = arcface {stats['arcface']:.4f}"
                     f" + {stats['lambda_consistency']:g} x consistency {stats['consistency']:.4f}"
                     f" + {lc.lambda_reg:g} x proto_reg {stats['proto_reg']:.4f}"
                     f" + {lc.lambda_coral:g} x coral {stats['coral']:.4f}\n")
    for term, share in negligible_terms(stats, cfg).items():
        sys.stdout.write(f"# WARNING: the weighted {term} term is {share:.2%} of the loss at the first step: it "
                         "barely acts early on.\n")


def cmd_check(args: argparse.Namespace) -> int:
    from trainer.config import load_config
    from trainer.doctor import check_dataset, format_report

    cfg = load_config(args.config, [*args.overrides, f"data.root={json.dumps(str(args.root))}"])
    report = check_dataset(cfg, faces=not args.no_faces)
    if args.json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        sys.stdout.write(format_report(report) + "\n")
    return 2 if report["verdict"] == "unusable" else 0


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


def cmd_make_synthetic(args: argparse.Namespace) -> int:
    from trainer.config import load_config
    from trainer.reporting import RunReporter
    from trainer.synthetic_ids import make_synthetic

    overrides = list(args.overrides)
    if args.per_identity is not None:
        overrides.append(f"synthetic.per_identity={args.per_identity}")
    cfg = load_config(args.config, overrides)
    reporter = RunReporter(None, tensorboard=False)
    result = make_synthetic(cfg, reporter)
    reporter.emit("done", **result.summary(cfg.synthetic))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m trainer", description="Train the SketchFace sketch encoder.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    tr = sub.add_parser("train", help="train (resumes from out_dir/last.pt by default)")
    _config_args(tr)
    tr.add_argument("--force", action="store_true",
                    help="resume although world size, batch or dataset changed (logged; not exactly reproducible)")
    tr.add_argument("--ablate", action="append", default=[], metavar="PART",
                    help="after the full recipe, train once more with PART switched off and report both on the "
                         "test split (repeatable; run.ablate in a config): ema, coral, mining, margin, unfreeze, "
                         "flip, consistency, proto_reg")
    tr.set_defaults(func=cmd_train)
    sc = sub.add_parser("show-config", help="print the effective config as TOML, then the schedule in steps")
    _config_args(sc)
    sc.add_argument("--train-ids", type=int, help="show the schedule for this many training identities")
    sc.add_argument("--first-batch", action="store_true",
                    help="also measure each loss term's share on one first batch (needs data.root and the models; "
                         "computes the prototypes if they are not cached)")
    sc.set_defaults(func=cmd_show_config)
    ck = sub.add_parser("check", help="dataset doctor: pairs, unreadable/tiny/faceless images, duplicates, schedule")
    ck.add_argument("root", type=Path, metavar="DATASET_ROOT")
    ck.add_argument("--json", action="store_true", help="print the report as JSON")
    ck.add_argument("--no-faces", action="store_true", help="skip face detection (no detector needed)")
    _config_args(ck)
    ck.set_defaults(func=cmd_check)
    ex = sub.add_parser("export", help="write an engine checkpoint (model.safetensors + config.json)")
    ex.add_argument("out_dir", type=Path)
    ex.add_argument("--from", dest="source", type=Path, help="best.pt/last.pt or a run folder (default: run.out_dir)")
    ex.add_argument("--weights", choices=("best", "ema", "student"), default="best",
                    help="best: the weights that scored higher at the best evaluation (recorded by the run)")
    _config_args(ex)
    ex.set_defaults(func=cmd_export)
    sy = sub.add_parser("make-synthetic", help="synthetic identities: K FaceID photos per training identity, kept when "
                                               "ArcFace agrees, sketched (DATASET_ROOT/synthetic)")
    sy.add_argument("--per-identity", type=int, help="K (synthetic.per_identity)")
    _config_args(sy)
    sy.set_defaults(func=cmd_make_synthetic)
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
