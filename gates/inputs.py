"""What a run is about: the digests of its input files, and the commit checked out.

The runner stamps every report with ``input_digests``; the ``artifacts`` gate signs them and the
verdict compares them with the files on disk now. Below the runner and the gates alike, so that
a gate never imports the runner.
"""

from __future__ import annotations

import shutil
import subprocess  # nosec B404 # runs git with fixed argv lists, never a shell
from collections.abc import Callable
from pathlib import Path

from pipeline.config import LoadedPolicy
from pipeline.fsio import sha256_file
from pipeline.gittree import from_the_tree, tracked_files

__all__ = ["data_input_keys", "from_the_tree", "git_commit", "input_digests", "tracked_files"]


def input_digests(
    policy: LoadedPolicy, file_sha256: Callable[[Path], str] | None = None
) -> dict[str, str]:
    """SHA-256 of every file a run's verdict depends on, keyed by path relative to the project.

    A file that is absent is recorded as ``absent`` so that its later appearance (or loss)
    still counts as a change. ``file_sha256`` (default: read and hash) lets the runner pass the
    digest memo's own-process lookup: the nine gate sessions of one warm worker read a large
    data file once, not nine times. Digests remembered by another process must not be used
    here: these digests are the run's record, not only a cache key.
    """
    hasher = file_sha256 or sha256_file
    paths = [policy.path, *_data_paths(policy)]
    audit = policy.policy.audit
    # Every dependency lock the audit gate covers (requirements.lock first, then [audit].locks).
    locks = [policy.base_dir / "requirements.lock", *map(policy.resolve, audit.locks)]
    paths += [lock for lock in dict.fromkeys(locks) if lock.exists()]
    digests = {}
    for path in paths:
        key = _relative(path, policy.base_dir)
        digests[key] = hasher(path) if path.is_file() else "absent"
    return digests


def _data_paths(policy: LoadedPolicy) -> list[Path]:
    data = policy.policy.data
    paths = [policy.resolve(data.path), policy.resolve(data.lock)]
    if data.checksums is not None:
        paths.append(policy.resolve(data.checksums))
    return paths


def data_input_keys(policy: LoadedPolicy) -> frozenset[str]:
    """The keys of ``input_digests`` that belong to the data (the file, its lock, checksums)."""
    return frozenset(_relative(path, policy.base_dir) for path in _data_paths(policy))


def _relative(path: Path, base: Path) -> str:
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def git_commit(root: Path) -> tuple[str, bool]:
    """The checked-out commit and whether the work tree has changes; ``unknown`` outside git."""
    git = shutil.which("git")
    if git is None:
        return "unknown", False
    try:
        head = subprocess.run(  # nosec B603 # fixed argv; git is resolved by shutil.which
            [git, "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(  # nosec B603 # fixed argv; git is resolved by shutil.which
            [git, "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown", False
    return head, bool(status.strip())
