"""Real chain runs shared by a test session, and stand-ins that replay their supply-chain gates.

A test about a later gate (data, train, cv, the verdict ...) needs a run in which lint, sast and
audit PASSED, but not ruff, bandit and pip-audit running again over the same code: they take
most of a chain's time. ``Replayed`` stands in for such a gate through the runner's ``gates=``
chain. It re-issues the outcome (and the files under ``reports/``) that the real gate produced
on a recorded project earlier in the session, and only when everything that gate reads is the
same in the test's project: the files outside the data and output folders, the policy's tables
other than the ML ones, and the advisory snapshot named by the environment. On any difference it
runs the real gate. So a replayed outcome is the one the real gate would give.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import shutil
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

from gates.base import Gate, GateResult, Outcome, RunContext
from gates.cache import METRICS_KEY as CACHE_METRICS_KEY
from gates.registry import GATES, GateSpec, spec
from tests.project_support import ADVISORY_DB_ENV, OSV_FIXTURE

# The gates that run an external tool over the code (ruff, bandit, pip-audit).
SUPPLY_CHAIN = ("lint", "sast", "audit")
SIGNING_KEY_ENV = "GATES_SIGNING_KEY"
# What none of the supply-chain gates reads: the data, what a run writes, keys, caches.
_NOT_READ = frozenset(
    {"data", "reports", "artifacts", "history", "registry", "keys", ".keys", ".cache", "mlruns"}
)
# Policy tables the supply-chain gates do not read (every other table is part of the material).
_ML_TABLES = frozenset({"run", "model", "release", "cv", "data", "feedback"})


def _files(root: Path) -> Iterable[Path]:
    for entry in sorted(root.iterdir()):
        if entry.name in _NOT_READ or entry.name == "policy.toml":
            continue
        if entry.is_dir() and not entry.is_symlink():
            for path in sorted(entry.rglob("*")):
                if "__pycache__" not in path.parts and (path.is_file() or path.is_symlink()):
                    yield path
        else:
            yield entry


def material(root: Path) -> str:
    """SHA-256 over what lint, sast and audit read in the project at ``root``."""
    digest = hashlib.sha256()
    for path in _files(root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        if path.is_symlink():
            digest.update(b"->" + os.readlink(path).encode())
        else:
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    try:
        document = tomllib.loads((root / "policy.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        document = {"unreadable": repr(err)}
    tables = {k: v for k, v in document.items() if k not in _ML_TABLES}
    digest.update(json.dumps(tables, sort_keys=True, default=str).encode())
    digest.update(os.environ.get(ADVISORY_DB_ENV, "").encode())
    return digest.hexdigest()


@functools.cache
def recorded_material(recorded: Path) -> str:
    """``material`` of a recorded project: written once, before any test reads it, never after."""
    return material(recorded)


class Replayed(Gate):
    """The real gate ``name``'s outcome on the recorded project, when this project is the same."""

    def __init__(self, name: str, recorded: Path) -> None:
        self.name = name  # the stand-in takes the name (and so the role) of the gate it replays
        self.description = f"stand-in for '{name}': its real outcome on the same code"
        self.recorded = recorded
        self.real = spec(name).load()

    def run(self, context: RunContext) -> Outcome:
        """Replay when the project matches the recorded one; otherwise run the real gate."""
        if material(context.root) != recorded_material(self.recorded):
            return self.real.run(context)
        reports = self.recorded / "reports"
        result = GateResult.from_dict(json.loads((reports / f"{self.name}.json").read_text()))
        context.reports_dir.mkdir(parents=True, exist_ok=True)
        for written in reports.glob(f"{self.name}.*"):
            if written.name != f"{self.name}.json":
                shutil.copy2(written, context.reports_dir / written.name)
        return Outcome(
            status=result.status,
            summary=f"replayed: {result.summary}",
            findings=result.findings,
            # What the gate returned; the runner adds its own cache key, if any, to a report.
            metrics={k: v for k, v in result.metrics.items() if k != CACHE_METRICS_KEY},
            artifacts=result.artifacts,
        )


def replaying(recorded: Path, names: Sequence[str] = SUPPLY_CHAIN) -> tuple[GateSpec | Gate, ...]:
    """The registry's chain with the gates ``names`` replayed from ``recorded``."""
    return tuple(Replayed(s.name, recorded) if s.name in names else s for s in GATES)


def run_real_chain(root: Path, *, pem: str | None = None, use_cache: bool = False) -> Any:
    """Run every registered gate in-process on ``root``, signing with ``pem`` (None: dev key).

    In the tests' own environment only: every other ``GATES_*`` variable (a scheduler, a cache
    folder, a run id ...) and an MLflow tracking URI are left out.
    """
    from gates.runner import run_chain
    from pipeline.config import load_policy

    with pytest.MonkeyPatch.context() as patch:
        for name in [*os.environ]:
            if name.startswith("GATES_") or name == "MLFLOW_TRACKING_URI":
                patch.delenv(name)
        patch.setenv(ADVISORY_DB_ENV, str(OSV_FIXTURE))
        if pem is not None:
            patch.setenv(SIGNING_KEY_ENV, pem)
        return run_chain(
            [],
            policy=load_policy(root / "policy.toml"),
            reports_dir=root / "reports",
            out=io.StringIO(),
            use_cache=use_cache,
        )


def copy_run(source: Path, target: Path) -> Path:
    """A copy of a project a chain ran in (its reports, artifacts, history, keys, cache)."""
    shutil.copytree(source, target, symlinks=True)
    return target
