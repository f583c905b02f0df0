"""Every report the feedback stage writes is valid in its own format."""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
import zlib
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import pytest

from gates.base import Finding, Severity
from gates.feedback import markdown
from gates.registry import NAMES
from tests.gates.feedback.helpers import run_stage

ASSETS = Path(__file__).resolve().parents[2] / "assets"

# GitLab's code-quality format (docs.gitlab.com/ci/testing/code_quality, "Code Quality report
# format"): the keys GitLab reads, with the severities it accepts.
CODE_QUALITY_SCHEMA = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["description", "check_name", "fingerprint", "severity", "location"],
        "properties": {
            "description": {"type": "string", "minLength": 1},
            "check_name": {"type": "string", "minLength": 1},
            "fingerprint": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "severity": {"enum": ["info", "minor", "major", "critical", "blocker"]},
            "location": {
                "type": "object",
                "required": ["path", "lines"],
                "properties": {
                    "path": {"type": "string", "minLength": 1},
                    "lines": {
                        "type": "object",
                        "required": ["begin"],
                        "properties": {"begin": {"type": "integer", "minimum": 1}},
                    },
                },
            },
        },
    },
}


@pytest.fixture(scope="module")
def failed_run(tmp_path_factory, passed_chain):
    """A run where the cv gate fails, with a SARIF file from another tool in reports/.

    lint, sast and audit replay their real outcome (and SARIF) on this same code.
    """
    import io

    from gates.runner import run_chain
    from pipeline.config import load_policy
    from tests.chain_support import replaying
    from tests.gates.feedback.conftest import copy_project

    root = copy_project(tmp_path_factory.mktemp("failed") / "project")
    text = (root / "policy.toml").read_text().replace("min_mean = 0.93", "min_mean = 0.999")
    (root / "policy.toml").write_text(text)
    reports = root / "reports"
    reports.mkdir()
    tool = {
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "bandit", "rules": [{"id": "B301"}]}},
                "results": [
                    {
                        "ruleId": "B301",
                        "level": "error",
                        "message": {"text": "pickle <b>&</b> friends"},
                        "locations": [
                            {
                                "physicalLocation": {
                                    "artifactLocation": {"uri": "pipeline/x.py"},
                                    "region": {"startLine": 3},
                                }
                            }
                        ],
                    }
                ],
            }
        ],
    }
    (reports / "other-tool.sarif").write_text(json.dumps(tool))
    # The same log again under another name: merged.sarif must still list its result once.
    (reports / "other-tool-copy.sarif").write_text(json.dumps(tool))
    (reports / "broken.sarif").write_text("{not json")
    summary = run_chain(
        [],
        gates=replaying(passed_chain),
        policy=load_policy(root / "policy.toml"),
        reports_dir=reports,
        out=io.StringIO(),
    )
    assert summary.exit_code == 1
    return root


def test_summary_is_markdown_with_one_line_per_gate_and_metric_deltas(passed_run):
    text = (passed_run / "reports" / "summary.md").read_text(encoding="utf-8")
    assert "Pipeline verdict: **PASSED**" in text
    for gate in NAMES[:-1]:
        assert f"| {gate} | ✅ PASSED |" in text
    assert "| cv.accuracy.mean | 0." in text
    assert len(text.encode()) < markdown.MAX_BYTES


def test_summary_escapes_untrusted_text():
    hostile = "<img src=x onerror=alert(1)> [link](http://evil) @team | `code` *bold*\nnext"
    escaped = markdown.escape(hostile)
    assert "<" not in escaped.replace("\\<", "")
    assert "](" not in escaped
    assert "|" not in escaped.replace("\\|", "")
    assert "@" not in escaped.replace("\\@", "")
    assert "\n" not in escaped
    assert markdown.code("a`b\nc") == "`a'b c`"


def test_summary_is_capped_at_one_mebibyte_on_a_line_boundary():
    text = "\n".join("| row | " + "x" * 100 + " |" for _ in range(20000))
    capped = markdown.cap(text)
    assert len(capped.encode("utf-8")) <= markdown.MAX_BYTES
    assert capped.endswith("see report.html and the JSON reports._\n")
    assert markdown.cap("short") == "short"


def test_junit_has_one_testcase_per_gate_with_findings_as_failures(failed_run):
    root = ET.parse(failed_run / "reports" / "junit.xml").getroot()  # noqa: S314 - our own file
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert list(cases) == list(NAMES)
    assert cases["data"].find("failure") is None
    failure = cases["cv"].find("failure")
    assert failure is not None
    assert "CV001" in failure.text
    assert "[cv.thresholds.accuracy].min_mean" in failure.text
    assert cases["artifacts"].find("skipped") is not None
    assert suite.get("tests") == str(len(NAMES))
    assert float(cases["cv"].get("time")) > 0  # a failed result is falsy: time must survive
    assert cases["gate"].find("failure") is not None  # the verdict fails with cv
    assert int(suite.get("failures")) == 2
    # Every gate between cv and the verdict is skipped (artifacts, and risk since issue 19).
    between = NAMES[NAMES.index("cv") + 1 : NAMES.index("gate")]
    assert all(cases[name].find("skipped") is not None for name in between)
    assert int(suite.get("skipped")) == len(between)
    assert float(suite.get("time")) > 0


def test_merged_sarif_is_valid_sarif_2_1_0_and_merges_other_tools(failed_run):
    schema = json.loads((ASSETS / "sarif-schema-2.1.0.json").read_text())
    log = json.loads((failed_run / "reports" / "merged.sarif").read_text())
    jsonschema.validate(log, schema)
    drivers = [run["tool"]["driver"]["name"] for run in log["runs"]]
    # The planted bandit log, the lint and sast gates' own SARIF (ruff's and bandit's own runs,
    # then each gate's own rules), then the findings no tool run holds.
    assert drivers[-1] == "secure-ml-pipeline gates"
    assert {"bandit", "ruff", "Bandit", "gates lint", "gates sast"} <= set(drivers)
    ours = log["runs"][-1]["results"]
    cv = [r for r in ours if r["ruleId"] == "CV001"]
    assert cv[0]["level"] == "error"
    assert cv[0]["properties"]["policyKey"] == "[cv.thresholds.accuracy].min_mean"
    feedback = json.loads((failed_run / "reports" / "feedback.json").read_text())
    assert any(
        f["rule"] == "FB203" and "broken.sarif" in f["message"] for f in feedback["findings"]
    )


def test_the_schema_rejects_a_broken_sarif_log():
    schema = json.loads((ASSETS / "sarif-schema-2.1.0.json").read_text())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"version": "2.1.0", "runs": [{"results": []}]}, schema)


def test_gitlab_code_quality_report_is_valid(failed_run):
    issues = json.loads((failed_run / "reports" / "gl-code-quality.json").read_text())
    jsonschema.validate(issues, CODE_QUALITY_SCHEMA)
    assert any(i["check_name"] == "CV001" and i["severity"] == "major" for i in issues)
    assert len({i["fingerprint"] for i in issues}) == len(issues)


def test_code_quality_fingerprints_are_stable_across_runs(failed_run):
    first = json.loads((failed_run / "reports" / "gl-code-quality.json").read_text())
    run_stage(failed_run)
    second = json.loads((failed_run / "reports" / "gl-code-quality.json").read_text())
    assert {i["fingerprint"] for i in first if i["check_name"].startswith("CV")} == {
        i["fingerprint"] for i in second if i["check_name"].startswith("CV")
    }


def test_html_report_is_self_contained_and_escapes_text(passed_run):
    text = (passed_run / "reports" / "report.html").read_text(encoding="utf-8")
    assert "Content-Security-Policy" in text
    assert "<script" not in text
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in text
    assert text.count("<svg") >= 4  # folds, confusion matrix, ROC, history


def test_reports_escape_a_hostile_gate_summary(failed_run, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(failed_run, root)
    cv_report = root / "reports" / "cv.json"
    document = json.loads(cv_report.read_text())
    hostile = "<script>alert(1)</script> [x](http://evil) | @all"
    document["summary"] = hostile
    document["findings"][0]["message"] = hostile
    cv_report.write_text(json.dumps(document))
    run_stage(root)
    page = (root / "reports" / "report.html").read_text(encoding="utf-8")
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    text = (root / "reports" / "summary.md").read_text(encoding="utf-8")
    assert "<script>" not in text
    assert "](http" not in text
    junit = ET.parse(root / "reports" / "junit.xml").getroot()  # noqa: S314 - our own file
    assert hostile in junit.find("testsuite/testcase[@name='cv']/failure").text


def _chromium() -> str | None:
    return (
        shutil.which("chromium")
        or shutil.which("chromium-browser")
        or shutil.which("google-chrome")
    )


@pytest.mark.slow
@pytest.mark.skipif(_chromium() is None, reason="needs chromium (apt-get install -y chromium)")
def test_html_report_renders_in_headless_chromium(passed_run, tmp_path):
    report = passed_run / "reports" / "report.html"
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    dom = subprocess.run(
        [_chromium(), *flags, "--dump-dom", report.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert 'id="verdict"' in dom
    assert dom.count("<svg") >= 4
    assert "Confusion matrix" in dom
    assert "ROC curve" in dom
    shot = tmp_path / "shot.png"
    subprocess.run(
        [_chromium(), *flags, f"--screenshot={shot}", "--window-size=1200,1600", report.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    width, height, pixels = _png_pixels(shot.read_bytes())
    assert (width, height) == (1200, 1600)
    # A blank page is one colour; text, badges and plots give many distinct byte values.
    assert len(set(pixels)) > 50


def _png_pixels(data: bytes) -> tuple[int, int, bytes]:
    """Width, height and the decompressed scanlines of a PNG (no imaging library needed)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, idat, width, height = 8, b"", 0, 0
    while offset < len(data):
        length = int.from_bytes(data[offset : offset + 4], "big")
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            width, height = int.from_bytes(body[:4], "big"), int.from_bytes(body[4:8], "big")
        elif kind == b"IDAT":
            idat += body
        offset += 12 + length
    return width, height, zlib.decompress(idat)


def test_findings_of_every_severity_map_to_sarif_and_code_quality_levels():
    from gates.feedback import codequality, sarif

    assert set(sarif._LEVELS) == set(Severity)
    assert set(codequality._SEVERITY) == set(Severity)
    assert Finding("X1", "m").severity is Severity.ERROR


def _bundle_with_every_status(tmp_path):
    from gates.base import Location, Status
    from gates.feedback.collect import GateView
    from gates.feedback.trends import Delta
    from tests.feedback_support import gate_result, run_bundle

    views = []
    for number, status in enumerate(Status):
        finding = Finding(
            f"R{number:03d}",
            f'{status.value} \x01 <tag> & "quote"',
            severity=Severity.ERROR if status is not Status.PASSED else Severity.WARNING,
            location=Location(path="policy.toml", line=3),
            policy_key="[x].y",
        )
        result = gate_result(
            f"g{number}", status, (finding,), summary=f"{status.value} summary <tag>"
        )
        views.append(GateView(f"g{number}", "", result))
    views.append(GateView("gate", "", None, "no report"))
    return run_bundle(
        tmp_path,
        views,
        deltas=(Delta("cv.accuracy.mean", 0.9, 0.95, None),),
        findings=(Finding("FB101", "drop", severity=Severity.WARNING),),
    )


def test_every_status_has_a_branch_in_every_format(tmp_path):
    from gates.base import Status
    from gates.feedback import codequality, html, junit, sarif

    bundle = _bundle_with_every_status(tmp_path)
    assert bundle.view.verdict == "ERRORED"  # the verdict never ran; the worst status wins
    root = ET.fromstring(junit.render(bundle))  # noqa: S314 - our own output
    cases = {c.get("name"): c for c in root.iter("testcase")}
    statuses = {f"g{n}": s for n, s in enumerate(Status)}
    kinds = {"PASSED": None, "FAILED": "failure", "ERRORED": "error", "SKIPPED": "skipped"}
    for name, status in statuses.items():
        kind = kinds[status.value]
        if kind is None:
            assert all(c.tag == "system-out" for c in cases[name])
        else:
            assert cases[name].find(kind) is not None
    assert cases["gate"].find("skipped") is not None
    assert "\x01" not in ET.tostring(root, encoding="unicode")
    log, _ = sarif.render(bundle)
    jsonschema.validate(log, json.loads((ASSETS / "sarif-schema-2.1.0.json").read_text()))
    assert {r["level"] for r in log["runs"][-1]["results"]} == {"error", "warning"}
    jsonschema.validate(codequality.render(bundle), CODE_QUALITY_SCHEMA)
    text = markdown.render(bundle)
    for status in Status:
        assert f" {status.value} |" in text
    assert "NOT RUN" in text
    assert "-0.0500" in text
    page = html.render(bundle, classes=["a", "b"], positive="b")
    assert "summary &lt;tag&gt;" in page
    assert "<tag>" not in page


def test_multiclass_holdout_gets_one_roc_curve_per_class():
    from gates.feedback import html

    rows = []
    for truth, guess, probs in [
        ("a", "a", (0.8, 0.1, 0.1)),
        ("b", "b", (0.1, 0.7, 0.2)),
        ("c", "b", (0.2, 0.5, 0.3)),
        ("c", "c", (0.1, 0.2, 0.7)),
        ("a", "c", (0.4, 0.1, 0.5)),
    ]:
        rows.append(
            {"y_true": truth, "y_pred": guess}
            | {f"proba_{k}": str(p) for k, p in zip("abc", probs, strict=True)}
        )
    confusion, roc = html._holdout_plots(rows, ["a", "b", "c"], "c")
    assert "Confusion matrix (holdout, 5 rows)" in confusion
    assert roc.count("<polyline") == 3
    assert all(f"{label} AUC" in roc for label in "abc")
    assert html._holdout_plots([], ["a"], "a") == []


def test_roc_points_and_area_match_scikit_learn():
    import numpy as np
    from sklearn.metrics import roc_auc_score, roc_curve

    from gates.feedback.html import roc_points, trapezoid_area

    rng = np.random.default_rng(3)
    truth = [int(v) for v in rng.integers(0, 2, 200)]
    # Rounded scores give ties, the case where a hand-written ROC usually goes wrong.
    scores = [round(float(v), 1) for v in rng.random(200) * 0.5 + np.array(truth) * 0.3]
    fpr, tpr = roc_points(truth, scores)
    ref_fpr, ref_tpr, _ = roc_curve(truth, scores, drop_intermediate=False)
    assert np.allclose(fpr, ref_fpr)
    assert np.allclose(tpr, ref_tpr)
    assert abs(trapezoid_area(fpr, tpr) - roc_auc_score(truth, scores)) < 1e-12


# -- issue 17: reports that code scanning, GitLab and Jenkins read well ---------------------------


def _results(log: dict) -> list[tuple]:
    found = []
    for run in log["runs"]:
        for result in run.get("results", []):
            physical = result["locations"][0]["physicalLocation"]
            found.append(
                (
                    result["ruleId"],
                    physical["artifactLocation"]["uri"],
                    physical.get("region", {}).get("startLine"),
                    result["message"]["text"],
                )
            )
    return found


def _codeql_action_schema() -> jsonschema.protocols.Validator:
    """The schema github/codeql-action v4.30.8 (upload-sarif) validates uploads against."""
    schema = json.loads((ASSETS / "sarif-schema-2.1.0.codeql-action.json").read_text())
    return jsonschema.Draft202012Validator(schema)


def test_merged_sarif_is_valid_against_the_schema_the_upload_action_uses(failed_run):
    log = json.loads((failed_run / "reports" / "merged.sarif").read_text())
    validator = _codeql_action_schema()
    assert list(validator.iter_errors(log)) == []
    assert list(validator.iter_errors({"version": "2.1.0", "runs": [{"results": []}]}))


def test_merged_sarif_lists_no_result_twice(failed_run):
    log = json.loads((failed_run / "reports" / "merged.sarif").read_text())
    found = _results(log)
    assert len(found) == len(set(found)), [r for r in found if found.count(r) > 1]
    assert sum(1 for r in found if r[0] == "B301") == 1  # planted in two files, listed once


def test_policy_findings_point_at_the_line_of_their_key_in_policy_toml(failed_run):
    lines = (failed_run / "policy.toml").read_text().splitlines()
    expected = next(i for i, line in enumerate(lines, 1) if line.startswith("min_mean = 0.999"))
    log = json.loads((failed_run / "reports" / "merged.sarif").read_text())
    (cv,) = [r for r in _results(log) if r[0] == "CV001"]
    assert cv[1:3] == ("policy.toml", expected)
    issues = json.loads((failed_run / "reports" / "gl-code-quality.json").read_text())
    (issue,) = [i for i in issues if i["check_name"] == "CV001"]
    assert issue["location"] == {"path": "policy.toml", "lines": {"begin": expected}}


def test_merged_sarif_names_a_real_information_uri(failed_run, monkeypatch, tmp_path):
    from gates.sarif_log import docs_uri

    log = json.loads((failed_run / "reports" / "merged.sarif").read_text())
    for run in log["runs"][1:]:  # the first is the planted log, which has none
        uri = run["tool"]["driver"].get("informationUri", "")
        assert "example.invalid" not in uri
    ours = log["runs"][-1]["tool"]["driver"]["informationUri"]
    assert ours == (failed_run / "docs" / "feedback.md").resolve().as_uri()
    from tests.conftest import REPO

    assert Path(docs_uri(REPO, "docs/feedback.md").removeprefix("file://")).is_file()
    for name in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_SHA", "CI_PROJECT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    monkeypatch.setenv("GITHUB_REPOSITORY", "team/model")
    monkeypatch.setenv("GITHUB_SHA", "a" * 40)
    assert docs_uri(tmp_path, "docs/feedback.md") == (
        f"https://github.com/team/model/blob/{'a' * 40}/docs/feedback.md"
    )
    monkeypatch.setenv("GITHUB_SHA", "main; rm -rf /")  # not a commit: the local file instead
    assert docs_uri(tmp_path, "docs/feedback.md").startswith("file://")


def _bundle(tmp_path, findings, *, gate="audit", artifacts=None):
    from gates.base import Status
    from gates.feedback.collect import GateView
    from tests.feedback_support import gate_result, run_bundle

    failed = any(f.severity is Severity.ERROR for f in findings)
    result = gate_result(
        gate, Status.FAILED if failed else Status.PASSED, findings, artifacts=artifacts
    )
    return run_bundle(
        tmp_path,
        (GateView(gate, "", result), GateView("gate", "", None, "no report")),
        policy="[audit]\nmax_age_days = 90\n\n[cv]\nfolds = 5\n",
    )


def test_code_quality_fingerprints_ignore_the_numbers_in_messages(tmp_path):
    from gates.feedback import codequality

    def issues(age: int, score: float) -> list[dict]:
        findings = [
            Finding(
                "AUD007",
                f"advisory snapshot ../shared/advisory-db is {age} days old (newest 2024-10-10)",
                severity=Severity.WARNING,
                policy_key="[audit].max_age_days",
            ),
            Finding("CV001", f"accuracy mean {score} below 0.93", policy_key="[cv].folds"),
            Finding("CV001", f"accuracy mean {score + 0.01} below 0.93", policy_key="[cv].folds"),
        ]
        return codequality.render(_bundle(tmp_path, findings))

    monday, tuesday = issues(783, 0.91234), issues(784, 0.90871)
    assert [i["fingerprint"] for i in monday] == [i["fingerprint"] for i in tuesday]
    assert monday[0]["description"] != tuesday[0]["description"]  # the text still says the age
    # Two problems that differ only in their numbers are still two issues.
    assert len({i["fingerprint"] for i in monday}) == 3
    assert monday[0]["location"] == {"path": "policy.toml", "lines": {"begin": 2}}
    other = codequality.render(
        _bundle(tmp_path, [Finding("AUD008", "advisory snapshot is 783 days old")])
    )
    assert other[0]["fingerprint"] != monday[0]["fingerprint"]  # another rule, another issue
    assert codequality.stable_text("run 20261205T141359Z, sha 5031607b78e7, 0.97") == (
        "run #T#Z, sha #, #"
    )


def test_a_gates_own_sarif_is_merged_once_and_a_stale_one_not_at_all(tmp_path):
    from gates._tools import write_sarif
    from gates.base import Location
    from gates.feedback import sarif
    from pipeline.fsio import sha256_file

    finding = Finding("LINT004", "blanket noqa", location=Location(path="a.py", line=3))
    write_sarif(tmp_path / "lint.sarif", [finding], tool="ruff", version="1", info_uri="file:///x")
    artifacts = {"lint.sarif": sha256_file(tmp_path / "lint.sarif")}
    bundle = _bundle(tmp_path, [finding], gate="lint", artifacts=artifacts)
    log, problems = sarif.render(bundle)
    assert problems == []
    assert [r[0] for r in _results(log)] == ["LINT004"]  # from lint.sarif, not again
    assert list(_codeql_action_schema().iter_errors(log)) == []
    # A lint.sarif this run's lint gate did not write (left from another run, or planted).
    (tmp_path / "lint.sarif").write_text((tmp_path / "lint.sarif").read_text() + " ")
    log, problems = sarif.render(bundle)
    assert len(problems) == 1
    assert "lint.sarif: not merged" in problems[0]
    assert [(r[0], r[1]) for r in _results(log)] == [("LINT004", "a.py")]  # from the report


def test_warnings_reach_the_summary_and_the_html_report(tmp_path):
    from gates.feedback import html

    findings = [
        Finding(
            "AUD007",
            "advisory snapshot ../shared/advisory-db is 783 days old",
            severity=Severity.WARNING,
            policy_key="[audit].max_age_days",
        ),
    ]
    bundle = _bundle(tmp_path, findings)
    text = markdown.render(bundle)
    assert "### ⚠️ Warnings (1)" in text
    assert "783 days old" in text
    assert "`AUD007`" in text
    page = html.render(bundle, classes=["a", "b"], positive="b")
    assert 'id="warnings"' in page
    assert "783 days old" in page
    assert "<code>[audit].max_age_days</code>" in page


def test_a_passing_runs_development_key_warning_is_in_summary_and_html(passed_run):
    text = (passed_run / "reports" / "summary.md").read_text(encoding="utf-8")
    page = (passed_run / "reports" / "report.html").read_text(encoding="utf-8")
    artifacts = json.loads((passed_run / "reports" / "artifacts.json").read_text())
    warned = [f for f in artifacts["findings"] if f["severity"] == "warning"]
    assert [f["rule"] for f in warned] == ["ART010"]
    assert "`ART010`" in text
    assert "DEVELOPMENT key" in text
    assert 'id="warnings"' in page
    assert "ART010" in page


class _Inline(HTMLParser):
    """Everything a Content-Security-Policy without 'unsafe-inline' would block."""

    def __init__(self) -> None:
        super().__init__()
        self.blocked: list[str] = []
        self.stylesheets: list[str] = []

    def handle_starttag(self, tag, attrs):
        names = {name.lower(): value for name, value in attrs}
        if tag in ("style", "script"):
            self.blocked.append(f"<{tag}>")
        if "style" in names:
            self.blocked.append(f"<{tag} style=...>")
        self.blocked += [f"<{tag} {n}=...>" for n in names if n.startswith("on")]
        if tag == "link" and names.get("rel") == "stylesheet":
            self.stylesheets.append(names.get("href", ""))


def test_html_report_has_no_inline_style_or_script(passed_run, failed_run):
    for root in (passed_run, failed_run):
        page = (root / "reports" / "report.html").read_text(encoding="utf-8")
        parser = _Inline()
        parser.feed(page)
        assert parser.blocked == [], root
        assert parser.stylesheets == ["report.css"]
        assert (root / "reports" / "report.css").is_file()  # beside it: style-src 'self'
        assert "style-src 'self'" in page
        assert "unsafe-inline" not in page
    planted = _Inline()
    planted.feed('<p style="x"><svg><text onload="y"></text></svg><style></style></p>')
    assert planted.blocked == ["<p style=...>", "<text onload=...>", "<style>"]


def test_failed_html_report_names_rules_and_policy_keys_first(failed_run):
    page = (failed_run / "reports" / "report.html").read_text(encoding="utf-8")
    failures = page[page.index('id="failures"') : page.index('id="gates"')]
    assert "<code>CV001</code>" in failures
    assert "<code>[cv.thresholds.accuracy].min_mean</code>" in failures
    lines = (failed_run / "policy.toml").read_text().splitlines()
    number = next(i for i, line in enumerate(lines, 1) if line.startswith("min_mean = 0.999"))
    assert f"<td>policy.toml:{number}</td>" in failures
    assert "artifacts" in failures  # skipped after cv: listed with its reason


def test_html_charts_have_axes_legends_thresholds_and_failed_runs(failed_run):
    from gates.feedback import html

    page = (failed_run / "reports" / "report.html").read_text(encoding="utf-8")
    assert page.count('class="axis"') >= 8  # two labelled axes per chart
    assert page.count('<ul class="legend">') >= 3
    assert "threshold: min_mean" in page
    assert "threshold: min_fold" in page
    assert "fold 1" in page
    history = [
        {
            "run_id": f"r{i}",
            "verdict": "FAILED" if i == 2 else "PASSED",
            "metrics": {"cv.accuracy.mean": 0.9 + i / 100, "data.flag_rate": 0.01 * i},
            "gates": {"cv": {"duration_seconds": 1.0 + i}, "data": {"duration_seconds": 2.0}},
        }
        for i in range(4)
    ]
    means, rates, durations = html.history_plots(history)
    assert "run that did not pass" in means
    assert means.count("did not pass</title>") == 1  # run r2 only
    assert "flag rate (% of rows)" in rates
    assert "r3: 3.0000</title>" in rates  # 0.03 of the rows, shown as 3 %
    assert "Gate durations per run" in durations
    assert "seconds" in durations


def test_the_same_tool_log_under_two_names_is_listed_once(tmp_path):
    from gates.feedback import sarif

    tool = {
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "other", "rules": [{"id": "X1"}]}},
                "results": [
                    {
                        "ruleId": "X1",
                        "message": {"text": "m"},
                        "locations": [{"physicalLocation": {"artifactLocation": {"uri": "a.py"}}}],
                    }
                ]
                * 2,  # and one result twice inside the run
            }
        ],
    }
    for name in ("one.sarif", "two.sarif"):
        (tmp_path / name).write_text(json.dumps(tool))
    log, problems = sarif.render(_bundle(tmp_path, []))
    assert problems == []
    assert [r[0] for r in _results(log)] == ["X1"]
