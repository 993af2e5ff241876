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
# The CUDA runtime libraries onnxruntime-gpu's CUDA provider links against (libcudart, libcublas(Lt),
# libcurand) and loads (libcudnn), as NVIDIA's wheels, by the CUDA major version the wheel was built for
# (onnxruntime.capi.build_and_package_info.cuda_version). CUDA 13's wheels dropped the -cu13 suffix
# except cuDNN's. onnxruntime.preload_dlls() (>= 1.21) finds them in site-packages/nvidia.
CUDA_WHEELS = {
    "12": ("nvidia-cuda-runtime-cu12", "nvidia-cublas-cu12", "nvidia-curand-cu12", "nvidia-cudnn-cu12>=9,<10"),
    "13": ("nvidia-cuda-runtime>=13,<14", "nvidia-cublas>=13,<14", "nvidia-curand>=10.4,<11",
           "nvidia-cudnn-cu13>=9,<10"),
}


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


def _ort_cuda_major(py: Path) -> str:
    """The CUDA major version the installed onnxruntime-gpu was built for ("" when unknown or CPU build)."""
    code = ("from onnxruntime.capi import build_and_package_info as b; "
            "print(str(getattr(b, 'cuda_version', '') or '').split('.')[0])")
    try:
        out = subprocess.run([str(py), "-c", code], capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def install_cuda_libraries(py: Path, pip: list) -> None:
    """Install the CUDA libraries onnxruntime-gpu needs, so face detection and ArcFace run on the GPU.

    Skipped for the CPU build of onnxruntime and on macOS; a failure only warns (the app then says
    "CPU" for the face models, with the reason, instead of failing).
    """
    if sys.platform == "darwin" or not _installed(py, "onnxruntime-gpu"):
        return
    major = _ort_cuda_major(py)
    wheels = CUDA_WHEELS.get(major)
    if wheels is None:
        print(f"onnxruntime-gpu was built for CUDA {major or '?'}: install its CUDA libraries by hand "
              "(see https://onnxruntime.ai/docs/install/).", flush=True)
        return
    if _run([*pip, *wheels]) != 0:
        print("warning: the CUDA libraries for onnxruntime-gpu did not install; face models will run on the CPU.",
              flush=True)


def report_devices(py: Path) -> None:
    """Say where the models will run (the probe loads the ONNX CUDA provider for real)."""
    code = ("from engine import runtime; s = runtime.onnx_status(); "
            "print('Face models (ONNX Runtime):', s.label, ('- ' + s.reason) if s.reason else '')")
    _run([py, "-c", code], cwd=ROOT)


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
    install_cuda_libraries(py, pip)
    report_devices(py)
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
