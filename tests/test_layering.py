"""The package's import graph: which subpackage may import which (ARCHITECTURE.md, "The flow")."""

import ast
from pathlib import Path

import fer_utils

PACKAGE = Path(fer_utils.__file__).parent


def room(module: str) -> str:
    """``fer_utils.training.seeds`` → ``training``; top-level modules are rooms of their own."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def import_graph(top_level_only: bool = True) -> dict[str, set[str]]:
    """Room → rooms it imports (module-level imports; in-function ones too unless ``top_level_only``)."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(("fer_utils", *path.relative_to(PACKAGE).with_suffix("").parts))
        source_room = room(module)
        tree = ast.parse(path.read_text())
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
KNOWN_CYCLES: set = set()  # none at module level; in-function imports still close data↔faces, experiments↔viz


def test_the_utilities_import_no_stage():
    stages = {"data", "faces", "training", "experiments", "viz", "deploy", "bench"}
    for utility in ("formatting", "files", "locks", "paths", "parallel", "progress", "settings"):
        assert not import_graph().get(utility, set()) & stages, utility


def test_training_imports_no_later_stage():
    assert not import_graph()["training"] & {"experiments", "viz", "deploy", "bench"}


def test_no_new_cycle_between_subpackages():
    assert cycles(import_graph()) <= KNOWN_CYCLES
