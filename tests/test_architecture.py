"""The arrows run one way: no import cycle among the modules of gates/, and pipeline/ never
imports gates/.

Every import counts, wherever it is written: at module level, inside a function, under
``if TYPE_CHECKING:``. A function-level import hides a cycle from Python at import time; it
does not remove the dependency a reader (and the next refactoring) has to live with.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import shutil
from pathlib import Path

import pytest

from gates.registry import GATES
from tests.conftest import REPO


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported(node: ast.AST, package: str, modules: set[str]) -> set[str]:
    """The modules of ``modules`` that one import statement in ``package`` loads."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in modules}
    if not isinstance(node, ast.ImportFrom):
        return set()
    if node.level:  # ``from . import x``, ``from ..base import y``
        parts = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join([*parts, *([node.module] if node.module else [])])
    else:
        base = node.module or ""
    found = set()
    for alias in node.names:
        # ``from gates import runner`` loads gates.runner; ``from gates.base import Gate``
        # loads gates.base.
        submodule = f"{base}.{alias.name}"
        found.add(submodule if submodule in modules else base)
    return found & modules


def import_graph(root: Path, packages: tuple[str, ...]) -> dict[str, set[str]]:
    """Every module of ``packages`` under ``root`` and the modules of ``packages`` it imports."""
    files = {
        _module_name(path, root): path
        for package in packages
        for path in sorted((root / package).rglob("*.py"))
        if "__pycache__" not in path.parts
    }
    modules = set(files)
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        edges: set[str] = set()
        for node in ast.walk(tree):
            edges |= _imported(node, package, modules)
        edges.discard(name)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (``[a, b, ..., a]``), or None when the graph has none."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def pipeline_imports_of_gates(root: Path) -> list[str]:
    """``file:line: statement`` for every import of the gates package anywhere in pipeline/."""
    found = []
    for path in sorted((root / "pipeline").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            if any(name == "gates" or name.startswith("gates.") for name in names):
                where = path.relative_to(root).as_posix()
                found.append(f"{where}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_import_cycle_among_the_modules_of_gates_or_pipeline():
    for package in ("gates", "pipeline"):
        cycle = find_cycle(import_graph(REPO, (package,)))
        assert cycle is None, f"import cycle in {package}/: {' -> '.join(cycle or [])}"


def test_pipeline_never_imports_gates():
    assert pipeline_imports_of_gates(REPO) == []


def test_the_runner_sits_above_the_gates():
    graph = import_graph(REPO, ("gates",))
    importers = sorted(name for name, edges in graph.items() if "gates.runner" in edges)
    assert importers == ["gates._cli"]
    registered = {spec.target.partition(":")[0] for spec in GATES}
    for module in registered | {"gates.base", "gates.cache", "gates.inputs", "gates.registry"}:
        assert "gates.runner" not in _reachable(graph, module), module


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for target in graph.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of both packages to plant imports in."""
    for package in ("gates", "pipeline"):
        shutil.copytree(
            REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    return tmp_path


def _plant(path: Path, text: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")


PLANTED_CYCLES = {
    "relative": "\nfrom . import cache  # noqa\n",
    "module-level": "\nfrom gates.runner import run_chain  # noqa\n",
    "function-level": "\ndef _late():\n    from gates import runner  # noqa\n    return runner\n",
    "type-checking": (
        "\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import gates.console\n"
    ),
}


@pytest.mark.parametrize("kind", sorted(PLANTED_CYCLES))
def test_a_planted_cycle_is_found_however_the_import_is_written(tree, kind):
    _plant(tree / "gates" / "base.py", PLANTED_CYCLES[kind])
    cycle = find_cycle(import_graph(tree, ("gates",)))
    assert cycle is not None
    assert "gates.base" in cycle
    assert cycle[0] == cycle[-1]


def test_a_cycle_through_a_subpackage_is_found(tree):
    _plant(tree / "gates" / "registry.py", "\ndef _late():\n    from gates.feedback import stage\n")
    cycle = find_cycle(import_graph(tree, ("gates",)))
    assert cycle is not None
    assert {"gates.registry", "gates.feedback.stage"} <= set(cycle)


@pytest.mark.parametrize(
    "statement",
    [
        "import gates\n",
        "import gates.release as release\n",
        "from gates.release import verify_project\n",
        "def _late():\n    from gates import release\n",
    ],
)
def test_pipeline_importing_gates_is_found_however_it_is_written(tree, statement):
    assert pipeline_imports_of_gates(tree) == []
    _plant(tree / "pipeline" / "predict.py", "\n" + statement)
    found = pipeline_imports_of_gates(tree)
    assert len(found) == 1
    assert found[0].startswith("pipeline/predict.py:")


def _exception_classes(package: str) -> set[type[BaseException]]:
    """Every exception class a module of ``package`` defines (``__main__`` is not imported)."""
    found: set[type[BaseException]] = set()
    for info in pkgutil.walk_packages([str(REPO / package)], prefix=f"{package}."):
        if info.name.rpartition(".")[2] == "__main__":
            continue
        module = importlib.import_module(info.name)
        found.update(
            obj
            for obj in vars(module).values()
            if isinstance(obj, type)
            and issubclass(obj, BaseException)
            and obj.__module__ == module.__name__
        )
    return found


def test_each_package_has_one_root_error_and_gates_errors_are_not_the_pipelines():
    from gates.errors import GatesError
    from pipeline.errors import PipelineError

    gates_errors = _exception_classes("gates")
    pipeline_errors = _exception_classes("pipeline")
    assert GatesError in gates_errors
    assert PipelineError in pipeline_errors
    assert sorted(e.__qualname__ for e in gates_errors if not issubclass(e, GatesError)) == []
    assert sorted(e.__qualname__ for e in gates_errors if issubclass(e, PipelineError)) == []
    assert sorted(e.__qualname__ for e in pipeline_errors if not issubclass(e, PipelineError)) == []
