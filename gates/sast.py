"""The ``sast`` gate: bandit at the policy's thresholds, plus the project's unsafe-load check.

Rules: ``Bxxx`` a bandit finding at or above ``[sast].severity`` and ``[sast].confidence``
(below them: a note); SAST001 bandit could not parse a file (it still exits 0: code went
unchecked); SAST002 a path named in ``[sast].paths`` is missing; SAST003 nothing to scan;
SAST004 a ``.bandit`` file inside the scope (bandit would read it silently: skips belong in
policy; the gate hands bandit an empty one of its own, so it changes nothing); SAST005 a file in
scope that bandit did not report as scanned; SAST010 a bare ``# nosec`` without a test id (it
suppresses nothing); SAST011 (note) a line suppressed with ``# nosec Bxxx``; SAST012 (note) a
finding the baseline hid; SAST013 the baseline is unreadable; SAST100-103 unsafe
deserialization (see ``gates.unsafe_load``).

bandit runs with ``--ignore-nosec``: it reports every result, and the gate itself applies the
``# nosec`` comments it finds with the tokenizer. A result is suppressed only by a comment on
one of its lines that names its test id (``B602``) or its test name; anything bandit would
read as a blanket suppression (a bare ``# nosec``, an unknown id, ``# nosecurity``) hides
nothing here.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

from gates import unsafe_load
from gates._tools import (
    Suppression,
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
from gates.base import Finding, Gate, GateError, Location, Outcome, RunContext, Severity

_TIMEOUT = 900
_LEVELS = {"UNDEFINED": 0, "LOW": 1, "MEDIUM": 2, "HIGH": 3}
_THRESHOLD_KEY = "[sast].severity / [sast].confidence"
# Files bandit reads its settings from (pyproject [tool.bandit], an ini-style .bandit).
_BANDIT_CONFIGS = ("pyproject.toml", ".bandit")
BaselineKey = tuple[str, str, str, str, str]


def _key(item: dict[str, Any], root: Path) -> BaselineKey:
    # bandit's own baseline comparison ignores line numbers (code moves); so does this one.
    return (
        relative(str(item.get("filename", "")), root),
        str(item.get("test_id", "")),
        str(item.get("issue_text", "")),
        str(item.get("issue_severity", "")).upper(),
        str(item.get("issue_confidence", "")).upper(),
    )


def load_baseline(path: Path, root: Path) -> Counter[BaselineKey]:
    """The findings a bandit baseline (``bandit -f json -o FILE``) accepts, as a multiset."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        results = document["results"]
        if not isinstance(results, list):
            raise TypeError("'results' is not a list")
        return Counter(_key(item, root) for item in results)
    except FileNotFoundError:
        msg = f"{path}: bandit baseline named by [sast].baseline not found"
        raise GateError(msg) from None
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as err:
        msg = f"{path}: bandit baseline is malformed ({type(err).__name__}: {err}); expected the JSON of 'bandit -f json'"
        raise GateError(msg) from None


def _bandit(context: RunContext, present: list[str], exclude: list[str]) -> dict[str, Any]:
    args = ["-r", "-f", "json", "-q", "--severity-level", "all", "--confidence-level", "all"]
    # Every result, whatever the comments say: the gate applies nosec comments itself.
    args.append("--ignore-nosec")
    if exclude:
        args += ["-x", ",".join(exclude)]
    with tempfile.TemporaryDirectory(prefix="gates-sast-") as tmp:
        # Named explicitly, an empty ini file stops bandit from looking for `.bandit` files in
        # the targets (their skips and excludes would apply unseen; SAST004 reports them).
        ini = Path(tmp) / "bandit.ini"
        ini.write_text("[bandit]\n", encoding="utf-8")
        args += ["--ini", str(ini)]
        run = run_module("bandit", *args, "--", *present, cwd=context.root, timeout=_TIMEOUT)
    keep_raw(context.reports_dir / "sast.bandit.json", run.stdout)
    # bandit: 0 no issue at the requested levels, 1 issues found; anything else is a failure
    # to run (2 = bad arguments). Both 0 and 1 must come with a JSON report.
    if run.returncode not in (0, 1):
        msg = f"bandit exited {run.returncode}: {run.tail()}"
        raise GateError(msg)
    data = parse_json(run.stdout, tool="bandit")
    if not isinstance(data, dict) or not {"results", "errors", "metrics"} <= data.keys():
        msg = f"bandit JSON lacks results/errors/metrics: {run.stdout[:200]!r}"
        raise GateError(msg)
    if not isinstance(data["metrics"], dict) or "_totals" not in data["metrics"]:
        msg = f"bandit JSON has no metrics._totals: {run.stdout[:200]!r}"
        raise GateError(msg)
    # At --severity-level all, any result makes bandit exit 1; a mismatch is not to be trusted.
    if (run.returncode == 1) != bool(data["results"]):
        msg = f"bandit exited {run.returncode} with {len(data['results'])} result(s): {run.tail()}"
        raise GateError(msg)
    return data


def _named_nosecs(nosecs: list[Suppression], root: Path) -> dict[tuple[str, int], set[str]]:
    """``{(file, line): test ids and names}`` that the ``# nosec`` comments there name."""
    named: dict[tuple[str, int], set[str]] = {}
    for item in nosecs:
        named.setdefault((relative(item.path, root), item.line), set()).update(item.codes)
    return named


def _suppressed(item: dict[str, Any], shown: str, named: dict[tuple[str, int], set[str]]) -> bool:
    """A bandit result is suppressed by a comment on one of its lines that names its test."""
    lines = item.get("line_range") or [item.get("line_number")]
    names = {str(item.get("test_id", "")), str(item.get("test_name", ""))} - {""}
    return any(names & named.get((shown, n), set()) for n in lines if isinstance(n, int))


def _bandit_inis(root: Path, present: list[str]) -> list[Finding]:
    """SAST004 for every ``.bandit`` file in scope (bandit would apply it unseen)."""
    inis = {root / name / ".bandit" for name in present}
    inis.update(
        p for name in present if (root / name).is_dir() for p in (root / name).rglob(".bandit")
    )
    findings = []
    for ini in sorted(i for i in inis if i.is_file()):
        shown = relative(ini, root)
        findings.append(
            Finding(
                rule="SAST004",
                message=f"{shown}: bandit reads this file silently; put skips and "
                "excludes in policy.toml [sast]",
                location=Location(path=shown),
                policy_key="[sast].exclude",
            )
        )
    return findings


class SastGate(Gate):
    """bandit and the unsafe-deserialization check find nothing at the policy's thresholds."""

    name: ClassVar[str] = "sast"
    description: ClassVar[str] = __doc__ or ""
    # bandit and the AST check read the code in scope (suppressions included), the baseline and
    # bandit's configuration, nothing of the data: the outcome is reused only while every one
    # of those files hashes the same (cache_key), on the same bandit (environment digest).
    reads_data: ClassVar[bool] = False

    def cache_key(self, context: RunContext) -> dict[str, str]:
        """Digest of every file under ``[sast].paths``, the baseline and bandit's config files."""
        sast = context.policy.policy.sast
        scope: list[str | Path] = [*sast.paths, *sast.loaders, *_BANDIT_CONFIGS]
        if sast.baseline is not None:
            scope.append(context.policy.resolve(sast.baseline))
        return {"scope": tree_digest(context.root, scope, context.file_sha256)}

    def run(self, context: RunContext) -> Outcome:
        """Run bandit, guard its fail-open edges, apply the baseline, run the AST check."""
        root = context.root
        sast = context.policy.policy.sast
        paths, exclude = list(sast.paths), list(sast.exclude)
        findings = check_paths(root, paths, rule="SAST002", policy_key="[sast].paths")
        present = [p for p in paths if (root / p).exists()]
        files = python_files(root, present, exclude=exclude)
        if not files:
            findings.append(
                Finding(
                    rule="SAST003",
                    message=f"no Python files to scan under {paths}: a scan of nothing is not a pass",
                    observed="0 files",
                    threshold=">= 1 file",
                    policy_key="[sast].paths",
                )
            )
            return Outcome.judge(findings, passed="", failed="{first}")
        findings += _bandit_inis(root, present)
        data = _bandit(context, present, exclude)
        for error in data["errors"]:
            shown = relative(str(error.get("filename", "?")), root)
            findings.append(
                Finding(
                    rule="SAST001",
                    message=f"{shown}: bandit could not check it ({error.get('reason', '?')})",
                    location=Location(path=shown),
                    observed="unparsed",
                    threshold="every file checked",
                    policy_key="[sast].paths",
                )
            )
        scanned = {relative(k, root) for k in data["metrics"] if k != "_totals"}
        for file in files:
            shown = relative(file, root)
            if shown not in scanned:
                findings.append(
                    Finding(
                        rule="SAST005",
                        message=f"{shown}: in scope but bandit did not scan it",
                        location=Location(path=shown),
                        policy_key="[sast].exclude",
                    )
                )
        nosecs = [s for f in files for s in suppressions(f) if s.kind == "nosec"]
        named = _named_nosecs(nosecs, root)
        suppressed: list[dict[str, Any]] = []
        baseline: Counter[BaselineKey] = Counter()
        if sast.baseline is not None:
            baseline = load_baseline(context.policy.resolve(sast.baseline), root)
        min_sev, min_conf = _LEVELS[sast.severity.upper()], _LEVELS[sast.confidence.upper()]
        hidden: list[dict[str, Any]] = []
        counted = {"at_threshold": 0, "below_threshold": 0}
        for item in data["results"]:
            key = _key(item, root)
            shown, test = key[0], key[1]
            line = item.get("line_number")
            if _suppressed(item, shown, named):
                suppressed.append({"path": shown, "line": line, "test_id": test})
                continue
            if baseline[key] > 0:
                baseline[key] -= 1
                hidden.append({"path": shown, "line": line, "test_id": test})
                findings.append(
                    Finding(
                        rule="SAST012",
                        message=f"{shown}:{line}: {test} hidden by the baseline: {key[2]}",
                        severity=Severity.NOTE,
                        location=Location(path=shown, line=line),
                        policy_key="[sast].baseline",
                    )
                )
                continue
            sev, conf = _LEVELS.get(key[3], 0), _LEVELS.get(key[4], 0)
            blocking = sev >= min_sev and conf >= min_conf
            counted["at_threshold" if blocking else "below_threshold"] += 1
            findings.append(
                Finding(
                    rule=test or "B000",
                    message=f"{shown}:{line}: {item.get('issue_text', '')} (bandit {test})",
                    severity=Severity.ERROR if blocking else Severity.NOTE,
                    location=Location(path=shown, line=line),
                    observed=f"severity {key[3].lower()}, confidence {key[4].lower()}",
                    threshold=f"severity >= {sast.severity}, confidence >= {sast.confidence}",
                    policy_key=_THRESHOLD_KEY,
                )
            )
        for item in nosecs:
            shown = relative(item.path, root)
            bare = not item.codes
            findings.append(
                Finding(
                    rule="SAST010" if bare else "SAST011",
                    message=(
                        f"{shown}:{item.line}: bare '# nosec' would hide every bandit test on "
                        "this line; name the test (# nosec B603) and say why"
                        if bare
                        else f"{shown}:{item.line}: bandit suppressed here ({', '.join(item.codes)})"
                    ),
                    severity=Severity.ERROR if bare else Severity.NOTE,
                    location=Location(path=shown, line=item.line),
                    observed=item.text,
                    threshold="# nosec Bxxx" if bare else None,
                    policy_key="[sast].paths",
                )
            )
        unsafe = unsafe_load.scan(files, root=root, allowed=list(sast.loaders))
        findings += [
            Finding(
                rule=u.rule,
                message=f"{u.path}:{u.line}: {u.message}; only {', '.join(sast.loaders)} may "
                "deserialize, after checking the digest",
                location=Location(path=u.path, line=u.line or None),
                observed=u.call or "unparsable",
                threshold="no unsafe deserialization outside the loader",
                policy_key=unsafe_load.POLICY_KEY,
            )
            for u in unsafe
        ]
        version = data.get("metrics", {}).get("_totals", {})
        write_sarif(
            context.reports_dir / "sast.sarif",
            findings,
            tool="bandit+unsafe_load",
            version=_bandit_version(),
            info_uri="https://bandit.readthedocs.io/",
        )
        return Outcome.judge(
            findings,
            passed=f"bandit and unsafe-load clean over {len(files)} file(s) "
            f"({counted['below_threshold']} below threshold, {len(hidden)} in baseline)",
            failed="{n} SAST finding(s): {first}",
            metrics={
                "files": len(files),
                "lines_of_code": version.get("loc"),
                "bandit_errors": len(data["errors"]),
                "results_at_threshold": counted["at_threshold"],
                "results_below_threshold": counted["below_threshold"],
                "hidden_by_baseline": hidden,
                "nosec_lines": len(nosecs),
                "suppressed_by_nosec": suppressed,
                "unsafe_loads": len(unsafe),
                "thresholds": {"severity": sast.severity, "confidence": sast.confidence},
            },
            artifacts=report_artifacts(context, "sast.sarif", "sast.bandit.json"),
        )


def _bandit_version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version("bandit")
    except PackageNotFoundError:
        return "unknown"
