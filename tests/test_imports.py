"""The import graph of mpbench/: every import, module level and inside functions, from the AST."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mpbench"


def module_name(path: Path) -> str:
    """The dotted name of a file under mpbench/ (a package's __init__ is the package)."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    """Every module of the package, by dotted name."""
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute name a `from ... import` reads from (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imported_names(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Every name the module imports anywhere: `import a.b` and `from a import b` give a.b."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            source = resolve(node, module, is_package)
            names.update(f"{source}.{alias.name}" for alias in node.names)
    return names


def owner(name: str, modules: dict[str, Path]) -> str | None:
    """The longest mpbench module that `name` lies in (None outside the package).

    `from a import b` reads module a.b where b is a submodule, else package a; the packages
    above a module, which Python imports first, are not counted as imported by it.
    """
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in modules:
            return ".".join(parts[:end])
    return None


def import_graph() -> dict[str, set[str]]:
    """Module -> the mpbench modules it imports (a package's __init__ is not implied)."""
    modules = all_modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        found = imported_names(tree, name, path.name == "__init__.py")
        targets = {owner(item, modules) for item in found}
        graph[name] = {target for target in targets if target and target != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a path a -> b -> ... -> a, or None (depth-first search)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_scan_sees_function_level_and_relative_imports():
    """The scanner reads imports inside functions, relative ones and submodules named by `from`."""
    code = "def f():\n from . import cache\n from ..study import runner\n import mpbench.ui\n"
    found = imported_names(ast.parse(code), "mpbench.data.catalog", False)
    assert {"mpbench.data.cache", "mpbench.study.runner", "mpbench.ui"} <= found
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_circle():
    """No module of mpbench/ reaches itself through its imports, at any level."""
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


# The package's floors, lowest first (docs/architecture.md, "Floors"): a module imports only
# modules of its own floor or of a floor below it, never one above.
FLOORS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "foundation",
        (
            "mpbench",
            "mpbench._",
            "mpbench.config",
            "mpbench.tracking",
            "mpbench.outage",
            "mpbench.plots",
            "mpbench.report.sequential",  # the decision rule: a numpy/scipy leaf
        ),
    ),
    ("blocks", ("mpbench.prompt", "mpbench.variants", "mpbench.models", "mpbench.data")),
    ("engine", ("mpbench.engine",)),
    ("study", ("mpbench.study",)),
    ("results", ("mpbench.report", "mpbench.bench")),
    ("applications", ("mpbench.ui", "mpbench.quickstart", "mpbench.certify")),
    ("cli", ("mpbench.cli", "mpbench.__main__")),
)


def floor_of(module: str) -> int:
    """The floor index of a module: the one whose prefix matches it most closely."""
    best, length = -1, -1
    for i, (_, prefixes) in enumerate(FLOORS):
        for p in prefixes:
            inside = p != "mpbench" and module.startswith(p if p.endswith("_") else p + ".")
            hit = module == p or inside
            if hit and len(p) > length:
                best, length = i, len(p)
    assert best >= 0, f"{module} is on no floor: add it to FLOORS and docs/architecture.md"
    return best


def test_no_module_imports_a_higher_floor():
    """Every import goes down or stays on its floor (foundation < blocks < ... < cli)."""
    graph = import_graph()
    up = [
        f"{a} ({FLOORS[floor_of(a)][0]}) -> {b} ({FLOORS[floor_of(b)][0]})"
        for a, targets in sorted(graph.items())
        for b in sorted(targets)
        if floor_of(b) > floor_of(a)
    ]
    assert not up, "imports of a higher floor:\n" + "\n".join(up)


def test_the_floors_are_the_ones_documented():
    """docs/architecture.md names every floor with its modules."""
    text = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    for name, prefixes in FLOORS:
        assert f"**{name}**" in text, name
        for p in prefixes:
            assert f"`{p.removeprefix('mpbench.') or 'mpbench'}" in text, p
