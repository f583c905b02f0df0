"""SARIF 2.1.0 runs shared by the gates and the feedback stage.

A tool that writes SARIF itself (ruff ``--output-format sarif``, bandit ``-f sarif``) keeps its
own run, with its own rule descriptions and help links (``adopt_run``): only the results the gate
reports stay in it, with the gate's level and paths relative to the project. Everything else a
gate finds goes into a run of the gate's own (``own_run``). A finding about the policy points at
the line of its key in ``policy.toml`` (``policy_line``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from gates.base import Finding, GateError, Severity

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "note"}
ResultKey = tuple[str, str, int | None]

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]#]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_-]+(?:\s*\.\s*[A-Za-z0-9_-]+)*)\s*=""")
_POLICY_KEY = re.compile(r"^\[\[?([^\]]+)\]\]?(?:\.(.+))?$")


def _parts(dotted: str) -> tuple[str, ...]:
    """``a."b c".d`` as ``("a", "b c", "d")`` (TOML dotted keys, quotes removed)."""
    found = re.findall(r""""([^"]*)"|'([^']*)'|([A-Za-z0-9_-]+)""", dotted)
    return tuple(a or b or c for a, b, c in found)


def policy_line(text: str, key: str | None) -> int | None:
    """The 1-based line in ``policy.toml``'s ``text`` that ``key`` names, or None.

    ``key`` is a finding's ``policy_key``: ``[table].key``, ``[table]``, ``[[array]].key``, or
    several joined by `` / `` (the first is located). The key's own line wins, then the line of
    its table's header, then of the nearest enclosing table that exists.
    """
    if not key:
        return None
    match = _POLICY_KEY.match(key.split(" / ")[0].strip())
    if match is None:
        return None
    wanted = _parts(match[1]) + (_parts(match[2]) if match[2] else ())
    table: tuple[str, ...] = ()
    header: tuple[int, int] = (0, 0)  # (parts matched, line) of the deepest enclosing table
    keyed: tuple[int, int] = (0, 0)  # the same for a key line (an inline table may hold the rest)
    for number, line in enumerate(text.splitlines(), start=1):
        found = _HEADER.match(line)
        if found:
            table = _parts(found[2])
            if wanted[: len(table)] == table and len(table) > header[0]:
                header = (len(table), number)
            continue
        found = _KEY.match(line)
        path = table + _parts(found[1]) if found else ()
        if found and wanted[: len(path)] == path and len(path) > keyed[0]:
            keyed = (len(path), number)
    best = max(header, keyed)
    return best[1] or None


def docs_uri(root: Path, doc: str) -> str:
    """An absolute URI of ``doc`` (a path in the project, e.g. ``docs/feedback.md``).

    The project's page on the CI system when the job says where it is (GitHub Actions, GitLab
    CI), at the commit that ran; otherwise the file on this machine.
    """
    github = os.environ.get("GITHUB_SERVER_URL", ""), os.environ.get("GITHUB_REPOSITORY", "")
    sha = os.environ.get("GITHUB_SHA") or os.environ.get("CI_COMMIT_SHA") or ""
    if not re.fullmatch(r"[0-9a-f]{7,64}", sha):
        sha = ""
    candidates = []
    if all(github) and sha:
        candidates.append(f"{github[0]}/{github[1]}/blob/{sha}/{doc}")
    gitlab = os.environ.get("CI_PROJECT_URL", "")
    if gitlab and sha:
        candidates.append(f"{gitlab}/-/blob/{sha}/{doc}")
    for uri in candidates:
        parts = urlsplit(uri)
        if parts.scheme == "https" and parts.netloc and not re.search(r"\s", uri):
            return uri
    return (root.resolve() / doc).as_uri()


def uri_path(uri: object) -> str:
    """The file a tool's SARIF ``artifactLocation.uri`` names, percent-decoded.

    ``file:///abs/path`` (or ``file://localhost/...``) gives the absolute path; a relative
    reference (``src/my%20file.py``, ``./x``, as bandit writes them) the relative one. Anything
    else (another scheme, a host, a query or fragment, bad percent-encoding) is a ValueError and
    a URI that is not a non-empty string a TypeError: not guessed at.
    """
    if not isinstance(uri, str) or not uri:
        raise TypeError(f"artifactLocation.uri is {uri!r}, expected a non-empty string")
    parts = urlsplit(uri)
    if parts.scheme == "file" and parts.netloc in ("", "localhost"):
        return unquote(parts.path, errors="strict")
    if parts.scheme or parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"artifactLocation.uri {uri!r} is not a file path")
    return unquote(uri, errors="strict")


def path_uri(path: str) -> str:
    """The ``artifactLocation.uri`` of a file path: a relative one percent-encoded (a folder
    named ``https:``, a ``#`` or a ``?`` in a name must not read as a scheme, a fragment or a
    query: red team 13), an absolute one as its ``file:`` URI; ``uri_path`` gives it back."""
    if path.startswith("/"):
        return Path(path).as_uri()
    return quote(path)


def relative_uri(uri: str, root: Path) -> str:
    """A tool's artifact URI (``file:///abs/path``, ``./x``, ``x``) relative to ``root``, as a
    URI (``path_uri``; ``uri_path``'s errors propagate)."""
    path = Path(uri_path(uri))
    if path.is_absolute():
        try:
            return path_uri(path.resolve().relative_to(root.resolve()).as_posix())
        except ValueError:
            return path_uri(path.as_posix())
    return path_uri(Path(os.path.normpath(path)).as_posix())


def _result_key(result: dict[str, Any], root: Path) -> ResultKey | None:
    try:
        physical = result["locations"][0]["physicalLocation"]
        uri = relative_uri(physical["artifactLocation"]["uri"], root)
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    line = physical.get("region", {}).get("startLine")
    return str(result.get("ruleId", "")), uri, line if isinstance(line, int) else None


def finding_key(finding: Finding) -> ResultKey:
    """The key a tool's SARIF result of this finding has: rule, path, line."""
    path = finding.location.path
    return finding.rule, path_uri(path) if path else "", finding.location.line


def adopt_run(
    text: str, *, tool: str, root: Path, findings: Sequence[Finding]
) -> tuple[dict[str, Any], list[Finding]]:
    """The tool's own SARIF run, cut down to the results behind ``findings``.

    Each kept result takes the finding's level (the gate's thresholds decide, not the tool's
    defaults) and a path relative to ``root``; the driver keeps only the rules those results
    use, with the tool's descriptions and help links. Returns the run and the findings no
    result of the tool stood for (they go into the gate's own run, so nothing is lost).
    Unparsable SARIF is a GateError: the gate does not report what it could not read.
    """
    try:
        document = json.loads(text)
        (run,) = document["runs"]
        driver = run["tool"]["driver"]
        results = run.get("results", [])
        rules = driver.get("rules", [])
        if not isinstance(results, list) or not isinstance(rules, list):
            raise TypeError("results and rules must be lists")
        str(driver["name"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        msg = f"{tool}'s SARIF output is not one SARIF run ({type(err).__name__}: {err})"
        raise GateError(msg) from None
    wanted: dict[ResultKey, list[Finding]] = {}
    for finding in findings:
        wanted.setdefault(finding_key(finding), []).append(finding)
    kept: list[dict[str, Any]] = []
    for result in results:
        key = _result_key(result, root) if isinstance(result, dict) else None
        if key is None or not wanted.get(key):
            continue
        kept.append(_relocated(result, wanted[key].pop(0), root))
    used = {r.get("ruleId") for r in kept}
    driver = {**driver, "rules": [r for r in rules if isinstance(r, dict) and r.get("id") in used]}
    if not isinstance(driver.get("informationUri"), str):
        driver.pop("informationUri", None)
    adopted = {"tool": {"driver": driver}, "results": kept}
    for name in ("invocations", "properties"):
        if name in run:
            adopted[name] = run[name]
    leftover = [f for found in wanted.values() for f in found]
    return adopted, leftover


def _relocated(result: dict[str, Any], finding: Finding, root: Path) -> dict[str, Any]:
    """A copy of a tool's result with the finding's level and project-relative paths."""
    copy: dict[str, Any] = json.loads(json.dumps(result))
    copy["level"] = LEVELS[finding.severity]
    copy.pop("ruleIndex", None)  # the driver's rules are cut down: indices would be wrong
    artifacts = [
        location.get("physicalLocation", {}).get("artifactLocation", {})
        for location in copy.get("locations", [])
    ]
    artifacts += [
        change.get("artifactLocation", {})
        for fix in copy.get("fixes", [])
        for change in fix.get("artifactChanges", [])
    ]
    for artifact in artifacts:
        if "uri" in artifact:
            with contextlib.suppress(TypeError, ValueError):  # not a file path: left as written
                artifact["uri"] = relative_uri(artifact["uri"], root)
    return copy


def own_run(
    findings: Sequence[Finding],
    *,
    name: str,
    version: str | None,
    info_uri: str,
    default_path: str | None = None,
    policy_text: str | None = None,
    gate: str | None = None,
) -> dict[str, Any]:
    """A run of the gate's own findings; unlocated ones point at their key in the policy."""
    rules: dict[str, dict[str, Any]] = {}
    results: list[dict[str, Any]] = []
    seen: Counter[tuple[str, str, int | None, str]] = Counter()
    for finding in findings:
        path = finding.location.path or default_path
        if not path:
            continue
        line = finding.location.line
        about_policy = not finding.location.path or finding.location.path == default_path
        if line is None and about_policy and policy_text is not None:
            line = policy_line(policy_text, finding.policy_key)
        identity = (finding.rule, path, line, finding.message)
        if seen[identity]:
            continue  # one result per problem
        seen[identity] += 1
        rules.setdefault(
            finding.rule,
            {
                "id": finding.rule,
                "shortDescription": {"text": f"{gate or name} rule {finding.rule}"},
                "helpUri": info_uri,
                **({"properties": {"gate": gate}} if gate else {}),
            },
        )
        physical: dict[str, Any] = {"artifactLocation": {"uri": path_uri(path)}}
        if line is not None and line >= 1:
            physical["region"] = {"startLine": line}
        properties = {
            k: v
            for k, v in (
                ("gate", gate),
                ("observed", finding.observed),
                ("threshold", finding.threshold),
                ("policyKey", finding.policy_key),
                ("column", finding.location.column),
                ("row", finding.location.row),
            )
            if v is not None
        }
        result: dict[str, Any] = {
            "ruleId": finding.rule,
            "level": LEVELS[finding.severity],
            "message": {"text": finding.message},
            "locations": [{"physicalLocation": physical}],
        }
        if properties:
            result["properties"] = properties
        results.append(result)
    driver: dict[str, Any] = {
        "name": name,
        "informationUri": info_uri,
        "rules": list(rules.values()),
    }
    if version:
        driver["version"] = version
    return {"tool": {"driver": driver}, "results": results}


def log(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A SARIF 2.1.0 log of ``runs``."""
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": list(runs)}
