"""A leftover or committed ``.gates-init/`` journal (trust-model row 122).

``init`` journals every file it may change and restores them when it fails; a ``kill -9`` leaves
the journal armed and the project half-written, and only the next ``init`` looked for it (adoption
trial, 7 December): ``run``, ``data approve``, ``ci ...``, ``serve`` ran on the half-written
project. Now every command but ``init`` (which restores first), ``list`` and ``policy schema``
refuses, with one line naming the journal and ``python -m gates init --restore``; none restores by
itself.

A pull request can commit a journal (``git add -f``; ``.gitignore`` lists it) naming the files it
wants written over the checkout, with its own bytes as their "backups": restoring it in CI would
run the chain on files no diff of the tree shows (here: a policy whose thresholds are zero and a
release key of the pull request's own). Such a journal is refused as committed, by every command
and by ``init`` too, restoring nothing, with the ``git rm`` that removes it; the commit that
removes it runs again (CI is not blocked for good).

Every test here was red before (the commands ran; ``init`` restored the committed journal).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import run_module
from tests.git_support import git
from tests.project_support import copy_project

JOURNAL = ".gates-init"
HALF = "half-written"
RESTORE = "python -m gates init --restore"

# Each command on the project, as CI and a user run them (all refused before any work).
COMMANDS = {
    "run": ("run",),
    "run one gate": ("run", "data"),
    "data approve": ("data", "approve"),
    "policy check": ("policy", "check"),
    "verify": ("verify",),
    "deploy": ("deploy",),
    "serve": ("serve", "--port", "0"),
    "registry head": ("registry", "head"),
    "ci render --check": ("ci", "render", "--check"),
    "ci deploy --check": ("ci", "deploy", "--check"),
    "ci dotenv": ("ci", "dotenv"),
}


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }


def _half_written(root: Path) -> bytes:
    """What a killed init leaves: an armed journal, and the policy already replaced."""
    from gates.init import _Journal

    before = (root / "policy.toml").read_bytes()
    journal = _Journal(root, [root / "policy.toml", root / "data" / "SHA256SUMS"])
    journal.__enter__()  # armed; the kill comes before __exit__
    # Every write init makes replaces a file by rename (the journal's hard link keeps the old).
    (root / "new.tmp").write_bytes(before + b"\n# half of a new policy\n")
    os.replace(root / "new.tmp", root / "policy.toml")
    assert (root / JOURNAL / "journal.json").is_file()
    return before


@pytest.fixture(scope="module")
def half_written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    root = copy_project(tmp_path_factory.mktemp("half") / "project")
    return root, _half_written(root)


@pytest.mark.parametrize("name", list(COMMANDS))
def test_no_command_runs_on_a_half_written_project_and_none_restores(
    half_written: tuple[Path, bytes], name: str
) -> None:
    root, _ = half_written
    before = _snapshot(root)
    done = run_module("gates", *COMMANDS[name], cwd=root, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr == (
        f"error: {root / JOURNAL}: an interrupted 'python -m gates init' left its journal, so "
        "the project is half-written (its policy, data copy, lock or checksums); put every file "
        f"back as it was with '{RESTORE}' (or run init again), then run this command again\n"
    )
    assert _snapshot(root) == before  # nothing restored, nothing written


def test_init_restore_puts_it_back_and_the_commands_run_again(tmp_path: Path) -> None:
    root = copy_project(tmp_path / "project")
    before = _half_written(root)
    restored = run_module("gates", "init", "--restore", cwd=root)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "restored what an interrupted init had changed (policy.toml" in restored.stdout
    assert (root / "policy.toml").read_bytes() == before
    assert not (root / JOURNAL).exists()
    checked = run_module("gates", "policy", "check", cwd=root)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    again = run_module("gates", "init", "--restore", cwd=root)
    assert again.returncode == 0
    assert "nothing to restore" in again.stdout


def test_a_journal_killed_before_it_was_armed_blocks_nothing(tmp_path: Path) -> None:
    root = copy_project(tmp_path / "project")
    (root / JOURNAL).mkdir()
    (root / JOURNAL / "0").write_bytes(b"a backup, no journal.json: nothing was written yet")
    checked = run_module("gates", "policy", "check", cwd=root)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _committed_journal(root: Path) -> tuple[bytes, bytes]:
    """A pull request's commit: a journal whose "backups" are its own policy and release key."""
    policy = (root / "policy.toml").read_bytes()
    key = (root / "keys" / "release.pub").read_bytes()
    journal = root / JOURNAL
    journal.mkdir()
    (journal / "0").write_bytes(policy.replace(b"min_mean = 0.9", b"min_mean = 0.0"))
    (journal / "1").write_bytes(b"-----BEGIN PUBLIC KEY-----\nthe pull request's\n")
    (journal / "journal.json").write_text(
        json.dumps(
            {
                "files": [
                    {"path": "policy.toml", "backup": "0"},
                    {"path": "keys/release.pub", "backup": "1"},
                ],
                "made": [],
            }
        ),
        encoding="utf-8",
    )
    git(root, "init", "-q", "-b", "feature")
    git(root, "add", "-A")
    git(root, "add", "-f", JOURNAL)
    git(root, "commit", "-q", "-m", "a pull request")
    return policy, key


@pytest.fixture(scope="module")
def committed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = copy_project(tmp_path_factory.mktemp("committed") / "project")
    _committed_journal(root)
    return root


@pytest.mark.parametrize("name", [*COMMANDS, "init", "init --restore"])
def test_a_committed_journal_restores_nothing_and_names_the_git_rm(
    committed: Path, name: str, tmp_path: Path
) -> None:
    root = committed
    before = _snapshot(root)
    if name == "init":
        table = tmp_path / "t.csv"
        table.write_text("a,y\n1,x\n2,z\n3,x\n4,z\n5,x\n6,z\n", encoding="utf-8")
        args: tuple[str, ...] = ("init", str(table), "--label", "y", "--force")
    elif name == "init --restore":
        args = ("init", "--restore")
    else:
        args = COMMANDS[name]
    done = run_module("gates", *args, cwd=root, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr == (
        f"error: {JOURNAL}/0 (and 2 more): an init journal committed to the repository "
        f"({JOURNAL}/ is never committed: .gitignore lists it); nothing is restored from it and "
        f"nothing runs beside it: remove it (git rm -r {JOURNAL}) and commit\n"
    )
    assert _snapshot(root) == before


def test_the_commit_that_removes_it_runs_again(tmp_path: Path) -> None:
    root = copy_project(tmp_path / "project")
    policy, key = _committed_journal(root)
    refused = run_module("gates", "policy", "check", cwd=root)
    assert refused.returncode == 2
    git(root, "rm", "-r", "-q", JOURNAL)
    git(root, "commit", "-q", "-m", "remove the journal")
    checked = run_module("gates", "policy", "check", cwd=root)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert (root / "policy.toml").read_bytes() == policy
    assert (root / "keys" / "release.pub").read_bytes() == key


def test_a_journal_folder_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    root = copy_project(tmp_path / "project")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "journal.json").write_text('{"files": []}', encoding="utf-8")
    os.symlink(elsewhere, root / JOURNAL)
    done = run_module("gates", "policy", "check", cwd=root)
    assert done.returncode == 2
    assert done.stderr == (
        f"error: {root / JOURNAL}: not a folder (init keeps its journal in a real folder of that "
        "name); remove it\n"
    )
