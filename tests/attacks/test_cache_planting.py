"""A gate-cache entry committed in the tree must not stand in for a gate's run (red team).

CI keeps ``.cache/gates/`` inside the checkout (GitHub, GitLab), and without
``GATES_CACHE_HMAC_KEY`` (fork pull requests never get it; it is optional) an entry is sealed
with plain SHA-256, which anyone can recompute. A pull request that failed a gate reads the
gate's cache key in its report, rewrites the entry as PASSED, reseals it and commits it
(``git add -f``): the next run reused it, a PASSED verdict for code that fails. Nothing under the
cache folder may come from the commit, so the cache is not read when git tracks anything there
or the folder is reached through a symlink in the tree.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from gates import cache as gate_cache
from gates.base import Status

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


@pytest.fixture(autouse=True)
def _clean_cache_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (gate_cache.NO_CACHE_ENV, gate_cache.CACHE_DIR_ENV, gate_cache.HMAC_KEY_ENV):
        monkeypatch.delenv(name, raising=False)


def _git(root: Path, *args: str) -> None:
    git = shutil.which("git") or "git"
    subprocess.run(
        [git, "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


def _lint(project: Any) -> Any:
    from gates.runner import run_chain

    summary = run_chain(
        ["lint"],
        policy=project.load(),
        reports_dir=project.root / "reports",
        out=io.StringIO(),
        use_cache=True,
    )
    return summary.results[0]


def _forge_passed(entry: Path) -> None:
    """Rewrite a FAILED entry as PASSED and reseal it as the cache does without a key."""
    document = json.loads(entry.read_text(encoding="utf-8"))
    body = document["body"]
    assert body["outcome"]["status"] == "FAILED"
    body["outcome"].update(status="PASSED", findings=[], summary="ruff check and format clean")
    payload = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()
    document["seal"] = {"alg": "sha256", "digest": hashlib.sha256(payload).hexdigest()}
    entry.write_text(json.dumps(document), encoding="utf-8")


@pytest.fixture
def failed_lint(project: Any) -> tuple[Any, Path]:
    """A git checkout whose lint gate failed once (an unused import); its forged cache entry."""
    (project.root / "pipeline" / "planted.py").write_text(
        '"""Planted."""\n\nimport os\n', encoding="utf-8"
    )
    _git(project.root, "init", "-q")
    _git(project.root, "add", "-A")
    _git(project.root, "commit", "-qm", "pull request")
    first = _lint(project)
    assert first.status is Status.FAILED
    key = first.metrics["cache"]["key"]
    entry = project.root / ".cache" / "gates" / f"{key}.json"
    _forge_passed(entry)
    return project, entry


def test_a_forged_entry_committed_in_the_tree_is_not_reused(failed_lint: tuple[Any, Path]) -> None:
    project, entry = failed_lint
    _git(project.root, "add", "-f", str(entry))
    _git(project.root, "commit", "-qm", "cache")
    again = _lint(project)
    assert again.status is Status.FAILED, again.summary
    assert "reused_from" not in again.metrics.get("cache", {})


def test_a_cache_folder_the_tree_links_elsewhere_is_not_read(
    failed_lint: tuple[Any, Path],
) -> None:
    project, _ = failed_lint
    # The commit holds `.cache -> planted/` (a symlink) and the forged entry under planted/.
    planted = project.root / "planted"
    shutil.move(project.root / ".cache", planted)
    (project.root / ".cache").symlink_to("planted", target_is_directory=True)
    _git(project.root, "add", "-f", ".cache", "planted")
    _git(project.root, "commit", "-qm", "cache")
    again = _lint(project)
    assert again.status is Status.FAILED, again.summary


def test_an_entry_this_machine_wrote_is_still_reused(failed_lint: tuple[Any, Path]) -> None:
    # The control: untracked, the folder is the runner's own (restored by CI's cache step,
    # whose scoping keeps pull requests out of the default branch's), and is read as before.
    project, _ = failed_lint
    again = _lint(project)
    assert again.status is Status.PASSED
    assert "reused_from" in again.metrics["cache"]


def test_code_an_import_reaches_in_any_folder_is_part_of_every_key(project: Any) -> None:
    # `from build.knob import FACTOR` in pipeline/model.py, `build/knob.py` committed with
    # `git add -f`: FACTOR 1.0 passed and was cached; FACTOR 1e-7 fails cv (accuracy 0.63 <
    # 0.93 with --no-cache) but every gate was reused, PASSED, because folders named build,
    # dist, data, venv, reports, artifacts, registry, node_modules or __pycache__ were left out
    # of the source digest by name (red before). Data and configuration files there stay out.
    from gates.base import RunContext
    from gates.cache import source_digest

    context = RunContext(policy=project.load(), run_id="t", reports_dir=project.root / "reports")
    seen = {source_digest(context)}
    for name in ("build/knob.py", "data/knob.py", "reports/knob.py", "src/data/knob.py"):
        for value in ("1.0", "1e-7"):
            path = project.root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"FACTOR = {value}\n", encoding="utf-8")
            digest = source_digest(context)
            assert digest not in seen, name
            seen.add(digest)
    (project.root / "data" / "another.lock").write_text("{}\n", encoding="utf-8")
    (project.root / "reports" / "lint.json").write_text("{}\n", encoding="utf-8")
    assert source_digest(context) in seen  # data locks and reports are inputs and outputs


def test_a_checkout_git_cannot_read_is_not_taken_for_no_checkout(
    failed_lint: tuple[Any, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # CI containers often run git on a checkout another user owns ("dubious ownership"): git
    # then fails as outside a repository. The committed entry must not count as this machine's:
    # the run refuses to start at all, since neither its cache nor its reports folder can be
    # told from what the commit brought (tests/attacks/test_forged_reports.py).
    from gates.errors import GatesError

    project, entry = failed_lint
    _git(project.root, "add", "-f", str(entry))
    _git(project.root, "commit", "-qm", "cache")
    monkeypatch.setenv("GIT_DIR", str(project.root / "no-such-git-dir"))
    with pytest.raises(GatesError, match="git cannot read the checkout"):
        _lint(project)


def test_a_checkout_without_a_git_executable_is_not_taken_for_no_checkout(
    failed_lint: tuple[Any, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A runner without git on PATH, over a checkout with its .git: the forged entry was
    # reused (git missing read as "outside git"). Refused like a checkout git cannot read.
    from gates.errors import GatesError

    project, entry = failed_lint
    _git(project.root, "add", "-f", str(entry))
    _git(project.root, "commit", "-qm", "cache")
    no_git = tmp_path / "bin-without-git"
    no_git.mkdir()
    monkeypatch.setenv("PATH", str(no_git))
    with pytest.raises(GatesError, match=r"holds \.git but git could not be run"):
        _lint(project)


_SOURCE_DIGEST = """
import sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from gates.base import RunContext
from gates.cache import source_digest
from pipeline.config import load_policy

root = Path(sys.argv[1])
context = RunContext(policy=load_policy(root / "policy.toml"), run_id="r", reports_dir=root / "r")
print(source_digest(context))
"""


def test_a_source_file_that_is_a_symlink_to_a_fifo_does_not_hang_every_key(
    project: Any, tmp_path: Path
) -> None:
    """Every gate's cache key holds the source digest: the SHA-256 of every ``.py`` (and
    configuration file) of the project. A pull request that commits ``pipeline/planted.py`` as a
    symlink to a FIFO (or to ``/dev/zero``, hashed forever) hung the key of the first gate, so
    the whole chain, whenever the cache is on (the CLI's default) (red team 7, 6 December: no
    answer within 60 s). Such a name now counts by what it is, unread, and the key still
    changes with it. Run in a child (the project's own code) with a timeout."""
    import os
    import subprocess
    import sys

    def digest() -> str:
        try:
            done = subprocess.run(
                [sys.executable, "-c", _SOURCE_DIGEST, str(project.root)],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        except subprocess.TimeoutExpired:
            pytest.fail("the source digest hung on a planted symlink to a FIFO")
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    clean = digest()
    os.mkfifo(tmp_path / "fifo")
    (project.root / "pipeline" / "planted.py").symlink_to(tmp_path / "fifo")
    planted = digest()
    assert len(planted) == 64
    assert planted != clean
