"""The package's import graph: which subpackage may import which (ARCHITECTURE.md, "The flow")."""

import ast
from functools import cache
from pathlib import Path

import fer_utils

PACKAGE = Path(fer_utils.__file__).parent


def room(module: str) -> str:
    """``fer_utils.training.seeds`` → ``training``; top-level modules are rooms of their own."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


@cache
def parsed_modules() -> tuple[tuple[Path, ast.Module], ...]:
    """Every module of the package, parsed once for all the tests."""
    return tuple((path, ast.parse(path.read_text())) for path in sorted(PACKAGE.rglob("*.py")))


def import_graph(top_level_only: bool = True) -> dict[str, set[str]]:
    """Room → rooms it imports (module-level imports; in-function ones too unless ``top_level_only``)."""
    graph: dict[str, set[str]] = {}
    for path, tree in parsed_modules():
        module = ".".join(("fer_utils", *path.relative_to(PACKAGE).with_suffix("").parts))
        source_room = room(module)
        nodes = tree.body if top_level_only else ast.walk(tree)
        for node in nodes:
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fer_utils."):
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names if alias.name.startswith("fer_utils.")]
            for name in names:
                target = room(name)
                if target != source_room:
                    graph.setdefault(source_room, set()).add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> set[frozenset]:
    """Pairs of rooms that reach each other."""

    def reach(start):
        seen, todo = set(), [start]
        while todo:
            for nxt in graph.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    reachable = {node: reach(node) for node in graph}
    return {frozenset((a, b)) for a in graph for b in reachable[a] if a != b and a in reachable.get(b, set())}


#: Cycles between subpackages still allowed; the test fails on any new one.
KNOWN_CYCLES: set = set()

#: Modules of the package whose import pulls a heavy third-party library, so importing them inside the
#: function that needs them is a real saving (say so in a comment on the line or the one above it).
HEAVY_MODULES = {"fer_utils.viz.dashboard.widgets"}  # ipywidgets

#: Files whose in-function imports are not (yet) checked: ``__init__`` (``fer_utils.predict`` keeps
#: ``import fer_utils`` light), ``cli`` (``fer --help`` imports fer_utils.cli alone); bench/, deploy/predict.py
#: and training/feed.py are being changed by other work and follow when it lands.
UNCHECKED_FILES = {
    "__init__.py",
    "cli.py",
    "deploy/predict.py",
    "training/feed.py",
}
UNCHECKED_FOLDERS = ("bench/",)

UTILITIES = (
    "formatting",
    "files",
    "locks",
    "paths",
    "parallel",
    "progress",
    "machine",
    "settings",
    "environment",
    "notebook_execution",
)
STAGES = {"data", "faces", "demo", "training", "experiments", "viz", "deploy", "bench"}


def inner_imports() -> list[tuple[str, int, str, str]]:
    """Every in-function import of a ``fer_utils`` module: (file, line, module, the line and the one above)."""
    found = []
    for path, tree in parsed_modules():
        lines = path.read_text().splitlines()
        top = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if id(node) in top or not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            modules = (
                [node.module]
                if isinstance(node, ast.ImportFrom) and node.module
                else [alias.name for alias in getattr(node, "names", [])]
            )
            for module in modules:
                if module.startswith("fer_utils"):
                    context = "\n".join(lines[max(node.lineno - 2, 0) : node.lineno])
                    found.append((path.relative_to(PACKAGE).as_posix(), node.lineno, module, context))
    return found


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _dotted(node) -> str | None:
    """``a.b.c`` of a chain of names and attributes (None for anything else)."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def private_names_across_modules(modules) -> list[str]:
    """``file:line name`` for every private name (``_x``, not dunder) one module takes from another module of
    the package: ``from fer_utils.a import _x`` (module level or in a function), or ``a._x`` / ``fer_utils.a._x``
    where ``a`` is an imported ``fer_utils`` module. ``modules``: ``(file name, parsed module)`` pairs."""
    found = []
    for file, tree in modules:
        imported = {}  # local name → the fer_utils module or object it stands for
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fer_utils"):
                for alias in node.names:
                    if _is_private(alias.name):
                        found.append(f"{file}:{node.lineno} from {node.module} import {alias.name}")
                    imported[alias.asname or alias.name] = f"{node.module}.{alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("fer_utils"):
                        local = alias.asname or alias.name.split(".")[0]
                        imported[local] = alias.name if alias.asname else local
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _is_private(node.attr):
                base = _dotted(node.value)
                if base and base.split(".")[0] in imported:
                    found.append(f"{file}:{node.lineno} {base}.{node.attr}")
    return found


def test_no_private_name_crosses_a_module():
    """A name one module uses from another is public (no ``_``): a split that cut an idea apart either
    merges back or makes the shared part public, so the name says it is a contract."""
    modules = [(path.relative_to(PACKAGE).as_posix(), tree) for path, tree in parsed_modules()]
    assert private_names_across_modules(modules) == []


def test_the_private_name_check_finds_both_forms():
    sources = {
        "a.py": "from fer_utils.faces.shards import _read, public\n",
        "b.py": "from fer_utils.faces import shards\ndef f():\n    return shards._read()\n",
        "c.py": "import fer_utils.faces.shards\nx = fer_utils.faces.shards._read\n",
        "d.py": "import fer_utils.faces.shards as s\nx = s._read, s.__name__, s.public\n",
        "e.py": "class A:\n    def f(self):\n        return self._own, _local()\n",
    }
    found = private_names_across_modules((name, ast.parse(text)) for name, text in sources.items())
    assert found == [
        "a.py:1 from fer_utils.faces.shards import _read",
        "b.py:3 shards._read",
        "c.py:2 fer_utils.faces.shards._read",
        "d.py:2 s._read",
    ]


def test_the_utilities_import_no_stage():
    for utility in UTILITIES:
        assert not import_graph(top_level_only=False).get(utility, set()) & STAGES, utility


def test_training_imports_no_later_stage():
    """Module level and inside functions: training never reaches deploy (the model-spec rule is
    training/model_files.py), experiments, viz or bench."""
    assert not import_graph(top_level_only=False)["training"] & {"experiments", "viz", "deploy", "bench"}


def test_data_is_below_faces_and_the_demo_above_them():
    graph = import_graph(top_level_only=False)
    assert "faces" not in graph.get("data", set()) and "demo" not in graph.get("faces", set())


def test_viz_reads_the_ablation_from_its_files():
    """The report shows an ablation's summary.json and figure JSON; it never imports experiments to
    re-run the analysis (the experiments ↔ viz cycle)."""
    assert "experiments" not in import_graph(top_level_only=False)["viz"]


def graph_text() -> str:
    """The import directions between rooms (in-function imports included), one line per room, as
    ARCHITECTURE.md shows them between its ``import-graph`` markers."""
    graph = import_graph(top_level_only=False)
    return "\n".join(
        f"{room} → {', '.join(sorted(graph[room]))}" for room in sorted(graph) if room != "__init__"
    )


def test_architecture_shows_the_real_import_directions():
    """ARCHITECTURE.md's import graph is this test's graph (regenerate it with ``graph_text()``)."""
    text = (PACKAGE.parent / "ARCHITECTURE.md").read_text()
    shown = text.split("<!-- import-graph -->")[1].split("```")[1].strip()
    assert shown == graph_text(), "update ARCHITECTURE.md's import graph to:\n" + graph_text()


def test_no_new_cycle_between_subpackages():
    assert cycles(import_graph()) <= KNOWN_CYCLES
    assert cycles(import_graph(top_level_only=False)) <= KNOWN_CYCLES


def module_graph() -> dict[str, set[str]]:
    """Module → package modules it imports, in-function imports included. The package's own
    ``__init__`` (a facade re-exporting the public API) is left out: importing ``__version__`` from it is
    not a dependency on what it re-exports."""

    def module_name(path: Path) -> str:
        return ".".join(("fer_utils", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(
            ".__init__"
        )

    modules = {module_name(path) for path, _ in parsed_modules()}
    graph: dict[str, set[str]] = {}
    for path, tree in parsed_modules():
        module = module_name(path)
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fer_utils."):
                names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                if name in modules and name not in (module, "fer_utils") and module != "fer_utils":
                    graph.setdefault(module, set()).add(name)
    return graph


def test_no_cycle_between_modules():
    """Not even through a deferred import (the dashboard's static page and its widgets once imported each
    other, one of them inside a function)."""
    assert cycles(module_graph()) == set()
    assert cycles({"a": {"b"}, "b": {"a"}}) == {frozenset({"a", "b"})}


def test_in_function_imports_only_defer_heavy_modules():
    """An in-function import of the package's own module hides the graph and buys nothing unless that
    module pulls a heavy library (:data:`HEAVY_MODULES`), and then a comment says so."""
    offenders = [
        f"{file}:{line} imports {module}"
        for file, line, module, context in inner_imports()
        if file not in UNCHECKED_FILES
        and not file.startswith(UNCHECKED_FOLDERS)
        and not (module in HEAVY_MODULES and "deferred" in context)
    ]
    assert offenders == []


def test_the_heavy_modules_are_heavy():
    """Each allowed deferral is real: importing the module pulls its heavy library."""
    import subprocess
    import sys

    for module in HEAVY_MODULES:
        probe = f"import sys, {module}; print('ipywidgets' in sys.modules)"
        result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
        assert result.stdout.strip() == "True", module
