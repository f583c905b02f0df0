"""Trends: this run against the champion and the last N recorded runs, as findings.

Rules: FB101 a score fell below the champion's by more than ``max_metric_drop``; FB102 a score
fell below the mean of the last N runs by more than ``max_metric_drop``; FB103 the flagged-row
rate rose above the last N runs' mean by more than ``max_flag_rate_rise``; FB104 (a note) the
previous run was made on another table, so trends compare only the runs of this one (see
``gates.feedback.collect.table_identity``); FB110 the champion record exists but cannot be
read, or (the registry's pointer) does not verify.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gates.base import Finding, Location, Severity
from pipeline.config import FeedbackPolicy, LoadedPolicy
from pipeline.fsio import read_regular

# Only scores where higher is better are trended; std is shown but not judged here.
_TRENDED = (".mean", ".holdout")


@dataclass(frozen=True)
class Champion:
    """The promoted model's scores, read defensively from the registry's record."""

    source: str
    metrics: dict[str, float]
    run_id: str | None = None
    # The table its run was made on (``table_identity``'s digest), when the history says.
    table: str | None = None


@dataclass(frozen=True)
class Delta:
    """One metric this run, against the champion and the recent mean (None where unknown)."""

    metric: str
    value: float
    champion: float | None
    recent: float | None

    @property
    def vs_champion(self) -> float | None:
        """This run minus the champion."""
        return None if self.champion is None else self.value - self.champion

    @property
    def vs_recent(self) -> float | None:
        """This run minus the mean of the last N runs."""
        return None if self.recent is None else self.value - self.recent


def _flatten(metrics: dict[str, Any]) -> dict[str, float]:
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            name = key if "." in key else f"cv.{key}.mean"
            flat[name] = float(value)
        elif isinstance(value, dict):
            for stat, number in value.items():
                if isinstance(number, int | float) and not isinstance(number, bool):
                    flat[f"cv.{key}.{stat}"] = float(number)
    return flat


_MAX_CHAMPION_BYTES = 1 << 20


def read_champion(
    path: Path,
    *,
    history: Sequence[dict[str, Any]] | Callable[[], Sequence[dict[str, Any]]],
) -> tuple[Champion | None, list[Finding]]:
    """The champion's metrics from ``path`` (absent: none, unreadable: a FB110 warning).

    Accepted shapes: ``{"metrics": {"accuracy": {"mean": ..}}}`` (the cv report's), flat
    ``{"metrics": {"cv.accuracy.mean": ..}}``, or ``{"run_id": ..}`` / the registry pointer's
    ``{"version": "<run id>-<sha12>"}`` found in the history (a callable is only called,
    and the history only read, when the file names a run without its metrics).
    """
    try:  # a file of the tree (kept by hand): 1 MiB, never a FIFO or device
        document = json.loads(read_regular(path, limit=_MAX_CHAMPION_BYTES).decode("utf-8"))
    except FileNotFoundError:
        return None, []
    except (OSError, ValueError, RecursionError) as err:
        return None, [_unreadable(path, f"{type(err).__name__}: {err}")]
    if not isinstance(document, dict):
        return None, [_unreadable(path, f"expected a JSON object, found {type(document).__name__}")]
    run_id = document.get("run_id")
    run_id = str(run_id) if isinstance(run_id, str) else None
    version = document.get("version")
    if run_id is None and isinstance(version, str) and "-" in version:
        # The registry's pointer names a version "<run id>-<model sha256[:12]>".
        run_id = version.rsplit("-", 1)[0]
    raw = document.get("metrics")
    if isinstance(raw, dict):
        metrics = _flatten(raw.get("cv", raw) if isinstance(raw.get("cv"), dict) else raw)
        if metrics:
            return Champion(source=str(path), metrics=metrics, run_id=run_id), []
    records = history() if callable(history) else history
    for record in reversed(records):
        if run_id is not None and record.get("run_id") == run_id:
            metrics = record.get("metrics")
            if isinstance(metrics, dict):
                flat, table = _flatten(metrics), _table_of(record)
                return Champion(source=str(path), metrics=flat, run_id=run_id, table=table), []
    return None, [_unreadable(path, "no metrics and no run_id found in the history")]


History = Sequence[dict[str, Any]] | Callable[[], Sequence[dict[str, Any]]]


def champion_record(
    policy: LoadedPolicy, *, history: History
) -> tuple[Champion | None, list[Finding]]:
    """``[feedback].champion``'s metrics; the registry's champion verified when it names the pointer.

    The registry's pointer is read the way every other reader reads it (``gates.release.
    verified_champion``: the audit log under ``$GATES_REGISTRY_HEAD``, the signature, every
    digest, revocations): a champion that does not verify is a FB110 warning naming why, and
    trends skip it, never comparing with a pointer that names a revoked, re-pointed or forged
    version. Any other file is a record of metrics kept by hand (``read_champion``).
    """
    from gates.release import verified_champion  # noqa: PLC0415
    from pipeline.champion import POINTER_FILE  # noqa: PLC0415
    from pipeline.errors import PipelineError  # noqa: PLC0415

    path = policy.resolve(policy.policy.feedback.champion)
    pointer = policy.resolve(policy.policy.release.registry_dir) / POINTER_FILE
    if os.path.normpath(path) != os.path.normpath(pointer):
        return read_champion(path, history=history)
    try:
        verified = verified_champion(policy)
    except PipelineError as err:
        return None, [_unverified(path, str(err))]
    except OSError as err:
        return None, [_unverified(path, f"{type(err).__name__}: {err.strerror or err}")]
    if verified is None:
        return None, []
    run_id = verified.attestation.run_id
    records = history() if callable(history) else history
    for record in reversed(records):
        metrics = record.get("metrics")
        if record.get("run_id") == run_id and isinstance(metrics, dict):
            source = f"champion {verified.version} (verified)"
            flat, table = _flatten(metrics), _table_of(record)
            return Champion(source=source, metrics=flat, run_id=run_id, table=table), []
    return None, [_unreadable(path, f"no metrics of the champion's run {run_id} in the history")]


def _unverified(path: Path, why: str) -> Finding:
    return Finding(
        rule="FB110",
        message=(
            f"champion {path.name} failed verification ({why}); trends skip the champion rather "
            "than compare with one that does not verify"
        ),
        severity=Severity.WARNING,
        location=Location(path=str(path)),
        policy_key="[feedback].champion",
    )


def champion_from_cv(cv_metrics: dict[str, Any]) -> Champion | None:
    """The champion's holdout scores as the cv gate measured them on this run's holdout split.

    The cv gate (with a registry) reports ``metrics["champion"] = {"status": "compared",
    "version": .., "deltas": {METRIC: {"champion": ..}}}``: the fairest comparison, since both
    models scored the same rows. None when the gate did not compare.
    """
    block = cv_metrics.get("champion")
    if not isinstance(block, dict) or block.get("status") != "compared":
        return None
    deltas = block.get("deltas")
    if not isinstance(deltas, dict):
        return None
    metrics = {
        f"cv.{metric}.holdout": float(values["champion"])
        for metric, values in deltas.items()
        if isinstance(values, dict)
        and isinstance(values.get("champion"), int | float)
        and not isinstance(values.get("champion"), bool)
    }
    if not metrics:
        return None
    version = block.get("version")
    run_id = block.get("run_id")
    return Champion(
        source=f"champion {version} (scored on this run's holdout by the cv gate)",
        metrics=metrics,
        run_id=str(run_id) if isinstance(run_id, str) else None,
    )


def _unreadable(path: Path, why: str) -> Finding:
    return Finding(
        rule="FB110",
        message=f"champion record {path.name} is unreadable ({why}); trends skip the champion",
        severity=Severity.WARNING,
        location=Location(path=str(path)),
        policy_key="[feedback].champion",
    )


def _table_of(record: dict[str, Any]) -> str | None:
    table = record.get("table")
    digest = table.get("sha256") if isinstance(table, dict) else None
    return digest if isinstance(digest, str) else None


def same_table(history: list[dict[str, Any]], table: dict[str, Any]) -> list[dict[str, Any]]:
    """The records of runs made on ``table`` (a ``table_identity``), in order.

    A record of another table, or one written before records named their table, is left out:
    it is kept in the history (an append-only chain), only not compared.
    """
    return [r for r in history if _table_of(r) == table["sha256"]]


def _describe(table: Any) -> str:
    if not isinstance(table, dict):
        return "a table it does not record (written before runs recorded their table)"
    return (
        f"label {str(table.get('label'))[:80]!r}, {table.get('classes')} classes, "
        f"{table.get('features')} features"
    )


def restart_note(
    history: list[dict[str, Any]], table: dict[str, Any], *, policy_file: str
) -> Finding | None:
    """FB104 when the run before this one was made on another table (None otherwise): said
    once, on the first run after the switch; later runs compare with this table's runs only."""
    if not history or _table_of(history[-1]) == table["sha256"]:
        return None
    previous = history[-1].get("table")
    why = (
        "does not record its table"
        if not isinstance(previous, dict)
        else f"was made on another table ({_describe(previous)})"
    )
    kept = len(same_table(history, table))
    then = (
        f"trends compare only the {kept} earlier run(s) of this table"
        if kept
        else "the trend history restarts with this run"
    )
    return Finding(
        rule="FB104",
        message=(
            f"the previous recorded run {why}; this run's table is {_describe(table)}: {then} "
            f"({len(history) - kept} run(s) of other tables are kept in the history, not compared)"
        ),
        severity=Severity.NOTE,
        location=Location(path=policy_file),
        policy_key="[data]",
    )


def other_table_champion(
    champion: Champion | None, table: dict[str, Any], *, policy_file: str
) -> Finding | None:
    """FB104 when the champion's recorded run was made on another table: trends skip it."""
    if champion is None or champion.table is None or champion.table == table["sha256"]:
        return None
    return Finding(
        rule="FB104",
        message=(
            f"the champion ({champion.source}, run {champion.run_id}) was trained on another "
            f"table than this run's ({_describe(table)}): trends skip the champion"
        ),
        severity=Severity.NOTE,
        location=Location(path=policy_file),
        policy_key="[feedback].champion",
    )


def recent_mean(history: list[dict[str, Any]], *, window: int) -> dict[str, float]:
    """Mean of each metric over the last ``window`` recorded runs that have it."""
    sums: dict[str, list[float]] = {}
    for record in history[-window:]:
        metrics = record.get("metrics")
        if not isinstance(metrics, dict):
            continue
        for key, value in metrics.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                sums.setdefault(key, []).append(float(value))
    return {key: sum(values) / len(values) for key, values in sums.items()}


def compare(
    current: dict[str, float],
    *,
    champion: Champion | None,
    history: list[dict[str, Any]],
    policy: FeedbackPolicy,
    policy_file: str,
) -> tuple[list[Delta], list[Finding]]:
    """Deltas for every score, and findings for regressions and rising flag rates."""
    recent = recent_mean(history, window=policy.trend_window)
    deltas = [
        Delta(
            metric=key,
            value=value,
            champion=champion.metrics.get(key) if champion else None,
            recent=recent.get(key),
        )
        for key, value in sorted(current.items())
        if key.startswith("cv.") or key == "data.flag_rate"
    ]
    findings: list[Finding] = []
    drop = policy.max_metric_drop
    regression = Severity.ERROR if policy.fail_on_regression else Severity.WARNING
    for delta in deltas:
        if not delta.metric.endswith(_TRENDED):
            continue
        for rule, other, against in (
            ("FB101", delta.champion, "the champion"),
            ("FB102", delta.recent, f"the mean of the last {policy.trend_window} runs"),
        ):
            if other is not None and delta.value < other - drop:
                findings.append(
                    Finding(
                        rule=rule,
                        message=(
                            f"{delta.metric} {delta.value:.4f} is {other - delta.value:.4f} below "
                            f"{against} ({other:.4f}); allowed drop {drop}"
                        ),
                        severity=regression,
                        location=Location(path=policy_file),
                        observed=f"{delta.value:.6f}",
                        threshold=f">= {other - drop:.6f}",
                        policy_key="[feedback].max_metric_drop",
                    )
                )
    rate, before = current.get("data.flag_rate"), recent.get("data.flag_rate")
    rise = policy.max_flag_rate_rise
    if rate is not None and before is not None and rate > before + rise:
        findings.append(
            Finding(
                rule="FB103",
                message=(
                    f"flagged-row rate {rate:.4f} rose {rate - before:.4f} above the last "
                    f"{policy.trend_window} runs' mean {before:.4f}; allowed rise {rise}"
                ),
                severity=Severity.ERROR if policy.fail_on_flag_rise else Severity.WARNING,
                location=Location(path=policy_file),
                observed=f"{rate:.6f}",
                threshold=f"<= {before + rise:.6f}",
                policy_key="[feedback].max_flag_rate_rise",
            )
        )
    return deltas, findings
