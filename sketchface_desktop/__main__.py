"""``sketchface`` entry point: no arguments opens the desktop app, arguments run the headless CLI."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        try:
            from sketchface_desktop.app import run
        except ModuleNotFoundError as exc:
            if exc.name != "sketchface_desktop.app":
                raise
        else:
            return run()
    from engine.cli import main as cli_main

    return cli_main(args)


if __name__ == "__main__":
    sys.exit(main())
