"""The sast gate: real bandit and the unsafe-load check over planted files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from gates.base import GateError, RunContext, Severity, Status
from gates.sast import SastGate
from tests.conftest import REPO

CLEAN = '"""A clean module."""\n\nVALUE = 1\n'
SHELL = '"""Runs a command."""\n\nimport subprocess\n\n\ndef go(cmd):\n    """Go."""\n    return subprocess.call(cmd, shell=True)\n'


def _write(project: Any, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = project.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _gate(project: Any, files: dict[str, str], **policy: Any) -> Any:
    _write(project, files)
    project.edit_policy(**{"sast.paths": ["src"], **{f"sast.{k}": v for k, v in policy.items()}})
    context = RunContext(policy=project.load(), run_id="t", reports_dir=project.root / "reports")
    return SastGate().run(context)


def _errors(outcome: Any) -> list[str]:
    return [f.rule for f in outcome.findings if f.severity is Severity.ERROR]


def test_clean_code_passes_and_keeps_bandit_output(project: Any) -> None:
    outcome = _gate(project, {"src/app.py": CLEAN})
    assert outcome.status is Status.PASSED, outcome.summary
    raw = json.loads((project.root / "reports" / "sast.bandit.sarif.json").read_text())
    assert raw["runs"][0]["results"] == []
    assert "toolConfigurationNotifications" not in raw["runs"][0]["invocations"][0]
    assert set(raw["runs"][0]["properties"]["metrics"]) == {"_totals", "src/app.py"}
    assert outcome.metrics["lines_of_code"] == 2
    assert set(outcome.artifacts) == {"reports/sast.sarif", "reports/sast.bandit.sarif.json"}
    # feedback merges every reports/*.sarif: bandit's raw log, with the results the gate
    # suppressed, must not be one of them.
    assert [p.name for p in (project.root / "reports").glob("*.sarif")] == ["sast.sarif"]
    sarif = json.loads((project.root / "reports" / "sast.sarif").read_text())
    assert sarif["runs"][0]["results"] == []


def test_shell_true_fails(project: Any) -> None:
    outcome = _gate(project, {"src/app.py": SHELL})
    assert outcome.status is Status.FAILED
    finding = next(f for f in outcome.findings if f.rule == "B602")
    assert finding.location.path == "src/app.py"
    assert finding.location.line == 8
    assert finding.policy_key == "[sast].severity / [sast].confidence"
    sarif = json.loads((project.root / "reports" / "sast.sarif").read_text())
    assert "B602" in {r["ruleId"] for r in sarif["runs"][0]["results"]}
    # bandit's own SARIF run (issue 17): rule names, help links and CWE tags, relative paths.
    driver = sarif["runs"][0]["tool"]["driver"]
    assert driver["name"] == "Bandit"
    rule = next(r for r in driver["rules"] if r["id"] == "B602")
    assert rule["name"] == "subprocess_popen_with_shell_equals_true"
    assert rule["helpUri"].startswith("https://bandit.readthedocs.io/")
    result = next(r for r in sarif["runs"][0]["results"] if r["ruleId"] == "B602")
    physical = result["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"]["uri"] == "src/app.py"
    assert physical["region"]["startLine"] == 8
    assert result["level"] == "error"  # the gate's threshold decides, not bandit's default
    assert "ruleIndex" not in result  # the rules were cut down to those used


def test_a_file_bandit_cannot_parse_does_not_pass(project: Any) -> None:
    outcome = _gate(project, {"src/app.py": CLEAN, "src/broken.py": "def f(:\n"})
    assert outcome.status is Status.FAILED
    assert set(_errors(outcome)) == {"SAST001", "SAST100"}
    assert all(f.location.path == "src/broken.py" for f in outcome.findings)


def test_a_bandit_test_that_crashes_does_not_pass(project: Any) -> None:
    # bandit's B202 reads members=f(tar) as f's name (members.func.id): a method call there
    # raises inside the plugin, bandit logs "internal error", reports nothing for the line
    # and exits 0: an extractall() with no filter PASSED.
    code = (
        '"""Doc."""\n\nimport tarfile\n\n\ndef unpack(path, dest, picker):\n'
        '    """Unpack."""\n    with tarfile.open(path) as tar:\n'
        "        tar.extractall(dest, members=picker.pick(tar))\n"
    )
    outcome = _gate(project, {"src/app.py": code})
    assert outcome.status is Status.FAILED
    crash = [f for f in outcome.findings if f.rule == "SAST008"]
    assert [(f.location.path, f.location.line) for f in crash] == [("src/app.py", 9)]
    assert "tarfile_unsafe_members" in crash[0].message
    # Written so that bandit can read it, the line is bandit's B202 (LOW: a function's members).
    _write(project, {"src/app.py": code.replace("picker.pick(tar)", "pick(tar)")})
    outcome = _gate(project, {})
    assert "SAST008" not in _errors(outcome)
    assert "B202" in {f.rule for f in outcome.findings}


def test_findings_below_the_thresholds_are_notes(project: Any) -> None:
    # B101 (assert) is LOW severity: a note at "medium", an error at "low".
    code = '"""Doc."""\n\n\ndef check(x):\n    """Check."""\n    assert x\n'
    outcome = _gate(project, {"src/app.py": code}, severity="medium")
    assert outcome.status is Status.PASSED, outcome.summary
    assert [(f.rule, f.severity) for f in outcome.findings] == [("B101", Severity.NOTE)]
    outcome = _gate(project, {}, severity="low")
    assert _errors(outcome) == ["B101"]


def test_baseline_hides_known_findings_and_lists_them(project: Any) -> None:
    _write(project, {"src/app.py": SHELL})
    baseline = project.root / "bandit-baseline.json"
    subprocess.run(
        [sys.executable, "-m", "bandit", "-r", "src", "-f", "json", "-q", "-o", str(baseline)],
        cwd=project.root,
        check=False,
    )
    outcome = _gate(project, {}, baseline="bandit-baseline.json")
    assert outcome.status is Status.PASSED, outcome.summary
    hidden = outcome.metrics["hidden_by_baseline"]
    assert {h["test_id"] for h in hidden} == {"B404", "B602"}
    assert {f.rule for f in outcome.findings} == {"SAST012"}
    # A second, new shell call is not in the baseline.
    _write(project, {"src/more.py": SHELL})
    outcome = _gate(project, {}, baseline="bandit-baseline.json")
    assert set(_errors(outcome)) == {"B404", "B602"}


def test_malformed_baseline_is_an_error(project: Any) -> None:
    (project.root / "bl.json").write_text("{}", encoding="utf-8")
    with pytest.raises(GateError, match="baseline is malformed"):
        _gate(project, {"src/app.py": CLEAN}, baseline="bl.json")


def test_bare_nosec_is_a_finding_but_a_named_one_is_a_note(project: Any) -> None:
    bare = SHELL.replace("shell=True)", "shell=True)  # nosec")
    outcome = _gate(project, {"src/app.py": bare.replace("import subprocess", "import os")})
    assert "SAST010" in _errors(outcome)
    named = SHELL.replace("shell=True)", "shell=True)  # nosec B602 # cmd is a constant")
    named = named.replace("import subprocess\n", "import subprocess  # nosec B404\n")
    outcome = _gate(project, {"src/app.py": named})
    assert outcome.status is Status.PASSED, outcome.summary
    assert {f.rule for f in outcome.findings} == {"SAST011"}


def test_joblib_load_outside_the_loader_fails(project: Any) -> None:
    code = '"""Doc."""\n\nimport joblib as jl\n\nMODEL = jl.load("model.joblib")\n'
    outcome = _gate(project, {"src/app.py": code, "src/loader.py": code})
    assert outcome.status is Status.FAILED
    unsafe = [f for f in outcome.findings if f.rule == "SAST101"]
    assert [(f.location.path, f.location.line) for f in unsafe] == [
        ("src/app.py", 5),
        ("src/loader.py", 5),
    ]
    outcome = _gate(project, {}, loaders=["src/loader.py"])
    assert [f.location.path for f in outcome.findings if f.rule == "SAST101"] == ["src/app.py"]


def test_bandit_config_inside_the_scope_fails(project: Any) -> None:
    outcome = _gate(project, {"src/app.py": CLEAN, "src/.bandit": "[bandit]\nskips = B602\n"})
    assert _errors(outcome) == ["SAST004"]


def test_nothing_to_scan_does_not_pass(project: Any) -> None:
    (project.root / "src").mkdir()
    outcome = _gate(project, {})
    assert outcome.status is Status.FAILED
    assert _errors(outcome) == ["SAST003"]


def test_missing_bandit_is_an_error(
    project: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    monkeypatch.setattr(sys, "executable", str(venv / "bin" / "python"))
    with pytest.raises(GateError, match="bandit is not installed"):
        _gate(project, {"src/app.py": CLEAN})


@pytest.mark.slow  # real bandit over the whole project
def test_the_project_itself_is_clean(project: Any) -> None:
    # The committed policy's scope and thresholds over the repository's own code.
    repo = Path(__file__).resolve().parents[2]
    context = RunContext(
        policy=_repo_policy(repo), run_id="t", reports_dir=project.root / "reports"
    )
    outcome = SastGate().run(context)
    assert outcome.status is Status.PASSED, outcome.summary


def _repo_policy(repo: Path) -> Any:
    from pipeline.config import load_policy

    return load_policy(repo / "policy.toml")


def test_excluded_paths_are_skipped_by_both_checks(project: Any) -> None:
    unsafe = SHELL + "\nimport pickle\n\nDATA = pickle.loads(b'')\n"
    outcome = _gate(project, {"src/app.py": CLEAN, "src/gen/tool.py": unsafe}, exclude=["src/gen"])
    assert outcome.status is Status.PASSED, outcome.summary
    assert outcome.metrics["files"] == 1


def test_a_file_bandit_silently_skips_does_not_pass(project: Any) -> None:
    # bandit skips .tox folders by default; code there would ship unchecked.
    outcome = _gate(project, {"src/app.py": CLEAN, "src/.tox/hidden.py": CLEAN})
    assert _errors(outcome) == ["SAST005"]
    assert outcome.findings[0].location.path == "src/.tox/hidden.py"


# bandit's SARIF names files by URI (src/sub%20dir/na%C3%AFve.py); the gate maps them back.
SPACED = "src/sub dir/naïve shell.py"
QUIET = "src/déjà vu/two lines.py"
BROKEN = "src/more/sp ace/brøken.py"
# B602's statement spans lines 6-8: a nosec naming it on line 7 hides it (bandit's region).
TWO_LINES = (
    '"""Doc."""\n\nimport subprocess  # nosec B404\n\n\ndef go(cmd):\n'
    "    return subprocess.call(\n        cmd, shell=True  # nosec B602\n    )\n"
)
NAMED_FILES = {SPACED: SHELL, QUIET: TWO_LINES, BROKEN: "def f(:\n"}


def test_paths_with_spaces_and_non_ascii_in_subfolders_map_back(project: Any) -> None:
    outcome = _gate(project, NAMED_FILES)
    errors = [
        (f.rule, f.location.path, f.location.line)
        for f in outcome.findings
        if f.severity is Severity.ERROR
    ]
    assert sorted(errors, key=str) == [
        ("B404", SPACED, 3),
        ("B602", SPACED, 8),
        ("SAST001", BROKEN, None),
        ("SAST100", BROKEN, 1),
    ], outcome.findings
    shell = next(f for f in outcome.findings if f.rule == "B602")
    assert shell.message.startswith(f"{SPACED}:8: ")
    silenced = outcome.metrics["suppressed_by_nosec"]
    assert {(s["path"], s["test_id"]) for s in silenced} == {(QUIET, "B404"), (QUIET, "B602")}
    # bandit's own run in sast.sarif holds the result, under the relative path as a URI
    # reference (percent-encoded: a space is no URI character; red team 13).
    sarif = json.loads((project.root / "reports" / "sast.sarif").read_text())
    native = sarif["runs"][0]
    assert native["tool"]["driver"]["name"] == "Bandit"
    uris = {
        r["ruleId"]: r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for r in native["results"]
    }
    assert uris == {"B404": quote(SPACED), "B602": quote(SPACED)}


def _bandit_raw(root: Path, output: str) -> Any:
    args = ["-r", "-f", output, "-q", "--ignore-nosec", "--severity-level", "all"]
    done = subprocess.run(
        [sys.executable, "-m", "bandit", *args, "--confidence-level", "all", "src"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def bandit_both(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    """bandit's SARIF and JSON over the same planted tree."""
    root = tmp_path_factory.mktemp("both")
    for name, text in {**NAMED_FILES, "src/app.py": SHELL}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return _bandit_raw(root, "sarif"), _bandit_raw(root, "json")


def test_bandit_sarif_reads_as_bandit_json_does(bandit_both: tuple[Any, Any]) -> None:
    from gates.sast import _from_sarif

    sarif, raw = bandit_both
    data = _from_sarif(sarif)
    read = ("filename", "test_id", "test_name", "issue_text", "issue_severity", "issue_confidence")
    # Single-line statements only: there bandit's SARIF region is the JSON's line range.
    assert all(len(r["line_range"]) == 1 for r in raw["results"] if r["filename"] != QUIET)
    assert [{k: r[k] for k in read} for r in data["results"]] == [
        {k: r[k] for k in read} for r in raw["results"]
    ]
    single = [r for r in raw["results"] if r["filename"] != QUIET]
    assert [
        (r["line_number"], r["line_range"]) for r in data["results"] if r["filename"] != QUIET
    ] == [(r["line_number"], r["line_range"]) for r in single]
    assert (
        data["errors"]
        == raw["errors"]
        == [{"filename": BROKEN, "reason": "syntax error while parsing AST from file"}]
    )
    assert data["metrics"] == raw["metrics"]


def _drop(path: str) -> Any:
    def edit(doc: Any) -> None:
        *parents, last = path.split(".")
        for part in parents:
            doc = doc[int(part)] if part.isdigit() else doc[part]
        del doc[int(last) if last.isdigit() else last]

    return edit


def _set(path: str, value: Any) -> Any:
    def edit(doc: Any) -> None:
        *parents, last = path.split(".")
        for part in parents:
            doc = doc[int(part)] if part.isdigit() else doc[part]
        doc[int(last) if last.isdigit() else last] = value

    return edit


NOTE = "runs.0.invocations.0.toolConfigurationNotifications.0"
RESULT = "runs.0.results.0"
BROKEN_SARIF = {
    "no-metrics": _drop("runs.0.properties.metrics"),
    "no-totals": _drop("runs.0.properties.metrics._totals"),
    "metrics-not-a-dict": _set("runs.0.properties.metrics", []),
    "two-runs": lambda doc: doc["runs"].append(doc["runs"][0]),
    "no-invocation": _set("runs.0.invocations", []),
    "not-successful": _set("runs.0.invocations.0.executionSuccessful", False),
    "notifications-not-a-list": _set(NOTE[:-2], {}),
    "notification-without-location": _drop(f"{NOTE}.locations"),
    "notification-without-text": _drop(f"{NOTE}.message.text"),
    "no-results": _drop("runs.0.results"),
    "result-without-rule": _set("runs.0.tool.driver.rules", []),
    "driver-not-an-object": _set("runs.0.tool.driver", []),
    "result-without-rule-id": _drop(f"{RESULT}.ruleId"),
    "result-without-region": _drop(f"{RESULT}.locations.0.physicalLocation.region"),
    "result-line-not-a-number": _set(
        f"{RESULT}.locations.0.physicalLocation.region.startLine", "8"
    ),
    "result-without-severity": _drop(f"{RESULT}.properties.issue_severity"),
    "result-without-confidence": _drop(f"{RESULT}.properties.issue_confidence"),
    "result-without-text": _drop(f"{RESULT}.message"),
    "result-uri-elsewhere": _set(
        f"{RESULT}.locations.0.physicalLocation.artifactLocation.uri", "https://example.org/a.py"
    ),
    "result-uri-undecodable": _set(
        f"{RESULT}.locations.0.physicalLocation.artifactLocation.uri", "src/%FF.py"
    ),
}


@pytest.mark.parametrize("edit", BROKEN_SARIF.values(), ids=list(BROKEN_SARIF))
def test_bandit_sarif_lacking_what_the_gate_reads_is_an_error(
    bandit_both: tuple[Any, Any], edit: Any
) -> None:
    from gates.sast import _from_sarif

    doc = json.loads(json.dumps(bandit_both[0]))
    edit(doc)
    with pytest.raises(GateError, match="bandit's SARIF lacks what the gate reads"):
        _from_sarif(doc)


# Code an import reaches that neither bandit nor the unsafe-load check read (red team): a module
# in a __pycache__ folder (`from src.__pycache__.util import load` imports it; both scanners
# skipped the folder), and a package folder that is a symlink (`src/ext -> ../elsewhere`;
# neither walk follows it, Python's import does).
UNSAFE = '"""Doc."""\n\nimport joblib\n\n\ndef load(path):\n    """Load."""\n    return joblib.load(path)\n'


def test_a_module_in_a_pycache_folder_does_not_pass_unseen(project: Any) -> None:
    outcome = _gate(project, {"src/app.py": CLEAN, "src/__pycache__/util.py": UNSAFE})
    assert outcome.status is Status.FAILED
    assert [
        (f.rule, f.location.path) for f in outcome.findings if f.severity is Severity.ERROR
    ] == [("SAST006", "src/__pycache__/util.py")]


def test_a_symlinked_package_folder_does_not_pass_unseen(project: Any) -> None:
    _write(project, {"elsewhere/util.py": UNSAFE})
    (project.root / "src").mkdir()
    (project.root / "src" / "ext").symlink_to("../elsewhere", target_is_directory=True)
    outcome = _gate(project, {"src/app.py": CLEAN})
    assert outcome.status is Status.FAILED
    assert [
        (f.rule, f.location.path) for f in outcome.findings if f.severity is Severity.ERROR
    ] == [("SAST006", "src/ext")]


def test_a_coding_cookie_cannot_hide_code_from_the_unsafe_load_check(project: Any) -> None:
    # Read as UTF-8 the last lines are one comment; Python decodes the file as UTF-7 (its
    # cookie), where +AAo- is a newline: it imports joblib and returns joblib.load(path).
    utf7 = (
        "# -*- coding: utf-7 -*-\n"
        '"""Doc."""\n\n\n'
        "def load(path):\n"
        '    """Load."""\n'
        "    # +AAo-    import joblib+AAo-    return joblib.load(path)\n"
        "    return None\n"
    )
    outcome = _gate(project, {"src/app.py": utf7})
    assert outcome.status is Status.FAILED
    # Line 9 of the code as Python decodes it (the comment holds two more lines).
    assert [(f.rule, f.location.path, f.location.line) for f in outcome.findings] == [
        ("SAST101", "src/app.py", 9)
    ]


def test_an_import_of_project_code_outside_the_scan_does_not_pass(project: Any) -> None:
    # `from tests.helpers import load` runs tests/helpers.py (joblib.load) in whatever imports
    # src/app.py, and no scan read it; so did `from build.knob import FACTOR` (red team).
    importer = '"""Doc."""\n\nfrom tests.planted_helpers import load\n\nMODEL = load("m.joblib")\n'
    outcome = _gate(project, {"src/app.py": importer, "tests/planted_helpers.py": UNSAFE})
    assert outcome.status is Status.FAILED
    assert [(f.rule, f.location.path, f.location.line) for f in outcome.findings] == [
        ("SAST102", "src/app.py", 3)
    ]


def test_the_gate_loads_without_the_unsafe_load_check_which_only_a_run_needs() -> None:
    # A cached sast outcome is reused after ``reads`` alone: a warm no-op need not compile the
    # check's 3,500 lines (PYTHONDONTWRITEBYTECODE machines compile them on every import).
    probe = "import sys, gates.sast; print('gates.unsafe_load' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.stdout.strip() == "False", done.stderr
