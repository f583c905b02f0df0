"""Model-risk benchmark: our robustness and privacy figures against ART's own attacks.

Run from the project root: ``python bench/risk.py`` (``--skip-chain`` leaves out the timed chain).
On the embedded breast-cancer data, with the committed policy's split, epsilons and thresholds:

1. Robustness, side by side with the time of each: the gate's figure (certified for logistic
   regression, clique-verified for the random forest, HopSkipJump otherwise) against ART's
   HopSkipJump (black box) and, for logistic regression, ART's projected gradient descent
   (white box, on the classifier in standardized units). The certified figure must never be
   above any attack's accuracy: the script exits 1 when it is.
2. Membership inference: AUC and TPR at 0.1% / 1% FPR of the gate's two attacks on the default
   logistic regression, an overfit forest (no depth limit, trained on a quarter of the training
   rows) and a differentially private logistic regression at epsilon 1, each judged with the
   committed [risk.privacy] thresholds.
3. Adversarial training: certified accuracy at every epsilon before and after
   ``[model].adversarial_epsilon`` (the policy's middle L-inf epsilon), and the clean cost.
4. The risk gate's time against a whole chain run (``python -m gates run --no-cache`` on a copy).

diffprivlib 0.6.6 cannot be imported with the locked scikit-learn (docs/model-risk.md), so the
DP model here is output perturbation (Chaudhuri, Monteleoni & Sarwate 2011, Algorithm 1) written
in this file: features mapped to [-1, 1] by the contract's ranges (no data-dependent scaling),
rows scaled to norm <= 1, L2-regularised logistic loss, Laplace-like noise of L2 sensitivity
``2 / (n lambda)``. It is a benchmark reference, not a model family of the pipeline.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gates.registry import NAMES  # noqa: E402
from pipeline.config import LoadedPolicy, ModelPolicy, load_policy  # noqa: E402
from pipeline.model import build_estimator  # noqa: E402
from pipeline.risk import (  # noqa: E402
    AttackBudget,
    MembershipResult,
    RobustResult,
    Space,
    attack_accuracy,
    budgets,
    measure_privacy,
    measure_robustness,
    quiet_art,
    seeded,
)
from pipeline.train import adversarial_refit, prepare  # noqa: E402

LINES: list[str] = []


def say(line: str = "") -> None:
    """Print a line now and keep it for the results file."""
    print(line, flush=True)
    LINES.append(line)


def pgd_accuracy(
    model: Any,
    space: Space,
    rows: tuple[np.ndarray, np.ndarray],
    *,
    norm: str,
    eps: float,
    seed: int,
) -> tuple[float, float]:
    """ART's projected gradient descent on the logistic regression, in standardized units."""
    with quiet_art():
        from art.attacks.evasion import ProjectedGradientDescent
        from art.estimators.classification.scikitlearn import ScikitlearnLogisticRegression

    start = time.perf_counter()
    x, y = rows
    scaler, classifier = model.steps[0][1], model.steps[-1][1]
    z = scaler.transform(pd.DataFrame(x, columns=list(space.columns)))
    ratio = space.sigma / scaler.scale_  # 1.0 here: the scaler's unit is the training std
    lo = np.where(np.isfinite(space.lower), (space.lower - scaler.mean_) / scaler.scale_, -1e6)
    hi = np.where(np.isfinite(space.upper), (space.upper - scaler.mean_) / scaler.scale_, 1e6)
    art_model = ScikitlearnLogisticRegression(
        classifier, clip_values=(np.minimum(lo, z.min(0)), np.maximum(hi, z.max(0)))
    )
    labels = np.array([list(classifier.classes_).index(v) for v in y])
    attack = ProjectedGradientDescent(
        art_model,
        norm=np.inf if norm == "linf" else 2,
        eps=eps * float(np.max(ratio)),
        eps_step=eps / 10,
        max_iter=50,
        num_random_init=1,
        verbose=False,
    )
    with seeded(seed):
        adv = attack.generate(z.astype(np.float32), y=np.eye(len(classifier.classes_))[labels])
    accuracy = float((classifier.predict(adv) == y).mean())
    return accuracy, time.perf_counter() - start


def robustness(
    policy: LoadedPolicy, split: Any, space: Space, *, quick: bool, attack_rows: int
) -> bool:
    """Section 1; False when a certified figure is above an attack's accuracy."""
    settings = policy.policy
    risk = settings.risk
    assert risk is not None
    x, y = split.x_holdout.to_numpy(dtype=float), split.y_holdout.to_numpy()
    pairs = budgets(risk.robustness)
    budget = AttackBudget(max_iter=10 if quick else 20, max_eval=200 if quick else 500)
    families = {
        "logistic_regression": ModelPolicy(params={"C": 1.0, "max_iter": 1000}),
        "random_forest": ModelPolicy(estimator="random_forest", params={"n_estimators": 100}),
        "hist_gradient_boosting": ModelPolicy(estimator="hist_gradient_boosting"),
    }
    say("## 1. Robust accuracy on the holdout (114 rows), standardized units")
    say(
        f"HopSkipJump budget: max_iter={budget.max_iter}, max_eval={budget.max_eval}, seeded; "
        f"non-linear models: {attack_rows} sampled rows"
    )
    say(
        f"{'model':<24}{'norm':<6}{'eps':>6}  {'gate figure':>22}  {'ART HSJ':>14}  {'ART PGD':>14}"
    )
    sound = True
    for name, model_policy in families.items():
        model = build_estimator(model_policy, seed=settings.run.seed).fit(
            split.x_train, split.y_train
        )
        # HopSkipJump on a non-linear model is slow (a forest answers each query with 100
        # trees): it sees a seeded sample of ``attack_rows`` rows; the other figures all rows.
        xs, ys = x, y
        if name != "logistic_regression" and attack_rows < len(x):
            rows = np.sort(np.random.default_rng(settings.run.seed).permutation(len(x)))
            rows = np.sort(rows[:attack_rows])
            xs, ys = x[rows], y[rows]
        if name == "hist_gradient_boosting":
            ours = measure_robustness(
                model,
                space,
                xs,
                ys,
                risk.robustness.model_copy(update={"attack_max_rows": attack_rows}),
                seed=settings.run.seed,
            )
            hsj: list[RobustResult] = ours  # the gate's figure is this very attack
        else:
            ours = measure_robustness(model, space, x, y, risk.robustness, seed=settings.run.seed)
            hsj = attack_accuracy(
                model, space, xs, ys, norms_eps=pairs, budget=budget, seed=settings.run.seed
            )
        for mine, theirs in zip(ours, hsj, strict=True):
            pgd = "-"
            if name == "logistic_regression":
                acc, secs = pgd_accuracy(
                    model, space, (x, y), norm=mine.norm, eps=mine.epsilon, seed=settings.run.seed
                )
                pgd = f"{acc:.3f} ({secs:5.1f}s)"
                if mine.accuracy > min(acc, theirs.accuracy) + 1e-12:
                    sound = False
                    pgd += "  <-- CERTIFIED ABOVE AN ATTACK"
            say(
                f"{name:<24}{mine.norm:<6}{mine.epsilon:>6g}  "
                f"{mine.accuracy:.3f} {mine.method:<9}({mine.seconds:5.2f}s)  "
                f"{theirs.accuracy:.3f} ({theirs.seconds:5.1f}s, {theirs.rows} rows)  {pgd:>14}"
            )
    say("(HSJ seconds are per norm: one attack run serves every epsilon of that norm)")
    say(f"certified <= every attack for logistic regression: {'yes' if sound else 'NO'}")
    return sound


def dp_logistic_regression(
    policy: LoadedPolicy, x: pd.DataFrame, y: pd.Series, *, epsilon: float, c: float, seed: int
) -> Any:
    """Output-perturbation DP logistic regression (see the module docstring)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    columns = policy.policy.data.columns
    lo = np.array([columns[c_].min for c_ in x.columns], dtype=float)
    hi = np.array([columns[c_].max for c_ in x.columns], dtype=float)
    d = x.shape[1] + 1  # plus the constant column standing in for the intercept

    def to_unit(values: Any) -> np.ndarray:
        u = 2 * (np.asarray(values, dtype=float) - lo) / (hi - lo) - 1
        u = np.hstack([u, np.ones((len(u), 1))])
        return np.asarray(u / np.sqrt(d), dtype=float)  # every row has norm <= 1

    fitted = LogisticRegression(C=c, fit_intercept=False, max_iter=5000).fit(to_unit(x), y)
    # sklearn minimises C * sum(loss) + ||w||^2 / 2, i.e. lambda = 1 / (n C) per Chaudhuri et
    # al.; the L2 sensitivity of the minimiser is 2 / (n lambda) = 2 C.
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=d)
    direction /= np.linalg.norm(direction)
    noise = direction * rng.gamma(shape=d, scale=2 * c / epsilon)
    fitted.coef_ = fitted.coef_ + noise
    return Pipeline([("unit", FunctionTransformer(to_unit)), ("classifier", fitted)])


def privacy(policy: LoadedPolicy, split: Any, space: Space) -> bool:
    """Section 2; False when the committed thresholds do not separate the three models."""
    settings = policy.policy
    risk = settings.risk
    assert risk is not None
    seed = settings.run.seed
    bars = risk.privacy
    small = split.x_train.sample(frac=0.25, random_state=seed).index
    models = {
        "default logistic regression": (
            build_estimator(settings.model, seed=seed).fit(split.x_train, split.y_train),
            split.x_train,
            split.y_train,
        ),
        "overfit forest (1/4 of rows, no depth limit)": (
            build_estimator(
                ModelPolicy(
                    estimator="random_forest",
                    scale=False,
                    params={"n_estimators": 300, "bootstrap": False},
                ),
                seed=seed,
            ).fit(split.x_train.loc[small], split.y_train.loc[small]),
            split.x_train.loc[small],
            split.y_train.loc[small],
        ),
        "DP logistic regression, epsilon 1": (
            dp_logistic_regression(
                policy, split.x_train, split.y_train, epsilon=1.0, c=1.0, seed=seed
            ),
            split.x_train,
            split.y_train,
        ),
    }
    say()
    say("## 2. Membership inference (members: the model's training rows; others: the holdout)")
    say(
        f"thresholds: AUC <= {bars.max_auc}, TPR@0.1% <= {bars.max_tpr_at_0_1pct_fpr}, "
        f"TPR@1% <= {bars.max_tpr_at_1pct_fpr}"
    )
    say(f"{'model':<46}{'attack':<16}{'AUC':>7}{'TPR@0.1%':>10}{'TPR@1%':>9}  verdict")
    verdicts = {}
    y_hold = split.y_holdout.to_numpy()
    for name, (model, x_in, y_in) in models.items():
        accuracy = float((model.predict(split.x_holdout) == y_hold).mean())
        results: list[MembershipResult] = measure_privacy(
            model, space.columns, (x_in, y_in.to_numpy()), (split.x_holdout, y_hold), seed=seed
        )
        passed = all(
            r.auc <= bars.max_auc
            and r.tpr[0.001] <= bars.max_tpr_at_0_1pct_fpr
            and r.tpr[0.01] <= bars.max_tpr_at_1pct_fpr
            for r in results
        )
        verdicts[name] = passed
        for r in results:
            say(
                f"{name:<46}{r.attack:<16}{r.auc:>7.3f}{r.tpr[0.001]:>10.3f}{r.tpr[0.01]:>9.3f}"
                f"  {'PASS' if passed else 'FAIL'} (holdout accuracy {accuracy:.3f}, "
                f"{r.members} members / {r.non_members} others, {r.seconds:.2f}s)"
            )
    separated = verdicts == {
        "default logistic regression": True,
        "overfit forest (1/4 of rows, no depth limit)": False,
        "DP logistic regression, epsilon 1": True,
    }
    say(f"the committed thresholds separate them as expected: {'yes' if separated else 'NO'}")
    say(
        "TPR at 0.1% FPR: the holdout has 114 rows, so FPR moves in steps of 1/114 (0.88%); the "
        "figure interpolates between FPR 0 and that step (a randomised threshold)."
    )
    return separated


def adversarial_training(policy: LoadedPolicy, split: Any, space: Space) -> None:
    """Section 3."""
    settings = policy.policy
    risk = settings.risk
    assert risk is not None
    assert risk.robustness.linf is not None
    eps = sorted(risk.robustness.linf.epsilons)[len(risk.robustness.linf.epsilons) // 2]
    x, y = split.x_holdout.to_numpy(dtype=float), split.y_holdout.to_numpy()
    plain = build_estimator(settings.model, seed=settings.run.seed).fit(
        split.x_train, split.y_train
    )
    trained_policy = LoadedPolicy(
        policy.path,
        settings.model_copy(
            update={"model": settings.model.model_copy(update={"adversarial_epsilon": eps})}
        ),
        policy.sha256,
    )
    start = time.perf_counter()
    robust = adversarial_refit(trained_policy, plain, split.x_train, split.y_train)
    seconds = time.perf_counter() - start
    say()
    say(f"## 3. Adversarial training (exact L-inf worst-case loss at eps {eps:g})")
    say(f"refit time {seconds:.2f}s")
    clean_before = float((plain.predict(split.x_holdout) == y).mean())
    clean_after = float((robust.predict(split.x_holdout) == y).mean())
    say(
        f"clean holdout accuracy {clean_before:.3f} -> {clean_after:.3f} "
        f"(cost {clean_before - clean_after:+.3f})"
    )
    before = measure_robustness(plain, space, x, y, risk.robustness, seed=settings.run.seed)
    after = measure_robustness(robust, space, x, y, risk.robustness, seed=settings.run.seed)
    for b, a in zip(before, after, strict=True):
        say(f"  {b.norm:<5}eps {b.epsilon:<5g} certified {b.accuracy:.3f} -> {a.accuracy:.3f}")


def chain_time() -> None:
    """Section 4: a whole chain, without the cache, on a copy of the committed tree."""
    git = shutil.which("git") or "git"
    tracked = subprocess.run(
        [git, "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True
    ).stdout.split(b"\0")
    # A sibling of the project, so that the policy's "../shared/advisory-db" still resolves.
    with tempfile.TemporaryDirectory(dir=ROOT.parent, prefix="risk-bench-") as scratch:
        copy = Path(scratch)
        for name in filter(None, tracked):
            source, target = ROOT / name.decode(), copy / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_file():
                target.write_bytes(source.read_bytes())
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "gates", "run", "--no-cache"],
            cwd=copy,
            check=False,
            capture_output=True,
        )
        wall = time.perf_counter() - start
        seconds = {}
        verdict = json.loads((copy / "reports" / "gate.json").read_text(encoding="utf-8"))
        if verdict["status"] != "PASSED":
            say(f"the chain did not pass: {verdict['summary']}")
        for gate in NAMES:
            report = copy / "reports" / f"{gate}.json"
            if report.is_file():
                seconds[gate] = float(
                    json.loads(report.read_text(encoding="utf-8"))["duration_seconds"]
                )
    total = sum(seconds.values())
    say()
    say("## 4. The risk gate's time in a whole chain (python -m gates run --no-cache)")
    say("  " + ", ".join(f"{g} {s:.2f}s" for g, s in seconds.items()))
    say(
        f"risk {seconds.get('risk', float('nan')):.2f}s of {total:.2f}s in gates "
        f"({wall:.1f}s wall): {100 * seconds.get('risk', 0) / total:.1f}% (bar: 25%)"
    )


def main() -> int:
    """Run every section and write bench/results/risk.txt."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--skip-chain", action="store_true", help="leave out section 4")
    parser.add_argument("--skip-robustness", action="store_true", help="leave out section 1")
    parser.add_argument("--quick", action="store_true", help="smaller HopSkipJump budget")
    parser.add_argument(
        "--attack-rows", type=int, default=40, help="rows HopSkipJump attacks on non-linear models"
    )
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "risk.txt")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)
    policy = load_policy(ROOT / "policy.toml")
    _, split = prepare(policy)
    space = Space.from_contract(
        policy.policy.data.feature_columns, policy.policy.data.columns, split.x_train
    )
    sound = args.skip_robustness or robustness(
        policy, split, space, quick=args.quick, attack_rows=args.attack_rows
    )
    separated = privacy(policy, split, space)
    adversarial_training(policy, split, space)
    if not args.skip_chain:
        chain_time()
    args.output.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")
    return 0 if sound and separated else 1


if __name__ == "__main__":
    raise SystemExit(main())
