"""What a throw-away copy of the project holds, shared by every fixture that makes one."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# The data gate reads these.
_DATA = ("policy.toml",)
# The supply-chain gates (lint, sast, audit) read the code, its ruff config and the lock.
_CODE_FILES = ("pyproject.toml", "requirements.lock", "requirements-extras.lock", "noxfile.py")
_CODE_DIRS = ("pipeline", "gates", "tests")
# The tests' own small OSV snapshot (it holds the audit canary): audits in tests stay offline.
OSV_FIXTURE = REPO / "tests" / "assets" / "osv"
ADVISORY_DB_ENV = "GATES_ADVISORY_DB"


def copy_project(root: Path, *, keys: bool = True) -> Path:
    """Copy policy.toml, data/, keys/ (unless a test makes its own) and the code into ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    for name in (*_DATA, *_CODE_FILES):
        shutil.copy2(REPO / name, root / name)
    shutil.copytree(REPO / "data", root / "data")
    if keys:
        shutil.copytree(REPO / "keys", root / "keys")
    for name in _CODE_DIRS:
        shutil.copytree(
            REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    return root


def clear_of_utc_midnight(worst_case_seconds: float) -> None:
    """Sleep past the next 00:00 UTC when it is closer than ``worst_case_seconds``.

    The audit gate's cache key holds today's UTC date (waivers and the snapshot's age are judged
    against it), so a test that asserts the audit outcome is reused from one run to a later one
    would fail when midnight falls between them. Called before the first run, this keeps both
    on one date; the assertion stays as it is. Rare: at most ``worst_case_seconds`` a day.
    """
    import time
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
    left = (midnight - now).total_seconds()
    if left < worst_case_seconds:
        time.sleep(left + 1)
