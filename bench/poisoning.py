"""Poisoning benchmark: the data gate's detector vs cleanlab alone vs IsolationForest alone.

Run from the project root: ``python bench/poisoning.py`` (``--skip-scale`` / ``--only-scale``).
Injects, with fixed seeds, label flips (5/10/20%), far outliers with flipped labels (2/5%)
and a two-feature backdoor trigger beyond the range with a forced label (2/5%) into breast
cancer, wine, digits (3 vs 8, and all ten) and a synthetic set; prints precision, recall, F1
and seconds per detector side by side. Then the scale run: the whole data gate, as a
subprocess, on 1,000,000 x 20 synthetic rows (Parquet), with its time per check and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.config import DataPolicy  # noqa: E402 - needs ROOT on sys.path
from pipeline.poison import cleanlab_issues, oof_probabilities, screen  # noqa: E402
from pipeline.profile import build_profile  # noqa: E402

SEED = 20240601
FLIP_RATES = (0.05, 0.10, 0.20)
OUTLIER_RATES = (0.02, 0.05)
TRIGGER_RATES = (0.02, 0.05)
# "gate": every row any check flagged (what data.flagged.csv lists); "layer": only the gate's
# check aimed at the attack (label for flips; range + isolation for outliers and triggers).
DETECTORS = ("gate", "layer", "cleanlab", "iforest")


@dataclass(frozen=True)
class Case:
    """A dataset as numbers: standardizable features and integer labels."""

    name: str
    x: np.ndarray[Any, Any]
    y: np.ndarray[Any, Any]


def datasets() -> list[Case]:
    """The five benchmark sets, all from scikit-learn (no download)."""
    from sklearn.datasets import (
        load_breast_cancer,
        load_digits,
        load_wine,
        make_classification,
    )

    cancer = load_breast_cancer()
    wine = load_wine()
    digits = load_digits()
    pair = (digits.target == 3) | (digits.target == 8)
    sx, sy = make_classification(
        n_samples=3000,
        n_features=20,
        n_informative=8,
        n_redundant=4,
        n_classes=3,
        class_sep=1.5,
        flip_y=0.0,
        random_state=7,
    )
    return [
        Case("breast_cancer", cancer.data, cancer.target),
        Case("wine", wine.data, wine.target),
        Case("digits_3v8", digits.data[pair], (digits.target[pair] == 8).astype(int)),
        Case("digits_10", digits.data, digits.target),
        Case("synthetic_3c", sx, sy),
    ]


def _other_label(
    y: np.ndarray[Any, Any], rows: np.ndarray[Any, Any], n_classes: int, rng: Any
) -> Any:
    return (y[rows] + rng.integers(1, n_classes, rows.size)) % n_classes


def inject(
    case: Case, attack: str, rate: float, seed: int
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Return poisoned (x, y) and the boolean mask of poisoned rows."""
    rng = np.random.default_rng(seed)
    x, y = case.x.astype(float).copy(), case.y.copy()
    n, d = x.shape
    n_classes = int(y.max()) + 1
    truth = np.zeros(n, dtype=bool)
    if attack == "flip":
        rows = rng.choice(n, size=round(rate * n), replace=False)
        y[rows] = _other_label(y, rows, n_classes, rng)
    elif attack == "outlier":
        rows = rng.choice(n, size=max(1, round(rate * n)), replace=False)
        mean, std = case.x.mean(axis=0), case.x.std(axis=0)
        std[std == 0] = 1.0
        # Far: every feature 5-10 standard deviations from the mean, in a random direction.
        shift = rng.uniform(5, 10, (rows.size, d)) * rng.choice([-1.0, 1.0], (rows.size, d))
        x[rows] = mean + shift * std
        y[rows] = _other_label(y, rows, n_classes, rng)
    elif attack == "trigger":
        target = 0
        candidates = np.flatnonzero(case.y != target)
        rows = rng.choice(candidates, size=max(1, round(rate * n)), replace=False)
        spread = case.x.max(axis=0) - case.x.min(axis=0)
        columns = rng.choice(np.flatnonzero(spread > 0), size=2, replace=False)
        for j in columns:
            # Beyond the range: the maximum plus one full range (a constant trigger value).
            x[rows, j] = case.x[:, j].max() + spread[j]
        y[rows] = target
    else:
        msg = f"unknown attack {attack!r}"
        raise ValueError(msg)
    truth[rows] = True
    return x, y, truth


def contract_for(case: Case) -> DataPolicy:
    """A data contract for a numeric benchmark set, with the committed policy's check settings."""
    import tomllib

    committed = tomllib.loads((ROOT / "policy.toml").read_text(encoding="utf-8"))
    checks = committed["data"].get("checks", {})
    classes = [str(c) for c in sorted(set(case.y.tolist()))]
    return DataPolicy.model_validate(
        {
            "path": "bench.csv",
            "lock": "bench.lock.json",
            "label": "label",
            "classes": classes,
            "columns": {f"f{j:02d}": {"dtype": "float64"} for j in range(case.x.shape[1])},
            "checks": checks,
        }
    )


def frame_for(x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> pd.DataFrame:
    """The table the gate would see after its contract parse."""
    frame = pd.DataFrame(x, columns=[f"f{j:02d}" for j in range(x.shape[1])])
    frame["label"] = pd.Series(y.astype(str), dtype="string")
    return frame


def score(pred: np.ndarray[Any, Any], truth: np.ndarray[Any, Any]) -> tuple[float, float, float]:
    """Precision, recall, F1 (0 when undefined)."""
    tp = int((pred & truth).sum())
    precision = tp / int(pred.sum()) if pred.any() else 0.0
    recall = tp / int(truth.sum()) if truth.any() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def timed(function: Callable[[], np.ndarray[Any, Any]]) -> tuple[np.ndarray[Any, Any], float]:
    """Run a detector; return its mask and seconds."""
    start = time.perf_counter()
    mask = function()
    return mask, time.perf_counter() - start


def detectors(
    case: Case,
    contract: DataPolicy,
    x: np.ndarray[Any, Any],
    y: np.ndarray[Any, Any],
    *,
    layer: tuple[str, ...],
) -> dict[str, tuple[np.ndarray[Any, Any], float]]:
    """Run the gate's detector and both baselines on one poisoned set."""
    from sklearn.ensemble import IsolationForest

    reference = build_profile(frame_for(case.x, case.y), contract)
    frame = frame_for(x, y)
    n = len(y)
    checks = contract.checks

    layers: dict[str, np.ndarray[Any, Any]] = {}

    def gate() -> np.ndarray[Any, Any]:
        result = screen(frame, contract, reference=reference, seed=SEED)
        mask = np.zeros(n, dtype=bool)
        mask[result.flagged_rows()] = True
        aimed = np.zeros(n, dtype=bool)
        for flags in result.flags:
            if flags.check in layer:
                aimed[flags.rows] = True
        layers["layer"] = aimed
        return mask

    def standardized() -> np.ndarray[Any, Any]:
        std = x.std(axis=0)
        std[std == 0] = 1.0
        return (x - x.mean(axis=0)) / std

    def cleanlab_alone() -> np.ndarray[Any, Any]:
        # The usual recipe: out-of-fold probabilities of the same seeded, stratified model.
        probs = oof_probabilities(
            standardized(),
            y,
            n_classes=len(contract.classes),
            folds=checks.labels.folds,
            max_fit_rows=checks.labels.max_fit_rows,
            seed=SEED,
        )
        return cleanlab_issues(y, probs)

    def isolation_alone() -> np.ndarray[Any, Any]:
        forest = IsolationForest(random_state=SEED, n_jobs=1).fit(standardized())
        return np.asarray(forest.predict(standardized()) == -1)

    gate_result = timed(gate)
    return {
        "gate": gate_result,
        "layer": (layers["layer"], gate_result[1]),
        "cleanlab": timed(cleanlab_alone),
        "iforest": timed(isolation_alone),
    }


def run_matrix(out: list[str]) -> None:
    """Every dataset x attack x rate, three detectors side by side; then the clean runs."""
    header = f"{'dataset':<14} {'attack':<8} {'rate':>5} {'n':>4} | " + " | ".join(
        f"{d + ' P/R/F1':^19} {'s':>5}" for d in DETECTORS
    )
    emit(out, header)
    emit(out, "-" * len(header))
    attacks = [("flip", r) for r in FLIP_RATES]
    attacks += [("outlier", r) for r in OUTLIER_RATES]
    attacks += [("trigger", r) for r in TRIGGER_RATES]
    for number, case in enumerate(datasets()):
        contract = contract_for(case)
        for attack, rate in attacks:
            x, y, truth = inject(case, attack, rate, SEED + number)
            layer = ("label",) if attack == "flip" else ("range", "isolation")
            results = detectors(case, contract, x, y, layer=layer)
            cells = []
            for name in DETECTORS:
                mask, seconds = results[name]
                p, r, f = score(mask, truth)
                cells.append(f"{p:5.2f} {r:5.2f} {f:5.2f}     {seconds:5.2f}")
            emit(
                out,
                f"{case.name:<14} {attack:<8} {rate:>5.0%} {int(truth.sum()):>4} | "
                + " | ".join(cells),
            )
    emit(out, "")
    emit(
        out,
        "clean data (no injection): rows flagged per check, share vs its max, two runs identical?",
    )
    for case in datasets():
        contract = contract_for(case)
        frame = frame_for(case.x, case.y)
        reference = build_profile(frame, contract)
        first = screen(frame, contract, reference=reference, seed=SEED)
        second = screen(frame, contract, reference=reference, seed=SEED)
        same = all(
            np.array_equal(a.rows, b.rows) for a, b in zip(first.flags, second.flags, strict=True)
        )
        limits = {
            "duplicate": contract.checks.duplicates.max_exact_share,
            "conflicting_labels": contract.checks.duplicates.max_conflict_share,
            "range": contract.checks.range.max_share,
            "label": contract.checks.labels.max_share,
            "isolation": contract.checks.isolation.max_share,
        }
        parts = []
        fails = 0
        for flags in first.flags:
            share = flags.count / first.rows
            fails += share > limits[flags.check]
            parts.append(f"{flags.check}={flags.count}")
        drift = max((d.psi for d in first.drift), default=0.0)
        emit(
            out,
            f"  {case.name:<14} {len(frame):>5} rows: {', '.join(parts)}; max PSI {drift:.3f}; "
            f"checks over threshold: {fails}; identical: {same}",
        )


def run_scale(out: list[str], *, rows: int = 1_000_000, features: int = 20) -> None:
    """The whole data gate as a subprocess on a synthetic Parquet file; time per check, peak RSS."""
    from sklearn.datasets import make_classification

    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        root = Path(tmp)
        (root / "data").mkdir()
        start = time.perf_counter()
        x, y = make_classification(
            n_samples=rows, n_features=features, n_informative=10, random_state=SEED
        )
        names = [f"f{j:02d}" for j in range(features)]
        frame = pd.DataFrame(x, columns=names)
        frame.insert(0, "id", np.arange(1, rows + 1, dtype=np.int64))
        frame["label"] = np.where(y == 1, "b", "a")
        frame.to_parquet(root / "data" / "synthetic.parquet", index=False)
        emit(out, f"scale: generated {rows:,} x {features} in {time.perf_counter() - start:.1f}s")
        policy = (ROOT / "policy.toml").read_text(encoding="utf-8")
        checks = policy[policy.index("[data.checks]") :]
        columns = "\n".join(f'{n} = {{ dtype = "float64" }}' for n in names)
        (root / "policy.toml").write_text(
            "schema_version = 1\n\n[cv]\nfolds = 5\n[cv.thresholds.accuracy]\nmin_mean = 0.5\n\n"
            '[data]\npath = "data/synthetic.parquet"\nlock = "data/synthetic.lock.json"\n'
            'label = "label"\nclasses = ["a", "b"]\nid_column = "id"\nmax_rows = 2000000\n\n'
            f'[data.columns]\nid = {{ dtype = "int64", min = 1, unique = true }}\n{columns}\n\n'
            f"{checks}",
            encoding="utf-8",
        )
        env_path = {"PYTHONPATH": str(ROOT)}
        for step in (["data", "approve"], ["run", "data"]):
            start = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "gates", *step],
                cwd=root,
                env={**os.environ, **env_path},
                capture_output=True,
                text=True,
                check=False,
            )
            seconds = time.perf_counter() - start
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
            emit(
                out,
                f"scale: python -m gates {' '.join(step)}: exit {done.returncode}, "
                f"{seconds:.1f}s wall, peak RSS of the largest child so far {peak:.2f} GiB",
            )
            if done.returncode not in (0, 1):
                emit(out, done.stdout[-2000:] + done.stderr[-2000:])
        report = json.loads((root / "reports" / "data.json").read_text(encoding="utf-8"))
        emit(out, f"scale: gate status {report['status']}, {report['summary']}")
        emit(out, f"scale: gate duration (in-process) {report['duration_seconds']:.1f}s")
        for check, seconds in sorted(report["metrics"].get("seconds", {}).items()):
            emit(out, f"scale:   {check:<12} {seconds:7.2f}s")
        for check, info in sorted(report["metrics"].get("checks", {}).items()):
            emit(out, f"scale:   {check:<18} flagged {info['flagged']:>7} ({info['share']:.4%})")


def emit(out: list[str], line: str) -> None:
    """Print a line now and keep it for the results file."""
    print(line, flush=True)
    out.append(line)


def main() -> int:
    """Run the matrix and the scale run; write bench/results/poisoning.txt."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--only-scale", action="store_true")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "poisoning.txt")
    args = parser.parse_args()
    out: list[str] = []
    import platform

    import cleanlab
    import sklearn

    emit(
        out,
        f"python {platform.python_version()}, scikit-learn {sklearn.__version__}, "
        f"cleanlab {cleanlab.__version__}, seed {SEED}",
    )
    start = time.perf_counter()
    if not args.only_scale:
        run_matrix(out)
    if not args.skip_scale:
        emit(out, "")
        run_scale(out)
    emit(out, f"total {time.perf_counter() - start:.0f}s")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(out) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
