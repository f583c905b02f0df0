"""The ``risk`` gate: robustness to bounded perturbations and membership-inference exposure.

Rules: RISK001 robust accuracy at a norm and epsilon below ``[risk.robustness.<norm>]
.min_accuracy``; RISK002 robust accuracy falls below the champion's by more than
``[risk.robustness].max_drop``; RISK010 a membership attack's AUC above
``[risk.privacy].max_auc``; RISK011/RISK012 its TPR at 0.1% / 1% FPR above
``max_tpr_at_0_1pct_fpr`` / ``max_tpr_at_1pct_fpr``; RISK013 AUC or a TPR rises above the
champion's by more than ``max_auc_rise`` / ``max_tpr_rise``; RISK003 no feature is mutable
(an attacker who may change nothing is no measurement); RISK000 the policy has no
``[risk]`` table (the gate is registered, so it fails rather than pass unchecked); RISK020 the
model on disk is not the one the train gate saved, or the split differs; RISK021 (note) no
champion yet; RISK030 (note) a figure is an attack's, an upper bound on robust accuracy.

The measurements live in ``pipeline/risk.py`` (docs/model-risk.md); the champion is loaded as
the cv gate loads it (``gates.cv_threshold.load_champion``) and measured on this run's split.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from gates.base import Finding, Gate, GateError, Location, Outcome, Reads, RunContext, Severity
from gates.cv_threshold import champion_reads, load_champion, trained_model
from gates.data_integrity import quarantined_rows

if TYPE_CHECKING:
    from pipeline.config import LoadedPolicy, RiskPolicy
    from pipeline.risk import MembershipResult, RobustResult, Space
    from pipeline.train import Split

_EPSILON = 1e-9


class RiskGate(Gate):
    """Measure the saved model's robustness and privacy exposure against [risk]."""

    name: ClassVar[str] = "risk"
    description: ClassVar[str] = __doc__ or ""

    def reads(self, context: RunContext) -> Reads:
        """The data, the champion pointer, the audit log and its pinned head (``champion_reads``)."""
        return champion_reads(context)

    def run(self, context: RunContext) -> Outcome:
        """Measure, compare with every threshold and with the champion, write risk.json."""
        policy = context.policy.policy
        where = Location(path=context.policy.path.name)
        risk = policy.risk
        if risk is None:
            return Outcome.judge(
                [
                    Finding(
                        "RISK000",
                        "no [risk] table: robustness and privacy thresholds are required",
                        location=where,
                        policy_key="[risk]",
                    )
                ],
                passed="",
                failed="{first}",
            )
        from pipeline.risk import Space  # noqa: PLC0415
        from pipeline.train import prepare  # noqa: PLC0415

        train_report = context.read_report("train")
        _, split = prepare(context.policy, drop=quarantined_rows(context))
        findings: list[Finding] = []
        if split.digest != train_report.metrics.get("split_sha256"):
            findings.append(
                Finding(
                    "RISK020", "the holdout split differs from the one the model was trained on"
                )
            )
        model, manifest = trained_model(context, train_report, findings, rule="RISK020")
        space = Space.from_contract(policy.data.feature_columns, policy.data.columns, split.x_train)
        if not space.mutable.any():
            findings.append(
                Finding(
                    "RISK003",
                    "no feature is mutable (every numeric column is mutable = false or "
                    "constant; text and bool columns are held fixed): robustness would equal "
                    "clean accuracy without measuring anything",
                    location=where,
                    policy_key="[data.columns].mutable",
                )
            )
        ours = _measure(model, space, split, risk, seed=policy.run.seed, who="the candidate")
        findings.extend(_thresholds(ours, risk, where))
        champion = load_champion(context)
        comparison: dict[str, Any]
        if champion is None:
            note = (
                f"first run: no champion in {policy.release.registry_dir}/, nothing to compare "
                "against"
            )
            comparison = {"status": "none", "summary": note}
            findings.append(
                Finding(
                    "RISK021", note, severity=Severity.NOTE, policy_key="[release].registry_dir"
                )
            )
        else:
            version, their_model = champion
            theirs = _measure(
                their_model,
                space,
                split,
                risk,
                seed=policy.run.seed,
                who=f"champion {version.version}",
            )
            versus = _versus(ours, theirs, risk, where)
            findings.extend(versus)
            comparison = {
                "status": "compared",
                "version": version.version,
                "robustness": [r.to_dict() for r in theirs[0]],
                "privacy": [m.to_dict() for m in theirs[1]],
                "summary": f"champion {version.version}: "
                + (f"{len(versus)} regression(s)" if versus else "within tolerance"),
            }
        attacked = sorted({f"{r.norm}@{r.epsilon:g}" for r in ours[0] if r.method == "attack"})
        if attacked:
            findings.append(
                Finding(
                    "RISK030",
                    f"{manifest.estimator}: robust accuracy at {', '.join(attacked)} comes from "
                    "HopSkipJump, an upper bound (an attack may miss adversarial points)",
                    severity=Severity.NOTE,
                    policy_key="[risk.robustness].attack_max_iter",
                )
            )
        # The runner writes them to reports/risk.json, the gate's report.
        metrics = _metrics(ours, manifest.estimator, space, comparison)
        worst = min(ours[0], key=lambda r: r.accuracy)
        exposed = max(ours[1], key=lambda m: m.auc)
        return Outcome.judge(
            findings,
            passed=(
                f"robust accuracy >= {worst.accuracy:.3f} (worst: {worst.norm} eps {worst.epsilon:g},"
                f" {worst.method}); membership AUC <= {exposed.auc:.3f} ({exposed.attack}); "
                f"{comparison['summary']}"
            ),
            failed="{n} check(s) missed: {first}",
            metrics=metrics,
        )


def _measure(
    model: Any, space: Space, split: Split, risk: RiskPolicy, *, seed: int, who: str
) -> tuple[list[RobustResult], list[MembershipResult]]:
    from pipeline.risk import RiskError, measure_privacy, measure_robustness  # noqa: PLC0415

    # The numeric columns are attacked; text and bool columns ride along unchanged (held).
    x, y = space.numeric(split.x_holdout), split.y_holdout.to_numpy()
    held = space.held(split.x_holdout)
    try:
        robust = measure_robustness(model, space, x, y, risk.robustness, seed=seed, held=held)
        privacy = measure_privacy(
            model,
            space.order,
            (split.x_train, split.y_train.to_numpy()),
            (split.x_holdout, y),
            seed=seed,
        )
    except RiskError as err:
        msg = f"{who}: cannot measure model risk: {err}"
        raise GateError(msg) from None
    return robust, privacy


def _thresholds(
    ours: tuple[list[RobustResult], list[MembershipResult]], risk: RiskPolicy, where: Location
) -> list[Finding]:
    findings: list[Finding] = []
    for result in ours[0]:
        bar = getattr(risk.robustness, result.norm)
        limit = bar.min_accuracy[list(bar.epsilons).index(result.epsilon)]
        if result.accuracy < limit - _EPSILON:
            findings.append(
                Finding(
                    "RISK001",
                    f"{result.norm} eps {result.epsilon:g}: {result.method} accuracy "
                    f"{result.accuracy:.4f} < {limit:.4f}",
                    location=where,
                    observed=f"{result.accuracy:.6f}",
                    threshold=f"{limit}",
                    policy_key=f"[risk.robustness.{result.norm}].min_accuracy",
                )
            )
    privacy = risk.privacy
    for attack in ours[1]:
        checks = (
            ("RISK010", "AUC", attack.auc, privacy.max_auc, "max_auc"),
            (
                "RISK011",
                "TPR at 0.1% FPR",
                attack.tpr[0.001],
                privacy.max_tpr_at_0_1pct_fpr,
                "max_tpr_at_0_1pct_fpr",
            ),
            (
                "RISK012",
                "TPR at 1% FPR",
                attack.tpr[0.01],
                privacy.max_tpr_at_1pct_fpr,
                "max_tpr_at_1pct_fpr",
            ),
        )
        for rule, what, value, limit, key in checks:
            if value > limit + _EPSILON:
                findings.append(
                    Finding(
                        rule,
                        f"membership ({attack.attack}): {what} {value:.4f} > {limit:.4f}",
                        location=where,
                        observed=f"{value:.6f}",
                        threshold=f"{limit}",
                        policy_key=f"[risk.privacy].{key}",
                    )
                )
    return findings


def _versus(
    ours: tuple[list[RobustResult], list[MembershipResult]],
    theirs: tuple[list[RobustResult], list[MembershipResult]],
    risk: RiskPolicy,
    where: Location,
) -> list[Finding]:
    findings: list[Finding] = []
    best = {(r.norm, r.epsilon): r for r in theirs[0]}
    for result in ours[0]:
        champion = best.get((result.norm, result.epsilon))
        if champion is None:
            continue
        drop = champion.accuracy - result.accuracy
        if drop > risk.robustness.max_drop + _EPSILON:
            findings.append(
                Finding(
                    "RISK002",
                    f"{result.norm} eps {result.epsilon:g}: accuracy {result.accuracy:.4f} vs "
                    f"champion {champion.accuracy:.4f}: a drop of {drop:.4f} > "
                    f"{risk.robustness.max_drop:.4f}",
                    location=where,
                    observed=f"{-drop:+.6f}",
                    threshold=f"-{risk.robustness.max_drop}",
                    policy_key="[risk.robustness].max_drop",
                )
            )
    previous = {m.attack: m for m in theirs[1]}
    privacy = risk.privacy
    for attack in ours[1]:
        champion_attack = previous.get(attack.attack)
        if champion_attack is None:
            continue
        rises = [("AUC", attack.auc, champion_attack.auc, privacy.max_auc_rise, "max_auc_rise")]
        rises.extend(
            (
                f"TPR at {f * 100:g}% FPR",
                attack.tpr[f],
                champion_attack.tpr[f],
                privacy.max_tpr_rise,
                "max_tpr_rise",
            )
            for f in attack.tpr
        )
        for what, value, before, limit, key in rises:
            if value - before > limit + _EPSILON:
                findings.append(
                    Finding(
                        "RISK013",
                        f"membership ({attack.attack}): {what} {value:.4f} vs champion "
                        f"{before:.4f}: a rise of {value - before:.4f} > {limit:.4f}",
                        location=where,
                        observed=f"{value - before:+.6f}",
                        threshold=f"+{limit}",
                        policy_key=f"[risk.privacy].{key}",
                    )
                )
    return findings


def _metrics(
    ours: tuple[list[RobustResult], list[MembershipResult]],
    estimator: str,
    space: Space,
    comparison: dict[str, Any],
) -> dict[str, Any]:
    return {
        "estimator": estimator,
        "units": "standardized (training-split standard deviation per feature)",
        "mutable_features": [c for c, m in zip(space.columns, space.mutable, strict=True) if m],
        "held_fixed_features": list(space.fixed),
        "robustness": [r.to_dict() for r in ours[0]],
        "privacy": [m.to_dict() for m in ours[1]],
        "champion": comparison,
    }


def measure_model(
    loaded: LoadedPolicy, model: Any, split: Split, risk: RiskPolicy, *, who: str
) -> tuple[list[RobustResult], list[MembershipResult]]:
    """Measure ``model`` on ``split`` exactly as the gate measures a candidate (``gates init``
    proposes the ``[risk]`` bars from a baseline this way)."""
    from pipeline.risk import Space  # noqa: PLC0415

    policy = loaded.policy
    space = Space.from_contract(policy.data.feature_columns, policy.data.columns, split.x_train)
    return _measure(model, space, split, risk, seed=policy.run.seed, who=who)
