"""Read this run's gate reports and turn them into the run record the history keeps."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from gates.base import UNPARSABLE_REPORT, GateResult, RunContext, Severity, Status
from gates.registry import GATES, VERDICT

if TYPE_CHECKING:
    from pipeline.config import DataPolicy

NOT_RUN = "NOT_RUN"
INCOMPLETE = "INCOMPLETE"


@dataclass(frozen=True)
class GateView:
    """One registered gate as this run saw it: its result, or why there is none."""

    name: str
    summary: str
    result: GateResult | None
    problem: str = ""

    @property
    def status(self) -> str:
        """The gate's status, or NOT_RUN when it has no report of this run."""
        return self.result.status.value if self.result is not None else NOT_RUN


@dataclass(frozen=True)
class RunView:
    """Every gate before the feedback stage, in registry order, for one run."""

    run_id: str
    gates: tuple[GateView, ...]

    @property
    def verdict(self) -> str:
        """The verdict gate's status; when the chain stopped before it, the worst status seen.

        ERRORED if a gate could not run, FAILED if one failed or was skipped, INCOMPLETE when
        every gate that ran passed but the verdict never ran (a partial run).
        """
        status = next(g.status for g in self.gates if g.name == VERDICT.name)
        if status != NOT_RUN:
            return status
        seen = {g.status for g in self.gates}
        if Status.ERRORED.value in seen:
            return Status.ERRORED.value
        if seen & {Status.FAILED.value, Status.SKIPPED.value}:
            return Status.FAILED.value
        return INCOMPLETE

    def result(self, name: str) -> GateResult | None:
        """The result of gate ``name`` in this run, if it ran."""
        return next((g.result for g in self.gates if g.name == name), None)


def collect(context: RunContext, *, upto: str) -> RunView:
    """Read every report of the gates registered before ``upto``; absent or stale ones are NOT_RUN."""
    views = []
    for spec in GATES:
        if spec.name == upto:
            break
        path = context.report_path(spec.name)
        try:
            result = GateResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            views.append(GateView(spec.name, spec.summary, None, "no report"))
            continue
        except UNPARSABLE_REPORT as err:
            views.append(GateView(spec.name, spec.summary, None, f"unparsable report ({err})"))
            continue
        if result.run_id != context.run_id:
            views.append(
                GateView(spec.name, spec.summary, None, f"report is from run {result.run_id}")
            )
            continue
        views.append(GateView(spec.name, spec.summary, result))
    return RunView(run_id=context.run_id, gates=tuple(views))


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def flagged_rows(result: GateResult) -> dict[str, int]:
    """Rows a gate flagged, per check.

    Read from ``metrics["checks"][CHECK]["flagged"]`` (the data gate's screening checks), else
    ``metrics["flagged_rows"]`` as ``{check: count}``, else as one number under the gate's name.
    """
    checks = result.metrics.get("checks")
    if isinstance(checks, dict):
        found = {
            str(name): count
            for name, stats in checks.items()
            if isinstance(stats, dict) and (count := _count(stats.get("flagged"))) is not None
        }
        if found:
            return found
    raw = result.metrics.get("flagged_rows")
    if isinstance(raw, dict):
        return {str(k): n for k, v in raw.items() if (n := _count(v)) is not None}
    total = _count(raw)
    return {result.gate: total} if total is not None else {}


def flagged_total(result: GateResult) -> int:
    """Distinct rows a gate flagged: ``metrics["flagged_rows"]`` when it is a number (a row
    flagged by two checks counts once), else the sum over checks."""
    total = _count(result.metrics.get("flagged_rows"))
    return total if total is not None else sum(flagged_rows(result).values())


def key_metrics(view: RunView) -> dict[str, float]:
    """The numbers trends and dashboards follow: CV means and holdout scores, data size, flag rate."""
    found: dict[str, float] = {}
    cv = view.result("cv")
    if cv is not None:
        for metric, stats in sorted(cv.metrics.items()):
            if isinstance(stats, dict):
                for stat in ("mean", "std", "min_fold", "holdout"):
                    value = stats.get(stat)
                    if isinstance(value, int | float):
                        found[f"cv.{metric}.{stat}"] = float(value)
    data = view.result("data")
    rows = data.metrics.get("rows") if data is not None else None
    if isinstance(rows, int) and rows > 0:
        found["data.rows"] = float(rows)
        flagged = sum(flagged_total(g.result) for g in view.gates if g.result is not None)
        found["data.flag_rate"] = round(flagged / rows, 6)
    return found


def table_identity(data: DataPolicy) -> dict[str, Any]:
    """What makes two runs' scores comparable: the task their model learned.

    The label, the classes (and the positive class, which f1 and ROC AUC are scored for) and
    the feature columns by name: runs on a table that differs in any of them (``init --force``
    on another table, a column added or dropped) score another task, and their trends mean
    nothing. Not the data's digest nor the lock's: a feedback approval or a corrected cell
    changes those, and a score that falls after the data changed is what trends exist to
    show. Not the thresholds, the ranges or the path either. Recorded as ``table``: the
    digest trends compare, and what the note about a restart shows.
    """
    classes = [str(c) for c in data.classes]
    features = sorted(data.feature_columns)
    # The task as scored, not as written: the classes as a set, and the class the binary
    # metrics score (named, else the last; none with more classes: macro-averaged), so the
    # classes reordered or the default positive class named is no restart (red team 16).
    positive = (data.positive_class or classes[-1]) if len(classes) == 2 else None
    task = {
        "label": data.label,
        "classes": sorted(classes),
        "positive_class": positive,
        "features": features,
    }
    canonical = json.dumps(task, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return {
        "sha256": hashlib.sha256(canonical.encode("ascii")).hexdigest(),
        "label": data.label,
        "classes": len(classes),
        "features": len(features),
    }


def build_record(view: RunView, context: RunContext, *, commit: str, dirty: bool) -> dict[str, Any]:
    """The history record of this run (the history adds seq, prev and hash)."""
    gates: dict[str, Any] = {}
    artifacts: dict[str, str] = {}
    inputs: dict[str, str] = {}
    for gate in view.gates:
        if gate.result is None:
            gates[gate.name] = {"status": NOT_RUN, "summary": gate.problem}
            continue
        result = gate.result
        counts = {s.value: 0 for s in Severity}
        for finding in result.findings:
            counts[finding.severity.value] += 1
        gates[gate.name] = {
            "status": result.status.value,
            "summary": result.summary[:500],
            "duration_seconds": round(result.duration_seconds, 3),
            "findings": counts,
            "rules": sorted({f.rule for f in result.findings}),
            "flagged_rows": flagged_rows(result),
            "flagged_total": flagged_total(result),
        }
        artifacts.update(result.artifacts)
        inputs = inputs or dict(result.inputs)
    return {
        "run_id": view.run_id,
        "recorded": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "dirty": dirty,
        "policy_sha256": context.policy.sha256,
        "table": table_identity(context.policy.policy.data),
        "inputs": inputs,
        "verdict": view.verdict,
        "gates": gates,
        "metrics": key_metrics(view),
        "artifacts": artifacts,
    }


def passed(view: RunView) -> bool:
    """True when the verdict gate PASSED in this run."""
    return view.verdict == Status.PASSED.value
