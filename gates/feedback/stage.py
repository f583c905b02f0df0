"""The ``feedback`` stage: record the run, compare it with earlier runs, write every report.

Runs after the verdict whether the gates passed or not. Rules: FB001 the history failed
verification, so this run was not appended (see ``python -m gates history verify``); FB101-FB103,
FB104 (a note: the history restarts for another table), FB110 trends (see ``gates.feedback.trends``); FB201 the Pushgateway push failed; FB202 MLflow
logging failed or MLflow is not installed; FB203 a SARIF file of another gate could not be merged.
Problems with the optional sinks are warnings: they never hide the run's own verdict.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any, ClassVar

from gates.base import Finding, Gate, Location, Outcome, RunContext, Severity
from gates.feedback import codequality, history, html, junit, markdown, mlflow_sink, prom, sarif
from gates.feedback.bundle import ReportBundle
from gates.feedback.collect import build_record, collect, key_metrics, table_identity
from gates.feedback.trends import (
    Champion,
    Delta,
    champion_from_cv,
    champion_record,
    compare,
    other_table_champion,
    restart_note,
    same_table,
)
from gates.inputs import git_commit, tracked_files
from pipeline.config import LoadedPolicy
from pipeline.fsio import atomic_write_json, atomic_write_text, sha256_file

SUMMARY_FILE = "summary.md"
HTML_FILE = "report.html"
CSS_FILE = html.CSS_FILE
JUNIT_FILE = "junit.xml"
SARIF_FILE = sarif.MERGED
CODE_QUALITY_FILE = "gl-code-quality.json"
# Records read for trends and reports: the longest trend window the policy allows, and far more
# than the report's plot shows. The history itself is verified whole (incrementally).
RECENT_RECORDS = 1000


class FeedbackGate(Gate):
    """Append the run to the hash-chained history, judge trends, and render the reports."""

    name: ClassVar[str] = "feedback"
    description: ClassVar[str] = __doc__ or ""

    def run(self, context: RunContext) -> Outcome:
        """Collect, record, compare, render; the verdict of the run itself is not changed here."""
        policy = context.policy
        settings = policy.policy.feedback
        view = collect(context, upto=self.name)
        history_path = policy.resolve(settings.history)
        findings: list[Finding] = []
        cipher = history.history_cipher(policy)
        check = _not_from_the_tree(
            history.verify(history_path, resume=True, cipher=cipher), context.root
        )
        past = history.records(history_path, last=RECENT_RECORDS, cipher=cipher) if check else []
        commit, dirty = git_commit(context.root)
        metrics = key_metrics(view)
        cv = view.result("cv")
        champion = champion_from_cv(cv.metrics) if cv is not None else None
        if champion is None:
            champion, champion_findings = champion_record(
                policy,
                # A champion named by run id may be older than the recent records.
                history=lambda: history.records(history_path, cipher=cipher) if check else [],
            )
            findings.extend(champion_findings)
        previous = [r for r in past if r.get("run_id") != view.run_id]
        table = table_identity(policy.policy.data)
        champion, deltas, trend_findings = _trends(
            policy, metrics, champion=champion, previous=previous, table=table, notes=findings
        )
        findings.extend(trend_findings)
        if not check:
            first = check.problems[0]
            findings.append(
                Finding(
                    rule="FB001",
                    message=(
                        f"run history {settings.history} failed verification (line {first.line}: "
                        f"{first.message}); this run was not appended. Investigate with: "
                        "python -m gates history verify"
                    ),
                    location=Location(path=settings.history, line=first.line or None),
                    policy_key="[feedback].history",
                )
            )
            head, recorded, count = check.head, past, check.records
        elif any(r.get("run_id") == view.run_id for r in past):
            # The stage ran twice for one run (e.g. nox after a full `run`): record it once.
            head, recorded, count = check.head, past, check.records
        else:
            record = build_record(view, context, commit=commit, dirty=dirty)
            written = history.append(history_path, record, cipher=cipher)
            head, recorded = str(written["hash"]), [*past, written][-RECENT_RECORDS:]
            count = check.records + 1
        bundle = ReportBundle(
            view=view,
            root=context.root,
            reports_dir=context.reports_dir,
            policy_file=policy.path.name,
            commit=commit,
            deltas=tuple(deltas),
            findings=tuple(findings),
            # The report's plots over recent runs: this table's runs only, as the trends.
            history=tuple(same_table(recorded, table)),
            history_count=count,
            head=head,
            champion=champion,
            metrics=metrics,
            policy_path=policy.path,
        )
        written_files = self._write_reports(bundle, context, findings)
        exposition = prom.build(bundle, timestamp=time.time())
        atomic_write_text(context.reports_dir / prom.PROM_FILE, exposition.text)
        atomic_write_text(context.reports_dir / prom.OPENMETRICS_FILE, exposition.openmetrics)
        written_files += [prom.PROM_FILE, prom.OPENMETRICS_FILE]
        url = prom.pushgateway_url(settings.pushgateway_url)
        pushed = False
        if url is not None:
            problem = prom.push(exposition, url=url, job=settings.pushgateway_job)
            pushed = problem is None
            if problem is not None:
                findings.append(_warning("FB201", problem, "[feedback].pushgateway_url"))
        mlflow_run = self._mlflow(bundle, context, written_files, findings)
        digests = {
            _rel(context.reports_dir / name, context.root): sha256_file(context.reports_dir / name)
            for name in written_files
        }
        outcome_metrics: dict[str, Any] = {
            "verdict": view.verdict,
            "history_head": head,
            "history_records": count,
            "recorded": bool(check) and count > check.records,
            "trend_findings": len(trend_findings),
            "pushed": pushed,
            "mlflow_run_id": mlflow_run,
            "reports": written_files,
        }
        notes = sum(f.severity is Severity.NOTE for f in findings)
        return Outcome.judge(
            findings,
            passed=(
                f"run {view.run_id} ({view.verdict}) recorded; history head {head[:12]}..., "
                f"{count} runs; {len(findings) - notes} trend/feedback warning(s)"
                + (f", {notes} note(s)" if notes else "")
            ),
            failed="{n} feedback problem(s): {first}",
            metrics=outcome_metrics,
            artifacts=digests,
        )

    def _write_reports(
        self, bundle: ReportBundle, context: RunContext, findings: list[Finding]
    ) -> list[str]:
        out = context.reports_dir
        data = context.policy.policy.data
        atomic_write_text(out / SUMMARY_FILE, markdown.render(bundle))
        thresholds = {
            str(metric): {"min_mean": bars.min_mean, "min_fold": bars.min_fold}
            for metric, bars in context.policy.policy.cv.thresholds.items()
        }
        atomic_write_text(out / CSS_FILE, html.stylesheet())
        atomic_write_text(
            out / HTML_FILE,
            html.render(
                bundle,
                classes=list(data.classes),
                positive=data.positive_class or data.classes[-1],
                thresholds=thresholds,
            ),
        )
        atomic_write_text(out / JUNIT_FILE, junit.render(bundle))
        log, problems = sarif.render(bundle)
        for problem in problems:
            findings.append(_warning("FB203", problem, None))
        atomic_write_json(out / SARIF_FILE, log)
        atomic_write_text(
            out / CODE_QUALITY_FILE,
            json.dumps(codequality.render(bundle), indent=2, sort_keys=True) + "\n",
        )
        return [SUMMARY_FILE, HTML_FILE, CSS_FILE, JUNIT_FILE, SARIF_FILE, CODE_QUALITY_FILE]

    def _mlflow(
        self,
        bundle: ReportBundle,
        context: RunContext,
        written: list[str],
        findings: list[Finding],
    ) -> str | None:
        settings = context.policy.policy.feedback
        uri = mlflow_sink.tracking_uri(settings.mlflow_tracking_uri)
        if uri is None:
            return None
        reports = [context.reports_dir / name for name in written]
        reports += sorted(context.reports_dir.glob("*.json"))
        try:
            return mlflow_sink.log_run(bundle, policy=context.policy, uri=uri, artifacts=reports)
        except mlflow_sink.MlflowUnavailable as err:
            findings.append(_warning("FB202", str(err), "[feedback].mlflow_tracking_uri"))
        except Exception as err:  # MLflow raises many types; it must never hide the verdict
            findings.append(
                _warning(
                    "FB202",
                    f"MLflow logging to {uri} failed: {type(err).__name__}: {err}",
                    "[feedback].mlflow_tracking_uri",
                )
            )
        return None


def _trends(
    policy: LoadedPolicy,
    metrics: dict[str, float],
    *,
    champion: Champion | None,
    previous: list[dict[str, Any]],
    table: dict[str, Any],
    notes: list[Finding],
) -> tuple[Champion | None, list[Delta], list[Finding]]:
    """``compare`` with the runs (and the champion) of this run's table only: scores of another
    task mean nothing here. The others stay in the history, which is never rewritten; FB104
    notes (added to ``notes``) say when the previous run or the champion is another table's."""
    where = policy.path.name
    for note in (
        restart_note(previous, table, policy_file=where),
        other_table_champion(champion, table, policy_file=where),
    ):
        if note is not None:
            notes.append(note)
    if champion is not None and champion.table not in (None, table["sha256"]):
        champion = None
    deltas, findings = compare(
        metrics,
        champion=champion,
        history=same_table(previous, table),
        policy=policy.policy.feedback,
        policy_file=where,
    )
    return champion, deltas, findings


def _warning(rule: str, message: str, key: str | None) -> Finding:
    return Finding(rule=rule, message=message, severity=Severity.WARNING, policy_key=key)


def _not_from_the_tree(check: history.Verification, root: Path) -> history.Verification:
    """``check`` with a problem first when git tracks the history or one of its sidecars.

    The history is CI's (restored from its cache, saved by the default branch): one the
    checkout holds is the pull request's to write, chain and sidecars included, and would
    choose the runs the trends compare with. Outside git nothing can be told.
    """
    path = check.path
    tracked = [n for n in tracked_files(root, path.parent) if Path(n).name.startswith(path.name)]
    if not tracked:
        return check
    problem = history.HistoryProblem(
        0,
        f"{tracked[0]}: committed to the repository; the run history is CI's (restored from "
        f"its cache), never taken from the checkout: remove it (git rm --cached {tracked[0]})",
    )
    return dataclasses.replace(check, problems=(problem, *check.problems))


def _rel(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()
