"""The batch screen switched off against a trusted lock is said, not silent (review19).

``[data.checks.batch].enabled = false`` is the documented way to replace an approved snapshot
on purpose. Left off on the base branch afterwards, every later batch would go unscreened with
no finding at all: the data gate now shows a DATA109 warning naming the key, and still passes.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from gates.base import Severity, Status
from tests.batch_support import DATA, approve, gate_against, protected_branch


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return protected_branch(tmp_path_factory, "batch-off")


def _pull_request(base: Path, tmp_path: Path, *, enabled: bool) -> Path:
    """The last five approved rows dropped (a change the screen passes), the screen on or off."""
    pr = tmp_path / "pr"
    shutil.copytree(base, pr)
    lines = (pr / DATA).read_text("utf-8").splitlines()
    (pr / DATA).write_text("\n".join(lines[:-5]) + "\n", "utf-8")
    if not enabled:
        policy = pr / "policy.toml"
        text, n = re.subn(
            r"(?m)^(\[data\.checks\.batch\][^\n]*\n)enabled = true",
            r"\1enabled = false",
            policy.read_text("utf-8"),
        )
        assert n == 1
        policy.write_text(text, "utf-8")
    approve(pr)
    return pr


def _warnings(result: object) -> list[str]:
    return [
        f.message
        for f in result.findings  # type: ignore[attr-defined]
        if f.rule == "DATA109" and f.severity is Severity.WARNING
    ]


def test_the_batch_screen_switched_off_is_a_warning(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = gate_against(
        _pull_request(base, tmp_path, enabled=False), base, monkeypatch, run_id="off"
    )
    assert result.status is Status.PASSED, result.summary
    (message,) = _warnings(result)
    assert "[data.checks.batch].enabled = false" in message
    assert "569 rows approved" in message


def test_the_batch_screen_on_shows_no_such_warning(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = gate_against(
        _pull_request(base, tmp_path, enabled=True), base, monkeypatch, run_id="on"
    )
    assert result.status is Status.PASSED, result.summary
    assert _warnings(result) == []
