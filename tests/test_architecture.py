"""The shape of the package: layers, no import cycles, modules small enough to read.

The layers are written down once, as import-linter contracts in pyproject.toml, and drawn in
docs/architecture.md; these tests make `make test` hold the code to them.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
ARCHITECTURE = ROOT / "docs" / "architecture.md"
MAX_LINES = 400


def test_import_contracts_hold() -> None:
    # In a process of its own: import-linter configures logging with dictConfig, which would
    # silence the loggers of every module this test process has imported.
    proc = subprocess.run(
        [sys.executable, "-c", _LINT, str(ROOT / "pyproject.toml")],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


_LINT = (
    "import sys; from importlinter.cli import lint_imports;"
    " sys.exit(lint_imports(config_filename=sys.argv[1], no_cache=True))"
)


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work: list[tuple[str, list[str]]] = []
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        work.append((root, sorted(graph.find_modules_directly_imported_by(root))))
        while work:
            node, todo = work[-1]
            if todo:
                nxt = todo.pop()
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, sorted(graph.find_modules_directly_imported_by(nxt))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _package_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2])


def test_no_import_cycle_between_modules() -> None:
    # Imports under `if TYPE_CHECKING:` count too: a cycle there is still two modules that
    # cannot be understood one without the other.
    graph = grimp.build_graph("bot", cache_dir=None)
    assert _cycles(graph) == []


def test_no_import_cycle_between_packages() -> None:
    graph = grimp.build_graph("bot", cache_dir=None)
    edges: dict[str, set[str]] = {}
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            a, b = _package_of(module), _package_of(imported)
            if a != b:
                edges.setdefault(a, set()).add(b)
    # A package-level cycle is a path back to where it started.
    for start, imported_packages in edges.items():
        seen: set[str] = set()
        todo = list(imported_packages)
        while todo:
            current = todo.pop()
            assert current != start, f"{start} imports itself through {sorted(seen)}"
            if current not in seen:
                seen.add(current)
                todo.extend(edges.get(current, ()))


def _documented_exceptions() -> dict[str, str]:
    """Modules docs/architecture.md allows over the limit, each with its reason."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    section = text.split("## Modules over", 1)
    if len(section) < 2:
        return {}
    rows = re.findall(r"^\| `(bot/[\w/]+\.py)` \| (.+?) \|$", section[1], re.MULTILINE)
    return {path: reason for path, reason in rows}


def test_no_module_over_the_limit_unless_documented() -> None:
    allowed = _documented_exceptions()
    over = {
        str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
        for path in sorted((ROOT / "bot").rglob("*.py"))
        if len(path.read_text(encoding="utf-8").splitlines()) > MAX_LINES
    }
    undocumented = {path: lines for path, lines in over.items() if path not in allowed}
    assert undocumented == {}, f"modules over {MAX_LINES} lines: explain them or split them"
    stale = sorted(set(allowed) - set(over))
    assert stale == [], f"docs/architecture.md excuses modules that are no longer long: {stale}"


def test_module_names_do_not_collide() -> None:
    # Two modules with one name make every traceback, grep and import ambiguous. A schema module
    # is named after the artifact it describes (bot/schemas/triage.py is triage.json), so
    # bot/schemas/ is the one namespace allowed to share a name with the code that writes it.
    names: dict[str, list[str]] = {}
    for path in sorted((ROOT / "bot").rglob("*.py")):
        if path.name in {"__init__.py", "__main__.py"} or path.parent.name == "schemas":
            continue
        names.setdefault(path.stem, []).append(str(path.relative_to(ROOT)))
    assert {name: paths for name, paths in names.items()
            if len(paths) > 1} == {}


def test_every_module_says_its_concern() -> None:
    missing = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "bot").rglob("*.py"))
        if path.stat().st_size and ast.get_docstring(ast.parse(path.read_text("utf-8"))) is None
    ]
    assert missing == []


@pytest.mark.parametrize(
    "module", ["bot.engine", "bot.agents", "bot.scoring", "bot.repo", "bot.merge", "bot.runs", "bot.schemas"]
)
def test_lower_layers_import_no_web_framework(module: str) -> None:
    graph = grimp.build_graph("bot", include_external_packages=True, cache_dir=None)
    below = graph.find_descendants(module) | {module}
    for name in below:
        imported = graph.find_modules_directly_imported_by(name)
        assert "aiohttp" not in imported and "gidgethub" not in imported, name
