"""No import cycle in `homelab`: every module's imports of other homelab modules (at the top or
inside a function: a deferred import is still a dependency) form a graph without loops, and
importing the modules one by one in that graph's order works in a fresh interpreter."""

from __future__ import annotations

import ast
import subprocess
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import homelab

PACKAGE = Path(homelab.__file__).resolve().parent


def modules(package: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the package (packages by __init__)."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imported(node: ast.Import | ast.ImportFrom, name: str, is_package: bool) -> list[str]:
    """The dotted names an import statement in module `name` asks for (with `from X import y`
    both X and X.y: y may be a module)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:  # relative: resolve against the importing module's package
        base = name.split(".") if is_package else name.split(".")[:-1]
        base = base[: len(base) - node.level + 1]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    return [target] + [f"{target}.{alias.name}" for alias in node.names]


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (the implicit import of a parent package's
    __init__ is left out: none of them imports anything back)."""
    found = modules(package)
    graph: dict[str, set[str]] = {}
    for name, path in found.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                is_package = path.name == "__init__.py"
                deps |= {t for t in _imported(node, name, is_package) if t in found and t != name}
        graph[name] = deps
    return graph


def import_cycle(package: Path) -> list[str] | None:
    """One import cycle (as a path that ends where it starts), or None."""
    try:
        TopologicalSorter(import_graph(package)).prepare()
    except CycleError as exc:
        return list(exc.args[1])
    return None


def test_the_control_plane_has_no_import_cycle() -> None:
    assert import_cycle(PACKAGE) is None


def test_the_cycle_finder_sees_a_deferred_import_cycle(tmp_path: Path) -> None:
    """The shape issue 11 found: cli.py imports the commands inside a function, a command
    imports cli.py at the top."""
    pkg = tmp_path / "app"
    (pkg / "commands").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "commands" / "__init__.py").write_text("")
    (pkg / "cli.py").write_text("def register():\n    from app.commands import check\n")
    (pkg / "commands" / "check.py").write_text("from app.cli import register\n")
    cycle = import_cycle(pkg)
    assert cycle is not None and set(cycle) == {"app.cli", "app.commands.check"}


def test_every_module_imports_in_dependency_order() -> None:
    """A fresh interpreter imports every module after what it imports (the graph's order): an
    import edge the graph misses, or a module that fails to import, fails here."""
    order = list(TopologicalSorter(import_graph(PACKAGE)).static_order())
    script = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    done = subprocess.run([sys.executable, "-c", script, *order], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(order) == len(modules(PACKAGE)) > 80
