"""What every report format reads: this run's gates, trends, history and the feedback findings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gates.base import Finding, GateResult
from gates.feedback.collect import RunView
from gates.feedback.trends import Champion, Delta


@dataclass(frozen=True)
class ReportBundle:
    """The inputs of every report: built once by the feedback stage, read by each format."""

    view: RunView
    root: Path
    reports_dir: Path
    policy_file: str
    commit: str
    deltas: tuple[Delta, ...]
    findings: tuple[Finding, ...]
    history: tuple[dict[str, Any], ...]  # the most recent records (up to RECENT_RECORDS)
    head: str
    champion: Champion | None = None
    history_count: int | None = None  # records in the whole history; None: len(history)
    feedback_status: str = "PASSED"
    metrics: dict[str, float] = field(default_factory=dict)
    policy_path: Path | None = None  # the policy file itself; None: root / policy_file

    @property
    def records(self) -> int:
        """How many runs the whole history holds after this one."""
        return len(self.history) if self.history_count is None else self.history_count

    def results(self) -> list[GateResult]:
        """Results of the gates that ran in this run, in registry order."""
        return [g.result for g in self.view.gates if g.result is not None]
