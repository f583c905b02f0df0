"""Red team 16: ``init``'s all-or-nothing journal committed by a pull request.

``.gates-init/journal.json`` is read by the next ``init`` before anything else and puts back
every file it names from the backups beside it (gates/init.py ``_roll_back``). Entries outside
the project, through symlinks or with backups from elsewhere were refused (tests/gates/
test_init_atomic.py); but the project folder holds more than the tree: ``.git/hooks``,
``.git/config`` and a virtualenv are inside it, git tracks none of them, and a journal the pull
request commits (``git add -f``, the folder is only gitignored) named them: the maintainer who
checks the branch out and runs ``init`` (``nox -s init -- table.csv --label y --force``, the
README's re-init) got an executable ``.git/hooks/pre-commit`` of the pull request's (git keeps
the executable bit, a hard link keeps the mode), run at their next ``git commit``; or a
``.git/config`` whose ``core.fsmonitor`` runs at their next ``git status``.

A journal is init's own, left by a killed init on this machine: never committed. One git
tracks is refused whole, naming it, before any file is put back.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gates.init import JOURNAL, InitError, init
from tests.git_support import git
from tests.project_support import REPO, copy_project

HOOK = '#!/bin/sh\ntouch "$(git rev-parse --git-dir)/../PWNED"\n'


def _table(path: Path) -> Path:
    rng = np.random.default_rng(4)
    a, b = rng.normal(0, 1, 120).round(4), rng.normal(0, 1, 120).round(4)
    pd.DataFrame({"a": a, "b": b, "y": np.where(a + b > 0, "go", "stay")}).to_csv(path, index=False)
    return path


def _checkout_with_journal(tmp_path: Path, entries: dict[str, tuple[str, int]]) -> Path:
    """A clone of a pull request that commits ``.gates-init/`` naming ``entries``
    (path -> (backup content, mode))."""
    root = copy_project(tmp_path / "project", keys=False)
    git(root, "init", "-q")
    journal = root / JOURNAL
    journal.mkdir()
    files = []
    for number, (name, (text, mode)) in enumerate(entries.items()):
        backup = journal / str(number)
        backup.write_text(text, encoding="utf-8")
        backup.chmod(mode)
        files.append({"path": name, "backup": str(number)})
    (journal / "journal.json").write_text(json.dumps({"files": files, "made": []}))
    git(root, "add", "-A", "-f")
    git(root, "commit", "-q", "-m", "pull request")
    return root


@pytest.mark.parametrize(
    ("name", "text", "mode"),
    [
        (".git/hooks/pre-commit", HOOK, 0o755),
        (
            ".git/config",
            "[core]\n\trepositoryformatversion = 0\n\tfsmonitor = touch PWNED\n",
            0o644,
        ),
    ],
    ids=["git-hook", "git-config-fsmonitor"],
)
def test_a_committed_journal_writes_nothing_into_the_clone(
    tmp_path: Path, name: str, text: str, mode: int
) -> None:
    root = _checkout_with_journal(tmp_path, {name: (text, mode)})
    target = root / name
    before = target.read_bytes() if target.exists() else None
    with pytest.raises(InitError, match=r"\.gates-init.*committed to the repository") as raised:
        init(
            _table(tmp_path / "t.csv"),
            label="y",
            force=True,
            policy_path=root / "policy.toml",
            out=io.StringIO(),
        )
    assert "journal" in str(raised.value)
    after = target.read_bytes() if target.exists() else None
    assert after == before, f"{name} was written from the pull request's journal"
    # And the maintainer's next git commands run nothing of the pull request's.
    (root / "note.txt").write_text("x\n", encoding="utf-8")
    git(root, "add", "note.txt")
    git(root, "commit", "-q", "-m", "maintainer")
    assert not (root / "PWNED").exists()


def _gates(root: Path, *argv: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m gates ARGV`` run in ``root`` (with ``PATH`` set to ``path`` when given)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if path is not None:
        env["PATH"] = path
    return subprocess.run(  # nosec B603 # fixed argv
        [sys.executable, "-m", "gates", *argv],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_cli_refuses_a_committed_journal_in_one_line(tmp_path: Path) -> None:
    root = _checkout_with_journal(tmp_path, {".git/hooks/pre-commit": (HOOK, 0o755)})
    table = _table(tmp_path / "t.csv")
    done = _gates(root, "init", str(table), "--label", "y", "--force")
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert "committed to the repository" in done.stderr + done.stdout
    assert not (root / ".git" / "hooks" / "pre-commit").exists()


def test_an_untracked_journal_a_kill_left_is_still_rolled_back(tmp_path: Path) -> None:
    """Control: the journal a killed init leaves (never committed) is still put back."""
    root = copy_project(tmp_path / "project", keys=False)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    policy = root / "policy.toml"
    original = policy.read_bytes()
    journal = root / JOURNAL
    journal.mkdir()
    os.link(policy, journal / "0")
    (journal / "journal.json").write_text(
        json.dumps({"files": [{"path": "policy.toml", "backup": "0"}], "made": []})
    )
    half = root / ".policy.toml.init"
    half.write_text("half written\n", encoding="utf-8")
    os.replace(half, policy)  # what the killed init left (init writes by rename)
    out = io.StringIO()
    with pytest.raises(InitError, match="exists"):
        init(_table(tmp_path / "t.csv"), label="y", policy_path=policy, out=out)
    assert "restored" in out.getvalue()
    assert policy.read_bytes() == original


def test_a_committed_backup_without_a_manifest_does_not_stop_a_roll_back(tmp_path: Path) -> None:
    """A pull request that commits only ``.gates-init/0`` (no ``journal.json``): init empties
    the folder, journals its own backups there, and a failure still puts every file back (git
    still tracking ``.gates-init/0`` is no reason to leave the project half written)."""
    from gates.init import _Journal

    root = copy_project(tmp_path / "project", keys=False)
    git(root, "init", "-q")
    (root / JOURNAL).mkdir()
    (root / JOURNAL / "0").write_text("the pull request's bytes\n", encoding="utf-8")
    git(root, "add", "-A", "-f")
    git(root, "commit", "-q", "-m", "pull request")
    policy = root / "policy.toml"
    original = policy.read_bytes()

    class Planted(Exception):
        pass

    def killed_half_way() -> None:
        with _Journal(root, [policy]):
            half = root / ".policy.toml.init"
            half.write_text("half written\n", encoding="utf-8")
            os.replace(half, policy)
            raise Planted

    with pytest.raises(Planted):
        killed_half_way()
    assert policy.read_bytes() == original
    assert not (root / JOURNAL / "journal.json").exists()


@pytest.mark.parametrize(
    "command", [["init", "--restore"], ["run", "lint"]], ids=["restore", "run"]
)
def test_a_committed_journal_is_refused_where_git_does_not_run(
    tmp_path: Path, command: list[str]
) -> None:
    """With git off PATH, ``git ls-files`` tells nothing, and a committed journal looked like the
    one a kill left: ``init --restore`` wrote the pull request's hook into ``.git/hooks``. Where a
    checkout's git cannot be run, whether the journal was committed cannot be told: refused."""
    root = _checkout_with_journal(tmp_path, {".git/hooks/pre-commit": (HOOK, 0o755)})
    no_git = tmp_path / "bin"
    no_git.mkdir()
    done = _gates(root, *command, path=str(no_git))
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert "git could not be run" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (root / ".git" / "hooks" / "pre-commit").exists()
