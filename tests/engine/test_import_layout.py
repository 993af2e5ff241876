"""The engine core imports its own modules at module level.

A function-level ``import engine...`` hides the module graph from readers, lint-imports and the cycle check,
and re-runs the import machinery on every call. One may stay inside a function only where hoisting it would
create an import-time cycle, pull a heavy library (torch, cv2, onnx, ...) into a light module, or defeat a
test that swaps the attribute at runtime; such a line carries a ``# lazy: <why>`` comment. The command-line
front-ends (``engine/cli/``) are checked by their own rules, so this test covers the rest of ``engine/``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "engine"
MARK = "# lazy:"


def _imports_engine(node: ast.Import | ast.ImportFrom) -> bool:
    """Whether the statement imports the engine package or one of its modules (relative imports count)."""
    if isinstance(node, ast.ImportFrom):
        return node.level > 0 or (node.module or "").split(".")[0] == "engine"
    return any(alias.name.split(".")[0] == "engine" for alias in node.names)


def unmarked_function_imports(source: str, filename: str = "<string>") -> list[str]:
    """``file:line: statement`` for each function-level engine import whose first line has no ``# lazy:``."""
    lines = source.splitlines()
    found: list[str] = []

    def walk(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if (in_function and isinstance(child, ast.Import | ast.ImportFrom) and _imports_engine(child)
                    and MARK not in lines[child.lineno - 1]):
                found.append(f"{filename}:{child.lineno}: {lines[child.lineno - 1].strip()}")
            walk(child, in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda))

    walk(ast.parse(source, filename=filename), False)
    return found


def _core_files() -> list[Path]:
    return sorted(p for p in ENGINE.rglob("*.py") if "cli" not in p.relative_to(ENGINE).parts[:1])


def test_engine_core_imports_its_modules_at_module_level() -> None:
    files = _core_files()
    assert len(files) > 50, "the engine core was not found where the test looks for it"
    problems = [problem for path in files
                for problem in unmarked_function_imports(path.read_text(encoding="utf-8"),
                                                         str(path.relative_to(ENGINE.parent)))]
    assert not problems, (
        "Function-level engine imports without a '# lazy: <why>' comment; hoist them to module level, "
        "or say why they must stay lazy:\n" + "\n".join(problems))


def test_checker_reports_an_unmarked_function_level_engine_import() -> None:
    """Negative control: the checker does flag what it is meant to flag, and only that."""
    source = (
        "import json\n"
        "from engine import paths\n"
        "def f():\n"
        "    from engine.errors import ConfigError\n"
        "    import engine.fsutil\n"
        "    from engine.models import digests  # lazy: tests swap digests.read_once\n"
        "    import torch\n"
        "    return ConfigError\n"
        "class C:\n"
        "    def m(self):\n"
        "        from . import sibling\n"
    )
    assert unmarked_function_imports(source, "x.py") == [
        "x.py:4: from engine.errors import ConfigError",
        "x.py:5: import engine.fsutil",
        "x.py:11: from . import sibling",
    ]
