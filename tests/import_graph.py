"""The import graph of ``codesign.*``, read from the sources with :mod:`ast`.

:func:`build_graph` maps every module of the installed package (found through the import
system, so the folders come from the package-directory mapping) to the ``codesign``
modules it imports, at any depth of the file (a function-level import counts).
:func:`cycles` and :func:`upward_arrows` check it against the layering of
docs/architecture.md; ``python tests/import_graph.py`` prints the package-level graph
(``--modules``: every module's imports too).
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path

ROOT = "codesign"
#: Top package -> the top packages it may import.
TOP_ALLOWED: dict[str, set[str]] = {
    "models": set(),
    "hw": {"models"},
    "sim": {"models"},
    "experiments": {"models", "hw", "sim"},
}
#: Subpackage of experiments -> the subpackages it may import
#: (jobs <- sweeps <- reports <- cli; studies read jobs, sweeps and reports).
EXPERIMENTS_ALLOWED: dict[str, set[str]] = {
    "jobs": set(),
    "sweeps": {"jobs"},
    "reports": {"jobs", "sweeps"},
    "cli": {"jobs", "sweeps", "reports"},
    "studies": {"jobs", "sweeps", "reports"},
}
#: The entry point ``python -m codesign``: it alone may import the command line.
ENTRY_POINT = f"{ROOT}.__main__"
#: Root modules every subpackage may import: the version (``codesign``) and the atomic
#: file writes (``codesign.files``, which imports nothing of the project).
SHARED_ROOT = {ROOT, f"{ROOT}.files"}

Graph = dict[str, set[str]]


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"package {name} is not importable; install the project first")
    return Path(next(iter(spec.submodule_search_locations)))


def module_files() -> dict[str, Path]:
    """Every module of ``codesign`` and its subpackages -> its source file."""
    files: dict[str, Path] = {}
    root = _package_dir(ROOT)
    for path in root.glob("*.py"):
        files[_name(ROOT, path.relative_to(root))] = path
    for top in TOP_ALLOWED:
        base = _package_dir(f"{ROOT}.{top}")
        for path in sorted(base.rglob("*.py")):
            files[_name(f"{ROOT}.{top}", path.relative_to(base))] = path
    return files


def _name(package: str, relative: Path) -> str:
    parts = list(relative.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([package, *parts])


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The ``codesign`` modules ``module`` imports: ``from P import x`` is module P.x when
    that is a module, else P; relative imports resolved against ``module``'s package."""
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                full = f"{base}.{alias.name}"
                out.add(full if full in known else base)
    return {m for m in out if m in known and m != module}


def build_graph() -> Graph:
    """Module -> the ``codesign`` modules it imports."""
    files = module_files()
    known = set(files)
    return {m: _imports(m, p, known) for m, p in sorted(files.items())}


def top_package(module: str) -> str:
    """``models``, ``hw``, ``sim``, ``experiments``, or ``codesign`` for the root modules."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in TOP_ALLOWED else ROOT


def experiments_part(module: str) -> str | None:
    """The experiments subpackage of ``module`` (``jobs``, ``cli``, ...); None for the
    experiments package itself."""
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[2] in EXPERIMENTS_ALLOWED else None


def allowed(src: str, dst: str) -> bool:
    """Whether the layering lets module ``src`` import module ``dst``."""
    a, b = top_package(src), top_package(dst)
    if b == ROOT:
        return dst in SHARED_ROOT
    if a == ROOT:
        return src == ENTRY_POINT and experiments_part(dst) == "cli"
    if a != b:
        return b in TOP_ALLOWED[a]
    if a != "experiments":
        return True
    pa, pb = experiments_part(src), experiments_part(dst)
    if pb is None:
        return True  # the experiments package holds only the configs' location
    if pa is None:
        return False
    return pa == pb or pb in EXPERIMENTS_ALLOWED[pa]


def upward_arrows(graph: Mapping[str, Iterable[str]]) -> list[tuple[str, str]]:
    """Every (importer, imported) pair the layering forbids, sorted."""
    return sorted((a, b) for a, targets in graph.items() for b in targets if not allowed(a, b))


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """One cycle (a path returning to its start) per strongly connected component of
    more than one module, found with Tarjan's algorithm; sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(_cycle_in(graph, set(c), c[0]) for c in components)


def _cycle_in(graph: Mapping[str, Iterable[str]], members: set[str], start: str) -> list[str]:
    """A shortest path from ``start`` back to itself inside ``members`` (breadth first)."""
    parent: dict[str, str] = {start: start}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(set(graph.get(node, ())) & members):
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return [*reversed(path), start]
                if nxt not in parent:
                    parent[nxt] = node
                    following.append(nxt)
        frontier = following
    raise AssertionError(f"{start} is in a component but on no cycle")


def _layer(module: str) -> str:
    top = top_package(module)
    part = experiments_part(module) if top == "experiments" else None
    if top == ROOT:
        return module
    return f"{top}.{part}" if part else top


def render(graph: Mapping[str, Iterable[str]], modules: bool = False) -> str:
    """The arrows between layers (``experiments.cli -> experiments.reports  (12
    imports)``), each layer with its module count; with ``modules``, every module's
    imports after them."""
    arrows: Counter[tuple[str, str]] = Counter()
    sizes: Counter[str] = Counter(_layer(m) for m in graph)
    for src, targets in graph.items():
        for dst in targets:
            a, b = _layer(src), _layer(dst)
            if a != b:
                arrows[(a, b)] += 1
    lines = ["layers (modules):", *(f"  {k} ({v})" for k, v in sorted(sizes.items()))]
    lines.append("arrows (module imports):")
    lines += [f"  {a} -> {b}  ({n})" for (a, b), n in sorted(arrows.items())]
    if modules:
        lines.append("modules:")
        for src in sorted(graph):
            targets = sorted(graph[src])
            lines.append(f"  {src} -> {', '.join(targets) if targets else '(nothing)'}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", action="store_true", help="list every module's imports")
    args = parser.parse_args()
    graph = build_graph()
    print(render(graph, args.modules))
    found, bad = cycles(graph), upward_arrows(graph)
    for cycle in found:
        print("CYCLE " + " -> ".join(cycle))
    for a, b in bad:
        print(f"UPWARD {a} -> {b}")
    print(f"{len(found)} cycles, {len(bad)} arrows against the layering")
    return 1 if found or bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
