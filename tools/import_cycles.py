"""Package-level import cycles among the engine's sub-packages and top-level modules, measured with grimp.

Imports inside function bodies are included (grimp reads every import statement). The command line is the
package ``engine.cli`` (one node here, the top layer; nothing in the engine core imports it), so it needs no
special case; ``--nocli`` still leaves it out, for comparison. Prints each cycle (strongly connected
component) with its arrows.

    .venv/bin/python tools/import_cycles.py [--nocli]
"""

from __future__ import annotations

import sys

import grimp


def _is_cli(module: str) -> bool:
    return module == "engine.cli" or module.startswith("engine.cli.")


def package_edges(nocli: bool) -> dict[str, set[str]]:
    """engine sub-package (or top-level module) -> those it imports, one level below ``engine``."""
    graph = grimp.build_graph("engine", include_external_packages=False)
    edges: dict[str, set[str]] = {}
    for module in graph.modules:
        parts = module.split(".")
        if len(parts) < 2 or (nocli and _is_cli(module)):
            continue
        for imported in graph.find_modules_directly_imported_by(module):
            other = imported.split(".")
            if len(other) > 1 and other[1] != parts[1] and not (nocli and _is_cli(imported)):
                edges.setdefault(parts[1], set()).add(other[1])
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(set(edges) | {w for ws in edges.values() for w in ws}):
        if v not in index:
            visit(v)
    return out


def main() -> int:
    edges = package_edges("--nocli" in sys.argv)
    found = cycles(edges)
    print(f"package-level cycles: {len(found)}")
    for component in found:
        print(f"  {len(component)}: {', '.join(component)}")
        for p in component:
            print(f"    {p} -> {', '.join(sorted(edges.get(p, set()) & set(component)))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
