"""Planted attack: distribution metadata where ``python -m pipeline`` runs (row 50's gap).

``python -m gates`` refused a ``*.dist-info`` / ``*.egg-info`` in the folder it runs from
(``test_distribution_metadata.py``), ``python -m pipeline`` did not: it too puts that folder
first on ``sys.path``, and its policy is a pydantic model, so a committed
``zz_plug-0.dist-info/entry_points.txt`` (``[pydantic] zz = zz_plug``) made pydantic import a
root ``zz_plug.py`` when ``python -m pipeline predict`` (or ``train``) loaded the policy. Red
before: the planted module ran and wrote its mark. The rule now lives in ``pipeline.distmeta``
(``pipeline/`` never imports ``gates/``), which the gates use too.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.attacks.test_distribution_metadata import SPELLINGS, _plant
from tests.conftest import run_module
from tests.project_support import REPO


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "pr"
    root.mkdir()
    shutil.copy2(REPO / "policy.toml", root / "policy.toml")
    shutil.copytree(REPO / "data", root / "data")
    shutil.copytree(REPO / "keys", root / "keys")
    (root / "rows.csv").write_text("id\n1\n", encoding="utf-8")
    return root


def _predict(root: Path) -> subprocess.CompletedProcess[str]:
    return run_module("pipeline", "predict", "--input", "rows.csv", cwd=root, timeout=300)


def test_the_control_predict_loads_the_policy_and_refuses_for_want_of_a_model(
    project: Path,
) -> None:
    done = _predict(project)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "dist-info" not in done.stderr


@pytest.mark.parametrize("folder", SPELLINGS)
def test_planted_metadata_stops_python_m_pipeline_before_its_plugin_runs(
    project: Path, folder: str
) -> None:
    _plant(project, folder)
    done = _predict(project)
    assert not (project / "plugin-ran").exists(), "the planted plugin ran in python -m pipeline"
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert folder in lines[0]
    assert "expected none in the folder this runs from" in lines[0]
    assert "Traceback" not in done.stderr


def test_nox_first_check_still_reports_metadata_as_a_script(tmp_path: Path) -> None:
    """``python -I gates/compiled.py ROOT`` (nox's first check) imports the shared rule only after
    its walk: the metadata is still listed, and a planted extension module still stops it."""
    _plant(tmp_path, SPELLINGS[0])
    script = [sys.executable, "-I", str(REPO / "gates" / "compiled.py"), str(tmp_path)]
    done = subprocess.run(script, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith(f"{SPELLINGS[0]}: distribution metadata"), done.stdout
    assert "Traceback" not in done.stderr


def test_nox_first_check_imports_nothing_of_a_tree_holding_compiled_code(tmp_path: Path) -> None:
    """A planted ``pipeline/__init__.*.so`` in the checked tree is listed, never imported: the
    script imports ``pipeline.distmeta`` only after its walk found nothing (an import first ran
    the planted file in the checker: here its bytes are garbage, so an import is a traceback)."""
    for package in ("gates", "pipeline"):
        shutil.copytree(
            REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    planted = tmp_path / "pipeline" / "__init__.cpython-311-x86_64-linux-gnu.so"
    planted.write_bytes(b"not an ELF file")
    _plant(tmp_path, SPELLINGS[0])
    script = [sys.executable, "-I", str(tmp_path / "gates" / "compiled.py"), str(tmp_path)]
    done = subprocess.run(script, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert "pipeline/__init__.cpython-311-x86_64-linux-gnu.so: an extension module" in done.stdout
