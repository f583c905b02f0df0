"""Optional MLflow logging: a real local SQLite tracking store, and a clear message without MLflow."""

from __future__ import annotations

import shutil
import sys

import pytest

from gates.base import Status
from tests.gates.feedback.helpers import run_stage


def _configure(root, uri: str) -> None:
    text = (root / "policy.toml").read_text()
    text = text.replace(
        'mlflow_experiment = "secure-ml-pipeline"',
        f'mlflow_experiment = "secure-ml-pipeline"\nmlflow_tracking_uri = "{uri}"\n'
        f'mlflow_artifact_location = "mlartifacts"',
    )
    (root / "policy.toml").write_text(text)


def test_without_mlflow_installed_the_stage_warns_and_passes(passed_run, tmp_path, monkeypatch):
    root = tmp_path / "copy"
    shutil.copytree(passed_run, root)
    monkeypatch.setitem(sys.modules, "mlflow", None)  # what `import mlflow` sees when absent
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'ml.db'}")
    result = run_stage(root)
    assert result.status is Status.PASSED
    assert [f.rule for f in result.findings] == ["FB202"]
    assert "pip install" in result.findings[0].message
    assert result.metrics["mlflow_run_id"] is None


def test_without_a_tracking_uri_nothing_is_logged(passed_run, tmp_path, monkeypatch):
    root = tmp_path / "copy"
    shutil.copytree(passed_run, root)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = run_stage(root)
    assert result.metrics["mlflow_run_id"] is None
    assert result.findings == ()


@pytest.mark.slow
# MLflow's SQL store still uses a SQLAlchemy loader that SQLAlchemy 2.1 deprecates.
@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")
def test_params_metrics_tags_and_reports_reach_a_sqlite_tracking_store(
    passed_run, tmp_path, monkeypatch
):
    mlflow = pytest.importorskip("mlflow", reason="optional extra: pip install '.[mlflow]'")
    root = tmp_path / "copy"
    shutil.copytree(passed_run, root)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{root / 'mlflow.db'}"  # a local store the policy names lies in the project
    _configure(root, uri)
    result = run_stage(root)
    assert result.findings == (), result.findings
    run_id = result.metrics["mlflow_run_id"]
    client = mlflow.MlflowClient(tracking_uri=uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["estimator"] == "logistic_regression"
    assert run.data.params["cv_folds"] == "5"
    assert 0.9 < run.data.metrics["cv.accuracy.mean"] <= 1.0
    assert run.data.tags["gates.verdict"] == "PASSED"
    assert run.data.tags["gates.status.cv"] == "PASSED"
    names = {a.path for a in client.list_artifacts(run_id, "reports")}
    assert {"reports/summary.md", "reports/report.html", "reports/cv.json"} <= names
    assert (root / "mlartifacts").is_dir()
