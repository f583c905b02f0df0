"""A missing local advisory snapshot is named before anything the online fallback says."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from gates import audit as audit_module
from gates.audit import AuditGate, Source, _judge, choose_source
from gates.base import GateError, RunContext, Severity, Status


@pytest.fixture
def context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RunContext:
    from pipeline.config import load_policy
    from tests.project_support import REPO

    root = tmp_path / "project"
    root.mkdir()
    for name in ("policy.toml", "requirements.lock", "requirements-extras.lock"):
        shutil.copy2(REPO / name, root / name)
    monkeypatch.delenv(audit_module.ADVISORY_DB_ENV, raising=False)
    # The committed policy names ../shared/advisory-db: absent beside this temp project.
    return RunContext(policy=load_policy(root / "policy.toml"), run_id="t", reports_dir=root / "r")


def test_the_missing_folder_is_remembered_by_the_online_fallback(context: RunContext) -> None:
    source = choose_source(context)
    assert source.kind == "online"
    assert source.missing == context.policy.resolve("../shared/advisory-db")


def test_a_failed_fallback_names_the_missing_folder_first(
    context: RunContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise GateError(
            "pip-audit (lock) could not audit annotated-types==0.8.0: connection refused"
        )

    monkeypatch.setattr(audit_module, "_pip_audit", unreachable)
    with pytest.raises(GateError) as failed:
        AuditGate().run(context)
    message = str(failed.value)
    missing = str(context.policy.resolve("../shared/advisory-db"))
    assert message.startswith(f"local advisory snapshot {missing} ([audit].advisory_db) not found")
    assert message.index("not found") < message.index("annotated-types")


def test_the_verdict_of_a_fallback_audit_starts_with_the_missing_folder(
    context: RunContext,
) -> None:
    missing = context.policy.resolve("../shared/advisory-db")
    outcome = _judge(
        context,
        context.policy.policy.audit,
        source=Source("online", missing=missing),
        info={},
        runs=[],
        locks=[],
    )
    assert outcome.status is Status.FAILED  # no canary seen: no data
    assert outcome.summary.startswith(f"local advisory snapshot {missing} ([audit].advisory_db)")
    first = outcome.findings[0]
    assert (first.rule, first.severity) == ("AUD011", Severity.WARNING)
    assert first.policy_key == "[audit].advisory_db"
