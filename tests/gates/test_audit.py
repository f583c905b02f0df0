"""The audit gate: real pip-audit against the tests' own OSV fixture, served on loopback."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gates import audit as audit_module
from gates.audit import AuditGate, read_pins
from gates.base import GateError, RunContext, Status

OSV = Path(__file__).resolve().parent.parent / "assets" / "osv"
HASH = "--hash=sha256:" + "0" * 64
CLEAN = {"requests": "2.31.0", "urllib3": "2.0.7", "pyyaml": "6.0.1"}

pytestmark = pytest.mark.slow  # every test runs pip-audit (about a second per run)


class AuditProject:
    """A project copy whose audit reads ../osv (a copy of the fixture) and ./requirements.lock.

    The snapshot lies beside the project, not in it: the policy may not name one inside.
    """

    def __init__(self, project: Any) -> None:
        self.project = project
        self.root: Path = project.root
        self.osv = self.root.parent / "osv"
        shutil.copytree(OSV, self.osv)
        # Only ./requirements.lock (written below): the committed extras lock is not under test.
        project.edit_policy(
            **{"audit.advisory_db": "../osv", "audit.require_advisory_db": True, "audit.locks": []}
        )
        self.lock(CLEAN)

    def lock(self, pins: dict[str, str], *, extra: str = "") -> None:
        lines = [f"{name}=={version} \\\n    {HASH}\n" for name, version in pins.items()]
        (self.root / "requirements.lock").write_text("".join(lines) + extra, encoding="utf-8")

    def add_waiver(self, vuln: str, expires: str) -> None:
        with self.project.policy_path.open("a", encoding="utf-8") as handle:
            handle.write(
                f'\n[[audit.waivers]]\nid = "{vuln}"\n'
                f'reason = "not reachable: we never call the affected API"\nexpires = {expires}\n'
            )

    def context(self) -> RunContext:
        return RunContext(policy=self.project.load(), run_id="t", reports_dir=self.root / "reports")

    def run(self) -> Any:
        return AuditGate().run(self.context())


@pytest.fixture
def audited(project: Any, monkeypatch: pytest.MonkeyPatch) -> AuditProject:
    monkeypatch.delenv(audit_module.ADVISORY_DB_ENV, raising=False)
    return AuditProject(project)


def _rules(outcome: Any) -> list[str]:
    # AUD007 (the fixture snapshot is old, a warning) is asserted once, in the clean test.
    return [f.rule for f in outcome.findings if f.rule != "AUD007"]


def test_clean_lock_passes_and_names_the_snapshot(audited: AuditProject) -> None:
    outcome = audited.run()
    assert outcome.status is Status.PASSED, outcome.summary
    assert outcome.metrics["source"] == "local"
    assert outcome.metrics["snapshot_date"] == "2024-06-30"
    assert outcome.metrics["canary_reported"] is True
    assert outcome.metrics["audited"] == 3
    assert "2024-06-30" in outcome.summary
    assert [f.rule for f in outcome.findings] == ["AUD007"]  # old snapshot: warned, not failed
    assert (audited.root / "reports" / "audit.pip-audit.lock.json").is_file()
    assert (audited.root / "reports" / "audit.pip-audit.canary.json").is_file()


def test_vulnerable_pins_fail_through_the_loopback_server(audited: AuditProject) -> None:
    audited.lock({"requests": "2.19.0", "urllib3": "1.24.1", "pyyaml": "5.3"})
    outcome = audited.run()
    assert outcome.status is Status.FAILED
    found = [f for f in outcome.findings if f.rule == "AUD001"]
    assert len(found) == 3
    for vuln in ("TEST-2023-0001", "TEST-2024-0002", "TEST-2024-0003"):
        assert any(vuln in f.message for f in found), vuln
    requests = next(f for f in found if "TEST-2023-0001" in f.message)
    assert "fixed in 2.20.0" in requests.message
    assert requests.location.path == "requirements.lock"
    assert requests.location.line == 1


def test_active_waiver_lists_the_vulnerability_as_waived(audited: AuditProject) -> None:
    audited.lock({"requests": "2.19.0"})
    later = (datetime.now(UTC).date() + timedelta(days=30)).isoformat()
    audited.add_waiver("CVE-0000-0001", later)  # an alias of TEST-2023-0001 waives it too
    outcome = audited.run()
    assert outcome.status is Status.PASSED, outcome.summary
    assert _rules(outcome) == ["AUD002"]
    assert len(outcome.metrics["waived"]) == 1
    assert "TEST-2023-0001" in outcome.findings[0].message


def test_expired_waiver_fails(audited: AuditProject) -> None:
    audited.lock({"requests": "2.19.0"})
    audited.add_waiver("TEST-2023-0001", "2024-01-31")
    outcome = audited.run()
    assert outcome.status is Status.FAILED
    assert set(_rules(outcome)) == {"AUD001", "AUD005"}


def test_canary_not_reported_means_data_unavailable(audited: AuditProject) -> None:
    shutil.rmtree(audited.osv / "vulns" / "joblib")
    outcome = audited.run()
    assert outcome.status is Status.FAILED
    assert _rules(outcome) == ["AUD010"]
    assert "vulnerability data unavailable" in outcome.summary


def test_environment_variable_wins_over_policy(
    audited: AuditProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other-osv"
    shutil.copytree(OSV, other)
    shutil.rmtree(other / "vulns" / "joblib")
    monkeypatch.setenv(audit_module.ADVISORY_DB_ENV, str(other))
    outcome = audited.run()
    assert outcome.status is Status.FAILED
    assert outcome.metrics["advisory_db"] == str(other)
    monkeypatch.setenv(audit_module.ADVISORY_DB_ENV, str(tmp_path / "missing"))
    with pytest.raises(GateError, match="GATES_ADVISORY_DB"):
        audited.run()


def test_skipped_dependency_does_not_pass(audited: AuditProject) -> None:
    audited.lock(CLEAN, extra=f"foo @ https://example.invalid/foo-1.0.tar.gz \\\n    {HASH}\n")
    outcome = audited.run()
    assert outcome.status is Status.FAILED
    skipped = [f for f in outcome.findings if f.rule == "AUD003"]
    assert skipped
    assert "foo" in skipped[0].message


def test_unreachable_service_is_an_error(audited: AuditProject, tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    lock = audited.root / "requirements.lock"
    with pytest.raises(GateError, match="pip-audit"):
        audit_module._pip_audit(
            audited.context(),
            label="lock",
            requirements=lock,
            expected=read_pins(lock),
            hashed=True,
            service=["--vulnerability-service", "osv", "--osv-url", f"http://127.0.0.1:{port}/"],
            workdir=tmp_path,
        )


def test_malformed_record_is_errored_through_the_runner(audited: AuditProject) -> None:
    (audited.root / "src").mkdir()
    (audited.root / "src" / "app.py").write_text('"""App."""\n\nVALUE = 1\n', encoding="utf-8")
    audited.project.edit_policy(**{"lint.paths": ["src"], "sast.paths": ["src"]})
    (audited.osv / "vulns" / "requests" / "BAD.yaml").write_text("id: [\n", encoding="utf-8")
    summary = audited.project.run("lint", "sast", "audit")
    assert [r.status for r in summary.results] == [Status.PASSED, Status.PASSED, Status.ERRORED]
    assert summary.exit_code == 2


def test_snapshot_older_than_max_age_fails(audited: AuditProject) -> None:
    audited.project.edit_policy(**{"audit.max_age_days": 30})
    outcome = audited.run()
    assert outcome.status is Status.FAILED
    assert _rules(outcome) == ["AUD006"]


def test_a_policy_read_by_a_relative_path_audits_the_lock_it_names(
    audited: AuditProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `python -m gates` reads ./policy.toml; pip-audit runs in a folder of its own, so the
    # lock must reach it as an absolute path.
    from pipeline.config import load_policy

    monkeypatch.chdir(audited.root)
    context = RunContext(
        policy=load_policy(Path("policy.toml")), run_id="t", reports_dir=Path("reports")
    )
    outcome = AuditGate().run(context)
    assert outcome.status is Status.PASSED, outcome.summary
    assert outcome.metrics["audited"] == 3


def test_pins_whose_marker_is_false_here_are_audited_too(audited: AuditProject) -> None:
    extra = f'requests==2.19.0 ; python_version < "3.0" \\\n    {HASH}\n'
    audited.lock({"urllib3": "2.0.7"}, extra=extra)
    outcome = audited.run()
    assert outcome.status is Status.FAILED
    found = [f for f in outcome.findings if f.rule == "AUD001"]
    assert len(found) == 1
    assert "TEST-2023-0001" in found[0].message


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("requests==2.31.0\n", "no --hash"),
        (f"requests>=2.0 \\\n    {HASH}\n", "not pinned"),
        ("", "pins nothing"),
    ],
)
def test_a_lock_that_cannot_be_audited_as_committed_is_an_error(
    audited: AuditProject, text: str, match: str
) -> None:
    (audited.root / "requirements.lock").write_text(text, encoding="utf-8")
    with pytest.raises(GateError, match=match):
        audited.run()


def test_missing_snapshot_is_an_error_when_required(audited: AuditProject) -> None:
    shutil.rmtree(audited.osv)
    with pytest.raises(GateError, match="require_advisory_db"):
        audited.run()


def test_missing_pip_audit_is_an_error(
    audited: AuditProject, bare_python: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", str(bare_python))
    with pytest.raises(GateError, match="pip_audit is not installed"):
        audited.run()


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real interpreter whose environment lacks the tools (a venv without site-packages)."""
    venv = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    return venv / "bin" / "python"


def test_committed_policy_uses_the_shared_snapshot_beside_the_checkout(
    project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The project fixture lives in <tmp>/project, so the policy's ../shared/advisory-db is
    # <tmp>/shared/advisory-db: lay the fixture snapshot there, as CI's clone parent holds shared/.
    monkeypatch.delenv(audit_module.ADVISORY_DB_ENV)
    shared = project.root.parent / "shared" / "advisory-db"
    shutil.copytree(OSV, shared)
    context = RunContext(policy=project.load(), run_id="t", reports_dir=project.root / "reports")
    outcome = AuditGate().run(context)
    assert outcome.status is Status.PASSED, outcome.summary
    assert outcome.metrics["source_detail"].endswith("(from [audit].advisory_db)")
    assert Path(outcome.metrics["advisory_db"]).resolve() == shared.resolve()


REAL_SNAPSHOT = Path(__file__).resolve().parents[2].parent / "shared" / "advisory-db"


@pytest.mark.skipif(
    not REAL_SNAPSHOT.is_dir(), reason="no ../shared/advisory-db beside the checkout"
)
def test_the_committed_lock_passes_against_the_shared_snapshot(
    project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(audit_module.ADVISORY_DB_ENV, str(REAL_SNAPSHOT))
    context = RunContext(policy=project.load(), run_id="t", reports_dir=project.root / "reports")
    outcome = AuditGate().run(context)
    assert outcome.status is Status.PASSED, outcome.summary
    assert outcome.metrics["canary_reported"] is True


@pytest.mark.parametrize(
    ("waivers", "message"),
    [
        ('id = "A"\nreason = "short"\nexpires = 2030-01-01', "at least 10 characters"),
        ('id = "A"\nreason = "long enough reason"\nexpires = "2030-01-01"', "valid date"),
        ('id = "A"\nreason = "long enough reason"', "required key is missing"),
    ],
)
def test_bad_waivers_are_policy_errors(project: Any, waivers: str, message: str) -> None:
    from pipeline.errors import PolicyError

    with project.policy_path.open("a", encoding="utf-8") as handle:
        handle.write(f"\n[[audit.waivers]]\n{waivers}\n")
    with pytest.raises(PolicyError, match=message):
        project.load()


def test_a_vulnerability_may_be_waived_once(project: Any) -> None:
    from pipeline.errors import PolicyError

    entry = '\n[[audit.waivers]]\nid = "A"\nreason = "long enough reason"\nexpires = 2030-01-01\n'
    with project.policy_path.open("a", encoding="utf-8") as handle:
        handle.write(entry + entry)
    with pytest.raises(PolicyError, match=r"waived once.*\['A'\]"):
        project.load()
