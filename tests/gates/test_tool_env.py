"""The supply-chain tools run with a least-privilege environment (gates._tools.run_module)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gates._tools import run_module, tool_environment

# What must never reach ruff, bandit or pip-audit: the release key, cloud and Vault credentials,
# a tool's own option variables, and another interpreter's start-up hooks.
SECRETS = {
    "GATES_SIGNING_KEY": "-----BEGIN PRIVATE KEY-----",
    "AWS_SECRET_ACCESS_KEY": "planted",
    "AWS_SESSION_TOKEN": "planted",
    "VAULT_TOKEN": "planted",
    "PIP_AUDIT_VULNERABILITY_SERVICE": "pypi",
    "RUFF_NO_CACHE": "true",
    "COVERAGE_PROCESS_CONFIG": "{}",
}
KEPT = {"https_proxy": "http://127.0.0.1:9", "SSL_CERT_FILE": "/etc/ssl/certs/ca.pem"}


def test_a_tool_sees_only_the_allowed_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {**SECRETS, **KEPT}.items():
        monkeypatch.setenv(name, value)
    # A real subprocess through the gates' own launcher: timeit runs the statement, which prints
    # the names of the variables the child process was given.
    statement = "import os, sys; sys.stdout.write(' '.join(sorted(os.environ)) + chr(10))"
    run = run_module("timeit", "-n", "1", "-r", "1", statement, cwd=tmp_path, timeout=60)
    assert run.returncode == 0, run.tail()
    seen = set(run.stdout.splitlines()[0].split())
    assert not seen & set(SECRETS), seen & set(SECRETS)
    assert set(KEPT) <= seen
    assert "PATH" in seen


def test_an_explicit_environment_is_passed_as_given() -> None:
    assert tool_environment({"PATH": "/bin", "GATES_SIGNING_KEY": "k", "no_proxy": "x"}) == {
        "PATH": "/bin",
        "no_proxy": "x",
    }
