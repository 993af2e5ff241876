"""``sketchface`` command line: the same engine as the desktop app, headless.

Each area of the engine contributes its sub-commands through a ``register(subparsers)`` function in
its own ``cli`` module (models, gallery + search, cases, generation); a handler is stored as
``func`` on the parsed arguments and returns the process exit code.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from engine.errors import Cancelled, EngineError

# Modules that add sub-commands. Missing ones are skipped so a partial install still runs.
_COMMAND_MODULES = (
    "engine.models.cli",
    "engine.gallery.cli",
    "engine.search.cli",
    "engine.cases.cli",
    "engine.sketch.cli",
    "engine.generate.cli",
    "engine.demo",
    "engine.validate.cli",
    "engine.gallery.pg.cli",  # after gallery and search: adds --server to their actions
    "engine.doctor",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sketchface",
        description="SketchFace Workstation: search photo galleries by face sketch or photo. "
        "Run with no arguments to open the desktop app.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(sub)
    return parser


def print_json(obj: Any) -> None:
    """Write one JSON document to stdout (for ``--json`` output consumed by scripts)."""
    json.dump(obj, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except Cancelled:
        print("Cancelled.", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
