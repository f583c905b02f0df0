"""Real chain runs shared by a test session, and stand-ins that replay their supply-chain gates.

A test about a later gate (data, train, cv, the verdict ...) needs a run in which lint, sast and
audit PASSED, but not ruff, bandit and pip-audit running again over the same code: they take
most of a chain's time. ``replaying`` gives the runner (its ``gates=`` chain) such gates as
``ReplayedSpec``: the registered spec and the real gate class in every respect (name, target,
role, cache key, what it declares to the cache) but ``run``. That re-issues the outcome (and the
files under ``reports/``) the real gate produced on a recorded project earlier in the session,
and only when everything the supply-chain gates read is the same in the test's project: the
files outside the data and output folders, the policy's tables other than the ML ones, and the
advisory snapshot named by the environment. On any difference, or when a test patched the real
gate's ``run``, the real gate runs. So a replayed outcome is the one the real gate would give.
(A test that patches something else a supply-chain gate calls should run that gate itself.)
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
from dataclasses import dataclass, fields
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
# The supply-chain gates' own run(), as imported: a test that patches one gets it run for real.
_PRISTINE_RUN = {name: type(spec(name).load()).run for name in SUPPLY_CHAIN}
# Policy tables the supply-chain gates do not read (every other table is part of the material):
# lint, sast and audit read only their own tables ([lint], [sast], [audit]) of the policy.
_ML_TABLES = frozenset(
    {
        "run",
        "model",
        "release",
        "cv",
        "data",
        "feedback",
        "risk",
        "serve",
        "keys",
        "roles",
        "encryption",
    }
)


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


def _replay(gate: Gate, recorded: Path, context: RunContext) -> Outcome | None:
    """The outcome ``gate`` had in the recorded run, if this project is the same; else None."""
    if material(context.root) != recorded_material(recorded):
        return None
    reports = recorded / "reports"
    result = GateResult.from_dict(json.loads((reports / f"{gate.name}.json").read_text()))
    context.reports_dir.mkdir(parents=True, exist_ok=True)
    for written in reports.glob(f"{gate.name}.*"):
        if written.name != f"{gate.name}.json":
            shutil.copy2(written, context.reports_dir / written.name)
    return Outcome(
        status=result.status,
        summary=f"replayed: {result.summary}",
        findings=result.findings,
        # What the gate returned; the runner adds its own cache key, if any, to a report.
        metrics={k: v for k, v in result.metrics.items() if k != CACHE_METRICS_KEY},
        artifacts=result.artifacts,
    )


@functools.cache
def _replaying_class(real: type[Gate]) -> type[Gate]:
    """A subclass of the real gate class whose ``run`` replays when it may (see the module)."""

    def run(self: Gate, context: RunContext) -> Outcome:
        # A test that patched the real gate's run() gets that run, never a replay.
        pristine = real.run is _PRISTINE_RUN.get(self.name)
        replayed = _replay(self, self.recorded, context) if pristine else None  # type: ignore[attr-defined]
        return replayed if replayed is not None else real.run(self, context)

    return type(f"Replayed{real.__name__}", (real,), {"run": run, "__module__": __name__})


@dataclass(frozen=True)
class ReplayedSpec(GateSpec):
    """A registered gate's spec (same name, target, role, so the same cache key) whose gate
    replays the outcome recorded in ``recorded`` instead of running its tool again."""

    recorded: Path = Path()

    def load(self) -> Gate:
        """The real gate, but for ``run``: an instance of ``_replaying_class``."""
        gate = _replaying_class(type(super().load()))()
        gate.recorded = self.recorded  # type: ignore[attr-defined]
        return gate


def replaying(recorded: Path, names: Sequence[str] = SUPPLY_CHAIN) -> tuple[GateSpec, ...]:
    """The registry's chain with the gates ``names`` replayed from ``recorded``."""
    return tuple(
        ReplayedSpec(**{f.name: getattr(s, f.name) for f in fields(s)}, recorded=recorded)
        if s.name in names
        else s
        for s in GATES
    )


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
