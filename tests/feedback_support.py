"""A run's reports built in memory, as the feedback stage bundles them for every format.

``gate_result`` is one gate's report in run ``r1`` (no inputs, half a second);
``run_bundle`` is the bundle of run ``r1``'s gates with everything else fixed (commit ``abc``,
no history), so a format test names only the findings and statuses it is about.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from gates.base import Finding, GateResult, Status
from gates.feedback.bundle import ReportBundle
from gates.feedback.collect import GateView, RunView
from gates.feedback.trends import Delta


def gate_result(
    gate: str,
    status: Status,
    findings: Iterable[Finding],
    *,
    summary: str = "s",
    started: str = "2026-11-22T00:00:00+00:00",
    artifacts: dict[str, str] | None = None,
) -> GateResult:
    """``gate``'s report of ``status`` in run ``r1``."""
    return GateResult(
        gate=gate,
        status=status,
        summary=summary,
        run_id="r1",
        inputs={},
        findings=tuple(findings),
        duration_seconds=0.5,
        started=started,
        artifacts=artifacts or {},
    )


def run_bundle(
    root: Path,
    views: Iterable[GateView],
    *,
    policy: str | None = None,
    deltas: tuple[Delta, ...] = (),
    findings: tuple[Finding, ...] = (),
) -> ReportBundle:
    """Run ``r1`` of ``views``, its reports and policy.toml in ``root`` (written as ``policy``
    unless ``None``), commit ``abc``, no history."""
    if policy is not None:
        (root / "policy.toml").write_text(policy)
    return ReportBundle(
        view=RunView(run_id="r1", gates=tuple(views)),
        root=root,
        reports_dir=root,
        policy_file="policy.toml",
        commit="abc",
        deltas=deltas,
        findings=findings,
        history=(),
        head="0" * 64,
    )
