"""The ``cv`` gate: stratified k-fold CV and held-out scores clear every threshold in [cv].

Rules: CV001 mean below min_mean; CV002 a fold below min_fold; CV003 standard deviation above
max_std; CV004 held-out score below min_holdout; CV010 the model on disk is not the one the
train gate saved, or the split differs from the one it trained on.
"""

from __future__ import annotations

from typing import Any, ClassVar

from gates.base import Finding, Gate, Location, Outcome, RunContext
from pipeline.evaluate import (
    build_scorers,
    cross_validate_scores,
    holdout_scores,
    resolve_scheduler,
)
from pipeline.model import build_estimator
from pipeline.persist import MODEL_FILE, load_verified
from pipeline.train import prepare


class CvGate(Gate):
    """Cross-validate the policy's estimator and score the saved model on the holdout split."""

    name: ClassVar[str] = "cv"
    description: ClassVar[str] = __doc__ or ""

    def run(self, context: RunContext) -> Outcome:
        """Score, compare with every threshold, report each miss with its policy key."""
        policy = context.policy.policy
        train_report = context.read_report("train")
        _, split = prepare(context.policy)
        findings: list[Finding] = []
        if split.digest != train_report.metrics.get("split_sha256"):
            findings.append(
                Finding("CV010", "the holdout split differs from the one the model was trained on")
            )
        model_path = context.artifacts_dir / MODEL_FILE
        model, manifest = load_verified(model_path)
        if manifest.sha256 not in train_report.artifacts.values():
            findings.append(
                Finding(
                    "CV010",
                    f"{model_path.name} (sha256 {manifest.sha256[:12]}...) is not the model the "
                    "train gate saved in this run",
                )
            )
        scorers = build_scorers(
            policy.cv.thresholds,
            classes=policy.data.classes,
            positive_class=policy.data.positive_class,
        )
        estimator = build_estimator(policy.model, seed=policy.run.seed)
        scores = cross_validate_scores(
            estimator,
            split.x_train,
            split.y_train,
            scorers=scorers,
            folds=policy.cv.folds,
            seed=policy.run.seed,
            scheduler=resolve_scheduler(policy.run.dask_scheduler),
        )
        holdout = holdout_scores(model, split.x_holdout, split.y_holdout, scorers=scorers)
        metrics: dict[str, Any] = {}
        for metric, bar in policy.cv.thresholds.items():
            folds = scores.folds[metric]
            mean, std, worst = scores.mean(metric), scores.std(metric), min(folds)
            metrics[metric] = {
                "folds": [round(v, 6) for v in folds],
                "mean": round(mean, 6),
                "std": round(std, 6),
                "min_fold": round(worst, 6),
                "holdout": round(holdout[metric], 6),
            }
            key = f"[cv.thresholds.{metric}]"
            checks = (
                ("CV001", "mean", mean, bar.min_mean, "min_mean", False),
                ("CV002", "worst fold", worst, bar.min_fold, "min_fold", False),
                ("CV003", "fold std", std, bar.max_std, "max_std", True),
                ("CV004", "holdout", holdout[metric], bar.min_holdout, "min_holdout", False),
            )
            for rule, what, value, limit, field, is_max in checks:
                if limit is None:
                    continue
                missed = value > limit if is_max else value < limit
                if missed:
                    op = ">" if is_max else "<"
                    findings.append(
                        Finding(
                            rule=rule,
                            message=f"{metric} {what} {value:.4f} {op} {limit:.4f}",
                            location=Location(path=context.policy.path.name),
                            observed=f"{value:.6f}",
                            threshold=f"{limit}",
                            policy_key=f"{key}.{field}",
                        )
                    )
        headline = ", ".join(
            f"{m} {metrics[m]['mean']:.3f}±{metrics[m]['std']:.3f} (holdout {metrics[m]['holdout']:.3f})"
            for m in metrics
        )
        return Outcome.judge(
            findings,
            passed=f"{policy.cv.folds}-fold: {headline}",
            failed="{n} threshold(s) missed: {first}",
            metrics=metrics,
        )
