"""``python -m engine.cli COMMAND ...``: the same entry point as the ``sketchface`` script."""

from __future__ import annotations

import sys

from engine.cli import main

if __name__ == "__main__":
    sys.exit(main())
