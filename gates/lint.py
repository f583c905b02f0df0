"""The ``lint`` gate: ``ruff check`` and ``ruff format --check`` over the paths policy names.

Rules: LINT001 a ruff diagnostic (the finding's rule is ruff's own code, e.g. ``F401``; a file
ruff cannot parse is ``invalid-syntax``); LINT002 a path named in ``[lint].paths`` is missing;
LINT003 a file would be reformatted; LINT004 a blanket ``# noqa`` / ``# ruff: noqa`` without
codes (it silences every rule, including ones added later); LINT005 a file in scope that ruff's
configuration excludes (it would silently go unlinted); LINT006 a ruff setting the gate does not
honour or that drops files from one check unseen (a ruff configuration inside the lint paths,
``extend``, ``lint.exclude``, ``format.exclude``). The rule set lives in one file at the project
root (pyproject.toml ``[tool.ruff]``, or a root ``ruff.toml``/``.ruff.toml``, which ruff
prefers; read only as a regular file, never through a symlink or FIFO), passed to ruff with
``--config``, so that no other configuration file applies; what it
switches off is listed in the report (``metrics.ruff_config``). LINT007 compiled code anywhere
an import can reach in the tree (an extension module, a sourceless or unchecked-hash ``.pyc``:
``gates.compiled``), which Python would run instead of the reviewed source. LINT008 a ``.py`` in scope that is not a
regular file (a symlink to a FIFO or a device): ruff is not run.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from gates._tools import (
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
from gates.base import Finding, Gate, GateError, Location, Outcome, Reads, RunContext
from gates.cache import SKIP_PARTS
from gates.compiled import find_compiled
from gates.sarif_log import docs_uri
from pipeline.fsio import read_regular

_TIMEOUT = 600
_VERSION = re.compile(r"ruff \d+\.\d+\.\d+\S*")
_PATHS_KEY = "[lint].paths"
_RULES_KEY = "pyproject.toml [tool.ruff]"
# Where ruff looks for its settings at the project root (https://docs.astral.sh/ruff/configuration/),
# in ruff's order of preference within one folder; a pyproject.toml counts only with [tool.ruff].
_RUFF_CONFIGS = (".ruff.toml", "ruff.toml", "pyproject.toml")
_CONFIG_KEY = "ruff configuration"
# What ruff lints besides its own configuration files.
_SOURCES = (".py", ".pyi", ".ipynb")
# Settings that switch rules or files off: listed in the report so that a change shows there.
_RELAXING = (
    "extend",
    "exclude",
    "extend-exclude",
    "lint.exclude",
    "format.exclude",
    "include",
    "respect-gitignore",
    "lint.select",
    "lint.extend-select",
    "lint.ignore",
    "lint.extend-ignore",
    "lint.per-file-ignores",
    "lint.extend-per-file-ignores",
    # ruff's older spelling of the lint settings, at the top level
    "select",
    "extend-select",
    "ignore",
    "extend-ignore",
    "per-file-ignores",
    "extend-per-file-ignores",
)
# Settings that drop files or settings without `ruff check --show-files` (LINT005) seeing it.
_UNSEEN = {
    "extend": "pulls settings from another file; keep the rule set in this one",
    "lint.exclude": "drops files from 'ruff check' only, unseen by --show-files; use extend-exclude",
    "format.exclude": "drops files from 'ruff format' only, unseen by --show-files; use extend-exclude",
}


@dataclass(frozen=True)
class RuffConfig:
    """The one ruff configuration the gate honours: its file (None: ruff's defaults) and table."""

    path: Path | None
    settings: dict[str, Any]

    def args(self) -> tuple[str, ...]:
        """``--config FILE``, or ``--isolated`` (no configuration file at all) without one."""
        return ("--config", str(self.path)) if self.path is not None else ("--isolated",)

    def get(self, dotted: str) -> Any:
        """A setting by dotted name (``lint.ignore``), or None."""
        node: Any = self.settings
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node


_MAX_CONFIG_BYTES = 1 << 20


def _ruff_table(path: Path) -> dict[str, Any] | None:
    """The ruff settings a file holds (None: a pyproject.toml without [tool.ruff])."""
    try:
        raw = read_regular(path, limit=_MAX_CONFIG_BYTES)
    except OSError as err:
        msg = f"{path}: {err.strerror or err}; ruff's configuration must be a regular file in the project"
        raise GateError(msg) from None
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        msg = f"{path}: cannot read it as TOML ({err}); ruff's configuration must parse"
        raise GateError(msg) from None
    except (RecursionError, ValueError) as err:  # nesting past the parser's limit; huge integers
        why = "nested too deep to parse" if isinstance(err, RecursionError) else str(err)
        msg = f"{path}: cannot read it as TOML ({why}); ruff's configuration must parse"
        raise GateError(msg) from None
    if path.name != "pyproject.toml":
        return document
    table = document.get("tool", {}).get("ruff") if isinstance(document.get("tool"), dict) else None
    return table if isinstance(table, dict) else None


def ruff_config(root: Path) -> RuffConfig:
    """The configuration ruff itself would pick at the project root, by its own precedence."""
    for name in _RUFF_CONFIGS:
        path = root / name
        if os.path.lexists(path):  # a symlink or FIFO by that name too: refused, not skipped
            table = _ruff_table(path)
            if table is not None:
                return RuffConfig(path, table)
    return RuffConfig(None, {})


def _nested_configs(root: Path, present: list[str], honoured: Path | None) -> list[Path]:
    """ruff configuration files below the root inside the lint paths (ruff would apply them)."""
    found = []
    for name in present:
        base = root / name
        if not base.is_dir():
            continue
        for folder, dirs, files in os.walk(base):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_PARTS)
            here = Path(folder)
            if here.resolve() == root.resolve():
                continue  # the root's own files: one of them is the configuration
            for file in sorted(set(files) & set(_RUFF_CONFIGS)):
                path = here / file
                if path == honoured:
                    continue
                try:
                    if _ruff_table(path) is None:
                        continue
                except GateError:
                    pass  # unreadable: still a configuration ruff would try to apply
                found.append(path)
    return found


def _config_findings(
    root: Path, config: RuffConfig, present: list[str], checked: set[str]
) -> list[Finding]:
    """LINT006 for settings of the root configuration that act unseen, and for a configuration
    below the root that would apply to a file ruff checks (``checked``: relative paths)."""
    findings = []
    shown = relative(config.path, root) if config.path is not None else ""
    for key, why in _UNSEEN.items():
        if config.get(key) is not None:
            findings.append(
                Finding(
                    rule="LINT006",
                    message=f"{shown}: '{key}' {why}",
                    location=Location(path=shown),
                    observed=f"{key} = {config.get(key)!r}",
                    threshold=f"no '{key}'",
                    policy_key=_CONFIG_KEY,
                )
            )
    for path in _nested_configs(root, present, config.path):
        where = relative(path, root)
        folder = relative(path.parent, root) + "/"
        if not any(f.startswith(folder) and f.endswith(_SOURCES) for f in checked):
            continue  # in a folder ruff does not lint (build/, .tox/, ...): it applies to nothing
        findings.append(
            Finding(
                rule="LINT006",
                message=f"{where}: a ruff configuration inside [lint].paths; the gate lints "
                f"with {shown or 'ruff defaults'} only, so its settings would apply in an editor "
                "but not here: move them there or remove the file",
                location=Location(path=where),
                observed="nested configuration",
                threshold=f"one configuration ({shown or 'none'})",
                policy_key=_CONFIG_KEY,
            )
        )
    return findings


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

    def reads(self, context: RunContext) -> Reads:
        """Every file under ``[lint].paths`` and ruff's configuration files; no data.

        Its outcome is reused only while every file ruff could read hashes the same, on the
        same ruff (the environment digest names every installed distribution), and while the
        compiled files an import could reach (LINT007, anywhere in the tree) are the same.
        """
        compiled = ";".join(f"{path}:{why}" for path, why in find_compiled(context.root))
        return Reads(
            data=False,
            files=(*context.policy.policy.lint.paths, *_RUFF_CONFIGS),
            external={"compiled": compiled},
        )

    def run(self, context: RunContext) -> Outcome:
        """Run both ruff commands, parse their JSON, add blanket-noqa findings."""
        root = context.root
        paths = list(context.policy.policy.lint.paths)
        findings = check_paths(root, paths, rule="LINT002", policy_key=_PATHS_KEY)
        findings += [
            Finding(
                rule="LINT007",
                message=f"{where}: {why}; no reviewer reads it: remove it and commit the source",
                location=Location(path=where),
                observed="compiled code",
                threshold="source only",
                policy_key=_PATHS_KEY,
            )
            for where, why in find_compiled(root)
        ]
        present = [p for p in paths if (root / p).exists()]
        if not present:
            return Outcome.judge(findings, passed="", failed="nothing to lint: {first}")
        irregular = irregular_sources(
            python_files(root, present), root, rule="LINT008", policy_key=_PATHS_KEY
        )
        if irregular:
            return Outcome.judge(findings + irregular, passed="", failed="ruff not run: {first}")
        config = ruff_config(root)
        common = (
            "--output-format",
            "json",
            "--no-cache",
            "--force-exclude",
            *config.args(),
            "--",
            *present,
        )
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
            *config.args(),
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
        findings += _config_findings(root, config, present, checked)
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
        if not _VERSION.fullmatch(version):
            msg = f"'ruff --version' printed {version[:200]!r}, not ruff's version line"
            raise GateError(msg)
        # ruff's own SARIF (rule descriptions, help links) for code scanning: same files, same
        # configuration; the decisions above come from its JSON.
        native = run_module(
            "ruff", "check", "--output-format", "sarif", *common[2:], cwd=root, timeout=_TIMEOUT
        )
        if native.returncode not in (0, 1):
            msg = f"ruff check --output-format sarif exited {native.returncode}: {native.tail()}"
            raise GateError(msg)
        write_sarif(
            context.reports_dir / "lint.sarif",
            findings,
            tool="ruff",
            version=version.removeprefix("ruff "),
            info_uri=docs_uri(root, "docs/supply-chain.md"),
            native=native.stdout,
            root=root,
            gate=self.name,
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
                "ruff_config": {
                    "file": relative(config.path, root) if config.path is not None else None,
                    **{k: config.get(k) for k in _RELAXING if config.get(k) is not None},
                },
            },
            artifacts=report_artifacts(
                context, "lint.sarif", "lint.ruff.json", "lint.ruff-format.json"
            ),
        )
