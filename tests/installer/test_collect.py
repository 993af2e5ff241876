"""The frozen app's collection lists (installer/collect.py) cover what the code loads: a CI check without a build.

The full PyInstaller build takes 15+ minutes, so CI does not run it. These tests derive what the bundle
needs from the code itself (our sources, and the metadata checks of the libraries we ship) and fail
when someone adds an open_clip config, a diffusers pipeline, a lazily imported module or a runtime
metadata check that the spec would not collect. ``python installer/build.py`` + ``installer/smoke.py``
are the full check (installer/README.md).
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import importlib.util
import re
import sys
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

from engine import environment

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "installer"))
import collect  # noqa: E402 - installer/collect.py

PRODUCT_PACKAGES = ("engine", "sketchface_desktop", "trainer")


def _py_files(*packages: str) -> Iterator[Path]:
    for package in packages:
        folder = ROOT / package
        if folder.is_dir():
            yield from (p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


@cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _string_constants(tree: ast.AST) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.value


def _covered(module: str, packages: list[str] | tuple[str, ...] | dict[str, str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


# ----------------------------------------------------------------------------- the spec itself
def test_spec_builds_from_collect_lists_only() -> None:
    """The spec parses, imports installer/collect.py and hands Analysis only collect's lists (no private copy)."""
    spec = ROOT / "installer" / "sketchface.spec"
    tree = ast.parse(spec.read_text(encoding="utf-8"), filename=str(spec))
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert "collect" in imported
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    analysis = [c for c in calls if c.func.id == "Analysis"]  # type: ignore[union-attr]
    assert len(analysis) == 1
    kwargs = {k.arg: ast.unparse(k.value) for k in analysis[0].keywords}
    for key in ("datas", "binaries", "hiddenimports", "excludes"):
        assert kwargs[key] == f"_inputs.{key}", f"Analysis({key}=...) must come from collect.analysis_inputs()"
    assert "collect.analysis_inputs" in spec.read_text(encoding="utf-8")
    assert "collect.ENTRY_SCRIPT" in ast.unparse(analysis[0].args[0])


def test_entry_script_is_the_product_entry_point() -> None:
    """The frozen executable starts where `sketchface` (pyproject's script) starts."""
    with open(ROOT / "pyproject.toml", "rb") as fh:
        scripts = tomllib.load(fh)["project"]["scripts"]
    module, _, func = scripts["sketchface"].partition(":")
    assert module.replace(".", "/") + ".py" == collect.ENTRY_SCRIPT
    entry = _tree(ROOT / collect.ENTRY_SCRIPT)
    assert any(isinstance(n, ast.FunctionDef) and n.name == func for n in entry.body)
    assert "__main__" in set(_string_constants(entry)), "the entry script must call main() when run as a script"


# ----------------------------------------------------------------------------- data files
def _open_clip_names() -> set[str]:
    return {p.stem for p in (collect.package_dir("open_clip") / "model_configs").glob("*.json")}


def test_every_open_clip_config_the_product_names_is_collected() -> None:
    """A config name in our code or trainer configs (e.g. EncoderConfig's default ViT-B-16) ships in the bundle."""
    known = _open_clip_names()
    used: set[str] = set()
    for path in _py_files(*PRODUCT_PACKAGES):
        used |= known & set(_string_constants(_tree(path)))
    for folder in (ROOT / "trainer", ROOT / "engine"):
        for path in (p for ext in ("toml", "json", "yaml", "yml") for p in folder.rglob(f"*.{ext}")):
            used |= known & set(re.findall(r"[\w.-]+", path.read_text(encoding="utf-8")))
    assert "ViT-B-16" in used, "the scan no longer finds the sketch encoder's default architecture"
    spec = next(p for p in collect.DATA_PACKAGES if p.package == "open_clip")
    collected = {(Path(src).name, dest) for src, dest in collect.data_files(spec)}
    missing = sorted(n for n in used if (f"{n}.json", "open_clip/model_configs") not in collected)
    assert not missing, f"open_clip configs used but not collected: {missing}"
    assert ("bpe_simple_vocab_16e6.txt.gz", "open_clip") in collected, "open_clip's tokenizer vocabulary"


def test_insightface_data_of_every_imported_subpackage_is_collected() -> None:
    """insightface/__init__ imports model_zoo, utils, app, data...: their non-Python files must all ship."""
    pkg = collect.package_dir("insightface")
    init = _tree(pkg / "__init__.py")
    imported = {a.name for n in init.body if isinstance(n, ast.ImportFrom) and n.level == 1 and not n.module
                for a in n.names}
    assert {"model_zoo", "data"} <= imported
    needed = {p for sub in imported for p in (pkg / sub).rglob("*")
              if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts}
    assert any(p.suffix == ".pem" for p in needed), "model_zoo's trusted keys (read via importlib.resources)"
    spec = next(p for p in collect.DATA_PACKAGES if p.package == "insightface")
    collected = {Path(src) for src, _ in collect.data_files(spec)}
    missing = sorted(str(p.relative_to(pkg)) for p in needed - collected)
    assert not missing, f"insightface data files not collected: {missing}"


def test_resources_ship_as_a_top_level_resources_folder() -> None:
    """Every file of resources/ ships under resources/, where assets.py and the report code look for it; the
    locks ship under locks/, where engine.environment looks in a frozen bundle."""
    expected = {p.relative_to(ROOT).as_posix() for folder in ("resources", "locks")
                for p in (ROOT / folder).rglob("*") if p.is_file()}
    assert f"locks/{environment.lock_name()}" in expected
    shipped = {f"{dest}/{Path(src).name}" for src, dest in collect.resource_files()}
    assert expected and shipped == expected
    for locator in (ROOT / "sketchface_desktop" / "views" / "assets.py", ROOT / "engine" / "paths.py"):
        if locator.is_file():
            assert "resources" in set(_string_constants(_tree(locator))), f"{locator} no longer looks for resources/"


def test_onnxruntime_provider_libraries_are_collected() -> None:
    """The execution-provider libraries onnxruntime dlopens (CUDA, TensorRT, shared) are in the binaries list."""
    capi = collect.package_dir("onnxruntime") / "capi"
    providers = {p.name for p in capi.iterdir() if "providers" in p.name and p.suffix in (".so", ".dll", ".dylib")}
    assert providers, "no provider libraries found in the installed onnxruntime"
    collected = {Path(src).name for src, _ in collect.dynamic_library_files()}
    assert providers <= collected


def test_libraries_torchvision_loads_by_name_are_collected() -> None:
    """torchvision loads its C++ ops with torch.ops.load_library, not import: PyInstaller cannot see them.

    Without _C_stable, ``import torchvision`` (open_clip imports it) fails with "operator
    torchvision::nms does not exist" in the frozen app.
    """
    pkg = collect.package_dir("torchvision")
    names: set[str] = set()
    for path in pkg.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if "_load_library(" in text:
            for node in ast.walk(ast.parse(text)):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "_load_library"
                        and node.args and isinstance(node.args[0], ast.Constant)):
                    names.add(node.args[0].value)
    assert "_C_stable" in names or "_C" in names, "the scan no longer finds torchvision's ops library"
    collected = {Path(src).name.split(".")[0] for src, dest in collect.dynamic_library_files() if dest == "torchvision"}
    installed = {p.name.split(".")[0] for p in pkg.iterdir() if p.suffix in (".so", ".pyd")}
    missing = sorted(n for n in names if n in installed and n not in collected)
    assert not missing, f"add to collect.DYNAMIC_LIBRARIES: {missing}"


# ----------------------------------------------------------------------------- lazily imported modules
def _library_names_used(library: str) -> dict[str, str]:
    """Names our code imports from ``library``, each with the module it is imported from.

    ``from diffusers import X`` and ``diffusers.X`` give the top-level package (resolved through the
    lazy tables); ``from diffusers.pipelines.a.b import X`` names its defining module itself.
    """
    names: dict[str, str] = {}
    for path in _py_files(*PRODUCT_PACKAGES):
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == library:
                names.update({a.name: node.module for a in node.names if a.name[:1].isupper()})
            elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                  and node.value.id == library and node.attr[:1].isupper()):
                names.setdefault(node.attr, library)
    return names


def _defining_module(library: str, name: str) -> str:
    """The module that defines ``name``, found through the library's lazy import tables (no heavy import)."""
    module = importlib.import_module(library)
    path = library
    for _ in range(6):
        table = getattr(module, "_class_to_module", None)
        if not table or name not in table:
            return path
        path = f"{path}.{table[name]}"
        spec = importlib.util.find_spec(path)
        if spec is None or not spec.submodule_search_locations:
            return path
        module = importlib.import_module(path)
    return path


@pytest.mark.parametrize("library", ["diffusers", "transformers"])
def test_every_lazy_class_the_engine_uses_is_collected(library: str) -> None:
    """Each diffusers pipeline/model and transformers class in our code lives in a collected subpackage."""
    used = _library_names_used(library)
    if library == "diffusers":
        assert "StableDiffusionPipeline" in used, "the scan no longer finds engine.generate's pipeline"
    uncovered = {n: m for n, where in sorted(used.items())
                 if not _covered(m := (_defining_module(library, n) if where == library else where),
                                 collect.SUBMODULE_PACKAGES)}
    assert not uncovered, f"add these modules' packages to collect.SUBMODULE_PACKAGES: {uncovered}"


def test_the_pipelines_the_product_ships_resolve_into_collected_packages() -> None:
    """The three pipelines reconstruction and editing use are collected, whether or not the code names them yet."""
    for name in ("StableDiffusionPipeline", "StableDiffusionControlNetPipeline",
                 "StableDiffusionInstructPix2PixPipeline"):
        module = _defining_module("diffusers", name)
        assert module.startswith("diffusers.pipelines.") and _covered(module, collect.SUBMODULE_PACKAGES), module


def test_first_party_modules_imported_by_name_are_collected() -> None:
    """Module names in strings (engine.cli's sub-commands, lazy re-exports) exist and are inside collected packages."""
    named: set[str] = set()
    pattern = re.compile(r"^(?:engine|sketchface_desktop|trainer)(?:\.[a-z_][a-z0-9_]*)+$")
    for path in _py_files("engine", "sketchface_desktop"):
        named |= {s for s in _string_constants(_tree(path)) if pattern.match(s)}
    assert "engine.cli.models" in named, "the scan no longer sees engine.cli's command modules"
    outside = sorted(n for n in named if not _covered(n, collect.FIRST_PARTY_PACKAGES))
    assert not outside, f"imported by name but not collected: {outside}"
    for name in named:
        rel = Path(*name.split("."))
        optional = name.startswith("engine.cli.")  # engine.cli skips absent command modules
        exists = (ROOT / rel.with_suffix(".py")).is_file() or (ROOT / rel / "__init__.py").is_file()
        assert exists or optional, f"{name} is named in the code but does not exist"


def test_modules_the_app_runs_with_dash_m_also_run_in_the_frozen_app() -> None:
    """``[sys.executable, "-m", "trainer", ...]`` works frozen: the runtime hook runs the module, and it is bundled."""
    launched: set[str] = set()
    for path in _py_files("sketchface_desktop", "engine"):
        for node in ast.walk(_tree(path)):
            if isinstance(node, (ast.List, ast.Tuple)):
                values = [e.value if isinstance(e, ast.Constant) else None for e in node.elts]
                launched |= {b for a, b in zip(values, values[1:], strict=False) if a == "-m" and isinstance(b, str)}
    hook = ROOT / "installer" / "rthooks" / "pyi_rth_sketchface.py"
    assert hook.relative_to(ROOT).as_posix() in collect.RUNTIME_HOOKS
    runnable = next(set(_string_constants(n.value)) for n in _tree(hook).body
                    if isinstance(n, ast.Assign) and ast.unparse(n.targets[0]) == "RUNNABLE")
    assert launched <= runnable, f"add to RUNNABLE in {hook.name}: {sorted(launched - runnable)}"
    assert all(_covered(m, collect.FIRST_PARTY_PACKAGES) for m in launched | runnable)


# ----------------------------------------------------------------------------- package metadata
_CHECK_FUNCS = {"_is_package_available", "is_package_available", "_is_distribution_installed", "_get_version",
                "require_version", "require_version_core", "_get_package_version"}
_PREFILTER = (b"_is_package_available", b"require_version", b"_get_package_version")


def _may_check_metadata(data: bytes) -> bool:
    """Cheap byte test before parsing: most of torch says "metadata" about tensors, not packages."""
    return (b"importlib" in data and b"metadata" in data) or any(token in data for token in _PREFILTER)
_SKIP_PARTS = {"tests", "test", "testing", "commands", "cli", "benchmarks", "examples"}


def _requirement_name(text: str) -> str:
    return collect.normalize_distribution(re.split(r"[<>=!~ \[;(]", text, maxsplit=1)[0])


@cache
def _shipped_distributions() -> frozenset[str]:
    """Distributions the bundle carries: pyproject's dependencies (+ insightface, onnxruntime) and their requirements."""
    from packaging.requirements import Requirement

    with open(ROOT / "pyproject.toml", "rb") as fh:
        todo = list(tomllib.load(fh)["project"]["dependencies"])
    todo += ["insightface", collect.onnxruntime_distribution()]
    excluded_tops = {x for x in collect.EXCLUDES if "." not in x}
    tops = importlib.metadata.packages_distributions()
    dists_tops: dict[str, set[str]] = {}
    for top, dists in tops.items():
        for d in dists:
            dists_tops.setdefault(collect.normalize_distribution(d), set()).add(top)
    seen: set[str] = set()
    while todo:
        req = Requirement(todo.pop())
        name = collect.normalize_distribution(req.name)
        if name in seen or (req.marker and not req.marker.evaluate({"extra": ""})):
            continue
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        if dists_tops.get(name) and dists_tops[name] <= excluded_tops:
            continue
        seen.add(name)
        todo += dist.requires or []
    return frozenset(seen)


def _checked_names(tree: ast.Module) -> set[str]:
    """Names passed to importlib.metadata lookups and availability checks in one module.

    A literal argument is taken as is; a computed one (``for pkg in candidates: version(pkg)``) makes
    every string in the module's literal tuples/lists/dicts a candidate: generous, since an extra
    dist-info folder costs a few kilobytes and a missing one breaks an import.
    """
    bare = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
            and n.module in ("importlib.metadata", "importlib_metadata") for a in n.names}
    names: set[str] = set()
    indirect = False
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        if isinstance(func, ast.Attribute):
            hit = func.attr in _CHECK_FUNCS or (func.attr in ("version", "distribution", "metadata", "requires")
                                                and "metadata" in ast.unparse(func.value))
        else:
            hit = isinstance(func, ast.Name) and (func.id in _CHECK_FUNCS or func.id in bare)
        if not hit:
            continue
        arg = node.args[0]
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            names.add(arg.value)
        else:
            indirect = True
    if indirect:
        for node in ast.walk(tree):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set, ast.Dict)):
                names |= set(_string_constants(node))
    return names


def test_every_runtime_metadata_check_of_shipped_code_finds_its_metadata() -> None:
    """Package metadata looked up at run time by the libraries we ship (diffusers' torch/peft checks,
    transformers' dependency check, self-version lookups) is in collect.METADATA_PACKAGES."""
    shipped = _shipped_distributions()
    tops = importlib.metadata.packages_distributions()
    import_to_dists = {top: {collect.normalize_distribution(d) for d in ds} for top, ds in tops.items()}
    site = collect.site_packages()
    shipped_tops = sorted({t for t, ds in import_to_dists.items() if ds & shipped and (site / t).is_dir()})
    needed: dict[str, str] = {}
    for top in shipped_tops:
        for path in (site / top).rglob("*.py"):
            rel = path.relative_to(site)
            if _SKIP_PARTS & set(rel.parts) or path.name == "testing_utils.py":
                continue
            data = path.read_bytes()
            if not _may_check_metadata(data):
                continue
            for raw in _checked_names(ast.parse(data, filename=str(path))):
                candidates = {_requirement_name(raw)} | import_to_dists.get(raw, set())
                for dist in candidates & shipped:
                    needed.setdefault(dist, str(rel))
    assert {"torch", "transformers", "peft"} <= set(needed), "the scan no longer finds diffusers' checks"
    declared = set(collect.metadata_distributions())
    missing = {d: where for d, where in sorted(needed.items()) if d not in declared}
    assert not missing, f"add to collect.METADATA_PACKAGES (distribution: where it is read): {missing}"


# ----------------------------------------------------------------------------- excludes
def test_nothing_excluded_is_imported_by_our_code() -> None:
    """An excluded module may be an optional import of a library, never an import of ours."""
    offenders: list[str] = []
    for path in _py_files(*PRODUCT_PACKAGES[:2]):
        for node in ast.walk(_tree(path)):
            mods = ([a.name for a in node.names] if isinstance(node, ast.Import)
                    else [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
            offenders += [f"{path.relative_to(ROOT)}: {m}" for m in mods if _covered(m, collect.EXCLUDES)]
    assert not offenders


def test_excludes_and_collected_modules_do_not_overlap() -> None:
    """A module cannot be both collected on purpose and excluded (the exclude would silently win)."""
    wanted = [*collect.FIRST_PARTY_PACKAGES, *collect.SUBMODULE_PACKAGES, *collect.HIDDEN_IMPORTS,
              *(p.package for p in collect.DATA_PACKAGES)]
    clashes = [w for w in wanted if _covered(w, collect.EXCLUDES)]
    assert not clashes
    assert all(reason.strip() for reason in collect.EXCLUDES.values()), "every exclude says why it is safe"
