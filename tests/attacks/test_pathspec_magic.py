"""Red team 9: a folder named as git pathspec magic hides what git tracks in it.

``pipeline.gittree`` asks ``git ls-files -- <folder>`` whether the commit brings files into a
folder a run owns (reports, artifacts, registry, cache: rows 21, 44, 48). git reads the argument
as a pathspec, and a leading ``:(...)`` is magic, not a name: a policy naming
``[run].reports_dir = ":(attr:zz)reports"`` (a legal folder name, inside the project) made
``ls-files`` match the files that carry the attribute ``zz``, none, so a report committed
there with ``git add -f`` was "nothing tracked": read as this run's own. Checked on a real
git repository, through the policy the pull request writes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipeline.config import load_policy
from pipeline.gittree import committed_in, from_the_tree, tracked_files
from tests.conftest import REPO
from tests.git_support import git as _git

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")

NAMES = [":(attr:zz)reports", ":(attr:!zz)reports", ":(exclude)reports", ":(glob)re*/nothing"]


@pytest.mark.parametrize("name", NAMES)
def test_a_folder_named_as_pathspec_magic_still_shows_what_git_tracks(
    tmp_path: Path, name: str
) -> None:
    shutil.copy(REPO / "policy.toml", tmp_path / "policy.toml")
    text = (tmp_path / "policy.toml").read_text(encoding="utf-8")
    text = text.replace('reports_dir = "reports"', f"reports_dir = {name!r}".replace("'", '"'))
    assert name in text, "the policy names its reports folder"
    (tmp_path / "policy.toml").write_text(text, encoding="utf-8")
    loaded = load_policy(tmp_path / "policy.toml")
    folder = loaded.resolve(loaded.policy.run.reports_dir)
    folder.mkdir(parents=True)
    (folder / "lint.json").write_text('{"status": "PASSED"}\n', encoding="utf-8")
    (tmp_path / "other.txt").write_text("x\n", encoding="utf-8")
    _git(tmp_path, "init", "-q", ".")
    planted = f"{folder.relative_to(tmp_path).as_posix()}/lint.json"
    _git(tmp_path, "--literal-pathspecs", "add", "-f", "--", "policy.toml", "other.txt", planted)
    _git(tmp_path, "commit", "-qm", "planted report")
    assert from_the_tree(folder, tmp_path) == f"git tracks {planted}"
    assert tracked_files(tmp_path, folder) == [planted]
    assert committed_in(folder, tmp_path) is not None
