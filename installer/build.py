"""Build the one-dir SketchFace bundle with PyInstaller and report its size by component.

    python installer/build.py                      # -> dist/SketchFace/ + dist/SketchFace.size.json
    python installer/build.py --no-excludes --dist build/noexcl   # the same without collect.EXCLUDES
    python installer/build.py --report-only --compare build/noexcl/SketchFace   # what the excludes save

It always builds from the project's environment (``.venv``): the bundle contains exactly the
packages the tests ran against. PyInstaller is installed into that environment when missing. The
build runs at a lower CPU priority (``--nice``) so a shared workstation stays usable.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "installer" / "sketchface.spec"
APP_NAME = "SketchFace"

# Bundle paths by component, first match wins: folder prefixes ("torch/") relative to the bundle's
# _internal folder, and name prefixes ("libcudart") of libraries PyInstaller put at its top level.
COMPONENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cuda", ("nvidia/", "cuda/", "libcudart", "libcublas", "libcudnn", "libnccl", "libnvrtc", "libnvJitLink",
              "libcusparse", "libcufft", "libcusolver", "libcurand", "libnvshmem", "libcufile", "libcupti",
              "cuda_bindings", "cuda_pathfinder")),
    ("torch", ("torch/", "torchvision/", "torchvision.libs/", "torchgen/", "functorch/", "libtorch", "libc10",
               "libgomp", "libshm")),
    ("qt", ("PySide6/", "shiboken6/", "libQt6", "libicu")),
    ("onnxruntime", ("onnxruntime/", "libonnxruntime")),
    ("diffusers+transformers", ("diffusers/", "transformers/", "tokenizers/", "safetensors/", "huggingface_hub/",
                                "peft/", "accelerate/", "open_clip/", "timm/", "hf_xet/")),
    ("python+pyz", ("base_library.zip", "lib-dynload/", "libpython", f"../{APP_NAME}")),
)


def venv_python() -> Path | None:
    """The project's virtual environment interpreter, if there is one."""
    for rel in ("bin/python", "Scripts/python.exe"):
        candidate = ROOT / ".venv" / rel
        if candidate.is_file():
            return candidate
    return None


def ensure_project_env(argv: list[str]) -> None:
    """Re-run this script under the project's venv when started from another interpreter."""
    py = venv_python()
    if py is None or Path(sys.prefix).resolve() == (ROOT / ".venv").resolve():
        return
    sys.exit(subprocess.call([str(py), str(Path(__file__).resolve()), *argv]))


def ensure_pyinstaller() -> None:
    """Install PyInstaller into the running environment if it is missing (build-time tool only)."""
    import importlib.util

    if importlib.util.find_spec("PyInstaller") is None:
        print("PyInstaller is not installed in this environment; installing it", flush=True)
        subprocess.check_call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "pyinstaller"])


def render_icons(out_dir: Path) -> Path:
    """Render resources/icons/app.svg to a multi-size .ico (Windows exe and installer, macOS bundle)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QRectF, Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication([])
    renderer = QSvgRenderer(str(ROOT / "resources" / "icons" / "app.svg"))
    image = QImage(256, 256, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter, QRectF(0, 0, 256, 256))
    painter.end()
    out_dir.mkdir(parents=True, exist_ok=True)
    ico = out_dir / "sketchface.ico"
    png = out_dir / "sketchface.png"
    image.save(str(png), "PNG")
    from PIL import Image  # Qt's ico writer keeps one size; Pillow writes the sizes Windows asks for

    with Image.open(png) as im:
        im.save(ico, sizes=[(16, 16), (24, 24), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)])
    return ico


def run_pyinstaller(dist: Path, work: Path, no_excludes: bool, nice: int) -> float:
    """Run PyInstaller on the spec; returns the wall time in seconds."""
    cmd = [sys.executable, "-m", "PyInstaller", str(SPEC), "--noconfirm", "--clean",
           "--distpath", str(dist), "--workpath", str(work), "--log-level", "WARN"]
    if no_excludes:
        cmd += ["--", "--no-excludes"]
    print("+ " + " ".join(cmd), flush=True)

    def lower_priority() -> None:
        os.nice(nice)

    start = time.monotonic()
    preexec = lower_priority if nice and hasattr(os, "nice") else None
    subprocess.run(cmd, check=True, cwd=ROOT, preexec_fn=preexec)
    return time.monotonic() - start


def component_of(rel: str) -> str:
    """The component a bundle file belongs to (``rel`` is relative to _internal, '/'-separated)."""
    top_level_file = "/" not in rel.removeprefix("../")
    for name, prefixes in COMPONENTS:
        for prefix in prefixes:
            if prefix.endswith("/") and rel.startswith(prefix):
                return name
            if not prefix.endswith("/") and top_level_file and rel.removeprefix("../").startswith(prefix.removeprefix("../")):
                return name
    return "rest"


def _bundle_files(bundle: Path) -> list[tuple[str, int]]:
    """(path relative to _internal, size) of every regular file; symlinks are not counted twice."""
    internal = bundle / "_internal"
    base = internal if internal.is_dir() else bundle
    out: list[tuple[str, int]] = []
    for dirpath, _dirs, files in os.walk(bundle):
        for name in files:
            path = Path(dirpath) / name
            if path.is_symlink() or not path.is_file():
                continue
            rel = os.path.relpath(path, base).replace(os.sep, "/")
            out.append((rel, path.stat().st_size))
    return out


def size_report(bundle: Path) -> dict[str, object]:
    """Bytes per component and per top-level folder of a built bundle."""
    by_component: dict[str, int] = defaultdict(int)
    by_top: dict[str, int] = defaultdict(int)
    total = 0
    files = _bundle_files(bundle)
    for rel, size in files:
        by_component[component_of(rel)] += size
        top = rel.split("/", 1)[0] if "/" in rel else "(top-level files)"
        by_top[top] += size
        total += size
    order = [name for name, _ in COMPONENTS] + ["rest"]
    return {
        "bundle": str(bundle),
        "total_bytes": total,
        "files": len(files),
        "components": {name: by_component.get(name, 0) for name in order},
        "top_folders": dict(sorted(by_top.items(), key=lambda kv: -kv[1])[:25]),
    }


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f}"


def format_table(report: dict[str, object], baseline: dict[str, object] | None = None) -> str:
    """A plain-text table of the component sizes (and the saving against a baseline bundle)."""
    comps: dict[str, int] = report["components"]  # type: ignore[assignment]
    total = int(report["total_bytes"])  # type: ignore[arg-type]
    base: dict[str, int] = baseline["components"] if baseline else {}  # type: ignore[assignment]
    head = f"{'component':<24}{'MB':>12}{'share':>8}" + (f"{'baseline MB':>14}{'saved MB':>11}" if baseline else "")
    lines = [head, "-" * len(head)]
    for name, size in [*comps.items(), ("total", total)]:
        row = f"{name:<24}{_mb(size):>12}{size / total:>8.1%}"
        if baseline:
            b = int(baseline["total_bytes"]) if name == "total" else base.get(name, 0)  # type: ignore[arg-type]
            row += f"{_mb(b):>14}{_mb(b - size):>11}"
        lines.append(row)
    return "\n".join(lines)


def exclude_savings(report: dict[str, object], baseline: dict[str, object]) -> dict[str, int]:
    """Bytes per top-level folder present (or larger) in the baseline: what the excludes removed."""
    now: dict[str, int] = report["top_folders"]  # type: ignore[assignment]
    before: dict[str, int] = baseline["top_folders"]  # type: ignore[assignment]
    diff = {k: v - now.get(k, 0) for k, v in before.items() if v - now.get(k, 0) > 100_000}
    return dict(sorted(diff.items(), key=lambda kv: -kv[1]))


def main(argv: list[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="output folder (bundle goes in DIST/SketchFace)")
    parser.add_argument("--work", type=Path, default=None, help="PyInstaller work folder (default build/pyinstaller*)")
    parser.add_argument("--no-excludes", action="store_true", help="build without collect.EXCLUDES (to measure them)")
    parser.add_argument("--nice", type=int, default=10, help="CPU priority increment for the build (POSIX)")
    parser.add_argument("--report-only", action="store_true", help="do not build; report on an existing bundle")
    parser.add_argument("--compare", type=Path, help="a baseline bundle (e.g. built with --no-excludes) to diff against")
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    args = parser.parse_args(args_list)
    ensure_project_env(args_list)

    bundle = args.dist / APP_NAME
    build_s = None
    if not args.report_only:
        ensure_pyinstaller()
        render_icons(ROOT / "build" / "icons")
        work = args.work or ROOT / "build" / ("pyinstaller-noexcl" if args.no_excludes else "pyinstaller")
        build_s = run_pyinstaller(args.dist, work, args.no_excludes, args.nice)
    if not bundle.is_dir():
        print(f"error: no bundle at {bundle}", file=sys.stderr)
        return 1
    report = size_report(bundle)
    report["build_s"] = round(build_s, 1) if build_s is not None else None
    report["excludes"] = not args.no_excludes
    baseline = size_report(args.compare) if args.compare else None
    if baseline:
        report["baseline"] = {"bundle": baseline["bundle"], "total_bytes": baseline["total_bytes"],
                              "components": baseline["components"]}
        report["saved_by_folder"] = exclude_savings(report, baseline)
    (args.dist / f"{APP_NAME}.size.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_table(report, baseline))
        if baseline:
            print("\nsaved by folder (MB): " + ", ".join(f"{k} {_mb(v)}" for k, v in report["saved_by_folder"].items()))
        if build_s is not None:
            print(f"\nbuilt in {build_s / 60:.1f} min -> {bundle}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
