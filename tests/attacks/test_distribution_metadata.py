"""Planted attack: distribution metadata at the project root, whose entry points run in the gates.

``python -m gates`` puts the folder it runs from (the checkout) first on ``sys.path``, and
``importlib.metadata`` reads every ``*.dist-info`` and ``*.egg-info`` of each entry. Libraries
load the entry points listed there when imported: pydantic imports every ``[pydantic]`` plugin
when it builds its first model (the policy's), ``dask.sizeof`` its own at import. A pull request
that commits ``zz_plug-0.dist-info/entry_points.txt`` (``[pydantic] zz = zz_plug``) and a root
``zz_plug.py`` ran that module in every gate's process before any gate: no gate scans a root
module, and no source the gates import names it. Planted here: the plugin drops
``$GATES_BASE_POLICY``, and the verdict compared a pull request's unapproved policy change with
nothing (red before: the policy check said "not compared" and raised no GATE016).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from gates.compiled import find_compiled
from tests.conftest import run_module
from tests.keys_support import new_pem_pair
from tests.project_support import REPO

PLUGIN = """import os
from pathlib import Path

Path("plugin-ran").write_text("the planted plugin ran in this process", encoding="utf-8")
os.environ.pop("GATES_BASE_POLICY", None)  # the verdict then compares the policy with nothing


def new_schema_validator(*args, **kwargs):
    return None, None, None
"""
# Each spelling importlib.metadata takes for a distribution (it lowercases the name).
SPELLINGS = ("zz_plug-0.dist-info", "zz_plug-0.egg-info", "ZZ_PLUG-0.DIST-INFO")


def _plant(root: Path, folder: str) -> None:
    meta = root / folder
    meta.mkdir()
    (meta / "METADATA").write_text("Metadata-Version: 2.1\nName: zz-plug\nVersion: 0\n")
    (meta / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: zz-plug\nVersion: 0\n")
    (meta / "entry_points.txt").write_text("[pydantic]\nzz = zz_plug\n")
    (root / "zz_plug.py").write_text(PLUGIN, encoding="utf-8")


@pytest.fixture
def projects(tmp_path: Path) -> tuple[Path, Path]:
    """A base branch whose policy names an approver and is stricter than the pull request's."""
    base, pr = tmp_path / "base", tmp_path / "pr"
    for root in (base, pr):
        root.mkdir()
        shutil.copy2(REPO / "policy.toml", root / "policy.toml")
        shutil.copytree(REPO / "data", root / "data")
        shutil.copytree(REPO / "keys", root / "keys")
    secret = tmp_path / "secret"
    secret.mkdir()
    new_pem_pair(base, secret, "carol", "ed25519")
    text = (base / "policy.toml").read_text(encoding="utf-8")
    text = text.replace("min_mean = 0.93", "min_mean = 0.95", 1)
    (base / "policy.toml").write_text(
        text + '\n[roles]\napprovers = {carol = "keys/carol.pub"}\n', encoding="utf-8"
    )
    return base, pr


def _verdict(pr: Path, base: Path) -> tuple[int, str, dict[str, object] | None]:
    done = run_module(
        "gates",
        "run",
        "gate",
        cwd=pr,
        env={"GATES_BASE_POLICY": str(base / "policy.toml"), "GATES_RUN_ID": "rt8"},
    )
    report = pr / "reports" / "gate.json"
    document = json.loads(report.read_text(encoding="utf-8")) if report.exists() else None
    return done.returncode, done.stderr, document


def test_the_control_an_unapproved_policy_change_is_gate016(projects: tuple[Path, Path]) -> None:
    base, pr = projects
    code, _, report = _verdict(pr, base)
    assert code == 1
    assert report is not None
    assert "GATE016" in {f["rule"] for f in report["findings"]}  # type: ignore[index, union-attr]


@pytest.mark.parametrize("folder", SPELLINGS)
def test_planted_metadata_stops_the_gates_before_its_plugin_runs(
    projects: tuple[Path, Path], folder: str
) -> None:
    base, pr = projects
    _plant(pr, folder)
    code, stderr, report = _verdict(pr, base)
    assert not (pr / "plugin-ran").exists(), "the planted plugin ran in the verdict's process"
    assert report is None
    assert code == 2
    assert folder in stderr
    assert "Traceback" not in stderr


def test_planted_metadata_stops_the_warm_worker_too(tmp_path: Path) -> None:
    _plant(tmp_path, SPELLINGS[0])
    done = run_module("gates.worker", "--fd", "99", cwd=tmp_path, timeout=120)
    assert done.returncode == 2
    assert SPELLINGS[0] in done.stderr
    assert not (tmp_path / "plugin-ran").exists()


@pytest.mark.parametrize("folder", SPELLINGS)
def test_the_lint_gate_and_nox_see_planted_metadata(tmp_path: Path, folder: str) -> None:
    (tmp_path / "gates").mkdir()
    (tmp_path / "gates" / "x.py").write_text("X = 1\n")
    assert find_compiled(tmp_path) == []  # the control: source only
    _plant(tmp_path, folder)
    assert [path for path, _ in find_compiled(tmp_path)] == [folder]
