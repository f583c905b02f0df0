"""The ``sast`` gate: bandit at the policy's thresholds, plus the project's unsafe-load check.

Rules: ``Bxxx`` a bandit finding at or above ``[sast].severity`` and ``[sast].confidence``
(below them: a note); SAST001 bandit could not parse a file (it still exits 0: code went
unchecked); SAST002 a path named in ``[sast].paths`` is missing; SAST003 nothing to scan;
SAST004 a ``.bandit`` file inside the scope (bandit would read it silently: skips belong in
policy; the gate hands bandit an empty one of its own, so it changes nothing);
SAST005 a file in scope that bandit did not report as scanned; SAST008 a bandit test that
crashed on a line (bandit logs "internal error", reports nothing there and exits as if the
line were clean: ``tar.extractall(d, members=obj.pick(tar))`` crashes its B202); SAST006 code an import reaches
that neither scan reads (a ``.py`` in a ``__pycache__`` folder, a package folder that is a
symlink: both walks skip them, Python's import does not); SAST007 a ``.py`` in scope that is not
a regular file (a symlink to a FIFO or a device: bandit is not run); SAST010 a bare ``# nosec``
without a test id; SAST011 (note) a line suppressed with ``# nosec Bxxx``; SAST012 (note) a
finding the baseline hid; SAST013 the baseline is unreadable; SAST014 a ``# nosec`` naming a
deserialization or code-execution test (those stay on); SAST100-105 unsafe deserialization,
SAST106 a keyword bandit reads by name passed where it cannot read it, SAST107 a child
interpreter on code no scan read (a computed script or module, ``PYTHONPATH`` and the other
``PYTHON*`` variables handed to a child) (see ``gates.unsafe_load``).

bandit runs with ``--ignore-nosec`` and the gate applies ``# nosec`` itself: a result is hidden
only by a comment on its lines naming its id (or plugin name). bandit alone would take an
unknown name (``# nosec not_a_test``, ``# nosec B999``) as a bare ``# nosec`` that hides every
test, and a blacklist name (``# nosec pickle``) as hiding B301.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

from gates._tools import (
    Suppression,
    ToolRun,
    check_paths,
    irregular_sources,
    keep_raw,
    parse_json,
    python_files,
    relative,
    report_artifacts,
    run_module,
    suppressions,
    write_sarif,
)
from gates.base import (
    Finding,
    Gate,
    GateError,
    Location,
    Outcome,
    Reads,
    RunContext,
    Severity,
)
from gates.cache import SKIP_PARTS
from gates.sarif_log import docs_uri, uri_path
from pipeline.fsio import read_regular, strict_json

_TIMEOUT = 900
_LEVELS = {"UNDEFINED": 0, "LOW": 1, "MEDIUM": 2, "HIGH": 3}
_THRESHOLD_KEY = "[sast].severity / [sast].confidence"
# Files bandit reads its settings from (pyproject [tool.bandit], an ini-style .bandit).
_BANDIT_CONFIGS = ("pyproject.toml", ".bandit")
# bandit tests no nosec comment may silence: unsafe deserialization and running code from strings
# (exec, pickle, marshal, eval, import pickle, yaml.load, torch.load), by id and by name.
NEVER_SUPPRESSED: dict[str, str] = {
    "B102": "exec_used",
    "B301": "pickle",
    "B302": "marshal",
    "B307": "eval",
    "B403": "import_pickle",
    "B506": "yaml_load",
    "B614": "pytorch_load",
}
# How bandit reads the tests a nosec comment names (bandit.core.manager).
_NOSEC_TESTS = re.compile(r"#\s*nosec:?\s*(?P<tests>[^#]+)?", re.IGNORECASE)
_NOSEC_TEST = re.compile(r"(B\d+|[a-z\d_]+),?", re.IGNORECASE)
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


# bandit's JSON for every finding of a large project is a few MB; a multi-GB file is refused unread.
_MAX_BASELINE_BYTES = 64 << 20


def load_baseline(path: Path, root: Path) -> Counter[BaselineKey]:
    """The findings a bandit baseline (``bandit -f json -o FILE``) accepts, as a multiset."""
    try:
        document = strict_json(read_regular(path, limit=_MAX_BASELINE_BYTES).decode("utf-8"))
        results = document["results"]
        if not isinstance(results, list):
            raise TypeError("'results' is not a list")
        return Counter(_key(item, root) for item in results)
    except FileNotFoundError:
        msg = f"{path}: bandit baseline named by [sast].baseline not found"
        raise GateError(msg) from None
    except OSError as err:
        msg = f"{path}: bandit baseline named by [sast].baseline refused, not read: {err}"
        raise GateError(msg) from None
    # ValueError: not JSON or UTF-8, or a number past 4,300 digits; RecursionError: nesting.
    except (ValueError, RecursionError, KeyError, TypeError, AttributeError) as err:
        msg = f"{path}: bandit baseline is malformed ({type(err).__name__}: {err}); expected the JSON of 'bandit -f json'"
        raise GateError(msg) from None


def unseen_code(root: Path, paths: list[str], exclude: list[str]) -> list[tuple[str, str]]:
    """``(path, why)`` of code under ``paths`` that an import reaches but neither scan reads.

    bandit and ``python_files`` skip ``__pycache__`` folders and do not follow a symlink to a
    folder; ``import pkg.__pycache__.m`` and ``import pkg.link.m`` load such code all the same.
    """
    excluded = [(root / e).resolve() for e in exclude]
    found: list[tuple[str, str]] = []
    for name in paths:
        base = root / name
        if not base.is_dir() or base.is_symlink():
            continue
        for folder, dirs, files in os.walk(base):
            here = Path(folder)
            if any(here.resolve().is_relative_to(ex) for ex in excluded):
                dirs[:] = []
                continue
            for entry in sorted(dirs):
                if (here / entry).is_symlink() and entry.isidentifier():
                    found.append((_as_named(here / entry, root), "a symlink to a folder"))
            dirs[:] = sorted(
                d
                for d in dirs
                if not (here / d).is_symlink() and (d == "__pycache__" or d not in SKIP_PARTS)
            )
            if "__pycache__" in here.relative_to(base).parts:
                found += [
                    (_as_named(here / f, root), "a module in a __pycache__ folder")
                    for f in sorted(files)
                    if f.endswith(".py")
                ]
    return found


def _scope_findings(root: Path, present: list[str], exclude: list[str]) -> list[Finding]:
    """SAST004 a ``.bandit`` file in scope; SAST006 code the scans do not read."""
    inis = {root / name / ".bandit" for name in present}
    inis.update(
        p for name in present if (root / name).is_dir() for p in (root / name).rglob(".bandit")
    )
    found = [
        Finding(
            rule="SAST004",
            message=f"{relative(ini, root)}: bandit reads this file silently; put skips and "
            "excludes in policy.toml [sast]",
            location=Location(path=relative(ini, root)),
            policy_key="[sast].exclude",
        )
        for ini in sorted(inis)
        if ini.is_file()
    ]
    return found + [
        Finding(
            rule="SAST006",
            message=f"{shown}: {why}; an import reaches the code there but neither "
            "bandit nor the unsafe-load check reads it: move it into a real folder",
            location=Location(path=shown),
            observed=why,
            threshold="every importable module scanned",
            policy_key="[sast].paths",
        )
        for shown, why in unseen_code(root, present, exclude)
    ]


def _as_named(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` as named (a symlink is not followed to its target)."""
    return Path(os.path.relpath(path, root)).as_posix()


def _unsafe_load_findings(files: list[Path], root: Path, loaders: list[str]) -> list[Finding]:
    """The AST check's findings: unsafe deserialization outside ``[sast].loaders``."""
    # Imported here, not at the top: a cached outcome is reused after ``reads`` alone, and
    # this module (3,500 lines) is the largest a warm no-op would otherwise compile.
    from gates import unsafe_load  # noqa: PLC0415

    return [
        Finding(
            rule=u.rule,
            message=f"{u.path}:{u.line}{f':{u.col}' if u.col else ''}: {u.message}; "
            f"only {', '.join(loaders)} may "
            "deserialize, after checking the digest",
            location=Location(path=u.path, line=u.line or None),
            observed=u.call or "unparsable",
            threshold="no unsafe deserialization outside the loader",
            policy_key=unsafe_load.POLICY_KEY,
        )
        for u in unsafe_load.scan(files, root=root, allowed=loaders)
    ]


def _bandit(context: RunContext, present: list[str], exclude: list[str]) -> ToolRun:
    # --ignore-nosec: the gate applies nosec comments itself (see the module docstring).
    args = ["-r", "-f", "sarif", "-q", "--ignore-nosec"]
    args += ["--severity-level", "all", "--confidence-level", "all"]
    if exclude:
        args += ["-x", ",".join(exclude)]
    with tempfile.TemporaryDirectory(prefix="gates-sast-") as tmp:
        # Named explicitly, an empty ini file stops bandit from looking for `.bandit` files in
        # the targets (their skips and excludes would apply unseen; SAST004 reports them).
        ini = Path(tmp) / "bandit.ini"
        ini.write_text("[bandit]\n", encoding="utf-8")
        args += ["--ini", str(ini)]
        return run_module("bandit", *args, "--", *present, cwd=context.root, timeout=_TIMEOUT)


def _bandit_scan(
    context: RunContext, present: list[str], exclude: list[str]
) -> tuple[dict[str, Any], str]:
    """One bandit scan: its SARIF read into the shape of ``bandit -f json`` (results, errors,
    metrics), and the SARIF text itself (kept raw, and bandit's own run in ``sast.sarif``)."""
    run = _bandit(context, present, exclude)
    # Not named *.sarif: the feedback stage merges every reports/*.sarif, and this raw log holds
    # every result bandit found (those the gate suppressed too) at bandit's own levels.
    keep_raw(context.reports_dir / "sast.bandit.sarif.json", run.stdout)
    # bandit: 0 no issue at the requested levels, 1 issues found; anything else is a failure
    # to run (2 = bad arguments). Both 0 and 1 must come with a SARIF report.
    if run.returncode not in (0, 1):
        msg = f"bandit exited {run.returncode}: {run.tail()}"
        raise GateError(msg)
    data = _from_sarif(parse_json(run.stdout, tool="bandit"))
    data["crashes"] = _crashes(run.stderr)
    # At --severity-level all, any result makes bandit exit 1; a mismatch is not to be trusted.
    if (run.returncode == 1) != bool(data["results"]):
        msg = f"bandit exited {run.returncode} with {len(data['results'])} result(s): {run.tail()}"
        raise GateError(msg)
    return data, run.stdout


# bandit.core.tester.BanditTester.report_error: a test that raised is logged, and skipped.
_CRASH = "Bandit internal error running: "
_CRASH_AT = re.compile(r"(\w+) on file (.+?) at line (\d+): (.*)")


def _crashes(stderr: str) -> list[tuple[str, str, int, str]]:
    """Each bandit test that raised while checking a line: (test, file, line, error). A
    report bandit logs but in a shape not read here is kept with what could be read."""
    found = []
    for chunk in stderr.split(_CRASH)[1:]:
        first = chunk.partition("\n")[0]
        match = _CRASH_AT.match(first)
        if match is None:
            found.append(("?", "?", 0, first[:200]))
            continue
        test, file, line, error = match.groups()
        found.append((test, file, int(line), error.partition("Traceback")[0][:200]))
    return found


def _from_sarif(document: Any) -> dict[str, Any]:
    """bandit's SARIF (``bandit.formatters.sarif``) as the dict ``bandit -f json`` prints.

    Each result keeps what the gate reads from a JSON result: ``filename`` (the decoded
    artifact URI), ``test_id`` (ruleId), ``test_name`` (its rule's name), ``issue_text``
    (message), ``issue_severity`` / ``issue_confidence`` (properties), ``line_number`` and
    ``line_range`` (the region's startLine..endLine; bandit's SARIF gives a statement's first
    two lines, not all of them, so a ``# nosec`` further down a long statement hides nothing).
    A skipped file (toolConfigurationNotifications) is an entry of ``errors``; ``metrics`` is
    ``runs[0].properties.metrics``. Anything missing or of the wrong type is a GateError.
    """
    try:
        (run,) = document["runs"]
        metrics = run["properties"]["metrics"]
        if not isinstance(metrics, dict) or not isinstance(metrics.get("_totals"), dict):
            raise TypeError("runs[0].properties.metrics has no _totals")
        (invocation, *_) = run["invocations"]
        if invocation["executionSuccessful"] is not True:
            raise ValueError("invocations[0].executionSuccessful is not true")
        errors = [
            {
                "filename": uri_path(
                    note["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                ),
                "reason": str(note["message"]["text"]),
            }
            for kind in ("toolConfigurationNotifications", "toolExecutionNotifications")
            for note in _list(invocation.get(kind, []), kind)
        ]
        names = {
            str(rule["id"]): str(rule["name"])
            for rule in _list(run["tool"]["driver"].get("rules", []), "rules")
        }
        results = [_result(item, names) for item in _list(run["results"], "results")]
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, UnicodeDecodeError) as err:
        msg = f"bandit's SARIF lacks what the gate reads ({type(err).__name__}: {err})"
        raise GateError(msg) from None
    # bandit -f json lists results by file name (a stable sort): the same order here.
    results.sort(key=lambda item: str(item["filename"]))
    return {"results": results, "errors": errors, "metrics": metrics}


def _list(value: Any, name: str) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"{name} is not a list")
    return value


def _result(item: Any, names: dict[str, str]) -> dict[str, Any]:
    physical = item["locations"][0]["physicalLocation"]
    region = physical["region"]
    start, end = region["startLine"], region.get("endLine", region["startLine"])
    if not (isinstance(start, int) and isinstance(end, int) and 0 <= start <= end):
        raise ValueError(f"region lines {start!r}..{end!r}")
    test = item["ruleId"]
    if not isinstance(test, str) or test not in names:
        raise KeyError(f"ruleId {test!r} has no rule in tool.driver.rules")
    return {
        "filename": uri_path(physical["artifactLocation"]["uri"]),
        "test_id": test,
        "test_name": names[test],
        "issue_text": _text(item["message"]["text"]),
        "issue_severity": _text(item["properties"]["issue_severity"]),
        "issue_confidence": _text(item["properties"]["issue_confidence"]),
        "line_number": start,
        "line_range": list(range(start, end + 1)),
    }


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{value!r} is not a string")
    return value


class SastGate(Gate):
    """bandit and the unsafe-deserialization check find nothing at the policy's thresholds."""

    name: ClassVar[str] = "sast"
    description: ClassVar[str] = __doc__ or ""

    def reads(self, context: RunContext) -> Reads:
        """Every file under ``[sast].paths``, the loaders, the baseline, bandit's config; no data.

        bandit and the AST check read the code in scope (suppressions included): the outcome is
        reused only while every one of those files hashes the same, on the same bandit.
        """
        sast = context.policy.policy.sast
        scope: list[str | Path] = [*sast.paths, *sast.loaders, *_BANDIT_CONFIGS]
        if sast.baseline is not None:
            scope.append(context.policy.resolve(sast.baseline))
        return Reads(data=False, files=tuple(scope))

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
        irregular = irregular_sources(files, root, rule="SAST007", policy_key="[sast].paths")
        if irregular:
            return Outcome.judge(findings + irregular, passed="", failed="bandit not run: {first}")
        findings += _scope_findings(root, present, exclude)
        data, native = _bandit_scan(context, present, exclude)
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
        for test, file, line, error in data["crashes"]:
            shown = relative(root / file, root)  # bandit names it as given, from the root
            findings.append(
                Finding(
                    rule="SAST008",
                    message=(
                        f"{shown}:{line}: bandit's {test} crashed there ({error}), so it checked "
                        f"nothing on that line; write the call so that bandit can read it"
                    ),
                    location=Location(path=shown, line=line or None),
                    observed="crashed",
                    threshold="every test run",
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
        baseline: Counter[BaselineKey] = Counter()
        if sast.baseline is not None:
            baseline = load_baseline(context.policy.resolve(sast.baseline), root)
        min_sev, min_conf = _LEVELS[sast.severity.upper()], _LEVELS[sast.confidence.upper()]
        hidden: list[dict[str, Any]] = []
        nosecs = [s for f in files for s in suppressions(f) if s.kind == "nosec"]
        by_line = {(relative(s.path, root), s.line): s for s in nosecs}
        silenced: list[dict[str, Any]] = []
        counted = {"at_threshold": 0, "below_threshold": 0}
        for item in data["results"]:
            key = _key(item, root)
            shown, test = key[0], key[1]
            line = item.get("line_number")
            if _suppressed(item, shown, by_line):
                silenced.append({"path": shown, "line": line, "test_id": test})
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
        findings += _nosec_findings(nosecs, root)
        unsafe = _unsafe_load_findings(files, root, list(sast.loaders))
        findings += unsafe
        version = data.get("metrics", {}).get("_totals", {})
        _write_sarif(context, native, findings)
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
                "suppressed_by_nosec": silenced,
                "unsafe_loads": len(unsafe),
                "thresholds": {"severity": sast.severity, "confidence": sast.confidence},
            },
            artifacts=report_artifacts(context, "sast.sarif", "sast.bandit.sarif.json"),
        )


def _write_sarif(context: RunContext, native: str, findings: list[Finding]) -> None:
    """``sast.sarif``: bandit's own SARIF run (rule names, help links, CWE tags) for the results
    the gate kept (the scan its decisions came from), then the gate's own findings."""
    write_sarif(
        context.reports_dir / "sast.sarif",
        findings,
        tool="bandit",
        version=_bandit_version(),
        info_uri=docs_uri(context.root, "docs/supply-chain.md"),
        native=native,
        root=context.root,
        gate=SastGate.name,
    )


def _nosec_findings(nosecs: list[Suppression], root: Path) -> list[Finding]:
    """SAST010 bare, SAST014 on a test that stays on, SAST011 (note) otherwise."""
    findings: list[Finding] = []
    for item in nosecs:
        shown = relative(item.path, root)
        bare = not item.codes
        kept_on = _never_suppressed(item.text)
        if kept_on:
            findings.append(
                Finding(
                    rule="SAST014",
                    message=f"{shown}:{item.line}: '# nosec' may not silence "
                    f"{', '.join(kept_on)}: unsafe deserialization and code execution "
                    "checks stay on; change the code instead",
                    location=Location(path=shown, line=item.line),
                    observed=item.text,
                    threshold=f"no # nosec for {', '.join(sorted(NEVER_SUPPRESSED))}",
                    policy_key="[sast].paths",
                )
            )
            continue
        findings.append(
            Finding(
                rule="SAST010" if bare else "SAST011",
                message=(
                    f"{shown}:{item.line}: bare '# nosec' hides every bandit test on this "
                    "line; name the test (# nosec B603) and say why"
                    if bare
                    else f"{shown}:{item.line}: # nosec {', '.join(item.codes)}: a result of "
                    "that test on this line is not reported"
                ),
                severity=Severity.ERROR if bare else Severity.NOTE,
                location=Location(path=shown, line=item.line),
                observed=item.text,
                threshold="# nosec Bxxx" if bare else None,
                policy_key="[sast].paths",
            )
        )
    return findings


def _suppressed(
    item: dict[str, Any], shown: str, by_line: dict[tuple[str, int], Suppression]
) -> bool:
    """A ``# nosec`` on one of the result's lines names its id (or plugin name) exactly."""
    test, name = str(item.get("test_id", "")), str(item.get("test_name", ""))
    if test in NEVER_SUPPRESSED:
        return False
    lines = item.get("line_range") or [item.get("line_number")]
    for line in lines if isinstance(lines, list) else []:
        comment = by_line.get((shown, line)) if isinstance(line, int) else None
        if comment and (test in comment.codes or (name != "blacklist" and name in comment.codes)):
            return True
    return False


def _never_suppressed(comment: str) -> list[str]:
    """The tests of NEVER_SUPPRESSED a ``# nosec`` comment names, read as bandit reads them."""
    match = _NOSEC_TESTS.search(comment)
    tokens = _NOSEC_TEST.findall(match["tests"] or "") if match else []
    names = {v: k for k, v in NEVER_SUPPRESSED.items()}
    found = {t.upper() for t in tokens if t.upper() in NEVER_SUPPRESSED}
    found |= {names[t.lower()] for t in tokens if t.lower() in names}
    return sorted(found)


def _bandit_version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version("bandit")
    except PackageNotFoundError:
        return "unknown"
