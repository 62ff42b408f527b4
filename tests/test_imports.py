"""No import cycle in src/facesketch.

The imports are read from the source with ``ast``: absolute and relative,
at module level and inside functions (a lazy import that closes a cycle is
still a cycle, only one that fails later). An edge goes to the module an
import names: ``from . import x`` to the submodule ``x`` where there is one,
``from .x import name`` to ``x``. Importing a submodule also runs its
package's ``__init__``, but that is not counted as an edge: a package whose
``__init__`` re-exports its submodules would otherwise always be a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

from conftest import REPO, imported_module


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path, package: str) -> nx.DiGraph:
    """Directed graph module -> module it imports, over the modules of ``package`` under ``root``."""
    files = {_module_name(p, root): p for p in sorted((root / package).rglob("*.py"))}
    graph = nx.DiGraph()
    graph.add_nodes_from(files)
    for name, path in files.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                module = imported_module(node, here)
                # `from pkg import sub` imports the submodule; `from mod import name` the module
                subs = [f"{module}.{a.name}" for a in node.names if f"{module}.{a.name}" in files]
                targets = subs if len(subs) == len(node.names) else [module, *subs]
            else:
                continue
            graph.add_edges_from((name, t) for t in targets if t in files and t != name)
    return graph


def cycles(graph: nx.DiGraph) -> list[list[str]]:
    """One cycle per strongly connected group of modules, each as module -> ... -> itself."""
    out = []
    for group in nx.strongly_connected_components(graph):
        if len(group) > 1:
            cycle = [a for a, _ in nx.find_cycle(graph.subgraph(group))]
            out.append(cycle + [cycle[0]])
    return out


def assert_no_cycle(root: Path, package: str) -> None:
    found = cycles(import_graph(root, package))
    assert not found, f"import cycles in {package}: " + "; ".join(" -> ".join(c) for c in found)


def test_no_import_cycle_in_facesketch():
    graph = import_graph(REPO / "src", "facesketch")
    # the walk sees the package: relative imports in a subpackage, imports inside functions
    assert graph.has_edge("facesketch.report.build", "facesketch.report.content")
    assert graph.has_edge("facesketch.core.saved", "facesketch.core.backend")  # imported inside a function only
    assert_no_cycle(REPO / "src", "facesketch")


def _package(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


@pytest.mark.parametrize("b_imports_a", [
    "from .a import VALUE\n",                       # relative, module level
    "def f():\n    from pkg import a\n    return a\n",   # absolute, inside a function
    "import pkg.sub.c\n",                           # through a third module in a subpackage
])
def test_a_planted_cycle_is_found_and_named(tmp_path, b_imports_a):
    _package(tmp_path, {"pkg/__init__.py": "", "pkg/a.py": "from . import b\nVALUE = 1\n",
                        "pkg/b.py": b_imports_a, "pkg/sub/__init__.py": "",
                        "pkg/sub/c.py": "from ..a import VALUE\n"})
    found = cycles(import_graph(tmp_path, "pkg"))
    assert len(found) == 1, found
    assert {"pkg.a", "pkg.b"} <= set(found[0]) and found[0][0] == found[0][-1]
    with pytest.raises(AssertionError, match=r"import cycles in pkg: pkg\.\w+( -> pkg\.[\w.]+)+"):
        assert_no_cycle(tmp_path, "pkg")


def test_a_package_init_reexporting_its_modules_is_not_a_cycle(tmp_path):
    _package(tmp_path, {"pkg/__init__.py": "from .a import VALUE\n", "pkg/a.py": "from .b import OTHER\nVALUE = 1\n",
                        "pkg/b.py": "OTHER = 2\n"})
    graph = import_graph(tmp_path, "pkg")
    assert set(graph.edges) == {("pkg", "pkg.a"), ("pkg.a", "pkg.b")} and cycles(graph) == []
