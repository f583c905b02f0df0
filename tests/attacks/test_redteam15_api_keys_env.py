"""Red team 15: ``[serve].api_keys_env`` naming the metrics-token variable (row 107).

Row 86 made ``/metrics`` take no API key: only the operator's metrics token
(``$GATES_SERVE_METRICS_KEYS``) opens it, and that token is no API key. Row 67 left
``[serve].api_keys_env`` free to name any upper-case variable ("its value is the Secret's
file"). Since row 100 renders the metrics token too, a pull request that sets
``api_keys_env = "GATES_SERVE_METRICS_KEYS"`` (one policy line, which reads like a rename)
reverses row 86: ``ci deploy`` renders ``GATES_SERVE_METRICS_KEYS=/run/secrets/gates/api-keys``
(the API-key Secret), ``ci deploy --check`` accepts it as the renderer's own, and the service
loads the same file as both keyrings, so every API-key holder reads every client's figures from
any address. With ``metrics_token`` on as well the variable is listed twice (Kubernetes keeps
the last: the metrics token becomes a prediction key). Any other variable of the gates' own
(``GATES_REGISTRY_HEAD``, ``GATES_TRUSTED_PROXIES``, ...) likewise means something else to them.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import run_module

REPO = Path(__file__).resolve().parents[2]


def _project(tmp_path: Path, extra: str) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    for name in ("data", "keys", "deploy"):
        shutil.copytree(REPO / name, root / name)
    text = (REPO / "policy.toml").read_text(encoding="utf-8")
    text = text.replace('api_keys_env = "GATES_SERVE_API_KEYS"', extra)
    (root / "policy.toml").write_text(text, encoding="utf-8")
    return root


def _gates_variables() -> set[str]:
    """Every ``GATES_*`` variable name the gates and pipeline spell out."""
    found: set[str] = set()
    for folder in ("gates", "pipeline"):
        for path in (REPO / folder).rglob("*.py"):
            found |= set(re.findall(r"\"(GATES_[A-Z0-9_]+)\"", path.read_text(encoding="utf-8")))
    return found


def test_the_metrics_variable_as_the_api_key_variable_is_refused(tmp_path: Path) -> None:
    from pipeline.config import load_policy
    from pipeline.errors import PolicyError

    root = _project(tmp_path, 'api_keys_env = "GATES_SERVE_METRICS_KEYS"')
    text = (root / "policy.toml").read_text(encoding="utf-8")
    assert "require_api_key = false " in text
    text = text.replace("require_api_key = false ", "require_api_key = true ")
    (root / "policy.toml").write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError, match=r"api_keys_env"):
        load_policy(root / "policy.toml")
    # Through the CLI: one line naming the key, exit 2, no traceback.
    done = run_module("gates", "ci", "deploy", "--check", cwd=root, timeout=120)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "api_keys_env" in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("name", sorted(_gates_variables() - {"GATES_SERVE_API_KEYS"}))
def test_no_other_gates_variable_is_the_api_key_variable(name: str) -> None:
    from pydantic import ValidationError

    from pipeline.config import ServePolicy

    with pytest.raises(ValidationError, match=r"api_keys_env"):
        ServePolicy(api_keys_env=name)


@pytest.mark.parametrize("name", ["GATES_SERVE_API_KEYS", "MYAPP_API_KEYS", "SERVE_KEYS"])
def test_control_other_names_stay_allowed(name: str) -> None:
    from pipeline.config import ServePolicy

    assert ServePolicy(api_keys_env=name).api_keys_env == name
