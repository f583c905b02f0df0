"""A project copy on which the whole chain (feedback included) ran once, shared by a module."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tests import project_support

REPO = Path(__file__).resolve().parents[3]


def copy_project(root: Path) -> Path:
    """Copy the project into ``root`` (what the ``project`` fixture does)."""
    return project_support.copy_project(root, keys=False)


@pytest.fixture(scope="module")
def passed_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project where ``python -m gates run`` (every gate, then feedback) passed once."""
    from gates.runner import run_chain
    from pipeline.config import load_policy

    root = copy_project(tmp_path_factory.mktemp("passed") / "project")
    summary = run_chain(
        [],
        policy=load_policy(root / "policy.toml"),
        reports_dir=root / "reports",
        out=io.StringIO(),
    )
    assert summary.exit_code == 0, [r.summary for r in summary.results]
    return root
