"""The ``cv`` gate: stratified k-fold CV and held-out scores clear every threshold in [cv].

Rules: CV001 mean below min_mean; CV002 a fold below min_fold; CV003 standard deviation above
max_std; CV004 held-out score below min_holdout; CV010 the model on disk is not the one the
train gate saved, or the split differs from the one it trained on; CV020 the candidate's
held-out score falls below the champion's by more than [release.tolerance.METRIC] allows;
CV021 (note) there is no champion yet, so nothing was compared.

The champion is read only through its signed attestation (verified with the committed release
key) and is scored on this run's holdout split, so both models are judged on the same rows.
A champion that does not verify makes the gate ERRORED: it cannot judge against it.
"""

from __future__ import annotations

import csv
import io
import os
from typing import TYPE_CHECKING, Any, ClassVar

from gates.base import (
    Finding,
    Gate,
    GateError,
    Location,
    Outcome,
    Reads,
    RunContext,
    Severity,
)
from gates.data_integrity import quarantined_rows
from gates.release import registry_for
from pipeline.champion import POINTER_FILE, VERSIONS_DIR, RegistryError
from pipeline.config import Tolerance
from pipeline.fsio import atomic_write_text
from pipeline.gittree import committed_in
from pipeline.persist import MODEL_FILE, load_attested, load_verified
from pipeline.promotion import (
    AUDIT_FILE,
    HEAD_ENV,
    PromotionError,
    read_events,
    refuse_committed,
)
from pipeline.signing import SigningError
from pipeline.verify import trusted_key

if TYPE_CHECKING:
    from collections.abc import Callable

# Scores are rounded to 6 places in reports; differences below this are not regressions.
_EPSILON = 1e-9


def champion_reads(context: RunContext) -> Reads:
    """What reading the champion depends on: the pointer, the audit log (with [roles] it names
    the champion: a rollback, a revocation) and ``$GATES_REGISTRY_HEAD``, which refuses a log
    cut behind it: an outcome cached from a registry later cut back to that state, unpinned or
    under an older pin, must not be reused where the pin now refuses the log. Also the version
    files the champion is verified and loaded from, the trusted keys it is verified with (the
    release keys and the release managers'), and whether git tracks anything in the registry
    folder (``refuse_committed``): changing any of them runs the gate again, where a fresh run
    may refuse the champion."""
    policy = context.policy
    release = policy.policy.release
    registry = policy.resolve(release.registry_dir)
    keys = sorted(
        {release.public_key, *release.public_keys.values(), *policy.policy.roles.promoters.values()}
    )
    committed = committed_in(registry, policy.base_dir) or ""
    return Reads(
        files=(
            registry / POINTER_FILE,
            registry / AUDIT_FILE,
            registry / VERSIONS_DIR,
            *(policy.resolve(key) for key in keys),
        ),
        external={HEAD_ENV: os.environ.get(HEAD_ENV, "").strip(), "registry_committed": committed},
    )


class CvGate(Gate):
    """Cross-validate the policy's estimator and score the saved model on the holdout split."""

    name: ClassVar[str] = "cv"
    description: ClassVar[str] = __doc__ or ""

    def reads(self, context: RunContext) -> Reads:
        """The data, the champion pointer, the audit log and its pinned head (``champion_reads``)."""
        return champion_reads(context)

    def run(self, context: RunContext) -> Outcome:
        """Score, compare with every threshold, report each miss with its policy key."""
        # numpy, pandas and scikit-learn load here, not at import: a cached run never needs them.
        from pipeline.evaluate import (  # noqa: PLC0415
            build_scorers,
            cross_validate_scores,
            holdout_scores,
            resolve_scheduler,
        )
        from pipeline.model import build_estimator  # noqa: PLC0415
        from pipeline.outofcore import takes_out_of_core  # noqa: PLC0415
        from pipeline.train import prepare  # noqa: PLC0415

        policy = context.policy.policy
        train_report = context.read_report("train")
        if takes_out_of_core(context.policy):
            return self._out_of_core(context, train_report)
        _, split = prepare(context.policy, drop=quarantined_rows(context))
        findings: list[Finding] = []
        if split.digest != train_report.metrics.get("split_sha256"):
            findings.append(
                Finding("CV010", "the holdout split differs from the one the model was trained on")
            )
        model, _ = trained_model(context, train_report, findings)
        scorers = build_scorers(
            policy.cv.thresholds,
            classes=policy.data.classes,
            positive_class=policy.data.positive_class,
        )
        estimator = build_estimator(policy.model, seed=policy.run.seed, contract=policy.data)
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
        write_holdout_predictions(context, model, split.x_holdout, split.y_holdout)
        found = load_champion(context)

        def champion_scores(model: Any) -> dict[str, float]:
            return holdout_scores(model, split.x_holdout, split.y_holdout, scorers=scorers)

        comparison, versus = _compare_with_champion(context, found, champion_scores, holdout)
        return _judge(
            context,
            folds_by_metric=scores.folds,
            holdout=holdout,
            findings=findings,
            comparison=comparison,
            versus=versus,
        )

    def _out_of_core(self, context: RunContext, train_report: Any) -> Outcome:
        """CV, the holdout and the champion over partitions on the cluster (``pipeline.outofcore``)."""
        from pipeline.evaluate import resolve_scheduler  # noqa: PLC0415
        from pipeline.outofcore import cross_validate  # noqa: PLC0415

        policy = context.policy.policy
        findings: list[Finding] = []
        model, _ = trained_model(context, train_report, findings)
        found = load_champion(context)
        result = cross_validate(
            context.policy,
            model,
            champion=found[1] if found is not None else None,
            metrics=list(policy.cv.thresholds),
            drop=quarantined_rows(context),
            scheduler=resolve_scheduler(policy.run.dask_scheduler),
        )
        if result.split_digest != train_report.metrics.get("split_sha256"):
            findings.append(
                Finding("CV010", "the holdout split differs from the one the model was trained on")
            )
        theirs = result.champion

        def champion_scores(_: Any) -> dict[str, float]:
            if theirs is None:  # pragma: no cover - scored whenever there is a champion
                msg = "the champion was not scored"
                raise GateError(msg)
            return theirs

        comparison, versus = _compare_with_champion(context, found, champion_scores, result.holdout)
        where = {
            "partitions": result.partitions,
            "where": result.where,
            "roc_auc_tie_bound": round(result.auc_tie_bound, 9),
        }
        return _judge(
            context,
            folds_by_metric=result.folds,
            holdout=result.holdout,
            findings=findings,
            comparison=comparison,
            versus=versus,
            extra={"out_of_core": where},
        )


def _judge(
    context: RunContext,
    *,
    folds_by_metric: dict[str, tuple[float, ...]],
    holdout: dict[str, float],
    findings: list[Finding],
    comparison: dict[str, Any],
    versus: list[Finding],
    extra: dict[str, Any] | None = None,
) -> Outcome:
    """Every threshold of [cv.thresholds] against the fold and holdout scores, and the champion."""
    import numpy as np  # noqa: PLC0415

    policy = context.policy.policy
    metrics: dict[str, Any] = {}
    for metric, bar in policy.cv.thresholds.items():
        folds = folds_by_metric[metric]
        mean, std, worst = float(np.mean(folds)), float(np.std(folds)), min(folds)
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
    findings.extend(versus)
    metrics["champion"] = comparison
    metrics.update(extra or {})
    headline = ", ".join(
        f"{m} {metrics[m]['mean']:.3f}±{metrics[m]['std']:.3f} (holdout {metrics[m]['holdout']:.3f})"
        for m in metrics
        if m not in ("champion", "out_of_core")
    )
    return Outcome.judge(
        findings,
        passed=f"{policy.cv.folds}-fold: {headline}; {comparison['summary']}",
        failed="{n} check(s) missed: {first}",
        metrics=metrics,
    )


def _compare_with_champion(
    context: RunContext,
    found: tuple[Any, Any] | None,
    champion_scores: Callable[[Any], dict[str, float]],
    holdout: dict[str, float],
) -> tuple[dict[str, Any], list[Finding]]:
    release = context.policy.policy.release
    key = "[release].registry_dir"
    if found is None:
        note = f"first run: no champion in {release.registry_dir}/, nothing to compare against"
        return (
            {"status": "none", "summary": note},
            [Finding("CV021", note, severity=Severity.NOTE, policy_key=key)],
        )
    champion, model = found
    try:
        theirs = champion_scores(model)
    except GateError:
        raise
    except Exception as err:  # a champion trained on another contract may not score these rows
        msg = f"champion {champion.version} cannot score this holdout split ({type(err).__name__}: {err})"
        raise GateError(msg) from None
    findings: list[Finding] = []
    deltas: dict[str, Any] = {}
    # No tolerance table: every scored metric is compared with zero tolerance (fail closed).
    tolerances = release.tolerance or {m: Tolerance() for m in context.policy.policy.cv.thresholds}
    for metric, tolerance in tolerances.items():
        ours, best = holdout[metric], theirs[metric]
        delta = ours - best
        allowed = max(tolerance.absolute, tolerance.relative * best)
        deltas[metric] = {
            "candidate": round(ours, 6),
            "champion": round(best, 6),
            "delta": round(delta, 6),
            "allowed_drop": round(allowed, 6),
        }
        if -delta > allowed + _EPSILON:
            findings.append(
                Finding(
                    rule="CV020",
                    message=(
                        f"{metric} holdout {ours:.4f} vs champion {best:.4f}: delta {delta:+.4f} "
                        f"is a larger drop than the {allowed:.4f} allowed"
                    ),
                    location=Location(path=context.policy.path.name),
                    observed=f"{delta:+.6f}",
                    threshold=f"-{allowed:.6f}",
                    policy_key=f"[release.tolerance.{metric}]",
                )
            )
    worse = len(findings)
    summary = f"champion {champion.version}: " + (
        f"{worse} metric(s) regressed beyond tolerance" if worse else "within tolerance"
    )
    return {
        "status": "compared",
        "version": champion.version,
        "run_id": champion.attestation.run_id,
        "deltas": deltas,
        "summary": summary,
    }, findings


def load_champion(context: RunContext) -> tuple[Any, Any] | None:
    """The champion (a registry ``Version``) and its model, loaded through its attestation.

    None when there is no champion yet. A champion that exists but cannot be trusted (key
    unreadable, attestation or model refused) raises GateError: nothing can be judged against
    it. The ``risk`` gate compares with the champion through this too.
    """
    release = context.policy.policy.release
    try:
        # A registry folder the pull request commits (git add -f) is never the champion's.
        refuse_committed(context.policy.resolve(release.registry_dir), context.policy.base_dir)
    except PromotionError as err:
        msg = f"the champion cannot be trusted, so the candidate cannot be compared: {err}"
        raise GateError(msg) from None
    try:
        registry = registry_for(
            context.policy, trusted=trusted_key(context.policy), require_current_gates=False
        )
    except SigningError as err:
        folder = context.policy.resolve(release.registry_dir)
        try:
            # With [roles] the audit log names a champion when the pointer is gone, and a log
            # cut behind $GATES_REGISTRY_HEAD is refused, never taken for "no champion".
            events = read_events(folder)
        except PromotionError as log_err:
            msg = f"the champion cannot be trusted, so the candidate cannot be compared: {log_err}"
            raise GateError(msg) from None
        pointer = folder / POINTER_FILE
        if not (events or pointer.exists() or pointer.is_symlink()):
            return None
        msg = f"a champion exists but the trusted key cannot be read: {err}"
        raise GateError(msg) from None
    if registry is None or not registry.has_champion():
        return None
    try:
        champion = registry.champion()
    except RegistryError as err:
        msg = f"the champion cannot be trusted, so the candidate cannot be compared: {err}"
        if "no signature verifies under the trusted key" in str(err):
            msg += (
                "; if the release key was rotated, re-sign the registry under the new key in the "
                "deploy job: 'python -m gates registry rotate' (docs/keys.md 'Rotating the "
                "release key')"
            )
        raise GateError(msg) from None
    if champion is None:  # the pointer vanished between the two reads
        msg = f"the champion pointer in {release.registry_dir}/ disappeared while reading it"
        raise GateError(msg)
    model, _ = load_attested(champion.attestation)
    return champion, model


HOLDOUT_FILE = "cv.holdout.csv"


def write_holdout_predictions(context: RunContext, model: Any, features: Any, labels: Any) -> None:
    """Write ``reports/cv.holdout.csv``: y_true, y_pred and one ``proba_<class>`` per class.

    The feedback report draws the confusion matrix and ROC curve from it.
    """
    predicted = model.predict(features)
    classes = [str(c) for c in getattr(model, "classes_", ())]
    proba = model.predict_proba(features) if hasattr(model, "predict_proba") else None
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["y_true", "y_pred", *(f"proba_{c}" for c in classes if proba is not None)])
    for i, (truth, guess) in enumerate(zip(labels, predicted, strict=True)):
        row = [str(truth), str(guess)]
        if proba is not None:
            row.extend(f"{float(v):.6f}" for v in proba[i])
        writer.writerow(row)
    atomic_write_text(context.reports_dir / HOLDOUT_FILE, buffer.getvalue())


def trained_model(
    context: RunContext, train_report: Any, findings: list[Finding], *, rule: str = "CV010"
) -> tuple[Any, Any]:
    """The verified model on disk and its manifest; a ``rule`` finding when it is not the one
    the train gate saved in this run."""
    model_path = context.artifacts_dir / MODEL_FILE
    model, manifest = load_verified(model_path)
    if manifest.sha256 not in train_report.artifacts.values():
        findings.append(
            Finding(
                rule,
                f"{model_path.name} (sha256 {manifest.sha256[:12]}...) is not the model the "
                "train gate saved in this run",
            )
        )
    return model, manifest
