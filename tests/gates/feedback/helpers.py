"""Run the feedback stage alone on a project where a run is in progress."""

from __future__ import annotations

import io
from pathlib import Path

from gates.base import GateResult
from gates.runner import run_chain
from pipeline.config import load_policy


def run_stage(root: Path) -> GateResult:
    """``python -m gates run feedback`` in-process; returns the feedback result."""
    summary = run_chain(
        ["feedback"],
        policy=load_policy(root / "policy.toml"),
        reports_dir=root / "reports",
        out=io.StringIO(),
    )
    return summary.results[-1]
