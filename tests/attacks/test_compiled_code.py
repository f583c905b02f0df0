"""Compiled code in the tree: files Python would import instead of the reviewed source.

A pull request can commit an extension module, a sourceless ``.pyc`` or an unchecked hash-based
``.pyc`` beside the gates' own packages (or a top-level one named like an installed package);
Python then runs it instead of the ``.py`` a reviewer read. The lint gate fails on each
(LINT007), and ``noxfile.py`` refuses to import the tree at all.
"""

from __future__ import annotations

import importlib.util
import py_compile
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gates.base import RunContext, Status
from gates.compiled import find_compiled
from gates.lint import LintGate
from tests.project_support import REPO

_EXT = importlib.machinery.EXTENSION_SUFFIXES[0]  # e.g. .cpython-311-x86_64-linux-gnu.so
_MARKER = "planted bytecode ran"


def _unchecked_pyc(root: Path, module: str) -> str:
    """An unchecked hash-based .pyc for ``module`` (dotted) that prints a marker when imported."""
    source = root / "_planted_source.py"
    source.write_text(f"print({_MARKER!r})\n", encoding="utf-8")
    parts = module.split(".")
    target = root.joinpath(
        *parts[:-1], "__pycache__", f"{parts[-1]}.{sys.implementation.cache_tag}.pyc"
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    py_compile.compile(
        str(source),
        cfile=str(target),
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        doraise=True,
    )
    source.unlink()
    return target.relative_to(root).as_posix()


def _plant_bytes(relative: str) -> Any:
    def plant(root: Path) -> str:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x7fELF planted")
        return relative

    return plant


def _sourceless(relative: str) -> Any:
    def plant(root: Path) -> str:
        source = root / "_planted_source.py"
        source.write_text("X = 1\n", encoding="utf-8")
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        py_compile.compile(str(source), cfile=str(root / relative), doraise=True)
        source.unlink()
        return relative

    return plant


PLANTED = {
    "extension-beside-a-gate-module": _plant_bytes(f"gates/registry{_EXT}"),
    "abi3-extension-beside-a-pipeline-module": _plant_bytes("pipeline/persist.abi3.so"),
    "extension-in-a-subpackage": _plant_bytes(f"gates/feedback/history{_EXT}"),
    "top-level-extension-shadowing-pydantic": _plant_bytes(f"pydantic{_EXT}"),
    "top-level-extension-shadowing-packaging": _plant_bytes("packaging.abi3.so"),
    "windows-extension-module": _plant_bytes("gates/sast.pyd"),
    "package-init-as-extension": _plant_bytes(f"gates/ci/__init__{_EXT}"),
    "sourceless-pyc-in-a-package": _sourceless("gates/helpers.pyc"),
    "sourceless-pyc-at-the-root-shadowing-yaml": _sourceless("yaml.pyc"),
    "sourceless-pyc-in-a-new-top-level-package": _sourceless("json/decoder.pyc"),
    "unchecked-pyc-for-the-registry": lambda root: _unchecked_pyc(root, "gates.registry"),
    "unchecked-pyc-for-a-subpackage": lambda root: _unchecked_pyc(root, "gates.feedback.history"),
    "unchecked-pyc-for-the-loader": lambda root: _unchecked_pyc(root, "pipeline.persist"),
}


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    for name in ("policy.toml", "pyproject.toml", "noxfile.py"):
        shutil.copy2(REPO / name, root / name)
    for name in ("gates", "pipeline", "data", "keys"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.mark.parametrize("case", sorted(PLANTED))
def test_compiled_code_is_found_by_its_path(tmp_path: Path, case: str) -> None:
    root = _copy(tmp_path)
    assert find_compiled(root) == []  # the control: the copy holds source only
    planted = PLANTED[case](root)
    found = find_compiled(root)
    assert [path for path, _ in found] == [planted], found


def test_what_python_writes_itself_is_not_reported(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    for mode in (
        py_compile.PycInvalidationMode.TIMESTAMP,
        py_compile.PycInvalidationMode.CHECKED_HASH,
    ):
        name = "registry" if mode is py_compile.PycInvalidationMode.TIMESTAMP else "runner"
        py_compile.compile(
            str(root / "gates" / f"{name}.py"),
            cfile=str(
                root / "gates" / "__pycache__" / f"{name}.{sys.implementation.cache_tag}.pyc"
            ),
            invalidation_mode=mode,
            doraise=True,
        )
    # Folders no import reaches: a virtual environment's site-packages, nox's, git's.
    for folder in (
        ".nox/env/lib/python3.11/site-packages",
        "venv/lib/python3.11/site-packages",
        ".git",
    ):
        (root / folder).mkdir(parents=True)
        (root / folder / f"numpy_core{_EXT}").write_bytes(b"\x7fELF")
    assert find_compiled(root) == []


def test_the_unchecked_pyc_really_runs_instead_of_the_source(tmp_path: Path) -> None:
    # The attack is real: Python imports the planted bytecode and never reads registry.py.
    root = _copy(tmp_path)
    _unchecked_pyc(root, "gates.registry")
    done = subprocess.run(
        [sys.executable, "-c", "import gates.registry"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert _MARKER in done.stdout, done.stderr


def test_the_lint_gate_fails_naming_every_planted_file(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    planted = sorted(plant(root) for plant in PLANTED.values())
    from pipeline.config import load_policy

    context = RunContext(
        policy=load_policy(root / "policy.toml"), run_id="t", reports_dir=root / "reports"
    )
    outcome = LintGate().run(context)
    assert outcome.status is Status.FAILED, outcome.summary
    flagged = sorted(f.location.path for f in outcome.findings if f.rule == "LINT007")
    assert flagged == planted
    for finding in (f for f in outcome.findings if f.rule == "LINT007"):
        assert finding.message.startswith(f"{finding.location.path}: ")


def test_nox_refuses_to_import_a_tree_with_compiled_code(tmp_path: Path) -> None:
    nox = shutil.which("nox")
    if nox is None:
        pytest.skip("nox is not on PATH (.ci/run installs it)")
    root = _copy(tmp_path)
    clean = subprocess.run(
        [nox, "-l"], cwd=root, capture_output=True, text=True, timeout=120, check=False
    )
    assert clean.returncode == 0, clean.stderr  # the control
    _unchecked_pyc(root, "gates.registry")
    done = subprocess.run(
        [nox, "-l"], cwd=root, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode != 0
    assert "gates/__pycache__/registry" in done.stderr
    assert _MARKER not in done.stdout + done.stderr  # refused before the planted code could run


def test_bytecode_that_is_a_symlink_to_a_fifo_is_named_not_read(tmp_path: Path) -> None:
    """The check reads each ``__pycache__/*.pyc`` header (a hash-based one runs unchecked): a
    pull request that force-adds one as a symlink to a FIFO, or to ``/proc/self/fd/1`` (the
    CI job's output pipe), made the read wait for ever, hanging the lint gate and nox's first
    check (red team 7, 6 December: no answer within 60 s). Such a name is compiled code that
    cannot be shown harmless: reported, unread. ``gates/compiled.py`` runs as nox runs it."""
    import os

    root = tmp_path / "tree"
    (root / "pipeline" / "__pycache__").mkdir(parents=True)
    (root / "pipeline" / "__init__.py").write_text("", encoding="utf-8")
    os.mkfifo(tmp_path / "fifo")
    planted = root / "pipeline" / "__pycache__" / "model.cpython-311.pyc"
    planted.symlink_to(tmp_path / "fifo")
    try:
        done = subprocess.run(
            [sys.executable, "-I", str(REPO / "gates" / "compiled.py"), str(root)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("gates/compiled.py waited on a planted symlink to a FIFO")
    assert done.returncode == 1, done.stderr
    assert done.stdout == (
        "pipeline/__pycache__/model.cpython-311.pyc: bytecode that is not a regular file "
        "(a FIFO or device)\n"
    )
