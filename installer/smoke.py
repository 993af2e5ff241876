"""Smoke test of the frozen app: does the built folder start, find its models and do the examiner's work?

    python installer/smoke.py dist            # or the bundle itself: dist/SketchFace
    python installer/smoke.py dist --json     # one JSON document (steps, startup_s, ...)

Run it from the source checkout with the project's environment: the tiny models and photos are built
from the source tree (``python -m tests.fixtures.tiny_models OUT``), then only the frozen executable
works with them, under a temporary ``SKETCHFACE_HOME`` and ``QT_QPA_PLATFORM=offscreen``:

1. the bundle holds what installer/collect.py declares (data files, metadata, lazily imported
   modules) and not what it excludes; on Linux, no shared library lost a dependency on the way;
2. ``models import`` of the tiny models through the frozen CLI;
3. the main window opens and paints (``SKETCHFACE_STARTUP_PROBE``, the hook bench/startup.py uses),
   timed as bench/startup.py does: one warm-up start, then the median of ``--startup-runs`` starts
   from process spawn to first paint = ``startup_s``; no heavy ML module may be imported by then;
4. ``gallery create`` / ``gallery add`` of a few photos (one of them corrupt: it must be reported,
   not crash the import), ``search --sketch``, ``sketch embed --backend torch`` (torch + open_clip);
   ``reconstruct`` (FaceID Plus v2 + ControlNet) and ``vary`` (InstructPix2Pix) on the tiny diffusion
   models, 2 steps at 64 px: diffusers' lazily imported pipelines, transformers, peft;
5. ``case new`` / ``case add-sketch`` / ``case report`` (PDF, with the bundled fonts);
6. ``SketchFace -m trainer show-config``: the GUI starts training as ``sys.executable -m trainer``.

Exit status 0 only if every step passed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "installer"))
import collect  # noqa: E402 - installer/collect.py, the lists the spec was built from

EXE_NAME = collect.APP_NAME + (".exe" if sys.platform == "win32" else "")
N_PHOTOS = 4
GUI_TIMEOUT_S = 120  # first paint takes seconds; a modal error dialog would wait forever offscreen


@dataclass
class Step:
    """One checked action: its name, whether it passed, how long it took and what was seen."""

    name: str
    ok: bool = False
    seconds: float = 0.0
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)


class StepFailed(Exception):
    """A step's check did not hold; the message says what was expected and what came instead."""


def find_bundle(path: Path) -> tuple[Path, Path]:
    """(bundle folder, executable) for a dist folder or the bundle folder itself."""
    for bundle in (path / collect.APP_NAME, path):
        if (bundle / EXE_NAME).is_file():
            return bundle, bundle / EXE_NAME
        app = bundle / f"{collect.APP_NAME}.app" / "Contents" / "MacOS" / collect.APP_NAME
        if app.is_file():
            return app.parent, app
    raise SystemExit(f"error: no {EXE_NAME} in {path} or {path / collect.APP_NAME}")


def internal_dir(bundle: Path) -> Path:
    """Where PyInstaller 6 puts everything but the executable (``_internal``; ``../Frameworks`` on macOS)."""
    for candidate in (bundle / "_internal", bundle.parent / "Frameworks", bundle):
        if (candidate / "base_library.zip").exists():
            return candidate
    return bundle


class Smoke:
    """Runs the frozen executable in an isolated home and records each step."""

    def __init__(self, bundle: Path, exe: Path, work: Path, timeout: float) -> None:
        self.bundle, self.exe, self.work, self.timeout = bundle, exe, work, timeout
        self.steps: list[Step] = []
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("SKETCHFACE_", "PYTHON"))}
        self.env.update({"SKETCHFACE_HOME": str(work / "home"), "QT_QPA_PLATFORM": "offscreen",
                         "PYTHONIOENCODING": "utf-8"})

    def step(self, name: str, action: Callable[[Step], None]) -> bool:
        """Run ``action`` as step ``name``; a StepFailed or a crash marks it failed, never stops the run."""
        step = Step(name)
        start = time.monotonic()
        try:
            action(step)
            step.ok = True
        except StepFailed as exc:
            step.detail = str(exc)
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            step.detail = f"{type(exc).__name__}: {exc}"
        step.seconds = round(time.monotonic() - start, 2)
        self.steps.append(step)
        mark = "ok  " if step.ok else "FAIL"
        print(f"[{mark}] {name} ({step.seconds:.1f} s){': ' + step.detail if step.detail else ''}", flush=True)
        return step.ok

    def frozen(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the frozen executable with ``args``; raise StepFailed unless it exits 0."""
        proc = subprocess.run([str(self.exe), *args], env=self.env, capture_output=True, text=True,
                              encoding="utf-8", errors="replace", timeout=self.timeout, cwd=self.work)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip()[-1500:]
            raise StepFailed(f"`{collect.APP_NAME} {' '.join(args)}` exited {proc.returncode}: {tail}")
        return proc

    def frozen_json(self, *args: str) -> Any:
        """Run a ``--json`` command and parse its stdout (the engine prints one JSON document)."""
        out = self.frozen(*args).stdout
        try:
            return json.loads(out)
        except json.JSONDecodeError as exc:
            raise StepFailed(f"`{' '.join(args)}` did not print JSON: {out[:300]!r}") from exc


# ----------------------------------------------------------------------------- bundle contents
def check_contents(bundle: Path, exe: Path, step: Step) -> None:
    """The bundle holds every declared data file, metadata and lazy module, and none of the excludes."""
    internal = internal_dir(bundle)
    missing: list[str] = []
    for pkg in collect.DATA_PACKAGES:
        for src, dest in collect.data_files(pkg):
            if not (internal / dest / Path(src).name).is_file():
                missing.append(f"{dest}/{Path(src).name}")
    missing += [f"{dest}/{Path(src).name}" for src, dest in collect.dynamic_library_files()
                if not (internal / dest / Path(src).name).is_file()]
    for src, dest in collect.resource_files():
        if not (internal / dest / Path(src).name).is_file():
            missing.append(f"{dest}/{Path(src).name}")
    infos = {collect.normalize_distribution(p.name.split("-")[0]) for p in internal.glob("*.dist-info")}
    missing += [f"{d} metadata" for d in collect.metadata_distributions(installed_only=True) if d not in infos]
    modules = pyz_modules(exe, internal)
    on_disk = {p.relative_to(internal).with_suffix("").as_posix().replace("/", ".")
               for p in internal.rglob("*.py")}
    needed = [m for m in (*collect.SUBMODULE_PACKAGES, *collect.HIDDEN_IMPORTS, "engine.cli",
                          "sketchface_desktop.app", "sketchface_desktop.views.main_window")]
    for mod in needed:
        if mod not in modules and f"{mod}.__init__" not in on_disk and mod not in on_disk \
                and not _is_extension(internal, mod):
            missing.append(f"module {mod}")
    present = [x for x in collect.EXCLUDES if x in modules or _is_extension(internal, x)
               or (internal / x.replace(".", "/")).is_dir()]
    present += [x for x in collect.DROPPED_BINARIES if any(internal.glob(x))]
    step.data = {"pyz_modules": len(modules), "missing": missing, "excluded_but_present": present}
    if missing or present:
        raise StepFailed(f"missing: {missing[:15]}; excluded but present: {present}")


def _is_extension(internal: Path, module: str) -> bool:
    """True if ``module`` is a compiled extension in the bundle (``a/b.cpython-311-x86_64-linux-gnu.so``...)."""
    parent, _, name = module.rpartition(".")
    folder = internal / parent.replace(".", "/") if parent else internal
    return any(folder.glob(f"{name}.*.so")) or any(folder.glob(f"{name}.*.pyd")) or any(folder.glob(f"{name}.so"))


def pyz_modules(exe: Path, internal: Path) -> set[str]:
    """Names of the modules in the bundle's PYZ archive (embedded in the executable, or beside it)."""
    from PyInstaller.archive.readers import CArchiveReader, ZlibArchiveReader

    names: set[str] = set()
    for candidate in internal.glob("*.pyz"):
        names |= set(ZlibArchiveReader(str(candidate)).toc)
    pkg = CArchiveReader(str(exe))
    for name in pkg.toc:
        if name.endswith(".pyz"):
            names |= set(pkg.open_embedded_archive(name).toc)
    return names


def check_linked_libraries(bundle: Path, step: Step) -> None:
    """(Linux) No bundled shared library misses a dependency that the same library finds in the source venv.

    Run on a CPU-only machine this still proves the CUDA libraries torch and onnxruntime link against
    came along; a dependency already missing in the venv (a GPU driver, an optional provider's library)
    is reported but is not the bundle's fault.
    """
    internal = internal_dir(bundle)
    site = collect.site_packages()
    lost: dict[str, list[str]] = {}
    also_missing_in_venv: dict[str, list[str]] = {}
    checked = 0
    for lib in sorted(internal.rglob("*.so*")):
        if lib.is_symlink() or not lib.is_file() or not _is_elf(lib):
            continue
        checked += 1
        missing = _ldd_missing(lib)
        if not missing:
            continue
        source = site / lib.relative_to(internal)
        in_venv = _ldd_missing(source) if source.is_file() else set()
        rel = lib.relative_to(internal).as_posix()
        if missing - in_venv:
            lost[rel] = sorted(missing - in_venv)
        if missing & in_venv:
            also_missing_in_venv[rel] = sorted(missing & in_venv)
    step.data = {"libraries_checked": checked, "lost": lost, "missing_in_source_too": also_missing_in_venv}
    if also_missing_in_venv:
        sonames = sorted({s for deps in also_missing_in_venv.values() for s in deps})
        step.detail = (f"{checked} libraries; {len(also_missing_in_venv)} miss the same libraries in the venv "
                       f"(optional plugins, GPU driver): {', '.join(sonames)}")
    if lost:
        raise StepFailed(f"dependencies lost in the bundle: {dict(list(lost.items())[:10])}")


def _is_elf(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == b"\x7fELF"


def _ldd_missing(path: Path) -> set[str]:
    proc = subprocess.run(["ldd", str(path)], capture_output=True, text=True, env={"LC_ALL": "C"})
    return {line.split("=>")[0].strip() for line in proc.stdout.splitlines() if "not found" in line}


# ----------------------------------------------------------------------------- inputs from source
def build_inputs(work: Path, step: Step) -> None:
    """Tiny models and photos, built with the source tree (the frozen app only consumes them)."""
    proc = subprocess.run([sys.executable, "-m", "tests.fixtures.tiny_models", str(work / "models"), "--all"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise StepFailed(f"tests.fixtures.tiny_models failed: {proc.stderr[-1500:]}")
    import cv2

    sys.path.insert(0, str(ROOT))
    from tests.fixtures.photos_basic import textured_image

    photos = work / "photos"
    photos.mkdir()
    for i in range(N_PHOTOS):
        cv2.imwrite(str(photos / f"person{i}.jpg"), textured_image(100 + i))
    (photos / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    sketch = cv2.cvtColor(textured_image(101), cv2.COLOR_BGR2GRAY)
    cv2.imwrite(str(work / "sketch.png"), sketch)
    step.detail = f"{len(list((work / 'models').iterdir()))} model folders, {N_PHOTOS} photos + 1 corrupt"


# ----------------------------------------------------------------------------- frozen steps
def check_cli_starts(smoke: Smoke, step: Step) -> None:
    out = smoke.frozen("--help").stdout
    for command in ("models", "gallery", "search", "case"):
        if command not in out:
            raise StepFailed(f"`--help` does not list the {command!r} command: {out[:400]!r}")


def import_models(smoke: Smoke, step: Step) -> None:
    smoke.frozen("models", "import", str(smoke.work / "models"), "--json")
    status = smoke.frozen("models", "status").stdout
    for model in ("buffalo_l.det_10g", "buffalo_l.w600k_r50", "sketch_encoder"):
        line = next((ln for ln in status.splitlines() if ln.startswith(model)), "")
        if "yes" not in line or "ok" not in line:
            raise StepFailed(f"{model} not installed and verified after import: {line!r}")


def measure_startup(smoke: Smoke, step: Step, runs: int) -> None:
    """Open the main window 1 + ``runs`` times; startup_s = process start to first paint.

    As in bench/startup.py: the first start only warms the OS file cache (reported as first_run_s,
    the cold start after a reboot is slower still), the median of the next ``runs`` is startup_s.
    """
    times: list[float] = []
    for i in range(runs + 1):
        probe = smoke.work / f"probe{i}.json"
        env = dict(smoke.env, SKETCHFACE_STARTUP_PROBE=str(probe))
        started = time.monotonic()
        try:
            proc = subprocess.run([str(smoke.exe)], env=env, capture_output=True, text=True, encoding="utf-8",
                                  errors="replace", timeout=GUI_TIMEOUT_S, cwd=smoke.work)
        except subprocess.TimeoutExpired as exc:  # an error dialog waits for a click that never comes
            raise StepFailed(f"GUI run {i} did not paint within {GUI_TIMEOUT_S} s; app log: {app_log_tail(smoke)}") from exc
        if proc.returncode != 0 or not probe.is_file():
            raise StepFailed(f"GUI run {i} exited {proc.returncode} without painting: {proc.stderr[-1500:]}; "
                             f"app log: {app_log_tail(smoke)}")
        report = json.loads(probe.read_text(encoding="utf-8"))
        times.append(float(report["first_paint_monotonic"]) - started)
        if report.get("heavy_modules_loaded"):
            raise StepFailed(f"heavy modules imported before the first paint: {report['heavy_modules_loaded']}")
    first, timed = times[0], times[1:]
    step.data = {"startup_s": round(statistics.median(timed), 3), "runs_s": [round(t, 3) for t in timed],
                 "first_run_s": round(first, 3), "window": report.get("window")}
    step.detail = (f"startup_s {statistics.median(timed):.2f} (runs {', '.join(f'{t:.2f}' for t in timed)}; "
                   f"first run {first:.2f})")


def app_log_tail(smoke: Smoke, chars: int = 1500) -> str:
    """The end of the desktop app's log under the temporary home (where its crash handler writes)."""
    logs = sorted((smoke.work / "home").rglob("*.log"), key=lambda p: p.stat().st_mtime)
    return " | ".join(p.read_text(encoding="utf-8", errors="replace")[-chars:] for p in logs[-2:]) or "(no log)"


def index_photos(smoke: Smoke, step: Step) -> None:
    smoke.frozen_json("gallery", "create", "smoke", "--json")
    result = smoke.frozen_json("gallery", "add", "smoke", str(smoke.work / "photos"), "--json")
    step.data = {k: result.get(k) for k in ("added", "faces", "errors", "no_face")}
    if result.get("added") != N_PHOTOS or not result.get("faces"):
        raise StepFailed(f"expected {N_PHOTOS} photos added with faces: {step.data}")
    reported = json.dumps([result.get("bad"), result.get("failed")])
    if "corrupt.jpg" not in reported:
        raise StepFailed(f"the corrupt photo was not reported: bad={result.get('bad')} failed={result.get('failed')}")


def search_sketch(smoke: Smoke, step: Step) -> None:
    result = smoke.frozen_json("search", "--gallery", "smoke", "--sketch", str(smoke.work / "sketch.png"),
                               "--top", "3", "--json")
    matches = result.get("matches") or []
    if not matches or not all("score" in m and "photo_path" in m for m in matches):
        raise StepFailed(f"no ranked matches: {json.dumps(result)[:400]}")
    step.data = {"matches": len(matches), "top_photo": Path(matches[0]["photo_path"]).name,
                 "baseline": matches[0].get("baseline")}


def embed_with_torch(smoke: Smoke, step: Step) -> None:
    """The sketch encoder through torch + open_clip (the search above used its ONNX export)."""
    result = smoke.frozen_json("sketch", "embed", "--backend", "torch", "--device", "cpu",
                               str(smoke.work / "sketch.png"), "--out", str(smoke.work / "sketch.npy"), "--json")
    text = json.dumps(result)
    if "torch" not in text or not (smoke.work / "sketch.npy").is_file():
        raise StepFailed(f"the torch backend did not run or wrote no embedding: {text[:400]}")
    step.data = {k: v for k, v in result.items() if not isinstance(v, list)} if isinstance(result, dict) else {}


def reconstruct(smoke: Smoke, step: Step) -> None:
    """FaceID Plus v2 + ControlNet lineart on the tiny diffusion models: diffusers, transformers' CLIP
    vision tower, peft (the FaceID LoRA), open_clip attributes (prompt from the sketch)."""
    out = smoke.work / "candidates"
    result = smoke.frozen_json("reconstruct", "--embedding", str(smoke.work / "sketch.npy"),
                               "--sketch", str(smoke.work / "sketch.png"), "--face", str(smoke.work / "photos" / "person1.jpg"),
                               "--structure", "--allow-cpu", "--device", "cpu", "--steps", "2", "-n", "1",
                               "--width", "64", "--height", "64", "--out", str(out), "--json")
    candidates = result.get("candidates") or []
    if not candidates or not Path(candidates[0]["path"]).is_file():
        raise StepFailed(f"no candidate image: {json.dumps(result)[:400]}")
    step.data = {k: result.get(k) for k in ("mode", "structure", "device", "seconds")}


def vary(smoke: Smoke, step: Step) -> None:
    """One local InstructPix2Pix edit of the reconstructed candidate."""
    candidate = next((smoke.work / "candidates").glob("*.png"), None)
    if candidate is None:
        raise StepFailed("no candidate from the reconstruct step to vary")
    result = smoke.frozen_json("vary", str(candidate), "--edits", "older", "--steps", "2", "--size", "64",
                               "--allow-cpu", "--device", "cpu", "--out", str(smoke.work / "variations"), "--json")
    rows = result.get("variations") or []
    if not rows or any(r.get("error") for r in rows) or not Path(rows[0]["path"]).is_file():
        raise StepFailed(f"variation failed: {json.dumps(result)[:400]}")
    step.data = {"backend": result.get("backend"), "edits": [r.get("edit") for r in rows]}


def trainer_runs(smoke: Smoke, step: Step) -> None:
    """``SketchFace -m trainer`` (how the GUI starts training) runs the bundled trainer (runtime hook)."""
    out = smoke.frozen("-m", "trainer", "show-config").stdout
    if "[" not in out or "=" not in out:
        raise StepFailed(f"`-m trainer show-config` printed no configuration: {out[:300]!r}")
    step.data = {"config_lines": len(out.splitlines())}


def case_report(smoke: Smoke, step: Step) -> None:
    case = smoke.frozen_json("case", "new", "SMOKE-1", "--title", "Frozen smoke test", "--json")
    case_id = case.get("case_id") or "SMOKE-1"
    smoke.frozen("case", "add-sketch", case_id, str(smoke.work / "sketch.png"), "--witness", "W1",
                 "--name", "witness sketch")
    pdf = smoke.work / "report.pdf"
    smoke.frozen("case", "report", case_id, "--format", "pdf", "--out", str(pdf))
    data = pdf.read_bytes() if pdf.is_file() else b""
    if not data.startswith(b"%PDF") or len(data) < 2000:
        raise StepFailed(f"no PDF report written at {pdf} ({len(data)} bytes)")
    step.data = {"case_id": case_id, "report_bytes": len(data)}


# ----------------------------------------------------------------------------- driver
def run(dist: Path, startup_runs: int, timeout: float, keep: bool) -> dict[str, Any]:
    """Run every step against the bundle under ``dist``; returns the result document."""
    bundle, exe = find_bundle(dist.resolve())
    work = Path(tempfile.mkdtemp(prefix="sketchface-smoke-"))
    smoke = Smoke(bundle, exe, work, timeout)
    try:
        smoke.step("bundle contents match installer/collect.py", lambda s: check_contents(bundle, exe, s))
        if sys.platform.startswith("linux") and shutil.which("ldd"):
            smoke.step("shared libraries resolve", lambda s: check_linked_libraries(bundle, s))
        inputs_ok = smoke.step("tiny models and photos (from source)", lambda s: build_inputs(work, s))
        smoke.step("frozen CLI starts", lambda s: check_cli_starts(smoke, s))
        if inputs_ok and smoke.step("models import (frozen)", lambda s: import_models(smoke, s)):
            smoke.step("main window opens and paints", lambda s: measure_startup(smoke, s, startup_runs))
            if smoke.step("gallery create + add", lambda s: index_photos(smoke, s)):
                smoke.step("search --sketch", lambda s: search_sketch(smoke, s))
            if smoke.step("sketch embed --backend torch", lambda s: embed_with_torch(smoke, s)) \
                    and smoke.step("reconstruct (FaceID Plus v2 + ControlNet)", lambda s: reconstruct(smoke, s)):
                smoke.step("vary (InstructPix2Pix)", lambda s: vary(smoke, s))
            smoke.step("case new + add-sketch + report (PDF)", lambda s: case_report(smoke, s))
        smoke.step("trainer runs as `SketchFace -m trainer`", lambda s: trainer_runs(smoke, s))
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    startup = next((s.data.get("startup_s") for s in smoke.steps if s.name.startswith("main window")), None)
    return {"ok": bool(smoke.steps) and all(s.ok for s in smoke.steps), "bundle": str(bundle),
            "startup_s": startup, "steps": [asdict(s) for s in smoke.steps], "workdir": str(work) if keep else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dist", type=Path, help="the dist folder (holding SketchFace/) or the bundle folder")
    parser.add_argument("--startup-runs", type=int, default=3, help="GUI starts to time (median is reported)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds allowed per frozen command")
    parser.add_argument("--keep", action="store_true", help="keep the temporary home, models and report")
    parser.add_argument("--json", action="store_true", help="print the result document as JSON at the end")
    args = parser.parse_args(argv)
    result = run(args.dist, args.startup_runs, args.timeout, args.keep)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"\n{'PASSED' if result['ok'] else 'FAILED'}: startup_s = {result['startup_s']}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
