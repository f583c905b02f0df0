"""The ``train`` gate: fit the policy's estimator on the approved data and save it with skops."""

from __future__ import annotations

from typing import Any, ClassVar

from gates.base import Gate, Outcome, RunContext, Status
from gates.data_integrity import quarantined_rows
from pipeline.persist import MODEL_FILE, save_model


class TrainGate(Gate):
    """Train on the training split and write ``artifacts/model.skops`` plus its manifest."""

    name: ClassVar[str] = "train"
    description: ClassVar[str] = __doc__ or ""

    def run(self, context: RunContext) -> Outcome:
        """Fit, save atomically, and report what was trained on what."""
        from pipeline.outofcore import takes_out_of_core  # noqa: PLC0415
        from pipeline.train import train  # noqa: PLC0415 - scikit-learn only when training

        policy = context.policy
        dropped = quarantined_rows(context)
        if takes_out_of_core(policy):
            return self._out_of_core(context, dropped)
        result = train(policy, drop=dropped)
        artifacts = _save(context, result.model)
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
            artifacts=artifacts,
        )

    def _out_of_core(self, context: RunContext, dropped: tuple[int, ...]) -> Outcome:
        """Fit over partitions of the data file on the Dask cluster (``pipeline.outofcore``)."""
        from pipeline.evaluate import resolve_scheduler  # noqa: PLC0415
        from pipeline.outofcore import train  # noqa: PLC0415

        policy = context.policy
        result = train(
            policy, drop=dropped, scheduler=resolve_scheduler(policy.policy.run.dask_scheduler)
        )
        artifacts = _save(context, result.model)
        return Outcome(
            status=Status.PASSED,
            summary=(
                f"{policy.policy.model.estimator} fitted out of core on {result.n_train} rows "
                f"({result.partitions} partitions, {result.where}) in {result.fit_seconds:.2f}s, "
                f"{result.iterations} Newton passes; {result.n_holdout} held out"
            ),
            metrics={
                "estimator": policy.policy.model.estimator,
                "n_train": result.n_train,
                "n_holdout": result.n_holdout,
                "fit_seconds": round(result.fit_seconds, 3),
                "split_sha256": result.split_digest,
                "data_sha256": result.data_sha256,
                "quarantined_rows": len(dropped),
                "out_of_core": {
                    "partitions": result.partitions,
                    "newton_passes": result.iterations,
                    "where": result.where,
                },
            },
            artifacts=artifacts,
        )


def _save(context: RunContext, model: Any) -> dict[str, str]:
    """Save ``model`` atomically where the policy says; ``{path as reported: sha256}``."""
    path = context.artifacts_dir / MODEL_FILE
    manifest = save_model(model, path, estimator=context.policy.policy.model.estimator)
    rel = (
        path.relative_to(context.root).as_posix()
        if path.is_relative_to(context.root)
        else str(path)
    )
    return {rel: manifest.sha256}
