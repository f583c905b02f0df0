"""What a run is about: the digests of its input files, and the commit checked out.

The runner stamps every report with ``input_digests``; the ``artifacts`` gate signs them and the
verdict compares them with the files on disk now. Below the runner and the gates alike, so that
a gate never imports the runner.
"""

from __future__ import annotations

import os
import shutil
import subprocess  # nosec B404 # runs git with fixed argv lists, never a shell
from collections.abc import Callable
from pathlib import Path

from pipeline.config import LoadedPolicy
from pipeline.fsio import sha256_file


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


def from_the_tree(folder: Path, root: Path) -> str | None:
    """Why ``folder``'s content may come from the checked-out commit, or None.

    A folder outside ``root`` is the machine's own. Inside, it may not be reached through a
    symlink the tree holds, and git may track nothing in it: a pull request controls every
    committed byte, and a cache or memo file it commits there would be read as this machine's.
    Outside a git work tree (or without git) nothing can be told: None.
    """
    top, target = Path(os.path.abspath(root)), Path(os.path.abspath(folder))
    if not target.is_relative_to(top):
        return None
    rel = target.relative_to(top)
    for depth in range(1, len(rel.parts) + 1):
        part = top.joinpath(*rel.parts[:depth])
        if part.is_symlink():
            return f"{part.relative_to(top).as_posix()} is a symlink in the tree"
    git = shutil.which("git")
    if git is None or not rel.parts:
        return None if git is None else f"{target} is the project folder itself"
    return _git_tracks(git, top, rel)


def _git_tracks(git: str, top: Path, rel: Path) -> str | None:
    """What git tracks at or under ``rel``; why git cannot tell in a checkout; None outside git."""
    inside = subprocess.run(  # nosec B603 # fixed argv; git is resolved by shutil.which
        [git, "rev-parse", "--is-inside-work-tree"], cwd=top, capture_output=True, check=False
    )
    if inside.returncode != 0 or inside.stdout.strip() != b"true":
        # A checkout git will not read (safe.directory, a broken GIT_DIR) is not "outside git".
        if not any((folder / ".git").exists() for folder in (top, *top.parents)):
            return None
        reason = inside.stderr.decode(errors="replace").strip().splitlines()
        return f"git cannot read the checkout ({reason[0] if reason else 'no output'})"
    tracked = _ls_files(git, top, rel.as_posix())
    if tracked.returncode != 0:
        return (
            f"git cannot list {rel.as_posix()} ({tracked.stderr.decode(errors='replace').strip()})"
        )
    first = tracked.stdout.split(b"\0", 1)[0].decode(errors="replace")
    return f"git tracks {first}" if first else None


def _ls_files(git: str, top: Path, rel: str) -> subprocess.CompletedProcess[bytes]:
    """``git ls-files`` of ``rel`` (relative to the work tree ``top``), NUL-separated."""
    return subprocess.run(  # nosec B603 # fixed argv; git is resolved by shutil.which
        [git, "ls-files", "-z", "--full-name", "--", rel or "."],
        cwd=top,
        capture_output=True,
        check=False,
    )


def tracked_files(root: Path, folder: Path) -> list[str]:
    """The files under ``folder`` that git tracks in the checkout at ``root``, relative to it.

    Empty outside a git checkout, when git is missing or fails, or when ``folder`` lies outside
    ``root``: for naming files only; whether the folder may come from the commit at all is
    ``from_the_tree``'s to say (it fails closed).
    """
    git = shutil.which("git")
    if git is None:
        return []
    try:
        rel = folder.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return []
    try:
        listed = _ls_files(git, root, rel)
    except OSError:
        return []
    if listed.returncode != 0:
        return []
    return sorted(name for name in listed.stdout.decode("utf-8", "replace").split("\0") if name)
