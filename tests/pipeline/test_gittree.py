"""``pipeline.gittree`` asks git once per process whether it reads the checkout, and lists always.

A run asks about three folders per gate (reports, artifacts, the gate cache) and a warm worker
serves nine gates: asking ``git rev-parse --is-inside-work-tree`` before every listing was half
the git processes of a warm no-op. Only a ``true`` is remembered, by git, folder and the whole
environment; any listing that fails asks again, so every refusal reads as before.
"""

from __future__ import annotations

import shutil
import subprocess  # nosec B404 # fixed argv lists, never a shell
from pathlib import Path
from typing import Any

import pytest

from pipeline import gittree
from tests.git_support import git as _git

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "reports").mkdir(parents=True)
    (root / "reports" / "gate.json").write_text("{}", encoding="utf-8")
    (root / "artifacts").mkdir()
    _git(root, "init", "-q")
    _git(root, "add", "-f", "reports/gate.json")
    _git(root, "commit", "-qm", "planted")
    getattr(gittree, "_READABLE", set()).clear()  # a fresh process, as far as it knows
    return root


def _count_git(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    calls: list[list[str]] = []
    real = subprocess.run

    def counted(argv: list[str], *args: Any, **kwargs: Any) -> Any:
        calls.append(list(argv))
        return real(argv, *args, **kwargs)

    monkeypatch.setattr(gittree.subprocess, "run", counted)
    return calls


def test_three_folders_cost_one_question_and_three_listings(checkout, monkeypatch):
    calls = _count_git(monkeypatch)
    assert gittree.from_the_tree(checkout / "reports", checkout) == "git tracks reports/gate.json"
    assert gittree.from_the_tree(checkout / "artifacts", checkout) is None
    assert gittree.from_the_tree(checkout / ".cache" / "gates", checkout) is None
    asked = [argv[1:3] for argv in calls]
    assert asked.count(["rev-parse", "--is-inside-work-tree"]) == 1
    assert sum("ls-files" in argv for argv in calls) == 3


def test_a_checkout_git_stops_reading_is_refused_as_before(checkout, monkeypatch):
    assert gittree.from_the_tree(checkout / "artifacts", checkout) is None
    # Another environment is asked anew (GIT_DIR naming no repository, as in CI's
    # "dubious ownership" the checkout reads as outside any repository).
    monkeypatch.setenv("GIT_DIR", str(checkout / "no-such-git-dir"))
    reason = gittree.from_the_tree(checkout / "artifacts", checkout)
    assert reason is not None
    assert reason.startswith("git cannot read the checkout (")


def test_a_listing_that_fails_asks_again_whether_git_reads_the_checkout(checkout, tmp_path):
    assert gittree.from_the_tree(checkout / "artifacts", checkout) is None
    # The same process and environment, the checkout's .git gone: the remembered "true" is
    # not trusted, git is asked again and says "outside git", as a first question would.
    shutil.move(checkout / ".git", tmp_path / "moved-git")
    assert gittree.from_the_tree(checkout / "reports", checkout) is None
    shutil.move(tmp_path / "moved-git", checkout / ".git")
    # And the other way: git reads the checkout again, the committed report is seen.
    assert gittree.from_the_tree(checkout / "reports", checkout) == "git tracks reports/gate.json"
