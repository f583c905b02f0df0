"""Running git in a test's own checkout (a pull request's committed tree)."""

from __future__ import annotations

import shutil
import subprocess  # nosec B404 # fixed argv lists, never a shell
from pathlib import Path


def git(root: Path, *args: str) -> None:
    """``git ARGS`` in ``root`` with a throwaway identity; raises on a non-zero exit."""
    found = shutil.which("git") or "git"
    subprocess.run(  # nosec B603 # fixed argv; git resolved by shutil.which
        [found, "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )
