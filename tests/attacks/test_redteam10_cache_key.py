"""Planted attack (red team 10, 7 December): a file that takes others out of every gate's key.

Every gate's cache key holds the source digest: every module of the project and every
configuration file (``.toml``, ``.yml``, ``.cfg``, ...) outside output and data folders, so
that a gate runs again when anything the project's code may read changes. The walk leaves out
virtual environments, recognised by a ``pyvenv.cfg`` in the folder, and a pull request controls
every byte of the tree: ``pipeline/conf/pyvenv.cfg`` beside ``pipeline/conf/model.toml`` took
the whole folder's configuration out of every key: a changed ``model.toml`` left the source
digest as it was (checked here), so any gate whose key holds nothing else that changed (train,
cv) would reuse the outcome computed with the old file (not run end to end). ``import`` does not care about
``pyvenv.cfg``: a virtual environment is only what Python starts from, never a package folder.

The fix belongs in ``gates/cache.py`` (``_project_sources``; owned by helper noop): the test is
marked xfail(strict) and reported to the lead.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gates.base import RunContext
from gates.cache import source_digest
from pipeline.config import load_policy
from tests.project_support import copy_project


def _digest(root: Path) -> str:
    context = RunContext(
        policy=load_policy(root / "policy.toml"), run_id="r", reports_dir=root / "reports"
    )
    return source_digest(context)


def _conf(tmp_path: Path) -> tuple[Path, Path]:
    root = copy_project(tmp_path / "project")
    conf = root / "pipeline" / "conf"
    conf.mkdir()
    (conf / "model.toml").write_text("C = 1.0\n", encoding="utf-8")
    return root, conf / "model.toml"


def test_a_changed_configuration_file_changes_the_key(tmp_path: Path) -> None:
    """Control: without the plant, the key follows the file."""
    root, toml = _conf(tmp_path)
    before = _digest(root)
    toml.write_text("C = 1e-7\n", encoding="utf-8")
    assert _digest(root) != before


@pytest.mark.xfail(
    strict=True,
    reason="gates/cache.py (noop's file): a pyvenv.cfg planted in a project folder takes its "
    "configuration files out of every gate's cache key; fix in _project_sources",
)
def test_a_planted_pyvenv_cfg_does_not_take_a_folder_out_of_the_key(tmp_path: Path) -> None:
    root, toml = _conf(tmp_path)
    (toml.parent / "pyvenv.cfg").write_text("home = /usr/bin\n", encoding="utf-8")
    before = _digest(root)
    toml.write_text("C = 1e-7\n", encoding="utf-8")
    assert _digest(root) != before
