"""The ``lint`` gate: ``ruff check`` and ``ruff format --check`` over the paths policy names.

Rules: LINT001 a ruff diagnostic (the finding's rule is ruff's own code, e.g. ``F401``; a file
ruff cannot parse is ``invalid-syntax``); LINT002 a path named in ``[lint].paths`` is missing;
LINT003 a file would be reformatted; LINT004 a blanket ``# noqa`` / ``# ruff: noqa`` without
codes (it silences every rule, including ones added later); LINT005 a file in scope that ruff's
configuration excludes (it would silently go unlinted). The rule set lives in pyproject.toml.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from gates._tools import (
    ToolRun,
    check_paths,
    keep_raw,
    parse_json,
    python_files,
    relative,
    report_artifacts,
    run_module,
    suppressions,
    tree_digest,
    write_sarif,
)
from gates.base import Finding, Gate, GateError, Location, Outcome, RunContext

_TIMEOUT = 600
_PATHS_KEY = "[lint].paths"
_RULES_KEY = "pyproject.toml [tool.ruff]"
# Where ruff looks for its settings at the project root (https://docs.astral.sh/ruff/configuration/).
_RUFF_CONFIGS = ("pyproject.toml", "ruff.toml", ".ruff.toml")


def _diagnostics(run: ToolRun, *, command: str) -> list[dict[str, Any]]:
    # Exit codes of ruff are 0 clean, 1 diagnostics found, 2 ruff itself failed (bad config, crash). A syntax
    # error is a diagnostic (code "invalid-syntax"), reported with exit 1 by check and 2 by format.
    if run.returncode not in (0, 1, 2):
        msg = f"ruff {command} exited {run.returncode}, an unknown exit code: {run.tail()}"
        raise GateError(msg)
    if run.returncode == 2 and not run.stdout.strip().startswith("["):
        msg = f"ruff {command} failed: {run.tail()}"
        raise GateError(msg)
    data = parse_json(run.stdout, tool=f"ruff {command}")
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        msg = f"ruff {command} JSON is not a list of diagnostics: {run.stdout[:200]!r}"
        raise GateError(msg)
    if run.returncode != 0 and not data:
        msg = f"ruff {command} exited {run.returncode} without diagnostics: {run.tail()}"
        raise GateError(msg)
    if run.returncode == 0 and data:
        msg = (
            f"ruff {command} exited 0 but reported {len(data)} diagnostic(s); refusing to trust it"
        )
        raise GateError(msg)
    return data


def _finding(item: dict[str, Any], *, root: Path, formatting: bool) -> Finding:
    code = str(item.get("code") or "invalid-syntax")
    path = relative(str(item.get("filename", "?")), root)
    line = (item.get("location") or {}).get("row")
    if formatting and code == "unformatted":
        return Finding(
            rule="LINT003",
            message=f"{path}: would be reformatted by 'ruff format'",
            location=Location(path=path, line=line),
            observed="unformatted",
            threshold="ruff format",
            policy_key=_RULES_KEY,
        )
    return Finding(
        rule=code,
        message=f"{path}:{line}: {item.get('message', '')} (ruff {code})",
        location=Location(path=path, line=line),
        observed=code,
        threshold="no diagnostics",
        policy_key=_RULES_KEY,
    )


class LintGate(Gate):
    """ruff check and ruff format --check are clean over the policy's paths."""

    name: ClassVar[str] = "lint"
    description: ClassVar[str] = __doc__ or ""
    # ruff reads the files in scope and its configuration, nothing of the data: its outcome is
    # reused only while every file it could read hashes the same (cache_key), on the same ruff
    # (the environment digest names every installed distribution).
    reads_data: ClassVar[bool] = False

    def cache_key(self, context: RunContext) -> dict[str, str]:
        """Digest of every file under ``[lint].paths`` and of ruff's configuration files."""
        root = context.root
        scope = [*context.policy.policy.lint.paths, *_RUFF_CONFIGS]
        return {"scope": tree_digest(root, scope, context.file_sha256)}

    def run(self, context: RunContext) -> Outcome:
        """Run both ruff commands, parse their JSON, add blanket-noqa findings."""
        root = context.root
        paths = list(context.policy.policy.lint.paths)
        findings = check_paths(root, paths, rule="LINT002", policy_key=_PATHS_KEY)
        present = [p for p in paths if (root / p).exists()]
        if not present:
            return Outcome.judge(findings, passed="", failed="nothing to lint: {first}")
        common = ("--output-format", "json", "--no-cache", "--force-exclude", "--", *present)
        check = run_module("ruff", "check", *common, cwd=root, timeout=_TIMEOUT)
        fmt = run_module("ruff", "format", "--check", *common, cwd=root, timeout=_TIMEOUT)
        keep_raw(context.reports_dir / "lint.ruff.json", check.stdout)
        keep_raw(context.reports_dir / "lint.ruff-format.json", fmt.stdout)
        diagnostics = _diagnostics(check, command="check")
        unformatted = _diagnostics(fmt, command="format --check")
        findings += [_finding(d, root=root, formatting=False) for d in diagnostics]
        # A syntax error appears in both outputs; report it once (from `check`).
        findings += [
            _finding(d, root=root, formatting=True)
            for d in unformatted
            if d.get("code") != "invalid-syntax"
        ]
        files = python_files(root, present)
        # ruff's own excludes (pyproject extend-exclude, its defaults such as .tox or build/)
        # drop files without a word; a file in scope that ruff would not check is a finding.
        shown = run_module(
            "ruff",
            "check",
            "--show-files",
            "--no-cache",
            "--force-exclude",
            "--",
            *present,
            cwd=root,
            timeout=_TIMEOUT,
        )
        if shown.returncode != 0:
            msg = f"ruff check --show-files exited {shown.returncode}: {shown.tail()}"
            raise GateError(msg)
        checked = {
            relative(line.strip(), root) for line in shown.stdout.splitlines() if line.strip()
        }
        for file in files:
            where = relative(file, root)
            if where not in checked:
                findings.append(
                    Finding(
                        rule="LINT005",
                        message=f"{where}: in [lint].paths but excluded by ruff's configuration, "
                        "so it was not linted",
                        location=Location(path=where),
                        observed="excluded",
                        threshold="every file in scope linted",
                        policy_key=_PATHS_KEY,
                    )
                )
        for item in (s for f in files for s in suppressions(f)):
            if item.kind in ("noqa", "file-noqa") and not item.codes:
                where = relative(item.path, root)
                findings.append(
                    Finding(
                        rule="LINT004",
                        message=f"{where}:{item.line}: blanket '{item.text}' silences every rule; "
                        "name the codes (# noqa: F401)",
                        location=Location(path=where, line=item.line),
                        observed=item.text,
                        threshold="# noqa: CODE",
                        policy_key=_RULES_KEY,
                    )
                )
        version = run_module("ruff", "--version", cwd=root, timeout=60).stdout.strip()
        write_sarif(
            context.reports_dir / "lint.sarif",
            findings,
            tool="ruff",
            version=version.removeprefix("ruff "),
            info_uri="https://docs.astral.sh/ruff/",
        )
        return Outcome.judge(
            findings,
            passed=f"ruff check and format clean over {len(files)} file(s) in {', '.join(present)}",
            failed="{n} lint finding(s): {first}",
            metrics={
                "files": len(files),
                "diagnostics": len(diagnostics),
                "unformatted": sum(1 for d in unformatted if d.get("code") == "unformatted"),
                "ruff_version": version,
            },
            artifacts=report_artifacts(
                context, "lint.sarif", "lint.ruff.json", "lint.ruff-format.json"
            ),
        )
