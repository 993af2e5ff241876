"""What the frozen SketchFace bundle must contain and what it leaves out: one list for the spec and the CI check.

PyInstaller follows ``import`` statements. It cannot see what our dependencies load by other means:
files read beside a module (open_clip's model configs and BPE vocabulary, insightface's data and
trusted keys), package metadata read through ``importlib.metadata`` (diffusers, transformers and
huggingface_hub decide at import time whether torch, peft, accelerate... "are installed" that way),
modules imported by name at run time (diffusers' and transformers' lazy modules, our own CLI
sub-commands and lazy re-exports), and shared libraries opened with ``dlopen``. Everything of that
kind is declared here, once: ``installer/sketchface.spec`` builds from these lists and
``tests/installer/test_collect.py`` checks them against the code, so the two cannot drift.

Nothing here imports PyInstaller, torch or any other heavy package at module level: the CI check
imports this module in a second, and the functions that need PyInstaller import it when called.
"""

from __future__ import annotations

import fnmatch
import importlib.metadata
import importlib.util
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP_NAME = "SketchFace"
# The one entry point: no arguments opens the desktop app, arguments run the headless CLI.
ENTRY_SCRIPT = "sketchface_desktop/__main__.py"
# Application icons rendered from resources/icons/app.svg by build.py (Windows .ico, macOS via Pillow).
ICON_ICO = ROOT / "build" / "icons" / "sketchface.ico"

# Our packages are collected whole: engine.cli imports its sub-command modules by name, and
# engine.models / engine.sketch re-export lazily through ``__getattr__`` + ``importlib.import_module``;
# the desktop app starts the trainer as ``sys.executable -m trainer`` (see RUNTIME_HOOKS).
FIRST_PARTY_PACKAGES: tuple[str, ...] = ("engine", "sketchface_desktop", "trainer")
# Run before the entry script: ``SketchFace -m trainer ...`` and multiprocessing children (rthooks/).
RUNTIME_HOOKS: tuple[str, ...] = ("installer/rthooks/pyi_rth_sketchface.py",)


@dataclass(frozen=True)
class DataPackage:
    """Non-Python files of an installed package that the frozen app reads from disk.

    Attributes:
        package: the import name of a top-level package.
        include: glob patterns relative to the package folder (``**`` recurses).
        exclude: glob patterns removed from what ``include`` matched.
        why: what reads these files at run time.
    """

    package: str
    include: tuple[str, ...] = ("**/*",)
    exclude: tuple[str, ...] = ()
    why: str = ""


DATA_PACKAGES: tuple[DataPackage, ...] = (
    DataPackage(
        "open_clip",
        include=("model_configs/*.json", "bpe_simple_vocab_16e6.txt.gz"),
        why="open_clip.factory scans model_configs/ at import (get_model_config('ViT-B-16') for the sketch "
        "encoder and trainer); SimpleTokenizer reads the BPE vocabulary (attribute model's text tower).",
    ),
    DataPackage(
        "skimage",
        include=("data/astronaut.png", "data/camera.png", "data/coffee.png", "data/chelsea.png", "data/rocket.jpg",
                 "data/ihc.png", "data/clock_motion.png", "data/lfw_subset.npy"),
        why="engine.demo's sample gallery: the real photos scikit-image ships (its PyInstaller hook collects "
        "only skimage/data/*.pyi). About 3.3 MB.",
    ),
    DataPackage(
        "insightface",
        exclude=("gui/**",),
        why="model_zoo.model_license reads trusted_keys/*.pem through importlib.resources; data/ holds the "
        "mean shapes and sample images insightface.data loads. gui/ assets belong to insightface's own app.",
    ),
)

# Our own resources folder (icons, style sheet, report fonts), at the top of the bundle: both
# sketchface_desktop.views.assets and engine.cases.images look for ``resources`` beside the top-level
# package (``<parent of sketchface_desktop>/resources``),
# and a top-level folder is also importable as the namespace package ``resources``.
# The locks ship too: the frozen app names the lock it was built from (engine.environment looks in
# sys._MEIPASS/locks) in doctor, every run manifest and every report.
RESOURCE_DIRS: tuple[tuple[str, str], ...] = (("resources", "resources"), ("locks", "locks"))

# Lazily imported modules the static analysis cannot follow. Each entry is collected with all its
# submodules. diffusers resolves ``from diffusers import X`` through ``_LazyModule`` and loads pipeline
# components by the class names written in model_index.json / scheduler_config.json; transformers 5
# builds its import structure by scanning its own folders at run time.
SUBMODULE_PACKAGES: dict[str, str] = {
    "diffusers.pipelines.stable_diffusion": "StableDiffusionPipeline, StableDiffusionInstructPix2PixPipeline, "
    "the safety checker named in SD 1.5 model_index.json",
    "diffusers.pipelines.controlnet": "StableDiffusionControlNetPipeline (lineart-guided reconstruction)",
    "diffusers.models": "UNet2DConditionModel, AutoencoderKL, ControlNetModel, IP-Adapter image projections",
    "diffusers.schedulers": "any scheduler a model's scheduler_config.json names (DDIM, PNDM, Euler...)",
    "diffusers.loaders": "IP-Adapter / LoRA loading mixins used by the FaceID pipeline",
    "transformers.models.clip": "CLIPTextModel, CLIPTokenizer, CLIPImageProcessor, CLIPVisionModelWithProjection",
    "transformers.models.auto": "Auto* classes diffusers uses to load a component of unknown class",
}

# Single modules imported by name (no package walk needed).
HIDDEN_IMPORTS: tuple[str, ...] = (
    "hnswlib",  # C extension imported by engine.gallery.index; listed so a refactor to lazy import keeps it
    "psycopg_binary",  # psycopg 3 loads its C implementation by name at run time (shared galleries)
)

# Distributions whose metadata (``*.dist-info``) is read at run time through importlib.metadata, mostly
# by diffusers / transformers / huggingface_hub / accelerate / peft "is X available, which version"
# checks. Without it those libraries decide torch or peft is missing, or refuse to import.
# "onnxruntime" stands for whichever of onnxruntime / onnxruntime-gpu is installed. Some libraries read
# their own version this way at import (httpx2, superqt, click...). The CUDA wheels' names are read by
# onnxruntime.preload_dlls; they are copied where installed (a CPU-only or Windows build has others).
METADATA_PACKAGES: tuple[str, ...] = (
    "accelerate",
    "click",
    "cuda-bindings",
    "cuda-pathfinder",  # accelerate >= 1.16 reads its version (accelerate/utils/imports.py)
    "diffusers",
    "filelock",
    "ftfy",
    "hf-xet",
    "httpcore2",
    "httpx2",
    "huggingface-hub",
    "imageio",
    "insightface",
    "jinja2",
    "kernels",  # diffusers >= 0.42 checks for it (diffusers/utils/import_utils.py)
    "markupsafe",
    "matplotlib",
    "numpy",
    "nvidia-cublas",
    "nvidia-cuda-cccl",
    "nvidia-cuda-nvrtc",
    "nvidia-cudnn-cu13",
    "nvidia-nccl-cu13",
    "nvidia-nvshmem-cu13",
    "onnx",
    "onnxruntime",
    "open-clip-torch",
    "psycopg",
    "psycopg-pool",
    "opencv-python-headless",
    "packaging",
    "peft",
    "pillow",
    "protobuf",
    "psutil",
    "pydantic",
    "pygments",
    "pyyaml",
    "regex",
    "requests",
    "rich",
    "safetensors",
    "scipy",
    "setuptools",
    "superqt",
    "timm",
    "tokenizers",
    "torch",
    "torchvision",
    "tqdm",
    "transformers",
)

# Shared libraries opened with dlopen (invisible to dependency analysis), as (package folder, glob)
# relative to site-packages. torchvision loads its C++ ops (nms, roi_align: open_clip imports
# torchvision) and image codecs with torch.ops.load_library("_C_stable"/"image_stable"), not import;
# onnxruntime's execution-provider libraries are loaded by name when a session asks for CUDA/TensorRT;
# NVRTC loads its builtins library by name when torch JIT-compiles a kernel on the GPU. (cuDNN's engine
# libraries come from the nvidia.cudnn hook that hook-torch enables.)
DYNAMIC_LIBRARIES: tuple[tuple[str, str], ...] = (
    ("torchvision", "_C*.so"),
    ("torchvision", "_C*.pyd"),
    ("torchvision", "image*.so"),
    ("torchvision", "image*.pyd"),
    ("onnxruntime/capi", "libonnxruntime_providers_*.so"),
    ("onnxruntime/capi", "onnxruntime_providers_*.dll"),
    ("onnxruntime/capi", "libonnxruntime_providers_*.dylib"),
    ("nvidia/cu13/lib", "libnvrtc-builtins.so*"),
    ("nvidia/cuda_nvrtc/lib", "libnvrtc-builtins.so*"),
)

# Modules left out, each with why it is safe. The saving measured on this machine (Linux x86-64,
# torch 2.15 CUDA build, one-dir) is in installer/README.md; build.py --no-excludes re-measures it.
EXCLUDES: dict[str, str] = {
    "triton": "GPU kernel compiler for torch.compile/inductor; the app never compiles a model and torch "
    "checks for triton (torch.utils._triton.has_triton, torch._native) and falls back without it",
    "tensorboard": "training logs only (the [train] extra); the trainer runs from a source install",
    "torch.utils.tensorboard": "imports tensorboard; training only",
    "tkinter": "no Tk user interface (PIL.ImageTk, matplotlib backends)",
    "_tkinter": "Tk's C extension, with tkinter",
    "IPython": "interactive shell integration of tqdm/transformers, not used",
    "pytest": "test runner; torch.testing._internal and transformers' testing utils import it optionally",
    "_pytest": "pytest's implementation",
    "pytestqt": "pytest-qt, test only",
    "hypothesis": "test only (optional import of torch.testing._internal)",
    "expecttest": "test only (optional import of torch.testing._internal)",
    "mypy": "type checker, development only",
    "mypyc": "mypy's compiler, development only",
    "PyInstaller": "the build tool itself",
    "pip": "installer, not used at run time",
    "onnxruntime.transformers": "ORT's model-optimisation tool scripts (needs torch/transformers), not used",
    "onnxruntime.quantization": "ORT's quantisation tool, not used at run time",
    "onnxruntime.tools": "ORT's model conversion tools, not used at run time",
    "PySide6.QtQml": "no QML; superqt's qtpy shims reference it optionally",
    "PySide6.QtQuick": "no Qt Quick",
    "PySide6.QtQuickWidgets": "no Qt Quick",
    "PySide6.QtNetwork": "no Qt networking (downloads use httpx in the engine)",
    "PySide6.QtOpenGL": "no OpenGL views",
    "PySide6.QtOpenGLWidgets": "no OpenGL views",
    "PySide6.QtDBus": "no D-Bus integration",
    "PySide6.QtDesigner": "Qt Designer plugins, development only",
    "PySide6.QtHelp": "no Qt Help viewer",
    "PySide6.QtTest": "test only",
    "PySide6.QtSql": "SQLite is used through Python's sqlite3",
    "PySide6.QtUiTools": "no .ui files loaded at run time",
    "PySide6.QtXml": "not used",
    "PySide6.QtConcurrent": "workers use QThread and Python threads",
    "PySide6.QtPdf": "PDF reports are written with fpdf2, not read",
    "PySide6.QtPdfWidgets": "no PDF viewer",
}

# Binaries PyInstaller's Qt hook collects that the bundle is better without (bundle paths, globs). Libraries
# only they linked to are pruned with them (see prune_binaries).
DROPPED_BINARIES: dict[str, str] = {
    "PySide6/Qt/plugins/platformthemes/libqgtk3.so": "GTK3 platform theme: it drags in the build machine's GTK "
    "stack (cairo, pango, atk, gdk-pixbuf) which would then be mixed with the target's libgtk-3; the app draws "
    "its own Fusion style and Qt's dialogs work without it",
}

_SKIP_DATA_SUFFIXES = (".py", ".pyc", ".pyo")


@dataclass
class AnalysisInputs:
    """The keyword arguments the spec passes to PyInstaller's ``Analysis``."""

    datas: list[tuple[str, str]] = field(default_factory=list)
    binaries: list[tuple[str, str]] = field(default_factory=list)
    hiddenimports: list[str] = field(default_factory=list)
    excludes: list[str] = field(default_factory=list)


def app_version(root: Path = ROOT) -> str:
    """The product version, from pyproject.toml (the one place it is written)."""
    import tomllib

    with open(root / "pyproject.toml", "rb") as fh:
        return str(tomllib.load(fh)["project"]["version"])


def normalize_distribution(name: str) -> str:
    """PEP 503 name (``Huggingface_Hub`` -> ``huggingface-hub``), so lists compare however they are spelled."""
    return re.sub(r"[-_.]+", "-", name).lower()


def site_packages() -> Path:
    """The site-packages folder of the environment being frozen (where torch is installed)."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("torch is not installed in this environment: build from the project's .venv")
    return Path(next(iter(spec.submodule_search_locations))).parent


def package_dir(package: str) -> Path:
    """The folder of a top-level package, found without importing it (importing open_clip costs seconds)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{package} is not an installed package", name=package)
    return Path(next(iter(spec.submodule_search_locations)))


def _glob_files(root: Path, patterns: tuple[str, ...]) -> set[Path]:
    """Files matching any pattern; ``dir/**`` means every file below dir (pathlib's ``**`` alone matches folders)."""
    patterns = tuple(f"{p}/*" if p.endswith("**") else p for p in patterns)
    return {p for pattern in patterns for p in root.glob(pattern) if p.is_file()}


def data_files(pkg: DataPackage) -> list[tuple[str, str]]:
    """(source file, destination folder) pairs for ``Analysis(datas=...)``, laid out as in site-packages."""
    root = package_dir(pkg.package)
    chosen = _glob_files(root, pkg.include) - _glob_files(root, pkg.exclude)
    chosen = {p for p in chosen if p.suffix not in _SKIP_DATA_SUFFIXES and "__pycache__" not in p.parts}
    dest_root = Path(pkg.package)
    return sorted((str(p), (dest_root / p.parent.relative_to(root)).as_posix()) for p in chosen)


def resource_files(root: Path = ROOT) -> list[tuple[str, str]]:
    """Every file under our resource folders, for ``Analysis(datas=...)``."""
    out: list[tuple[str, str]] = []
    for src, dest in RESOURCE_DIRS:
        base = root / src
        for p in sorted(base.rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts:
                out.append((str(p), (Path(dest) / p.parent.relative_to(base)).as_posix()))
    return out


def onnxruntime_distribution() -> str:
    """Which onnxruntime distribution is installed (tools/dev.py installs exactly one of them)."""
    for name in ("onnxruntime-gpu", "onnxruntime", "onnxruntime-directml"):
        if is_installed(name):
            return name
    raise RuntimeError("Neither onnxruntime-gpu nor onnxruntime is installed")


def is_installed(distribution: str) -> bool:
    """True if the distribution's metadata is present in this environment."""
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def metadata_distributions(installed_only: bool = False) -> list[str]:
    """METADATA_PACKAGES with ``onnxruntime`` resolved to the installed variant, normalised.

    Args:
        installed_only: drop the distributions this environment lacks (what the build can copy).
    """
    names = [onnxruntime_distribution() if n == "onnxruntime" else n for n in METADATA_PACKAGES]
    out = sorted({normalize_distribution(n) for n in names})
    return [n for n in out if is_installed(n)] if installed_only else out


def dynamic_library_files() -> list[tuple[str, str]]:
    """(library, destination folder) pairs for the dlopen-ed libraries present in this environment."""
    site = site_packages()
    out: list[tuple[str, str]] = []
    for folder, pattern in DYNAMIC_LIBRARIES:
        for p in sorted((site / folder).glob(pattern)):
            if p.is_file():
                out.append((str(p), folder))
    return out


def excluded_modules(enabled: bool = True) -> list[str]:
    """The module names to exclude (none with ``enabled=False``, to measure what the excludes save)."""
    return sorted(EXCLUDES) if enabled else []


def analysis_inputs(excludes: bool = True) -> AnalysisInputs:
    """Everything the spec hands to ``Analysis``; imports PyInstaller, so call it only when building."""
    from PyInstaller.utils.hooks import collect_submodules, copy_metadata

    inputs = AnalysisInputs()
    for pkg in DATA_PACKAGES:
        inputs.datas += data_files(pkg)
    inputs.datas += resource_files()
    for dist in metadata_distributions(installed_only=True):
        inputs.datas += copy_metadata(dist)
    inputs.binaries += dynamic_library_files()
    skip = tuple(excluded_modules(excludes))

    def wanted(name: str) -> bool:
        return not any(name == x or name.startswith(x + ".") for x in skip)

    for package in (*FIRST_PARTY_PACKAGES, *SUBMODULE_PACKAGES):
        inputs.hiddenimports += collect_submodules(package, filter=wanted)
    inputs.hiddenimports += [m for m in HIDDEN_IMPORTS if wanted(m)]
    inputs.hiddenimports = sorted(set(inputs.hiddenimports))
    inputs.excludes = list(skip)
    return inputs


def _dropped(dest: str) -> bool:
    return any(fnmatch.fnmatch(dest, pattern) for pattern in DROPPED_BINARIES)


def prune_binaries(binaries: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """Remove DROPPED_BINARIES from Analysis' binaries, and the libraries that only they needed.

    Only libraries the dropped ones link to are candidates, so a library loaded by name at run time
    (ctypes, dlopen) is never pruned by mistake. Dependencies are read with PyInstaller's own resolver
    (``ldd`` on Linux), which lists them transitively.
    """
    dropped = [b for b in binaries if _dropped(b[0])]
    kept = [b for b in binaries if not _dropped(b[0])]
    if not dropped or not sys.platform.startswith("linux"):
        return kept
    from PyInstaller.depend.bindepend import get_imports

    def needs(entries: list[tuple[str, str, str]]) -> set[str]:
        return {Path(name).name for _dest, src, kind in entries if kind in ("BINARY", "EXTENSION")
                for name, _path in get_imports(src)}

    top_level = {Path(dest).name: (dest, src, kind) for dest, src, kind in kept if "/" not in dest}
    candidates = {name for name in needs(dropped) if name in top_level and not name.startswith("libpython")}
    still_needed = needs([b for b in kept if Path(b[0]).name not in candidates])
    orphans = candidates - still_needed
    return [b for b in kept if Path(b[0]).name not in orphans
            and not (b[2] == "SYMLINK" and Path(b[1]).name in orphans)]


def describe() -> str:
    """A readable summary of the lists (``python installer/collect.py``), for reviewing a change."""
    lines = [f"entry: {ENTRY_SCRIPT} -> {APP_NAME}", "first-party packages: " + ", ".join(FIRST_PARTY_PACKAGES)]
    lines += [f"data: {p.package} {p.include} minus {p.exclude}: {len(data_files(p))} files" for p in DATA_PACKAGES]
    lines.append(f"resources: {len(resource_files())} files")
    lines += [f"submodules: {k}  ({v})" for k, v in SUBMODULE_PACKAGES.items()]
    lines.append("metadata: " + ", ".join(metadata_distributions()))
    lines.append(f"dlopen libraries: {len(dynamic_library_files())} files")
    lines += [f"exclude: {k}  ({v})" for k, v in EXCLUDES.items()]
    lines += [f"dropped binary: {k}  ({v})" for k, v in DROPPED_BINARIES.items()]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(describe() + "\n")
