"""``reports/merged.sarif``: every ``reports/*.sarif`` other gates wrote, plus every gate finding.

SARIF 2.1.0 (OASIS), valid against the schema GitHub's upload action checks. GitHub code
scanning and GitLab read one file with several runs; each tool keeps its own run (ruff's and
bandit's with their own rule descriptions and help links), and the findings no tool's run holds
form one more run whose driver is this pipeline. No result is listed twice: a gate's own SARIF
file is merged only when it is the one this run's gate wrote (its digest is in the gate's
report), and then the gate's located findings are left out of the pipeline's run. A finding
about the policy points at the line of its key in ``policy.toml``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import groupby
from pathlib import Path
from typing import Any

from gates.base import Finding, GateResult
from gates.feedback.bundle import ReportBundle
from gates.sarif_log import LEVELS, SCHEMA_URI, docs_uri, log, own_run

__all__ = ["MERGED", "SCHEMA_URI", "gate_run", "render"]
from pipeline.fsio import sha256_file

MERGED = "merged.sarif"
DRIVER = "secure-ml-pipeline gates"
_LEVELS = LEVELS


def _policy_text(bundle: ReportBundle) -> str | None:
    path = bundle.policy_path or bundle.root / bundle.policy_file
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _own_sarif(result: GateResult, reports_dir: Path, root: Path) -> Path | None:
    """The gate's ``<gate>.sarif`` when its report names it with the digest it has now."""
    path = reports_dir / f"{result.gate}.sarif"
    for name, digest in result.artifacts.items():
        candidate = Path(name) if Path(name).is_absolute() else root / name
        try:
            if candidate.resolve() == path.resolve() and sha256_file(path) == digest:
                return path
        except OSError:
            return None
    return None


def _sources(bundle: ReportBundle, merged: set[str]) -> Iterator[tuple[str, Finding]]:
    """Every finding the pipeline's run holds: not those already in a merged gate SARIF."""
    for result in bundle.results():
        in_own = f"{result.gate}.sarif" in merged
        for finding in result.findings:
            if in_own and finding.location.path:
                continue  # its gate's own SARIF run, merged above, holds it
            yield result.gate, finding
    for finding in bundle.findings:
        yield "feedback", finding


def gate_run(bundle: ReportBundle, *, merged: set[str] | None = None) -> dict[str, Any]:
    """One SARIF run holding every finding no merged tool run holds (and the feedback stage's)."""
    info = docs_uri(bundle.root, "docs/feedback.md")
    policy_text = _policy_text(bundle)
    results: list[dict[str, Any]] = []
    seen: set[str] = set()
    rules: dict[str, dict[str, Any]] = {}
    for gate, group in groupby(_sources(bundle, merged or set()), key=lambda pair: pair[0]):
        run = own_run(
            [finding for _, finding in group],
            name=DRIVER,
            version=None,
            info_uri=info,
            default_path=bundle.policy_file,
            policy_text=policy_text,
            gate=gate,
        )
        for result in run["results"]:
            identity = json.dumps(result, sort_keys=True)
            if identity not in seen:
                seen.add(identity)
                results.append(result)
        for rule in run["tool"]["driver"]["rules"]:
            rules.setdefault(rule["id"], rule)
    return {
        "tool": {"driver": {"name": DRIVER, "informationUri": info, "rules": list(rules.values())}},
        "automationDetails": {"id": f"gates/{bundle.view.run_id}"},
        "results": results,
    }


def _tool_runs(bundle: ReportBundle) -> tuple[list[dict[str, Any]], list[str], set[str]]:
    runs: list[dict[str, Any]] = []
    problems: list[str] = []
    merged: set[str] = set()
    owned = {f"{r.gate}.sarif": r for r in bundle.results()}
    for path in sorted(bundle.reports_dir.glob("*.sarif")):
        if path.name == MERGED:
            continue
        result = owned.get(path.name)
        if result is not None and _own_sarif(result, bundle.reports_dir, bundle.root) is None:
            problems.append(
                f"{path.name}: not merged (not the file this run's {result.gate} gate wrote: "
                "its digest is not in the gate's report); its findings are listed from the report"
            )
            continue
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            found = document["runs"]
            if not isinstance(found, list):
                raise TypeError("runs is not a list")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as err:
            problems.append(f"{path.name}: not merged ({type(err).__name__}: {err})")
            continue
        runs.extend(run for run in found if isinstance(run, dict))
        merged.add(path.name)
    return runs, problems, merged


def _deduplicated(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each run once, each result once (two files may hold the same run, a run a result twice)."""
    seen_runs: list[str] = []
    unique: list[dict[str, Any]] = []
    for run in runs:
        text = json.dumps(run, sort_keys=True)
        if text in seen_runs:
            continue
        seen_runs.append(text)
        results = run.get("results")
        if isinstance(results, list):
            kept: list[Any] = []
            for result in results:
                if result not in kept:
                    kept.append(result)
            run = {**run, "results": kept}  # noqa: PLW2901 - a copy with the duplicates out
        unique.append(run)
    return unique


def render(bundle: ReportBundle) -> tuple[dict[str, Any], list[str]]:
    """The merged SARIF log, and the names of SARIF files that could not be merged."""
    runs, problems, merged = _tool_runs(bundle)
    return log([*_deduplicated(runs), gate_run(bundle, merged=merged)]), problems
