"""``sketchface demo``: prepare the DEMO home (:func:`engine.demo.prepare_demo`) and say how to try it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.cli.output import print_json
from engine.demo import DEMO_EXAMINER, DEMO_NOTICE, DEMO_PASSPHRASE, prepare_demo
from engine.progress import ProgressEvent


def _cmd_demo(args: Any) -> int:
    def show(ev: ProgressEvent) -> None:
        if not args.json:
            print(f"[{ev.done}/{ev.total}] {ev.message}")

    info = prepare_demo(Path(args.home) if args.home else None, progress=show)
    if args.json:
        print_json(info.to_dict())
        return 0
    print(f"\n{DEMO_NOTICE}\n\nDemo home: {info.home}\n  gallery '{info.gallery_name}' ({info.photos} photos), "
          f"case {info.case_number} with search {info.search_id}\nTry it (the demo home, never your real data):\n"
          f"  SKETCHFACE_HOME=\"{info.home}\" sketchface case show {info.case_number} --search {info.search_id}\n"
          f"  SKETCHFACE_HOME=\"{info.home}\" sketchface            # the window, on the demo data"
          + f"\n  the demo examiner profile ({DEMO_EXAMINER}) unlocks with the passphrase '{DEMO_PASSPHRASE}'")
    return 0


def register(subparsers: Any) -> None:
    """Add ``sketchface demo`` to the command line."""
    p = subparsers.add_parser(
        "demo", help="prepare a DEMO home: tiny random-weight models, sample photos, a demo case",
        description="Install tiny models with RANDOM weights, a gallery of sample photos and a demo case with "
                    "one recorded search into a separate demo folder, to try the whole flow. Scores are "
                    "meaningless; your real data folder is not touched.")
    p.add_argument("--home", help="demo folder (default: SKETCHFACE_DEMO_HOME, else a 'SketchFace Demo' data folder)")
    p.add_argument("--json", action="store_true", help="print where the demo is, as JSON")
    p.set_defaults(func=_cmd_demo)
