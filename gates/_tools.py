"""Shared plumbing of the supply-chain gates: run a tool, read its JSON, scan comments, write SARIF."""

from __future__ import annotations

import io
import json
import os
import re
import stat
import subprocess  # nosec B404 # runs the audited tools as argv lists, never a shell
import sys
import tokenize
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gates.base import Finding, GateError, Location, RunContext
from gates.cache import SKIP_PARTS
from pipeline.fsio import atomic_write_json, atomic_write_text

# Tool output shown in an ERRORED summary: enough to see the cause, short enough for a console.
_TAIL = 600

# The variables a tool is given (least privilege): where programs and home are, locale and time
# zone, the temporary folder, and how to reach an index or advisory service through a proxy with
# the site's certificates. Nothing else reaches ruff, bandit or pip-audit: not the release key
# (GATES_SIGNING_KEY), cloud or Vault credentials, nor a tool's own option variables (a
# PIP_AUDIT_* or RUFF_* value would change what the gate asked for behind its back).
TOOL_ENV_KEEP = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "LANG",
        "LANGUAGE",
        "LC_ALL",
        "LC_CTYPE",
        "TZ",
        "TMPDIR",
        "TEMP",
        "TMP",
        "SYSTEMROOT",  # Windows: sockets and randomness need it
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "ALL_PROXY",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "PIP_INDEX_URL",
        "PIP_CERT",
    }
)


def tool_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a tool runs with: ``environ`` (default ``os.environ``) cut to the
    allow-list above (proxy names in either case)."""
    source = os.environ if environ is None else environ
    return {name: value for name, value in source.items() if name.upper() in TOOL_ENV_KEEP}


@dataclass(frozen=True)
class ToolRun:
    """What one tool invocation returned."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def tail(self) -> str:
        """The end of stderr (or stdout), for an error message."""
        text = (self.stderr.strip() or self.stdout.strip())[-_TAIL:]
        return text or "(no output)"


def run_module(
    module: str,
    *args: str,
    cwd: Path,
    timeout: float,
    env: dict[str, str] | None = None,
) -> ToolRun:
    """Run ``python -I -m <module> ARGS`` with this interpreter; a missing tool is a GateError.

    ``sys.executable -m`` makes the tool come from the same environment as the gates (the
    hash-pinned one nox builds), never from whatever is first on ``PATH``. Isolated mode
    (``-I``) keeps the project's tree out of the tool's start: neither the working folder nor
    anything that ``PYTHONPATH`` names is on ``sys.path`` (so a ``bandit.py``, a ``ruff/``
    package or a ``sitecustomize.py`` there cannot stand in for the tool or run before it),
    every other ``PYTHON*`` variable is ignored (``PYTHONSTARTUP``, ``PYTHONHOME``, ...), and
    the user site folder with its ``.pth`` files and ``usercustomize`` is left out. What stays
    is the environment's own: the standard library and its site-packages. stdin is closed, and
    the tool sees only the variables of ``tool_environment`` (or ``env`` when given).
    """
    command = (sys.executable, "-I", "-m", module, *args)
    try:
        done = subprocess.run(  # nosec B603 # argv list: this interpreter -m a fixed tool
            command,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=tool_environment() if env is None else env,
        )
    except subprocess.TimeoutExpired:
        msg = f"{module} did not finish within {timeout:.0f} s"
        raise GateError(msg) from None
    except OSError as err:
        msg = f"cannot start {module}: {err}"
        raise GateError(msg) from None
    run = ToolRun(command, done.returncode, done.stdout, done.stderr)
    if run.returncode != 0 and f"No module named {module}" in run.stderr:
        msg = f"{module} is not installed in {sys.executable}'s environment ({run.tail()})"
        raise GateError(msg)
    return run


def parse_json(text: str, *, tool: str) -> Any:
    """Parse a tool's JSON output; empty or malformed output is a GateError (fail closed)."""
    if not text.strip():
        msg = f"{tool} produced no JSON output"
        raise GateError(msg)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        msg = f"{tool} produced malformed JSON ({err}): {text[:200]!r}"
        raise GateError(msg) from None


def check_paths(root: Path, paths: Sequence[str], *, rule: str, policy_key: str) -> list[Finding]:
    """A path the policy names that does not exist would silently narrow the scan: a finding."""
    return [
        Finding(
            rule=rule,
            message=f"{path}: named in policy but does not exist, so it was not scanned",
            location=Location(path=path),
            observed="missing",
            threshold="exists",
            policy_key=policy_key,
        )
        for path in paths
        if not (root / path).exists()
    ]


def python_files(root: Path, paths: Sequence[str], *, exclude: Sequence[str] = ()) -> list[Path]:
    """Every ``.py`` file under ``paths`` (relative to ``root``), sorted, minus excluded prefixes."""
    skip = SKIP_PARTS
    found: set[Path] = set()
    for name in paths:
        base = root / name
        if base.is_file() and base.suffix == ".py":
            found.add(base)
        elif base.is_dir():
            found.update(p for p in base.rglob("*.py") if not skip.intersection(p.parts))
    excluded = [(root / e).resolve() for e in exclude]
    return sorted(p for p in found if not any(p.resolve().is_relative_to(ex) for ex in excluded))


def irregular_sources(
    files: Sequence[Path], root: Path, *, rule: str, policy_key: str
) -> list[Finding]:
    """A finding for each ``.py`` name that does not lead to a regular file: a symlink to a
    FIFO or a device (``/dev/zero``), which a pull request can commit. ruff and bandit read it
    and wait (until their timeout), the in-process checks for ever: the gate names it instead,
    before any tool runs."""
    found = []
    for path in files:
        try:
            mode = os.stat(path).st_mode
        except OSError as err:
            why = f"cannot be read ({err.strerror})"
        else:
            if stat.S_ISREG(mode):
                continue
            why = f"not a regular file (mode {stat.filemode(mode)})"
        target = f", a symlink to {os.readlink(path)}" if os.path.islink(path) else ""
        where = Path(os.path.relpath(path, root)).as_posix()  # as named, not its target
        found.append(
            Finding(
                rule=rule,
                message=f"{where}: {why}{target}: a source must be a regular file; "
                "nothing was scanned",
                location=Location(path=where),
                observed=why,
                threshold="a regular file",
                policy_key=policy_key,
            )
        )
    return found


def report_artifacts(context: RunContext, *names: str) -> dict[str, str]:
    """``{path relative to the project: SHA-256}`` of the named files in the report folder.

    The shape every gate's ``artifacts`` takes, so the verdict, the cache and the history can
    re-hash them; a file the tool did not write is left out rather than named.
    """
    from pipeline.fsio import sha256_file  # noqa: PLC0415 - keeps this module import-light

    found = {}
    for name in names:
        path = context.reports_dir / name
        if path.is_file():
            found[relative(path, context.root)] = sha256_file(path)
    return found


def relative(path: str | Path, root: Path) -> str:
    """``path`` relative to ``root`` in POSIX form, or as given when it lies outside."""
    candidate = Path(path)
    try:
        return candidate.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return candidate.as_posix()


@dataclass(frozen=True)
class Suppression:
    """A suppression comment: which kind, where, and the codes it names (empty = blanket)."""

    kind: str
    path: Path
    line: int
    codes: tuple[str, ...]
    text: str


_NOSEC = re.compile(r"#\s*nosec\b(?P<rest>[^#]*)", re.IGNORECASE)
_NOQA = re.compile(r"#\s*(?P<file>(?:ruff|flake8)\s*:\s*)?noqa\b(?P<colon>\s*:)?(?P<rest>.*)", re.I)
_CODE = re.compile(r"\b[A-Z]+[0-9]+\b")


def suppressions(path: Path) -> Iterator[Suppression]:
    """The ``# nosec`` and ``# noqa`` comments of a Python file, found with the tokenizer.

    Tokenizing (not grepping) ignores the same text inside strings. A file that does not
    tokenize yields nothing here: the tools report it as unparsable themselves.
    """
    try:
        source = path.read_bytes()
        tokens = list(tokenize.tokenize(io.BytesIO(source).readline))
    except (OSError, SyntaxError, tokenize.TokenError, UnicodeDecodeError):
        return
    for token in tokens:
        if token.type != tokenize.COMMENT:
            continue
        comment = token.string
        nosec = _NOSEC.search(comment)
        if nosec:
            # bandit accepts ids (B602) and test names (subprocess_popen_with_shell_equals_true).
            codes = tuple(re.findall(r"\bB\d{3}\b|\b[a-z]+(?:_[a-z0-9]+)+\b", nosec["rest"]))
            yield Suppression("nosec", path, token.start[0], codes, comment.strip())
        noqa = _NOQA.search(comment)
        if noqa:
            codes = tuple(_CODE.findall(noqa["rest"])) if noqa["colon"] else ()
            kind = "file-noqa" if noqa["file"] else "noqa"
            yield Suppression(kind, path, token.start[0], codes, comment.strip())


def write_sarif(
    path: Path,
    findings: Sequence[Finding],
    *,
    tool: str,
    version: str,
    info_uri: str,
    native: str | None = None,
    root: Path | None = None,
    gate: str | None = None,
) -> None:
    """Write the findings that carry a file location as a SARIF 2.1.0 log (atomically).

    With ``native`` (the tool's own SARIF output, ``root`` the project), the tool's run comes
    first, holding the results behind these findings with the tool's rule descriptions and help
    links; the findings it has no result for (the gate's own rules) follow in a second run,
    named ``gates <gate>``. Without it, one run named ``tool`` holds them all.
    """
    from gates import sarif_log  # noqa: PLC0415 - keeps this module import-light

    located = [f for f in findings if f.location.path]
    runs = []
    own_name, own_version = tool, version
    if native is not None:
        adopted, located = sarif_log.adopt_run(
            native, tool=tool, root=root or Path.cwd(), findings=located
        )
        runs.append(adopted)
        own_name, own_version = f"gates {gate or tool}", ""
    runs.append(
        sarif_log.own_run(
            located, name=own_name, version=own_version or None, info_uri=info_uri, gate=gate
        )
    )
    atomic_write_json(path, sarif_log.log(runs))


def keep_raw(path: Path, text: str) -> None:
    """Keep a tool's original output beside the report, byte for byte as it printed it."""
    atomic_write_text(path, text)
