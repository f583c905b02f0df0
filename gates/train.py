"""The ``train`` gate: fit the policy's estimator on the approved data and save it with skops."""

from __future__ import annotations

from typing import ClassVar

from gates.base import Gate, Outcome, RunContext, Status
from gates.data_integrity import quarantined_rows
from pipeline.persist import MODEL_FILE, save_model


class TrainGate(Gate):
    """Train on the training split and write ``artifacts/model.skops`` plus its manifest."""

    name: ClassVar[str] = "train"
    description: ClassVar[str] = __doc__ or ""

    def run(self, context: RunContext) -> Outcome:
        """Fit, save atomically, and report what was trained on what."""
        from pipeline.train import train  # noqa: PLC0415 - scikit-learn only when training

        policy = context.policy
        dropped = quarantined_rows(context)
        result = train(policy, drop=dropped)
        path = context.artifacts_dir / MODEL_FILE
        manifest = save_model(result.model, path, estimator=policy.policy.model.estimator)
        rel = (
            path.relative_to(context.root).as_posix()
            if path.is_relative_to(context.root)
            else str(path)
        )
        return Outcome(
            status=Status.PASSED,
            summary=(
                f"{policy.policy.model.estimator} fitted on {len(result.split.y_train)} rows "
                f"in {result.fit_seconds:.2f}s; {len(result.split.y_holdout)} held out"
            ),
            metrics={
                "estimator": policy.policy.model.estimator,
                "n_train": len(result.split.y_train),
                "n_holdout": len(result.split.y_holdout),
                "fit_seconds": round(result.fit_seconds, 3),
                "split_sha256": result.split.digest,
                "data_sha256": result.dataset.sha256,
                "quarantined_rows": len(dropped),
            },
            artifacts={rel: manifest.sha256},
        )
