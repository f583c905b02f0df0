"""Planted attacks on the tools: something in the tree stands in for ruff, bandit or pip-audit.

Each form plants a stand-in that runs the real tool and then reports nothing found (ruff: no
diagnostic; bandit: no result; pip-audit: no vulnerability except the canary's), beside a real
planted finding: an unused import for lint, ``subprocess.call(cmd, shell=True)`` for sast, a
vulnerable pin for audit. Run the old way (``python -m TOOL`` from the project root, with the
caller's environment), every form turns that finding into PASSED. The gates must still fail:
they start each tool in isolated mode (``python -I -m``), which keeps the tree out of its start.

One real gate run per form and tool (18). A second group plants configuration files in the tree
that would switch a check off unseen; one lint run and one sast run hold all of those.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gates import audit as audit_module
from gates.audit import AuditGate
from gates.base import Gate, RunContext, Severity, Status
from gates.lint import LintGate
from gates.sast import SastGate

pytestmark = pytest.mark.slow  # every case runs a real tool

OSV = Path(__file__).resolve().parents[1] / "assets" / "osv"
HASH = "--hash=sha256:" + "0" * 64
SHELL = (
    '"""Runs a command."""\n\nimport subprocess\n\n\ndef go(cmd):\n'
    '    """Go."""\n    return subprocess.call(cmd, shell=True)\n'
)
UNUSED_IMPORT = '"""Doc."""\n\nimport os\n'
TOOLS = {"lint": "ruff", "sast": "bandit", "audit": "pip_audit"}

# The stand-in: runs the real tool (in a clean interpreter that does not see the tree), then
# drops what it found. ROOT is the project; a start-up hook passes itself by with SHADOW_INNER.
STAND_IN = """
import json, os, subprocess, sys

ROOT = {root!r}
TOOLS = ("ruff", "bandit", "pip_audit")
INNER = (
    "import os, runpy, sys\\n"
    "sys.path[:] = [p for p in sys.path if not os.path.realpath(p or '.').startswith(%r)]\\n"
    "sys.argv = sys.argv[1:]\\n"
    "runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)\\n" % ROOT
)


def stand_in(tool, args):
    env = dict(os.environ, SHADOW_INNER="1")
    done = subprocess.run(
        [sys.executable, "-I", "-c", INNER, tool, *args], env=env, capture_output=True, text=True
    )
    sys.stderr.write(done.stderr)
    out, code = done.stdout, done.returncode
    if tool == "bandit":
        report = json.loads(out)  # SARIF: every run without results
        for run in report["runs"]:
            run["results"] = []
        out, code = json.dumps(report), 0
    elif tool == "ruff" and "--output-format" in args:
        out, code = "[]", 0
    elif tool == "pip_audit":
        path = args[args.index("--output") + 1]
        with open(path) as handle:
            report = json.load(handle)
        for dependency in report["dependencies"]:
            if dependency["name"] != "joblib":  # the canary must still be seen
                dependency["vulns"] = []
        with open(path, "w") as handle:
            json.dump(report, handle)
        code = 1 if any(d.get("vulns") for d in report["dependencies"]) else 0
    sys.stdout.write(out)
    sys.stdout.flush()
    return code
"""
# As a module or package run by `python -m TOOL`.
AS_MAIN = (
    STAND_IN + '\nif __name__ == "__main__":\n    sys.exit(stand_in({tool!r}, sys.argv[1:]))\n'
)
# As a start-up hook: takes over whichever process is about to run one of the tools.
AS_HOOK = (
    STAND_IN
    + """
if not os.environ.get("SHADOW_INNER"):
    argv = list(sys.orig_argv)
    for at, word in enumerate(argv[1:], start=1):
        if word in TOOLS:
            sys.stdout.flush()
            os._exit(stand_in(word, argv[at + 1 :]))
"""
)


def _site(userbase: Path) -> Path:
    """The user site folder Python derives from PYTHONUSERBASE (posix_user scheme)."""
    return Path(sysconfig.get_path("purelib", "posix_user", vars={"userbase": str(userbase)}))


def _venv(where: Path, *, system_site: bool, pth: dict[str, list[Path]]) -> Path:
    """A real virtual environment whose site folder holds the given ``.pth`` files."""
    args = [sys.executable, "-m", "venv", "--without-pip", str(where)]
    if system_site:
        args.insert(4, "--system-site-packages")
    subprocess.run(args, check=True, capture_output=True)
    python = where / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    for name, folders in pth.items():
        Path(site, name).write_text("".join(f"{f}\n" for f in folders), encoding="utf-8")
    return python


# The folder the gates' own environment installs the tools in.
TOOLS_SITE = Path(sysconfig.get_path("purelib"))


class Planted:
    """Where a form put its stand-in, and what the gate's process must see to meet it."""

    def __init__(self, root: Path, tool: str, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root, self.tool, self.patch = root, tool, monkeypatch
        self.file: Path | None = None

    def write(self, path: Path, text: str) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            text.format(root=str(self.root.resolve()), tool=self.tool), encoding="utf-8"
        )
        self.file = path
        return path


def module_file(p: Planted) -> None:
    """``TOOL.py`` at the project root: first on sys.path for ``python -m`` run there."""
    p.write(p.root / f"{p.tool}.py", AS_MAIN)


def package_folder(p: Planted) -> None:
    """A ``TOOL/`` package with ``__main__.py`` at the project root."""
    p.write(p.root / p.tool / "__init__.py", "")
    p.write(p.root / p.tool / "__main__.py", AS_MAIN)


def on_pythonpath(p: Planted) -> None:
    """``TOOL.py`` in a folder of the tree that PYTHONPATH names (CI often sets ``.`` or ``src``)."""
    p.write(p.root / "vendor" / f"{p.tool}.py", AS_MAIN)
    p.patch.setenv("PYTHONPATH", str(p.root / "vendor"))


def sitecustomize_on_pythonpath(p: Planted) -> None:
    """``sitecustomize.py`` on PYTHONPATH: imported by every interpreter at start."""
    p.write(p.root / "vendor" / "sitecustomize.py", AS_HOOK)
    p.patch.setenv("PYTHONPATH", str(p.root / "vendor"))


def _user_site_python(p: Planted) -> None:
    # An interpreter whose user site is on (a system-site environment: user sites are off in
    # plain venvs), with its user base inside the tree, as when CI's HOME is the workspace.
    python = _venv(
        p.root.parent / "usersite-venv", system_site=True, pth={"tools.pth": [TOOLS_SITE]}
    )
    p.patch.setattr(sys, "executable", str(python))
    p.patch.setenv("PYTHONUSERBASE", str(p.root / ".userbase"))


def usercustomize(p: Planted) -> None:
    """``usercustomize.py`` in a user site folder inside the tree."""
    _user_site_python(p)
    p.write(_site(p.root / ".userbase") / "usercustomize.py", AS_HOOK)


def user_site_pth(p: Planted) -> None:
    """A ``.pth`` file with an ``import`` line in a user site folder inside the tree."""
    _user_site_python(p)
    site = _site(p.root / ".userbase")
    p.write(site / "shadow_hook.py", AS_HOOK)
    p.write(site / "zz-shadow.pth", "import shadow_hook\n")


# Every form: the gate runs the real tool and FAILS on the planted finding.
FORMS = [
    module_file,
    package_folder,
    on_pythonpath,
    sitecustomize_on_pythonpath,
    usercustomize,
    user_site_pth,
]


def _plant_finding(project: Any, gate: str, monkeypatch: pytest.MonkeyPatch) -> Gate:
    src = project.root / "src"
    src.mkdir()
    if gate == "lint":
        (src / "app.py").write_text(UNUSED_IMPORT, encoding="utf-8")
        project.edit_policy(**{"lint.paths": ["src"]})
        return LintGate()
    if gate == "sast":
        (src / "app.py").write_text(SHELL, encoding="utf-8")
        project.edit_policy(**{"sast.paths": ["src"]})
        return SastGate()
    monkeypatch.delenv(audit_module.ADVISORY_DB_ENV, raising=False)
    shutil.copytree(OSV, project.root.parent / "osv", dirs_exist_ok=True)
    project.edit_policy(**{"audit.advisory_db": "../osv", "audit.require_advisory_db": True})
    (project.root / "requirements.lock").write_text(
        f"urllib3==2.0.7 \\\n    {HASH}\nrequests==2.19.0 \\\n    {HASH}\n", encoding="utf-8"
    )
    return AuditGate()


# The finding each gate must still report: (rule, file, line).
EXPECTED = {
    "lint": ("F401", "src/app.py", 3),
    "sast": ("B602", "src/app.py", 8),
    "audit": ("AUD001", "requirements.lock", 3),
}


def _cases(forms: list[Callable[[Planted], None]]) -> list[Any]:
    return [
        pytest.param(form, gate, id=f"{form.__name__.replace('_', '-')}-{gate}")
        for form in forms
        for gate in TOOLS
    ]


@pytest.fixture
def run_gate(project: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    def run(form: Callable[[Planted], None], gate_name: str) -> tuple[Any, Planted]:
        gate = _plant_finding(project, gate_name, monkeypatch)
        planted = Planted(project.root, TOOLS[gate_name], monkeypatch)
        form(planted)
        context = RunContext(
            policy=project.load(), run_id="t", reports_dir=project.root / "reports"
        )
        return gate.run(context), planted

    return run


@pytest.mark.parametrize(("form", "gate"), _cases(FORMS))
def test_a_stand_in_in_the_tree_does_not_replace_the_tool(
    run_gate: Callable[..., Any], form: Callable[[Planted], None], gate: str
) -> None:
    outcome, _ = run_gate(form, gate)
    rule, path, line = EXPECTED[gate]
    assert outcome.status is Status.FAILED, outcome.summary
    found = [
        f
        for f in outcome.findings
        if f.rule == rule and (f.location.path, f.location.line) == (path, line)
    ]
    assert found, [f.message for f in outcome.findings]
    assert f"{path}:{line}: " in found[0].message


# Configuration files in the tree that would switch a check off without it showing.
LINT_CONFIGS = {
    # A nested ruff.toml switching every rule off for its folder.
    "src/a/ruff.toml": '[lint]\nignore = ["ALL"]\n',
    "src/a/mod.py": UNUSED_IMPORT,
    # A nested pyproject.toml with [tool.ruff] selecting nothing.
    "src/b/pyproject.toml": "[tool.ruff.lint]\nselect = []\n",
    "src/b/mod.py": UNUSED_IMPORT,
    # A nested .ruff.toml ignoring the rule per file.
    "src/c/.ruff.toml": '[lint.per-file-ignores]\n"*" = ["F401"]\n',
    "src/c/mod.py": UNUSED_IMPORT,
    "src/d/mod.py": UNUSED_IMPORT,  # dropped by lint.exclude in the root configuration
    "src/e/mod.py": '"""Doc."""\n\nVALUE   =  1\n',  # dropped by format.exclude
    "src/f/base.toml": '[lint]\nignore = ["E711"]\n',  # pulled in by extend
    # In a folder ruff does not lint (its default excludes): applies to nothing, not flagged.
    "src/build/ruff.toml": '[lint]\nignore = ["ALL"]\n',
}
# The root configuration (a root ruff.toml wins over pyproject.toml there, as in ruff).
ROOT_RUFF = """extend = "src/f/base.toml"
line-length = 100

[lint]
select = ["E", "F"]
ignore = ["E501"]
exclude = ["src/d/*"]

[lint.per-file-ignores]
"tests/**" = ["S101"]

[format]
exclude = ["src/e/*"]
"""
LINT_CASES = [
    ("nested-ruff-toml", "LINT006", "src/a/ruff.toml", None),
    ("nested-ruff-toml-rules-still-apply", "F401", "src/a/mod.py", 3),
    ("nested-pyproject", "LINT006", "src/b/pyproject.toml", None),
    ("nested-pyproject-rules-still-apply", "F401", "src/b/mod.py", 3),
    ("nested-dot-ruff-toml", "LINT006", "src/c/.ruff.toml", None),
    ("nested-dot-ruff-toml-rules-still-apply", "F401", "src/c/mod.py", 3),
    ("lint-exclude", "LINT006", "ruff.toml", "lint.exclude"),
    ("format-exclude", "LINT006", "ruff.toml", "format.exclude"),
    ("extend", "LINT006", "ruff.toml", "extend"),
]
SAST_CASES = [
    # bandit reads a .bandit file in its targets; the gate hands it an empty one instead.
    ("dot-bandit-skips", "B602", "src/h/mod.py", 8),
    ("dot-bandit-reported", "SAST004", "src/h/.bandit", None),
    # bandit takes a nosec naming an unknown test, or "nosec" glued to a word, as blanket.
    ("nosec-unknown-test-id", "B602", "src/i/mod.py", 8),
    ("nosec-glued-to-a-word", "B602", "src/j/mod.py", 8),
]


@pytest.fixture(scope="module")
def config_outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One lint run and one sast run over a tree holding every planted configuration."""
    from tests.conftest import Project
    from tests.project_support import copy_project

    project = Project(copy_project(tmp_path_factory.mktemp("configs") / "project"))
    root = project.root
    for name, text in LINT_CONFIGS.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    (root / "ruff.toml").write_text(ROOT_RUFF, encoding="utf-8")
    sast = {
        "src/h/.bandit": "[bandit]\nskips = B602,B404\n",
        "src/h/mod.py": SHELL,
        "src/i/mod.py": SHELL.replace("shell=True)", "shell=True)  # nosec B999"),
        "src/j/mod.py": SHELL.replace("shell=True)", "shell=True)  # nosecurity-reviewed"),
    }
    for name, text in sast.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    project.edit_policy(**{"lint.paths": ["src"], "sast.paths": ["src/h", "src/i", "src/j"]})
    context = RunContext(policy=project.load(), run_id="t", reports_dir=root / "reports")
    return {"lint": LintGate().run(context), "sast": SastGate().run(context)}


def _error_at(outcome: Any, rule: str, path: str, line: int | None) -> list[Any]:
    return [
        f
        for f in outcome.findings
        if f.rule == rule
        and f.severity is Severity.ERROR
        and f.location.path == path
        and (line is None or f.location.line == line)
    ]


@pytest.mark.parametrize(
    ("rule", "path", "where"), [pytest.param(*case[1:], id=case[0]) for case in LINT_CASES]
)
def test_a_ruff_configuration_in_the_tree_cannot_switch_a_check_off_unseen(
    config_outcomes: dict[str, Any], rule: str, path: str, where: int | str | None
) -> None:
    outcome = config_outcomes["lint"]
    assert outcome.status is Status.FAILED
    found = _error_at(outcome, rule, path, where if isinstance(where, int) else None)
    if isinstance(where, str):
        found = [f for f in found if f"'{where}'" in f.message]
    assert found, [(f.rule, f.location.path, f.message) for f in outcome.findings]
    assert found[0].message.startswith(f"{path}:" if isinstance(where, int) else f"{path}: ")


@pytest.mark.parametrize(
    ("rule", "path", "line"), [pytest.param(*case[1:], id=case[0]) for case in SAST_CASES]
)
def test_a_bandit_setting_in_the_tree_cannot_hide_a_finding(
    config_outcomes: dict[str, Any], rule: str, path: str, line: int | None
) -> None:
    outcome = config_outcomes["sast"]
    assert outcome.status is Status.FAILED
    found = _error_at(outcome, rule, path, line)
    assert found, [(f.rule, f.location.path, f.location.line) for f in outcome.findings]
    assert found[0].message.startswith(f"{path}:{line}: " if line else f"{path}: ")


def test_a_ruff_configuration_where_ruff_lints_nothing_is_not_flagged(
    config_outcomes: dict[str, Any],
) -> None:
    flagged = {f.location.path for f in config_outcomes["lint"].findings if f.rule == "LINT006"}
    assert "src/build/ruff.toml" not in flagged
    assert "src/a/ruff.toml" in flagged


def test_the_lint_report_lists_what_the_configuration_switches_off(
    config_outcomes: dict[str, Any],
) -> None:
    config = config_outcomes["lint"].metrics["ruff_config"]
    assert config["file"] == "ruff.toml"
    assert config["lint.ignore"] == ["E501"]
    assert config["lint.per-file-ignores"] == {"tests/**": ["S101"]}
    assert config["extend"] == "src/f/base.toml"
