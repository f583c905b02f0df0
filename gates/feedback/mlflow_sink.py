"""Optional MLflow logging: params, metrics, verdict tags and the reports, when a URI is set.

MLflow is an optional extra (``pip install 'secure-ml-pipeline[mlflow]'``): when it is not
installed the stage says so in one warning instead of failing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from gates.errors import GatesError
from gates.feedback.bundle import ReportBundle
from pipeline.config import LoadedPolicy

TRACKING_ENV = "MLFLOW_TRACKING_URI"


class MlflowUnavailable(GatesError):
    """MLflow is configured but not installed."""


def tracking_uri(configured: str | None) -> str | None:
    """``MLFLOW_TRACKING_URI`` wins over the policy's ``mlflow_tracking_uri``; None: no logging."""
    uri = os.environ.get(TRACKING_ENV, "").strip() or (configured or "").strip()
    return uri or None


def log_run(bundle: ReportBundle, *, policy: LoadedPolicy, uri: str, artifacts: list[Path]) -> str:
    """Log one pipeline run as one MLflow run; returns the MLflow run id."""
    try:
        import mlflow  # noqa: PLC0415 - optional dependency
    except ImportError:
        msg = (
            f"MLflow logging is configured ({uri}) but mlflow is not installed; "
            "install it with: pip install 'secure-ml-pipeline[mlflow]' (or mlflow-skinny)"
        )
        raise MlflowUnavailable(msg) from None
    settings = policy.policy.feedback
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(settings.mlflow_experiment)
    if experiment is None:
        location = (
            str(policy.resolve(settings.mlflow_artifact_location).resolve().as_uri())
            if settings.mlflow_artifact_location
            else None
        )
        experiment_id = client.create_experiment(
            settings.mlflow_experiment, artifact_location=location
        )
    else:
        experiment_id = experiment.experiment_id
    model = policy.policy.model
    params: dict[str, Any] = {
        "estimator": model.estimator,
        "scale": model.scale,
        "seed": policy.policy.run.seed,
        "cv_folds": policy.policy.cv.folds,
        "policy_sha256": policy.sha256,
        **{f"model.{k}": v for k, v in model.params.items()},
    }
    tags = {
        "gates.run_id": bundle.view.run_id,
        "gates.verdict": bundle.view.verdict,
        "gates.commit": bundle.commit,
        "gates.history_head": bundle.head,
        **{f"gates.status.{g.name}": g.status for g in bundle.view.gates},
    }
    run = client.create_run(experiment_id, run_name=bundle.view.run_id, tags=tags)
    run_id = str(run.info.run_id)
    try:
        for key, value in params.items():
            client.log_param(run_id, key, str(value)[:500])
        for key, value in bundle.metrics.items():
            client.log_metric(run_id, key, value)
        for gate in bundle.view.gates:
            if gate.result is not None:
                client.log_metric(
                    run_id, f"duration.{gate.name}", round(gate.result.duration_seconds, 3)
                )
        for path in artifacts:
            if path.is_file():
                client.log_artifact(run_id, str(path), artifact_path="reports")
    except Exception:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(
        run_id, status="FINISHED" if bundle.view.verdict == "PASSED" else "FAILED"
    )
    return run_id
