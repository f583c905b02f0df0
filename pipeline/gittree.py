"""What git tracks in a folder of the checkout: the folders a run owns must hold nothing committed.

A pull request controls every committed byte, and ``git add -f`` commits into a gitignored
folder: a cache, a report or a registry it commits there would be read as this machine's own.
Below both packages (``gates.inputs`` re-exports these for the gate cache and the runner).
"""

from __future__ import annotations

import os
import shutil
import subprocess  # nosec B404 # runs git with fixed argv lists, never a shell
from pathlib import Path


def from_the_tree(folder: Path, root: Path) -> str | None:
    """Why ``folder``'s content may come from the checked-out commit, or None.

    A folder outside ``root`` is the machine's own. Inside, it may not be reached through a
    symlink the tree holds, and git may track nothing in it: a pull request controls every
    committed byte, and a cache or memo file it commits there would be read as this machine's.
    Outside a git work tree (no ``.git`` at or above ``root``) nothing can be told: None. A
    ``.git`` (folder or file) there with no git that runs is refused, never taken for "outside
    git": what the checkout tracks cannot be told without it.
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
    if git is None:
        return _no_git(top, "not found on PATH")
    if not rel.parts:
        return f"{target} is the project folder itself"
    try:
        return _git_tracks(git, top, rel)
    except OSError as err:
        return _no_git(top, f"failed to start ({type(err).__name__}: {err.strerror or err})")


def _no_git(top: Path, why: str) -> str | None:
    """None outside a checkout; in one (a ``.git`` at or above ``top``), why nothing was told."""
    holder = next((f for f in (top, *top.parents) if (f / ".git").exists()), None)
    if holder is None:
        return None
    return (
        f"{holder} holds .git but git could not be run: git {why}; install git or put it on "
        "PATH (what the checkout tracks cannot be told without it)"
    )


# The work trees git said it reads, by git, folder and this process's whole environment (GIT_DIR,
# HOME's safe.directory ...): a run asks about three folders per gate, nine gates per warm worker.
_READABLE: set[tuple[str, Path, frozenset[tuple[str, str]]]] = set()


def _git_tracks(git: str, top: Path, rel: Path) -> str | None:
    """What git tracks at or under ``rel``; why git cannot tell in a checkout; None outside git.

    Whether git reads the checkout at all is asked once per process and environment, and asked
    again whenever the listing fails: only a ``true`` is remembered, and the listing itself
    runs every time.
    """
    seen = (git, top, frozenset(os.environ.items()))
    if seen not in _READABLE:
        problem = _unreadable(git, top)
        if problem is not None:
            return problem or None
        _READABLE.add(seen)
    tracked = _ls_files(git, top, rel.as_posix())
    if tracked.returncode != 0:
        _READABLE.discard(seen)
        problem = _unreadable(git, top)
        if problem is not None:
            return problem or None
        return (
            f"git cannot list {rel.as_posix()} ({tracked.stderr.decode(errors='replace').strip()})"
        )
    first = tracked.stdout.split(b"\0", 1)[0].decode(errors="replace")
    return f"git tracks {first}" if first else None


def _unreadable(git: str, top: Path) -> str | None:
    """None when git reads the work tree at ``top``; "" outside git; else why git cannot."""
    inside = subprocess.run(  # nosec B603 # fixed argv; git is resolved by shutil.which
        [git, "rev-parse", "--is-inside-work-tree"], cwd=top, capture_output=True, check=False
    )
    if inside.returncode == 0 and inside.stdout.strip() == b"true":
        return None
    # A checkout git will not read (safe.directory, a broken GIT_DIR) is not "outside git".
    if not any((folder / ".git").exists() for folder in (top, *top.parents)):
        return ""
    reason = inside.stderr.decode(errors="replace").strip().splitlines()
    return f"git cannot read the checkout ({reason[0] if reason else 'no output'})"


def _ls_files(git: str, top: Path, rel: str) -> subprocess.CompletedProcess[bytes]:
    """``git ls-files`` of ``rel`` (relative to the work tree ``top``), NUL-separated.

    ``rel`` is a folder's name, never a pathspec: the policy names the folder, and a name
    such as ``:(attr:zz)reports`` was git's magic (the files with attribute ``zz``: none), so
    a report committed there was "nothing tracked" (red team 9); ``*`` and ``?`` likewise."""
    return subprocess.run(  # nosec B603 # fixed argv; git is resolved by shutil.which
        [git, "--literal-pathspecs", "ls-files", "-z", "--full-name", "--", rel or "."],
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


def committed_in(folder: Path, root: Path) -> str | None:
    """What of ``folder`` comes from the commit checked out at ``root``, or None.

    The first file git tracks in it (and how many more), or ``from_the_tree``'s reason (a
    symlink in the tree on the way, a checkout git cannot read): it fails closed. None outside
    a git work tree, where nothing can be told (as for the gate cache); a checkout whose git
    is missing or does not run is refused (``from_the_tree``).
    """
    reason = from_the_tree(folder, root)
    if reason is None:
        return None
    tracked = tracked_files(root, folder)
    if not tracked:
        return reason
    more = f" (and {len(tracked) - 1} more)" if len(tracked) > 1 else ""
    return f"git tracks {tracked[0]}{more}"
