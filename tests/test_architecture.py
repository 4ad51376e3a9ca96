"""The import structure of hlcli/ that docs/ARCHITECTURE.md describes, checked on the source.

* no import cycle between modules, counting imports inside functions too (a deferred import still
  ties two modules together); imports under ``if TYPE_CHECKING:`` are left out (never run);
* no module imports one of a higher layer (:data:`LAYERS`, the one table of which module sits where;
  a module it does not place fails the test, so a new module is placed when it is added);
* ``import hlcli`` and the modules a CLI start or a config check needs do not import torch.

The graph is read with ``ast`` (nothing is imported): ``import a.b``, ``from a import b`` (``a.b`` when it
is a module, else ``a``) and relative imports, resolved to the module files under hlcli/. The parent
packages Python imports on the way to a submodule are not edges, and neither are names given to
``importlib.import_module`` (the method registry's built-ins, ``hlcli``'s lazy attributes).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "hlcli"

# Lowest first; a module may import its own layer and the ones before it. ``x.*`` is the package
# ``x`` and everything in it. Keep docs/ARCHITECTURE.md in step with this table.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("hlcli.errors", "hlcli.io", "hlcli.hub", "hlcli.fields", "hlcli._version", "hlcli.compat")),
    ("backbones / data", ("hlcli.backbones", "hlcli.data.*", "hlcli.sentt", "hlcli.sampler", "hlcli.scoring")),
    ("methods", ("hlcli.methods.*", "hlcli.decoding")),
    ("run files", ("hlcli.config", "hlcli.defaults", "hlcli.runs", "hlcli.checkpoint", "hlcli.card",
                   "hlcli.revisions")),
    ("training / compare", ("hlcli.training.*", "hlcli.adapt", "hlcli.compare.*", "hlcli.evaluation", "hlcli.tagging",
                            "hlcli.export", "hlcli.convert")),
    ("library API", ("hlcli", "hlcli.api")),
    ("CLI", ("hlcli.cli.*", "hlcli.__main__")),
]


def module_files() -> dict[str, Path]:
    """Dotted module name → file, for every module of the package (a package is its ``__init__.py``)."""
    found = {}
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _runtime_nodes(tree: ast.AST):
    """Every node that can run: the bodies of ``if TYPE_CHECKING:`` are skipped (their ``else`` is not)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _owner(name: str, modules: dict[str, Path]) -> str | None:
    """The module ``name`` lives in: itself, else the closest enclosing module (``a.b.attr`` → ``a.b``)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, dict[str, int]]:
    """``graph[a][b]`` = the first line of ``a``'s file that imports ``b`` (both modules of the package)."""
    modules = module_files()
    graph: dict[str, dict[str, int]] = defaultdict(dict)
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in targets:
                owner = _owner(target, modules) if target.split(".")[0] == PACKAGE else None
                for imported in _with_parents(owner, name) if owner is not None else ():
                    graph[name].setdefault(imported, node.lineno)
    return graph


def _with_parents(owner: str, importer: str) -> list[str]:
    """``owner`` and the packages above it that importing it runs: importing ``a.b.c`` runs
    ``a/b/__init__.py`` first, so a package's eager imports tie its importers to them too. The
    importer's own packages are already running, and the root package's ``__init__`` only names
    its lazy API (it imports nothing when run), so neither is an edge."""
    chain = [owner]
    while "." in chain[-1]:
        chain.append(chain[-1].rpartition(".")[0])
    return [m for m in chain[:-1] if m != importer and not importer.startswith(m + ".")]


def strongly_connected(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or through others (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph.get(node, {}):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                other = stack.pop()
                group.append(other)
                if other == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def one_cycle(graph: dict[str, dict[str, int]], group: list[str]) -> list[str]:
    """A shortest cycle through the first module of ``group`` (breadth-first inside the group)."""
    start = group[0]
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for other in sorted(graph.get(node, {})):
            if other == start:
                return paths[node] + [start]
            if other in group and other not in paths:
                paths[other] = paths[node] + [other]
                queue.append(other)
    raise AssertionError(f"no cycle through {start}")  # a strongly connected group always has one


def layer_of(module: str) -> int | None:
    for number, (_, patterns) in enumerate(LAYERS):
        for pattern in patterns:
            if _matches(module, pattern):
                return number
    return None


def _where(graph: dict[str, dict[str, int]], source: str, target: str) -> str:
    return f"{module_files()[source].relative_to(ROOT)}:{graph[source][target]}"


def test_every_module_has_a_layer():
    unplaced = [name for name in module_files() if layer_of(name) is None]
    assert not unplaced, f"modules without a layer (add them to LAYERS here and to docs/ARCHITECTURE.md): {unplaced}"


def test_every_layer_entry_names_a_module():
    modules = module_files()
    stale = [p for _, patterns in LAYERS for p in patterns if not any(_matches(m, p) for m in modules)]
    assert not stale, f"LAYERS names modules that do not exist (moved or removed?): {stale}"


def _matches(module: str, pattern: str) -> bool:
    return module == pattern.removesuffix(".*") or (pattern.endswith(".*") and fnmatchcase(module, pattern))


def test_no_import_cycles():
    graph = import_graph()
    cycles = []
    for group in strongly_connected(graph):
        cycle = one_cycle(graph, group)
        steps = " -> ".join(f"{b} ({_where(graph, a, b)})" for a, b in zip(cycle, cycle[1:]))
        cycles.append(f"{len(group)} modules {group}: {cycle[0]} -> {steps}")
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_no_module_imports_a_higher_layer():
    graph = import_graph()
    upward = []
    for source, targets in sorted(graph.items()):
        for target in sorted(targets):
            low, high = layer_of(source), layer_of(target)
            if low is not None and high is not None and high > low:
                upward.append(f"{_where(graph, source, target)}: {source} ({LAYERS[low][0]}) imports "
                              f"{target} ({LAYERS[high][0]})")  # fmt: skip
    assert not upward, "imports of a higher layer:\n" + "\n".join(upward)


def _doc_path(pattern: str) -> str:
    """How docs/ARCHITECTURE.md writes a LAYERS entry: ``hlcli/data/*``, ``hlcli/__init__.py``, ``hlcli/io.py``."""
    if pattern.endswith(".*"):
        return pattern.removesuffix(".*").replace(".", "/") + "/*"
    return pattern.replace(".", "/") + ("/__init__.py" if pattern == PACKAGE else ".py")


def test_the_architecture_page_has_the_same_layers():
    rows = [line for line in (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8").splitlines()
            if line.startswith("| ")]  # fmt: skip
    for name, patterns in LAYERS:
        row = next((line for line in rows if line.startswith(f"| {name} |")), None)
        assert row is not None, f"docs/ARCHITECTURE.md has no row for layer {name!r}"
        cells = row.split("|")[2]
        missing = [_doc_path(p) for p in patterns if f"`{_doc_path(p)}`" not in cells]
        assert not missing, f"docs/ARCHITECTURE.md's {name!r} row lacks {missing}"
    named = [line.split("|")[1].strip() for line in rows[1:]]  # the rows below the header
    assert named == [name for name, _ in reversed(LAYERS)], "docs/ARCHITECTURE.md lists other layers or another order"


def test_the_graph_sees_deferred_and_relative_imports(tmp_path, monkeypatch):
    # The checks above are only as good as the graph: a function-level import and a relative one are
    # edges, a TYPE_CHECKING one is not.
    package = tmp_path / PACKAGE
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "low.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from hlcli import high\n")
    (package / "high.py").write_text("def f():\n    from hlcli.low import x\n")
    (package / "sub" / "__init__.py").write_text("from . import leaf\nfrom ..high import f\n")
    (package / "sub" / "leaf.py").write_text("import hlcli.low\n")
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    assert import_graph() == {"hlcli.high": {"hlcli.low": 2}, "hlcli.sub": {"hlcli.sub.leaf": 1, "hlcli.high": 2},
                              "hlcli.sub.leaf": {"hlcli.low": 1}}  # fmt: skip
    (package / "low.py").write_text("def g():\n    import hlcli.high\n")
    assert strongly_connected(import_graph()) == [["hlcli.high", "hlcli.low"]]


@pytest.mark.parametrize("module", ["hlcli", "hlcli.backbones", "hlcli.config", "hlcli.cli"])
def test_light_modules_do_not_import_torch(module):
    """What ``hl --help``, a recipe check or a backbone-name check loads: torch (seconds) is loaded by
    the modules that build or run a model, on first use."""
    code = f"import sys, {module}; print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "[]", f"import {module} loads {result.stdout.strip()}"
