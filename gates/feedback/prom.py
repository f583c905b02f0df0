"""Prometheus metrics of a run: text exposition (node_exporter textfile), OpenMetrics, Pushgateway."""

from __future__ import annotations

import os
import urllib.error
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Gauge, generate_latest, push_to_gateway
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from gates.base import Severity, Status
from gates.feedback.bundle import ReportBundle
from gates.feedback.collect import NOT_RUN, flagged_rows

PUSHGATEWAY_ENV = "GATES_PUSHGATEWAY_URL"
PROM_FILE = "metrics.prom"
OPENMETRICS_FILE = "metrics.openmetrics.txt"
_STATUSES = [*(s.value for s in Status), NOT_RUN]


@dataclass(frozen=True)
class Exposition:
    """The same registry rendered in both formats."""

    registry: CollectorRegistry
    text: str
    openmetrics: str


def build(bundle: ReportBundle, *, timestamp: float) -> Exposition:
    """Collect one run's gauges into a fresh registry and render both exposition formats."""
    registry = CollectorRegistry()
    info = Gauge(
        "gates_run_info",
        "The run these metrics describe.",
        ["run_id", "commit", "verdict"],
        registry=registry,
    )
    info.labels(bundle.view.run_id, bundle.commit[:40], bundle.view.verdict).set(1)
    Gauge("gates_run_passed", "1 when the verdict PASSED, else 0.", registry=registry).set(
        1 if bundle.view.verdict == Status.PASSED.value else 0
    )
    Gauge(
        "gates_run_timestamp_seconds",
        "When the feedback stage recorded the run (Unix time).",
        registry=registry,
    ).set(timestamp)
    status = Gauge(
        "gates_gate_status",
        "1 for the gate's status in this run.",
        ["gate", "status"],
        registry=registry,
    )
    duration = Gauge(
        "gates_gate_duration_seconds", "Wall time of each gate.", ["gate"], registry=registry
    )
    findings = Gauge(
        "gates_gate_findings",
        "Findings per gate and severity.",
        ["gate", "severity"],
        registry=registry,
    )
    flagged = Gauge(
        "gates_flagged_rows",
        "Rows flagged per gate and check.",
        ["gate", "check"],
        registry=registry,
    )
    for gate in bundle.view.gates:
        for name in _STATUSES:
            status.labels(gate.name, name).set(1 if gate.status == name else 0)
        result = gate.result
        if result is None:
            continue
        duration.labels(gate.name).set(round(result.duration_seconds, 3))
        for severity in Severity:
            count = sum(1 for f in result.findings if f.severity is severity)
            findings.labels(gate.name, severity.value).set(count)
        for check, count in flagged_rows(result).items():
            flagged.labels(gate.name, check).set(count)
    for severity in Severity:
        findings.labels("feedback", severity.value).set(
            sum(1 for f in bundle.findings if f.severity is severity)
        )
    score = Gauge(
        "gates_cv_score",
        "Cross-validation and holdout scores.",
        ["metric", "stat"],
        registry=registry,
    )
    for key, value in bundle.metrics.items():
        if key.startswith("cv."):
            _, metric, stat = key.split(".", 2)
            score.labels(metric, stat).set(value)
    Gauge(
        "gates_history_records", "Records in the run history after this run.", registry=registry
    ).set(bundle.records)
    return Exposition(
        registry=registry,
        text=generate_latest(registry).decode("utf-8"),
        openmetrics=generate_openmetrics(registry).decode("utf-8"),  # type: ignore[no-untyped-call]
    )


def pushgateway_url(configured: str | None) -> str | None:
    """The Pushgateway to push to: ``GATES_PUSHGATEWAY_URL`` wins over the policy; None: no push."""
    url = os.environ.get(PUSHGATEWAY_ENV, "").strip() or (configured or "").strip()
    return url or None


def push(exposition: Exposition, *, url: str, job: str, timeout: float = 10.0) -> str | None:
    """Push the registry (PUT: replaces the job's group); returns a problem message or None."""
    try:
        push_to_gateway(url, job=job, registry=exposition.registry, timeout=timeout)
    except (OSError, urllib.error.URLError, ValueError) as err:
        return f"push to the Pushgateway at {url} failed: {err}"
    return None
