"""The wings' layer rule and the absence of import circles, checked on every test run.

``pyproject.toml`` holds the import-linter contract (data < models < training < results <
runs < export < lab < cli; tlcore never imports the app). A test, not only ``make lint``,
so CI fails on an upward import.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WINGS = {"data", "models", "training", "results", "runs", "export", "lab", "cli"}


def test_import_linter_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout


def test_tlcore_top_level_holds_only_the_wings():
    top = ROOT / "tlcore"
    files = {p.name for p in top.iterdir() if p.is_file() and p.suffix == ".py"}
    folders = {p.name for p in top.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert files == {"__init__.py", "__main__.py", "errors.py", "settings.py"}
    assert folders == WINGS


def _imports(path: Path, package: str) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def test_no_import_circle_in_tlcore_or_appkit():
    """Every import statement counts, also those inside functions (as import-linter counts)."""
    modules: dict[str, Path] = {}
    for pkg in ("tlcore", "appkit"):
        for f in (ROOT / pkg).rglob("*.py"):
            parts = list(f.relative_to(ROOT).with_suffix("").parts)
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    graph: dict[str, set[str]] = {}
    for name, f in modules.items():
        edges = set()
        for target in _imports(f, name):
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                edges.add(target)
        graph[name] = edges
    seen: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(node: str, path: list[str]) -> list[str] | None:
        seen[node] = 1
        for nxt in sorted(graph[node]):
            if seen.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt] if nxt in path else [node, nxt]
            if nxt not in seen and (circle := visit(nxt, [*path, nxt])):
                return circle
        seen[node] = 2
        return None

    for start in sorted(graph):
        if start not in seen:
            circle = visit(start, [start])
            assert circle is None, " -> ".join(circle)
