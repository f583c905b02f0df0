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

Fixed in ``gates/cache.py`` (``_local_venv``): a folder with a ``pyvenv.cfg`` is left out of
the key only when nothing in it comes from the checked-out commit (git tracks none of it); a
local, untracked virtual environment stays out, as before (controls below).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gates.base import RunContext
from gates.cache import source_digest
from pipeline.config import load_policy
from tests.git_support import git as _git
from tests.project_support import copy_project

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def _commit(root: Path) -> None:
    """The project as a pull request's checkout: every file committed."""
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "pr")


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


def test_a_planted_pyvenv_cfg_does_not_take_a_folder_out_of_the_key(tmp_path: Path) -> None:
    root, toml = _conf(tmp_path)
    (toml.parent / "pyvenv.cfg").write_text("home = /usr/bin\n", encoding="utf-8")
    _commit(root)
    before = _digest(root)
    toml.write_text("C = 1e-7\n", encoding="utf-8")
    assert _digest(root) != before


def test_a_committed_virtual_environment_is_in_the_key(tmp_path: Path) -> None:
    """The whole folder, modules too: ``import`` reaches ``venv/x.py`` as it reaches any."""
    root = copy_project(tmp_path / "project")
    venv = root / "venv"
    venv.mkdir()
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n", encoding="utf-8")
    (venv / "knob.py").write_text("C = 1.0\n", encoding="utf-8")
    _commit(root)
    before = _digest(root)
    (venv / "knob.py").write_text("C = 1e-7\n", encoding="utf-8")
    assert _digest(root) != before


def test_a_local_untracked_virtual_environment_stays_out_of_the_key(tmp_path: Path) -> None:
    """Control: ``python -m venv venv`` in a checkout (not committed) changes no key."""
    root = copy_project(tmp_path / "project")
    _commit(root)
    venv = root / "venv"
    venv.mkdir()
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n", encoding="utf-8")
    (venv / "site.py").write_text("x = 1\n", encoding="utf-8")
    before = _digest(root)
    (venv / "site.py").write_text("x = 2\n", encoding="utf-8")
    assert _digest(root) == before
