"""Planted attack (red team 19, 7 December): committed files the source digest did not read.

Every gate's cache key holds the source digest (``gates.cache.source_digest``). It was a walk of
the tree that kept modules anywhere and configuration files by suffix (``.toml``, ``.yml``,
``.cfg`` ...) outside output and data folders, skipping every folder whose name starts with a
dot. A pull request controls every committed byte, and the project's code reads whatever it
names: ``pipeline/.conf/model.toml`` read by the training code, ``.settings/x.toml``, a module
imported after ``sys.path.insert(0, ".lib")``, a ``model.json``, ``model.csv`` or ``MODEL.TOML``
configuration, a file without a suffix, or ``pipeline/conf`` committed as a symlink to a hidden
folder (the walk follows no symlinked folder). Each one changed, the source digest stayed the
same (red before the fix), so train's key was unchanged and its cached outcome, computed with
the old file, was reused (shown with the real cache of a finished chain below).

Fixed in ``gates/cache.py``: in a git checkout every file git tracks counts, whatever its name,
suffix or folder (the run's data inputs excepted: they are keyed as inputs, so that
``Reads(data=False)`` still leaves them out); untracked files are walked as before, so a local
``.nox``, ``.venv`` or ``.pytest_cache`` changes no key (controls below). A checkout git cannot
list gives no key at all: the gate runs.
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

_IGNORE = "/reports/\n/artifacts/\n/registry/\n/history/\n.cache/\n__pycache__/\n"


def _commit(root: Path) -> None:
    """The project as a pull request's checkout: every file committed (outputs ignored)."""
    if not (root / ".git").exists():
        (root / ".gitignore").write_text(_IGNORE, encoding="utf-8")
        _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "pr")


def _digest(root: Path) -> str:
    context = RunContext(
        policy=load_policy(root / "policy.toml"), run_id="r", reports_dir=root / "reports"
    )
    return source_digest(context)


# (the file the project's code reads, as committed by the pull request)
PLANTS = (
    "pipeline/.conf/model.toml",  # a hidden folder inside a package
    ".settings/x.toml",  # a hidden folder at the top
    ".lib/knob.py",  # imported after sys.path.insert(0, ".lib")
    "pipeline/conf/model.json",  # suffixes the walk did not count
    "pipeline/conf/model.csv",
    "pipeline/conf/MODEL",  # no suffix
    "pipeline/conf/MODEL.TOML",  # a suffix in capitals
    "build/model.toml",  # configuration in a folder named like an output
    "data/model.json",  # ... or like the data's
)


@pytest.mark.parametrize("plant", PLANTS)
def test_a_committed_file_the_code_reads_is_in_the_key(tmp_path: Path, plant: str) -> None:
    root = copy_project(tmp_path / "project")
    path = root / plant
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("C = 1.0\n", encoding="utf-8")
    _commit(root)
    before = _digest(root)
    path.write_text("C = 1e-7\n", encoding="utf-8")
    assert _digest(root) != before, plant


def test_outside_git_a_configuration_suffix_counts_in_any_case(tmp_path: Path) -> None:
    """Untracked (a local run, no checkout), the walk alone: ``MODEL.TOML`` is as much a
    ``.toml`` as ``model.toml`` to the code that reads it by name."""
    root = copy_project(tmp_path / "project")
    toml = root / "pipeline" / "MODEL.TOML"
    toml.write_text("C = 1.0\n", encoding="utf-8")
    before = _digest(root)
    toml.write_text("C = 1e-7\n", encoding="utf-8")
    assert _digest(root) != before


def test_a_folder_committed_as_a_symlink_to_a_hidden_folder_is_in_the_key(tmp_path: Path) -> None:
    """``pipeline/conf -> .conf``: the walk follows no symlinked folder, and skipped ``.conf``."""
    root = copy_project(tmp_path / "project")
    (root / ".conf").mkdir()
    toml = root / ".conf" / "model.toml"
    toml.write_text("C = 1.0\n", encoding="utf-8")
    (root / "pipeline" / "conf").symlink_to("../.conf", target_is_directory=True)
    _commit(root)
    before = _digest(root)
    toml.write_text("C = 1e-7\n", encoding="utf-8")
    assert (root / "pipeline" / "conf" / "model.toml").read_text() == "C = 1e-7\n"
    assert _digest(root) != before


def test_a_symlink_to_a_file_outside_the_tree_counts_by_its_target(tmp_path: Path) -> None:
    """Control (green before too): a committed symlink is read through, wherever it leads."""
    root = copy_project(tmp_path / "project")
    outside = tmp_path / "outside.toml"
    outside.write_text("C = 1.0\n", encoding="utf-8")
    (root / "pipeline" / "model.toml").symlink_to(outside)
    (root / "pipeline" / "model").symlink_to(outside)  # no suffix: counted as tracked
    _commit(root)
    before = _digest(root)
    outside.write_text("C = 1e-7\n", encoding="utf-8")
    assert _digest(root) != before


def test_untracked_local_folders_change_no_key(tmp_path: Path) -> None:
    """Controls: what this machine makes in a checkout (environments, tool caches, outputs,
    the gate cache) is not a source, tracked or not by name."""
    root = copy_project(tmp_path / "project")
    _commit(root)
    before = _digest(root)
    for rel in (
        ".nox/env/lib/site.py",
        ".nox/env/pyvenv.cfg",
        ".venv/lib/site.py",
        ".venv/pyvenv.cfg",
        ".pytest_cache/v/cache/nodeids",
        ".pytest_cache/x.toml",
        ".mypy_cache/3.11/x.json",
        ".cache/gates/digests.memo",
        "reports/lint.json",
        "reports/x.toml",
        "artifacts/model.json",
        "data/another.lock",
        "data/notes.json",
        "history/runs.jsonl",
    ):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x = 1\n", encoding="utf-8")
    assert _digest(root) == before
    _git(root, "commit", "-q", "--allow-empty", "-m", "nothing new")  # `.git` is no source
    assert _digest(root) == before


def test_the_data_inputs_stay_out_of_the_source_digest(tmp_path: Path) -> None:
    """Control: the data file, its lock and checksums are committed, but keyed as inputs (so
    that a gate declaring ``Reads(data=False)`` keeps its outcome when only the data changes)."""
    root = copy_project(tmp_path / "project")
    _commit(root)
    before = _digest(root)
    for name in ("breast_cancer.csv", "breast_cancer.lock.json", "SHA256SUMS"):
        path = root / "data" / name
        path.write_bytes(path.read_bytes() + b"\n")
    assert _digest(root) == before


def test_a_checkout_git_cannot_list_gives_no_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fail closed: when git cannot say what the commit holds, there is no source digest (the
    cache then runs the gate), never the walk alone."""
    from gates.errors import GatesError

    root = copy_project(tmp_path / "project")
    _commit(root)
    monkeypatch.setenv("GIT_DIR", str(root / "no-such-git-dir"))
    with pytest.raises(GatesError, match="git"):
        _digest(root)


def test_a_cached_train_outcome_is_not_reused_after_a_hidden_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real cache (keys, sealed entry, lookup) for train, with the earlier gates' reports of
    the run in place: the entry is found while nothing changed, and missed once the committed
    ``pipeline/.conf/model.toml`` changes (before the fix train's key was unchanged and the
    outcome computed with the old file was reused)."""
    from gates import cache as gate_cache
    from gates.base import GateResult, Status
    from gates.inputs import input_digests
    from gates.registry import checked_before, spec

    monkeypatch.setenv(gate_cache.CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(gate_cache.HMAC_KEY_ENV, raising=False)
    root = copy_project(tmp_path / "project")
    conf = root / "pipeline" / ".conf" / "model.toml"
    conf.parent.mkdir()
    conf.write_text("C = 1.0\n", encoding="utf-8")
    _commit(root)
    policy = load_policy(root / "policy.toml")
    context = RunContext(policy=policy, run_id="r", reports_dir=root / "reports")
    inputs = input_digests(policy)
    context.reports_dir.mkdir()
    for earlier in checked_before("train"):  # the earlier gates' reports of this run, passed
        passed = GateResult(earlier.name, Status.PASSED, "ok", "r", inputs=inputs)
        context.report_path(earlier.name).write_text(passed.to_json(), encoding="utf-8")
    cache = gate_cache.GateCache(context)
    train = spec("train")
    first = cache.key(train, inputs)
    assert first is not None
    outcome = GateResult("train", Status.PASSED, "trained with C = 1.0", "r", inputs=inputs)
    cache.store(train, first, outcome, written=[])
    assert cache.lookup(train, first) is not None  # control: unchanged, reused
    conf.write_text("C = 1e-7\n", encoding="utf-8")
    second = cache.key(train, inputs)
    assert second is not None
    assert second.digest != first.digest
    assert cache.lookup(train, second) is None


def test_a_checkout_without_a_git_executable_gives_no_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fail closed: a ``.git`` and no git on PATH is not "outside git" (the walk alone would
    leave the hidden folders out again)."""
    from gates.errors import GatesError

    root = copy_project(tmp_path / "project")
    _commit(root)
    no_git = tmp_path / "bin-without-git"
    no_git.mkdir()
    monkeypatch.setenv("PATH", str(no_git))
    with pytest.raises(GatesError, match="git is not on PATH"):
        _digest(root)
