"""PyInstaller runtime hook: let the frozen executable stand in for ``python`` where the app runs itself.

A frozen app has no Python interpreter, yet the desktop app starts work in child processes the way a
source install does: ``[sys.executable, "-m", "trainer", "train", ...]`` (training as a subprocess,
read through QProcess). In the bundle ``sys.executable`` is the SketchFace executable, so this hook,
which runs before the entry script, gives it the two interpreter behaviours those children rely on:

- ``SketchFace -m MODULE ARGS...`` runs MODULE as ``__main__`` (the trainer; ``engine.cli`` for the
  demo set-up; ``sketchface_desktop`` for a second window on the demo home) (only the modules in ``RUNNABLE``,
  which installer/collect.py bundles and tests/installer checks against the desktop code);
- ``multiprocessing.freeze_support()`` first, as PyInstaller asks of frozen apps that use
  multiprocessing: a spawned child (a DataLoader worker on Windows) runs its task, not the CLI.
"""

import multiprocessing
import runpy
import sys

RUNNABLE = frozenset({"trainer", "engine.cli", "sketchface_desktop"})

multiprocessing.freeze_support()

if len(sys.argv) >= 3 and sys.argv[1] == "-m" and sys.argv[2] in RUNNABLE:
    _module = sys.argv[2]
    sys.argv = [sys.argv[0], *sys.argv[3:]]
    runpy.run_module(_module, run_name="__main__", alter_sys=True)
    sys.exit(0)
