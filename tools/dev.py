"""One-command set-up for SketchFace Workstation: install exactly the tested software, then start the app or test.

Usage (from the repository root, with Python 3.11+):

    python3 tools/dev.py app  [ARGS...]          # set up (first time) and start the workstation
    python3 tools/dev.py test [PYTEST ARGS...]   # set up (first time), then ruff, import contracts, mypy, pytest
    python3 tools/dev.py setup                    # set up only
    python3 tools/dev.py lock                     # regenerate this platform's lock from pyproject.toml
    python3 tools/dev.py test --latest [ARGS...]  # the suite on the newest releases (.venv-latest; not CI)

On Windows use ``py -3.11 tools\\dev.py app`` / ``py -3.11 tools\\dev.py test``.

The lock. ``locks/<platform>-<arch>-cp<XY>.txt`` names every distribution of the environment, its
exact version and its SHA-256 hashes, in pip's ``--require-hashes`` format. ``setup`` installs exactly
that file, hash-checked and with ``--no-deps`` (so nothing the lock does not name can come in), then
the project itself from the working tree, then removes anything the lock does not name. A changed
lock, ``pyproject.toml`` or this script triggers the re-install. Without a lock for the running
platform the set-up stops and says how to make one: it never falls back to "newest today".

Why pip-tools (``pip-compile --generate-hashes``) makes the lock: it resolves with pip's own resolver
and reads pip's own configuration, so the lock comes from exactly the indexes, find-links and
constraints that ``pip install`` uses on this machine (here: PyPI plus local wheel folders, with
torch capped at the release on disk). uv resolves other platforms too, but it does not read pip's
configuration, so it would lock from a different view of the registry than the install uses.
pip-compile resolves only for the interpreter it runs on: each platform's lock is made on that
platform (the README lists which exist).

Two packages need care that a plain requirement list cannot express, and the lock process handles
both when the lock is made, not by repairs after the install:
- ``onnxruntime`` and ``onnxruntime-gpu`` must never be installed together (they overwrite each
  other's files). The lock input names the GPU build with its CUDA libraries
  (``onnxruntime-gpu[cuda,cudnn]``) where NVIDIA publishes it (Linux, Windows), else the CPU build.
- insightface declares ``onnxruntime`` (the CPU build) and ``opencv-python`` (which clashes with
  ``opencv-python-headless``). Both are marked unsafe for pip-compile (``--unsafe-package``), so the
  lock never names them; insightface's other needs are in pyproject.toml. The lock is then checked:
  exactly one ONNX Runtime, no ``opencv-python``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from engine import environment  # noqa: E402 - standard library only; the one definition of the lock's name

VENV = Path(os.environ.get("SKETCHFACE_VENV", ROOT / ".venv"))
LATEST_VENV = ROOT / ".venv-latest"
LOCK_TOOL_VENV = ROOT / ".venv-lock"
LOCK_DIR = ROOT / environment.LOCK_DIR_NAME
# The lock tool itself is pinned: a different pip-tools may write a different lock from the same input.
PIP_TOOLS = "pip-tools==7.7.0"
EXTRAS = ("dev", "train")
# Packages the project needs beyond pyproject.toml's dependencies (see the module docstring).
INSIGHTFACE = "insightface"
NEVER_LOCKED = ("onnxruntime", "opencv-python") if sys.platform != "darwin" else ("opencv-python",)
# What the editable install of the project builds with (--no-build-isolation: from the lock, hash-checked).
BUILD_TOOLS = ("setuptools>=68", "wheel")
# How the lock names the platform packages above in its "via" notes (a stable name, not a temp path).
PLATFORM_INPUT = "tools/dev.py (platform packages)"


def _venv_python(venv_dir: Path = VENV) -> Path:
    if os.name == "nt":
        return venv_dir / "Scripts" / "python.exe"
    return venv_dir / "bin" / "python"


def _run(cmd: list, **kw: object) -> int:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.call([str(c) for c in cmd], **kw)  # type: ignore[arg-type]


def _must(cmd: list) -> None:
    rc = _run(cmd)
    if rc != 0:
        sys.exit(f"set-up step failed (exit {rc}): {' '.join(map(str, cmd))}")


def lock_file() -> Path:
    """This platform's lock (it may not exist yet)."""
    return LOCK_DIR / environment.lock_name()


def _stamp() -> str:
    """What the environment was built from; a change triggers a re-install."""
    h = hashlib.sha256()
    for path in (ROOT / "pyproject.toml", ROOT / "tools" / "dev.py", lock_file()):
        h.update(path.read_bytes() if path.exists() else b"")
    return h.hexdigest()


def _ort_requirement() -> str:
    """Exactly one ONNX Runtime: the GPU build with its CUDA libraries where it is published, else the CPU one."""
    if sys.platform == "darwin":
        return "onnxruntime"
    return "onnxruntime-gpu[cuda,cudnn]"


def _pip_constraints() -> list[str]:
    """The constraint files pip itself is configured with (e.g. a cap at the torch release on disk)."""
    out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                         check=False).stdout
    files: list[str] = []
    for line in out.splitlines():
        key, _, value = line.partition("=")
        if key.strip().endswith(".constraint"):
            files.extend(v for v in value.strip().strip("'\"").split() if Path(v).is_file())
    env = os.environ.get("PIP_CONSTRAINT", "")
    files.extend(v for v in env.split() if Path(v).is_file())
    return list(dict.fromkeys(files))


def check_lock(text: str) -> list[str]:
    """What is wrong with a lock's content (empty when it is sound)."""
    pins = environment.parse_lock(text)
    problems = []
    if ("onnxruntime" in pins) == ("onnxruntime-gpu" in pins):
        problems.append("the lock must name exactly one of onnxruntime and onnxruntime-gpu")
    if sys.platform != "darwin" and "onnxruntime" in pins:
        problems.append("the CPU onnxruntime came in (insightface's declared dependency)")
    if "opencv-python" in pins:
        problems.append("opencv-python came in (insightface's declared dependency; we use the headless build)")
    for name in ("torch", "torchvision", INSIGHTFACE, "setuptools", "wheel"):
        if name not in pins:
            problems.append(f"{name} is not in the lock")
    unhashed = [line for line in text.splitlines() if re.match(r"^[A-Za-z0-9].*==", line) and "--hash" not in line
                and not line.rstrip().endswith("\\")]
    if unhashed:
        problems.append(f"lines without hashes: {unhashed[:3]}")
    return problems


def lock() -> int:
    """Regenerate this platform's lock from pyproject.toml with pip-compile (see the module docstring)."""
    tool_py = _venv_python(LOCK_TOOL_VENV)
    if not tool_py.exists():
        venv.EnvBuilder(with_pip=True).create(LOCK_TOOL_VENV)
    _must([tool_py, "-m", "pip", "install", "--disable-pip-version-check", "-q", PIP_TOOLS])
    out = lock_file()
    out.parent.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        extra_in = Path(tmp) / "platform.in"
        extra_in.write_text("\n".join([INSIGHTFACE, _ort_requirement(), *BUILD_TOOLS, PIP_TOOLS]) + "\n")
        draft = Path(tmp) / out.name
        cmd: list = [tool_py, "-m", "piptools", "compile", "--quiet", "--generate-hashes", "--strip-extras",
                     "--no-header",
                     "--no-emit-index-url", "--no-emit-find-links",  # pip's own configuration decides
                     "--output-file", draft]
        for name in NEVER_LOCKED:
            cmd += ["--unsafe-package", name]
        for extra in EXTRAS:
            cmd += ["--extra", extra]
        for constraint in _pip_constraints():
            cmd += ["--constraint", constraint]
        rc = _run([*cmd, "pyproject.toml", extra_in], cwd=ROOT)  # relative: the lock names no local path
        if rc != 0:
            return rc
        text = _finish_lock(draft.read_text().replace(str(extra_in), PLATFORM_INPUT))
    problems = check_lock(text)
    if problems:
        print("The new lock was not written:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    out.write_text(text)
    print(f"Wrote {out.relative_to(ROOT)} ({len(environment.parse_lock(text))} packages, "
          f"sha256 {hashlib.sha256(text.encode()).hexdigest()[:16]}...)")
    return 0


def _finish_lock(text: str) -> str:
    """A header saying what the lock is, and pip-compile's notes on the never-locked packages dropped."""
    body = [line for line in text.splitlines()
            if not line.startswith("# WARNING") and not line.startswith("# pinned")
            and not line.startswith("# satisfied") and line.strip("# ") not in NEVER_LOCKED
            and not line.startswith("# The following packages")]
    while body and not body[-1].strip():
        body.pop()
    header = [
        "# SketchFace Workstation: the tested environment for " + environment.lock_name()[:-4] + ".",
        "# Made by `python3 tools/dev.py lock` (pip-compile --generate-hashes); installed by",
        "# `python3 tools/dev.py setup` with --require-hashes --no-deps. Never edit by hand.",
        "# Not locked on purpose: " + ", ".join(NEVER_LOCKED) + " (insightface's declared dependencies;",
        "# see tools/dev.py).",
        "",
    ]
    return "\n".join(header + body) + "\n"


def _no_lock_message() -> str:
    have = sorted(p.name for p in LOCK_DIR.glob("*.txt")) if LOCK_DIR.is_dir() else []
    return (f"No lock for this platform ({environment.lock_name()}); locks exist for: {', '.join(have) or 'none'}.\n"
            "Make one here with `python3 tools/dev.py lock` (it records today's releases for this platform; "
            "run the tests on it before you rely on it).")


def setup() -> Path:
    """Create the virtual environment and install exactly the lock, hash-checked (idempotent)."""
    if sys.version_info < (3, 11):  # noqa: UP036 - this script may be started by an older python
        sys.exit("SketchFace needs Python 3.11 or newer.")
    lock_path = lock_file()
    if not lock_path.is_file():
        sys.exit(_no_lock_message())
    py = _venv_python()
    stamp_file = VENV / ".sketchface-stamp"
    if py.exists() and stamp_file.exists() and stamp_file.read_text() == _stamp():
        return py
    if not py.exists():
        print(f"Creating the environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    pip = [py, "-m", "pip", "install", "--disable-pip-version-check", "--no-input"]
    _must([*pip, "--require-hashes", "--no-deps", "-r", lock_path])
    _must([*pip, "--no-deps", "--no-build-isolation", "-e", ROOT])
    _remove_unlocked(py, lock_path)
    _must([py, str(Path(__file__)), "--check-env"])
    report_devices(py)
    stamp_file.write_text(_stamp())
    return py


def _remove_unlocked(py: Path, lock_path: Path) -> None:
    """Uninstall what the lock does not name (left from an earlier lock): the environment is the lock."""
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); from engine import environment as e; "
            "print(json.dumps(sorted(e.installed_distributions())))")
    out = subprocess.run([str(py), "-c", code, str(ROOT)], capture_output=True, text=True, check=True).stdout
    locked = environment.parse_lock(lock_path.read_text())
    extra = [n for n in json.loads(out) if n not in locked and n != environment.PROJECT]
    if extra:
        _must([py, "-m", "pip", "uninstall", "-y", *extra])


def check_env() -> int:
    """Run inside the environment: exit 1, listing each package, when it is not exactly the lock."""
    record = environment.record_for(lock_file())
    if record.matches:
        print(f"Environment matches {record.lock} (sha256 {record.lock_digest}).")
        return 0
    print(f"Environment does not match {lock_file().name}:", *(f"  {d.describe()}" for d in record.differences),
          sep="\n", file=sys.stderr)
    return 1


def report_devices(py: Path) -> None:
    """Say where the models will run (the probe loads the ONNX CUDA provider for real)."""
    code = ("from engine import runtime; s = runtime.onnx_status(); "
            "print('Face models (ONNX Runtime):', s.label, ('- ' + s.reason) if s.reason else '')")
    _run([py, "-c", code], cwd=ROOT)


def setup_latest() -> Path:
    """A separate environment from the newest releases pyproject.toml admits: drift shows here first.

    Not hash-checked and not reproducible by design; never used by CI or the app.
    """
    if LATEST_VENV.exists():
        shutil.rmtree(LATEST_VENV)
    venv.EnvBuilder(with_pip=True).create(LATEST_VENV)
    py = _venv_python(LATEST_VENV)
    pip = [py, "-m", "pip", "install", "--disable-pip-version-check", "--upgrade"]
    _must([*pip, "pip", *BUILD_TOOLS, "pip-tools"])  # the lock input's own tools, newest too
    _must([*pip, _ort_requirement()])
    _must([*pip, "--no-deps", INSIGHTFACE])
    _must([*pip, "-e", f"{ROOT}[{','.join(EXTRAS)}]"])
    for name in NEVER_LOCKED:  # a newer dependency may have pulled one in: the same rule as the lock
        if subprocess.call([str(py), "-m", "pip", "show", "-q", name], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL) == 0:
            _must([py, "-m", "pip", "uninstall", "-y", name])
    if sys.platform != "darwin":
        _must([*pip, "--force-reinstall", "--no-deps", "onnxruntime-gpu"])
    return py


def run_checks(py: Path, pytest_args: list[str]) -> int:
    """ruff, the import contracts, mypy, then pytest, each stopping the run on failure."""
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    for check in ([py, "-m", "ruff", "check", "."], [py.parent / "lint-imports"], [py, "-m", "mypy"]):
        rc = _run(check, cwd=ROOT, env=env)
        if rc != 0:
            return rc
    return _run([py, "-m", "pytest", *pytest_args], cwd=ROOT, env=env)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--check-env"]:
        return check_env()
    if not argv or argv[0] not in {"app", "test", "setup", "lock"}:
        print(__doc__)
        return 2
    cmd, rest = argv[0], argv[1:]
    if cmd == "lock":
        return lock()
    if cmd == "test" and rest[:1] == ["--latest"]:
        return run_checks(setup_latest(), rest[1:])
    py = setup()
    if cmd == "setup":
        return 0
    if cmd == "app":
        return _run([py, "-m", "sketchface_desktop", *rest], env=dict(os.environ))
    return run_checks(py, rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
