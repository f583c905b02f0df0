"""A project copy on which the whole chain (feedback included) ran once, shared by a module."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import project_support

REPO = Path(__file__).resolve().parents[3]


def copy_project(root: Path) -> Path:
    """Copy the project into ``root`` (what the ``project`` fixture does)."""
    return project_support.copy_project(root, keys=False)


@pytest.fixture(scope="module")
def passed_run(passed_chain: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project where ``python -m gates run`` (every gate, then feedback) passed once: a copy
    of the session's real run (``passed_chain``) that this module's tests may share."""
    from tests.chain_support import copy_run

    return copy_run(passed_chain, tmp_path_factory.mktemp("passed") / "project")
