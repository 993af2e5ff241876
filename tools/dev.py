"""One-command set-up for SketchFace Workstation: create the environment, then start the app or run the tests.

Usage (from the repository root, with Python 3.11+):

    python3 tools/dev.py app  [ARGS...]   # set up (first time) and start the workstation
    python3 tools/dev.py test [PYTEST ARGS...]   # set up (first time), then ruff, import contracts, mypy, pytest
    python3 tools/dev.py setup             # set up only

On Windows use ``py -3.11 tools\\dev.py app`` / ``py -3.11 tools\\dev.py test``.

Why a script and not a requirements file: two packages need care that pip cannot express.
``onnxruntime`` and ``onnxruntime-gpu`` must never be installed together (they overwrite each other's
files), and insightface declares a dependency on the CPU ``onnxruntime`` and on ``opencv-python``
(which clashes with ``opencv-python-headless``). So the GPU runtime is installed where it installs,
else the CPU one, and insightface is installed without its declared dependencies (its real ones
are listed in pyproject.toml).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("SKETCHFACE_VENV", ROOT / ".venv"))
INSIGHTFACE = "insightface>=0.7.3"


def _venv_python() -> Path:
    if os.name == "nt":
        return VENV / "Scripts" / "python.exe"
    return VENV / "bin" / "python"


def _run(cmd: list[str], **kw: object) -> int:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.call([str(c) for c in cmd], **kw)  # type: ignore[arg-type]


def _must(cmd: list[str]) -> None:
    rc = _run(cmd)
    if rc != 0:
        sys.exit(f"set-up step failed (exit {rc}): {' '.join(map(str, cmd))}")


def _stamp() -> str:
    """What the environment was built from; a change triggers a re-install."""
    h = hashlib.sha256()
    for name in ("pyproject.toml", "tools/dev.py"):
        h.update((ROOT / name).read_bytes())
    return h.hexdigest()


def _installed(py: Path, dist: str) -> bool:
    code = f"import importlib.metadata as m; m.version({dist!r})"
    return subprocess.call([str(py), "-c", code], stderr=subprocess.DEVNULL) == 0


def setup() -> Path:
    """Create the virtual environment and install everything the project needs (idempotent)."""
    if sys.version_info < (3, 11):  # noqa: UP036 - this script may be started by an older python
        sys.exit("SketchFace needs Python 3.11 or newer.")
    py = _venv_python()
    stamp_file = VENV / ".sketchface-stamp"
    if py.exists() and stamp_file.exists() and stamp_file.read_text() == _stamp():
        return py
    if not py.exists():
        print(f"Creating the environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    pip = [py, "-m", "pip", "install", "--disable-pip-version-check"]
    _must([*pip, "--upgrade", "pip", "setuptools", "wheel"])
    # The registry's regular torch build (CUDA-enabled; it runs on the CPU as well).
    _must([*pip, "torch", "torchvision"])
    # Exactly one ONNX Runtime: the GPU build where it installs, else the CPU build.
    has_ort = _installed(py, "onnxruntime-gpu") or _installed(py, "onnxruntime")
    if not has_ort and _run([*pip, "onnxruntime-gpu"]) != 0:
        _must([*pip, "onnxruntime"])
    _must([*pip, "--no-deps", INSIGHTFACE])
    _must([*pip, "-e", f"{ROOT}[dev,train]"])
    both = _installed(py, "onnxruntime-gpu") and _installed(py, "onnxruntime")
    if both:
        _must([py, "-m", "pip", "uninstall", "-y", "onnxruntime"])
        _must([*pip, "--force-reinstall", "--no-deps", "onnxruntime-gpu"])
    stamp_file.write_text(_stamp())
    return py


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"app", "test", "setup"}:
        print(__doc__)
        return 2
    cmd, rest = argv[0], argv[1:]
    py = setup()
    if cmd == "setup":
        return 0
    env = dict(os.environ)
    if cmd == "app":
        return _run([py, "-m", "sketchface_desktop", *rest], env=env)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    for check in ([py, "-m", "ruff", "check", "."], [py.parent / "lint-imports"], [py, "-m", "mypy"]):
        rc = _run(check, cwd=ROOT, env=env)
        if rc != 0:
            return rc
    return _run([py, "-m", "pytest", *rest], cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
