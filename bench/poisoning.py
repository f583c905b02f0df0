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
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.config import DataPolicy  # noqa: E402 - needs ROOT on sys.path
from pipeline.poison import (  # noqa: E402
    cleanlab_issues,
    knn_probabilities,
    label_baseline,
    near_baseline,
    oof_probabilities,
    screen,
)
from pipeline.profile import DataProfile, build_profile, row_digests  # noqa: E402

SEED = 20240601
# The seed of the data: each set's table/holdout split, its approved rows in the batch setting
# and every injection. ``--seed`` changes it for a held-out run (the thresholds were chosen on
# SEED); the detectors keep SEED.
DATA_SEED = SEED
FLIP_RATES = (0.05, 0.10, 0.20)
OUTLIER_RATES = (0.02, 0.05)
TRIGGER_RATES = (0.02, 0.05)
# "gate": every row any check flagged (what data.flagged.csv lists, batch checks included).
BASELINES = ("cleanlab", "knn10", "iforest")


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


def inject(  # noqa: PLR0912, PLR0915 - one branch per attack
    case: Case,
    attack: str,
    rate: float,
    seed: int,
    *,
    rows_from: np.ndarray[Any, Any] | None = None,
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Return poisoned (x, y) and the boolean mask of poisoned rows.

    ``rate`` is a share of all rows; ``rows_from`` restricts the poisoned rows to those (the
    new rows of a batch). Attacks:

    - ``flip``: random rows, label set to another class at random;
    - ``boundary``: the rows closest to a logistic regression's decision boundary (smallest
      gap between its two most likely classes), label set to the runner-up class;
    - ``classflip``: rows of class 0 relabelled as class 1 (at most half of class 0);
    - ``region``: the rows nearest one random anchor (standardized), relabelled to one class;
    - ``outlier``: every feature 5-10 SD from the mean, random sign, label flipped;
    - ``trigger``: two features set to max + one full range, label forced to class 0;
    - ``inrange``: two features set to a rare but valid combination (one at its 95th percentile,
      the other at its 5th), label forced to class 0, on rows of other classes;
    - ``nearrange``: two features just past the approved maximum (+10% of the range, inside the
      25% margin), label forced to class 0, on rows of other classes;
    - ``shift``: rows of class 1 (``rate`` of all rows, at least 5% of the class) moved half a
      standard deviation on every feature towards class 0's mean;
    - ``burst``: one row of class 1 copied ``rate`` x n times with jitter of 1% of a standard
      deviation per feature, every copy labelled class 0.
    """
    rng = np.random.default_rng(seed)
    x, y = case.x.astype(float).copy(), case.y.copy()
    n, d = x.shape
    n_classes = int(y.max()) + 1
    truth = np.zeros(n, dtype=bool)
    pool = np.arange(n) if rows_from is None else np.asarray(rows_from)
    count = max(1, round(rate * n))
    std = case.x.std(axis=0)
    std[std == 0] = 1.0
    spread = case.x.max(axis=0) - case.x.min(axis=0)
    if attack == "flip":
        rows = rng.choice(pool, size=count, replace=False)
        y[rows] = _other_label(y, rows, n_classes, rng)
    elif attack == "boundary":
        probs = _clean_model(case).predict_proba((case.x - case.x.mean(axis=0)) / std)
        ranked = np.sort(probs, axis=1)
        gap = ranked[:, -1] - ranked[:, -2]
        runner_up = probs.copy()
        runner_up[np.arange(n), y] = -1.0
        order = pool[np.argsort(gap[pool], kind="stable")]
        rows = order[:count]
        y[rows] = runner_up[rows].argmax(axis=1)
    elif attack == "classflip":
        candidates = pool[y[pool] == 0]
        rows = rng.choice(candidates, size=min(count, candidates.size // 2), replace=False)
        y[rows] = 1
    elif attack == "region":
        xs = (case.x - case.x.mean(axis=0)) / std
        anchor = rng.choice(pool)
        order = pool[np.argsort(((xs[pool] - xs[anchor]) ** 2).sum(axis=1), kind="stable")]
        target = (y[anchor] + 1) % n_classes
        rows = order[:count]
        rows = rows[y[rows] != target]
        y[rows] = target
    elif attack == "outlier":
        rows = rng.choice(pool, size=count, replace=False)
        mean = case.x.mean(axis=0)
        shift = rng.uniform(5, 10, (rows.size, d)) * rng.choice([-1.0, 1.0], (rows.size, d))
        x[rows] = mean + shift * std
        y[rows] = _other_label(y, rows, n_classes, rng)
    elif attack in ("trigger", "inrange", "nearrange"):
        candidates = pool[case.y[pool] != 0]
        rows = rng.choice(candidates, size=min(count, candidates.size), replace=False)
        columns = rng.choice(np.flatnonzero(spread > 0), size=2, replace=False)
        for number, j in enumerate(columns):
            if attack == "trigger":
                x[rows, j] = case.x[:, j].max() + spread[j]
            elif attack == "nearrange":
                x[rows, j] = case.x[:, j].max() + 0.1 * spread[j]
            else:
                x[rows, j] = np.quantile(case.x[:, j], 0.95 if number == 0 else 0.05)
        y[rows] = 0
    elif attack == "shift":
        members = pool[y[pool] == 1]
        size = min(members.size, max(count, round(0.05 * int((case.y == 1).sum()))))
        rows = rng.choice(members, size=size, replace=False)
        direction = np.sign(case.x[case.y == 0].mean(axis=0) - case.x[case.y == 1].mean(axis=0))
        x[rows] += 0.5 * std * direction
    elif attack == "burst":
        source = rng.choice(pool[y[pool] == 1])
        rows = rng.choice(pool[pool != source], size=count, replace=False)
        x[rows] = case.x[source] + rng.normal(0.0, 0.01, (rows.size, d)) * std
        y[rows] = 0
    else:
        msg = f"unknown attack {attack!r}"
        raise ValueError(msg)
    truth[rows] = True
    return x, y, truth


def _clean_model(case: Case) -> Any:
    from sklearn.linear_model import LogisticRegression

    std = case.x.std(axis=0)
    std[std == 0] = 1.0
    return LogisticRegression(max_iter=1000).fit((case.x - case.x.mean(axis=0)) / std, case.y)


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
            "id_column": "id",
            "columns": {
                "id": {"dtype": "int64", "unique": True},
                **{f"f{j:02d}": {"dtype": "float64"} for j in range(case.x.shape[1])},
            },
            "checks": checks,
        }
    )


def frame_for(x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> pd.DataFrame:
    """The table the gate would see after its contract parse."""
    frame = pd.DataFrame(x, columns=[f"f{j:02d}" for j in range(x.shape[1])])
    frame.insert(0, "id", np.arange(1, len(y) + 1, dtype=float))
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


def _standardized(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    std = x.std(axis=0)
    std[std == 0] = 1.0
    return (x - x.mean(axis=0)) / std


def reference_for(case: Case, contract: DataPolicy) -> DataProfile:
    """The approved snapshot's profile with its label rates, as ``data approve`` records it."""
    frame = frame_for(case.x, case.y)
    profile = build_profile(frame, contract)
    return replace(
        profile,
        label_rates=label_baseline(frame, contract, seed=SEED),
        near_copies=near_baseline(frame, contract, reference=profile, seed=SEED),
    )


@dataclass(frozen=True)
class Verdict:
    """The gate's flagged rows and whether it fails the table (any error finding)."""

    mask: np.ndarray[Any, Any]
    fails: bool
    rules: tuple[str, ...]
    seconds: float


def gate_verdict(
    contract: DataPolicy,
    reference: DataProfile,
    x: np.ndarray[Any, Any],
    y: np.ndarray[Any, Any],
    *,
    approved: np.ndarray[Any, Any] | None,
) -> Verdict:
    """What the data gate flags and decides on this table; with ``approved``, the batch setting."""
    from gates.base import Severity
    from gates.data_integrity import Approval, DataGate, judge_batch, screen_new_rows, trend_rows

    start = time.perf_counter()
    frame = frame_for(x, y)
    batch = trend = None
    if approved is not None:
        digests = row_digests(frame, contract)
        ids = list(digests)
        trusted = {i: digests[i] for i, ok in zip(ids, approved, strict=True) if ok}
        approval = Approval(reference, trusted, "bench", trusted=True)
        batch, _ = screen_new_rows(frame, contract, approval, seed=SEED)
        trend = trend_rows(frame, contract, approval, batch=batch)
    # As the gate does: the batch screen first, so that the whole-table label check knows
    # which rows are approved.
    result = screen(
        frame,
        contract,
        reference=reference,
        seed=SEED,
        approved_rows=batch.approved_rows if batch is not None else None,
        batch_rows=batch.explaining_rows() if batch is not None else None,
        cleared_rows=batch.cleared_rows if batch is not None else None,
        trend_rows=trend,
    )
    findings = DataGate.judge(result, contract, "bench.csv")
    mask = np.zeros(len(y), dtype=bool)
    mask[result.flagged_rows()] = True
    if batch is not None:
        findings += judge_batch(batch, contract, "bench.csv", source="bench", trusted=True)
        mask[batch.flagged_rows()] = True
    errors = tuple(sorted({f.rule for f in findings if f.severity is Severity.ERROR}))
    return Verdict(mask, bool(errors), errors, time.perf_counter() - start)


def baselines(
    contract: DataPolicy, x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]
) -> dict[str, tuple[np.ndarray[Any, Any], float]]:
    """cleanlab (out-of-fold scaled logistic regression), kNN-10 disagreement, IsolationForest."""
    from sklearn.ensemble import IsolationForest

    checks = contract.checks
    xs = _standardized(x)

    def cleanlab_alone() -> np.ndarray[Any, Any]:
        probs = oof_probabilities(
            xs,
            y,
            n_classes=len(contract.classes),
            folds=checks.labels.folds,
            max_fit_rows=checks.labels.max_fit_rows,
            seed=SEED,
        )
        return cleanlab_issues(y, probs)

    def knn_alone() -> np.ndarray[Any, Any]:
        votes = knn_probabilities(
            xs, y, n_classes=len(contract.classes), neighbors=10, max_index_rows=len(y), seed=SEED
        )
        return np.asarray(votes[np.arange(len(y)), y] < 0.5)

    def isolation_alone() -> np.ndarray[Any, Any]:
        forest = IsolationForest(random_state=SEED, n_jobs=1).fit(xs)
        return np.asarray(forest.predict(xs) == -1)

    return {
        "cleanlab": timed(cleanlab_alone),
        "knn10": timed(knn_alone),
        "iforest": timed(isolation_alone),
    }


def holdout_accuracy(
    x: np.ndarray[Any, Any],
    y: np.ndarray[Any, Any],
    keep: np.ndarray[Any, Any],
    hold_x: np.ndarray[Any, Any],
    hold_y: np.ndarray[Any, Any],
) -> float:
    """Accuracy on the clean holdout of a scaled logistic regression trained on ``keep`` rows."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        model.fit(x[keep], y[keep])
        return float((model.predict(hold_x) == hold_y).mean())


ATTACKS: tuple[tuple[str, float], ...] = (
    *(("flip", r) for r in FLIP_RATES),
    ("boundary", 0.05),
    ("boundary", 0.10),
    ("classflip", 0.05),
    ("classflip", 0.10),
    ("region", 0.05),
    ("region", 0.10),
    *(("outlier", r) for r in OUTLIER_RATES),
    *(("trigger", r) for r in TRIGGER_RATES),
    ("inrange", 0.03),
    ("nearrange", 0.03),
    ("shift", 0.05),
    ("burst", 0.02),
)
LABEL_ATTACKS = ("flip", "boundary", "classflip", "region")
# Share of the (non-holdout) table that is approved in the batch setting; the rest is new.
APPROVED_SHARE = 0.7


def split(case: Case, number: int) -> tuple[Case, np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """A seeded, stratified 80/20 split: the table to poison, and a clean holdout."""
    from sklearn.model_selection import train_test_split

    rows = np.arange(len(case.y))
    table, hold = train_test_split(
        rows, test_size=0.2, stratify=case.y, random_state=DATA_SEED + number
    )
    table = np.sort(table)
    return Case(case.name, case.x[table], case.y[table]), case.x[hold], case.y[hold]


def run_matrix(
    out: list[str],
    *,
    settings: tuple[str, ...],
    only: set[str] | None,
    sets: set[str] | None = None,
) -> None:
    """Every dataset x attack x setting: the gate and three baselines side by side, with impact."""
    header = (
        f"{'dataset':<13} {'setting':<5} {'attack':<9} {'rate':>4} {'n':>4} | "
        f"{'gate P/R/F1':^16} {'fail':>4} | "
        + " | ".join(f"{d + ' P/R/F1':^16}" for d in BASELINES)
        + f" | {'acc poisoned -> cleaned':>23} | {'gate s':>6}"
    )
    emit(out, header)
    emit(out, "-" * len(header))
    for number, full in enumerate(datasets()):
        if sets is not None and full.name not in sets:
            continue
        case, hold_x, hold_y = split(full, number)
        contract = contract_for(case)
        reference = reference_for(case, contract)
        n = len(case.y)
        approved = np.zeros(n, dtype=bool)
        approved[
            np.random.default_rng(DATA_SEED + number).permutation(n)[: round(APPROVED_SHARE * n)]
        ] = True
        for attack, rate in ATTACKS:
            if only is not None and attack not in only:
                continue
            for setting in settings:
                batch = setting == "batch"
                x, y, truth = inject(
                    case,
                    attack,
                    rate,
                    DATA_SEED + number,
                    rows_from=np.flatnonzero(~approved) if batch else None,
                )
                verdict = gate_verdict(
                    contract, reference, x, y, approved=approved if batch else None
                )
                others = baselines(contract, x, y)
                cells = []
                p, r, f = score(verdict.mask, truth)
                cells.append(
                    f"{p:4.2f} {r:4.2f} {f:4.2f}  {'FAIL' if verdict.fails else 'pass':>4}"
                )
                for name in BASELINES:
                    p, r, f = score(others[name][0], truth)
                    cells.append(f"{p:4.2f} {r:4.2f} {f:4.2f}  ")
                everything = np.ones(n, dtype=bool)
                poisoned = holdout_accuracy(x, y, everything, hold_x, hold_y)
                cleaned = holdout_accuracy(x, y, ~verdict.mask, hold_x, hold_y)
                emit(
                    out,
                    f"{case.name:<13} {setting:<5} {attack:<9} {rate:>4.0%} {int(truth.sum()):>4} | "
                    + " | ".join(cells)
                    + f" | {poisoned:>10.3f} -> {cleaned:.3f} | {verdict.seconds:6.1f}"
                    + (f"  {','.join(verdict.rules)}" if verdict.rules else ""),
                )
    emit(out, "")
    emit(out, "clean data (no injection): gate verdict, rows flagged, two runs identical?")
    for number, full in enumerate(datasets()):
        if sets is not None and full.name not in sets:
            continue
        case, _, _ = split(full, number)
        contract = contract_for(case)
        reference = reference_for(case, contract)
        n = len(case.y)
        approved = np.zeros(n, dtype=bool)
        approved[
            np.random.default_rng(DATA_SEED + number).permutation(n)[: round(APPROVED_SHARE * n)]
        ] = True
        for setting in settings:
            given = approved if setting == "batch" else None
            first = gate_verdict(contract, reference, case.x, case.y, approved=given)
            second = gate_verdict(contract, reference, case.x, case.y, approved=given)
            emit(
                out,
                f"  {case.name:<13} {setting:<5} {n:>5} rows: {'FAIL ' + ','.join(first.rules) if first.fails else 'pass'}, "
                f"{int(first.mask.sum())} rows flagged; identical: {np.array_equal(first.mask, second.mask)}",
            )


def run_class_means_null(out: list[str], *, draws: int = 40) -> None:
    """How often DATA043 fails clean data that is not the approved table itself.

    The matrix's clean tables are the approved snapshot (the class means cannot move). Here,
    per set and ``draws`` seeded splits: *grown*, the approved profile of 70% of the rows and
    a table of those rows plus the other 30% (a snapshot that gained clean rows); *disjoint*,
    the approved profile of one half and a table of the other half (every row replaced).
    On the disjoint halves also the whole gate (the approved half's profile with its label
    rates, as ``data approve`` records it): how often DATA070 fails the table and how often
    any error rule does (the grown tables keep most approved rows: the label witness never
    fired there, bench/results/label-witness*.txt part 3).
    """
    from sklearn.model_selection import train_test_split

    from pipeline.profile import class_mean_shifts

    emit(out, f"DATA043 on clean tables that are not the approved one ({draws} seeded splits):")
    for full in datasets():
        contract = contract_for(full)
        alpha = contract.checks.class_means.alpha
        failed = {"grown": 0, "disjoint": 0}
        gate: dict[str, int] = {}
        for draw in range(draws):
            rows = np.arange(len(full.y))
            for kind, share in (("grown", 0.3), ("disjoint", 0.5)):
                kept, other = train_test_split(
                    rows, test_size=share, stratify=full.y, random_state=DATA_SEED + draw
                )
                table = np.concatenate([kept, other]) if kind == "grown" else other
                reference = build_profile(frame_for(full.x[kept], full.y[kept]), contract)
                shifts = class_mean_shifts(
                    frame_for(full.x[table], full.y[table]), contract, reference
                )
                failed[kind] += any(s.pvalue < alpha for s in shifts)
                if kind == "disjoint":
                    half = Case(full.name, full.x[kept], full.y[kept])
                    verdict = gate_verdict(
                        contract,
                        reference_for(half, contract),
                        full.x[table],
                        full.y[table],
                        approved=None,
                    )
                    for rule in verdict.rules:
                        gate[rule] = gate.get(rule, 0) + 1
                    gate["any"] = gate.get("any", 0) + verdict.fails
        rules = ", ".join(
            f"{r} {c}" for r, c in sorted(gate.items()) if r not in ("any", "DATA070")
        )
        emit(
            out,
            f"  {full.name:<13} grown: {failed['grown']:>2} of {draws} fail; "
            f"disjoint: {failed['disjoint']:>2} of {draws} fail; the gate on the disjoint "
            f"halves: DATA070 fails {gate.get('DATA070', 0):>2}, any error {gate.get('any', 0):>2}"
            + (f" (other rules: {rules})" if rules else ""),
        )


def _tree_rss(pid: int) -> int:
    """Resident bytes of process ``pid`` and all its descendants, summed (Linux /proc)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text(encoding="utf-8")
        except OSError:
            continue  # the process ended while being read
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        parents[int(entry.name)] = int(fields.get("PPid", "0").strip() or 0)
        rss[int(entry.name)] = int(fields.get("VmRSS", "0 kB").split()[0]) * 1024
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [c for c, p in parents.items() if p == parent and c not in tree]
        tree.update(children)
        frontier += children
    return sum(rss.get(p, 0) for p in tree)


def _run_measured(command: list[str], *, cwd: Path, env: dict[str, str]) -> tuple[int, float, int]:
    """Run ``command``; its exit code, wall seconds, and the peak RSS of its process tree.

    The tree (the gate and the processes scoring chunks) is sampled every 0.5 s: the sum of
    their resident sets, what the machine must hold at once.
    """
    import threading

    start = time.perf_counter()
    with subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        peak = [0]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.5):
                peak[0] = max(peak[0], _tree_rss(proc.pid))

        watcher = threading.Thread(target=sample, daemon=True)
        watcher.start()
        output = proc.communicate()[0]
        done.set()
        watcher.join()
    if proc.returncode not in (0, 1):
        print(output[-4000:], flush=True)
    return proc.returncode, time.perf_counter() - start, peak[0]


def _write_scale_table(path: Path, *, rows: int, features: int) -> list[str]:
    """The synthetic table (``make_classification``, seeded) as Parquet; its feature names.

    Written one row group of at most 1,048,576 rows at a time, so that only the generated
    matrix (8 x rows x features bytes) is held, not a DataFrame copy of it.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=rows, n_features=features, n_informative=10, random_state=SEED
    )
    names = [f"f{j:02d}" for j in range(features)]
    group = 1_048_576
    writer = None
    try:
        for first in range(0, rows, group):
            part = slice(first, min(first + group, rows))
            table = pa.table(
                {
                    "id": np.arange(first + 1, part.stop + 1, dtype=np.int64),
                    **{n: np.ascontiguousarray(x[part, j]) for j, n in enumerate(names)},
                    "label": np.where(y[part] == 1, "b", "a"),
                }
            )
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    return names


def run_scale(
    out: list[str], *, rows: int = 1_000_000, features: int = 20, stream: bool = True
) -> None:
    """The whole data gate as a subprocess on a synthetic Parquet file: time per check, peak
    RSS of the gate's process tree, the machine's load average before and after each step."""
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        root = Path(tmp)
        (root / "data").mkdir()
        emit(out, f"scale: {os.cpu_count()} cores; load average {_load()} at start")
        start = time.perf_counter()
        names = _write_scale_table(
            root / "data" / "synthetic.parquet", rows=rows, features=features
        )
        size = (root / "data" / "synthetic.parquet").stat().st_size / 2**20
        emit(
            out,
            f"scale: generated {rows:,} x {features} ({size:,.0f} MiB Parquet) in "
            f"{time.perf_counter() - start:.1f}s",
        )
        policy = (ROOT / "policy.toml").read_text(encoding="utf-8")
        checks = policy[policy.index("[data.checks]") :]
        columns = "\n".join(f'{n} = {{ dtype = "float64" }}' for n in names)
        (root / "policy.toml").write_text(
            "schema_version = 1\n\n[cv]\nfolds = 5\n[cv.thresholds.accuracy]\nmin_mean = 0.5\n\n"
            '[data]\npath = "data/synthetic.parquet"\nlock = "data/synthetic.lock.json"\n'
            'label = "label"\nclasses = ["a", "b"]\nid_column = "id"\nmax_rows = 20000000\n'
            # Streaming: the file is read in chunks, the label and isolation checks fit on a
            # 50,000-row sample and score every row.
            + ("stream_above_mb = 1.0\n" if stream else "")
            + "\n"
            + f'[data.columns]\nid = {{ dtype = "int64", min = 1, unique = true }}\n{columns}\n\n'
            f"{checks}",
            encoding="utf-8",
        )
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        # The runner needs the upstream gates of a run (lint, sast, audit) before `data`; this
        # folder holds no code, so the data gate runs by itself, in its own process.
        gate_alone = (
            "import json, time; from pathlib import Path; from pipeline.config import load_policy; "
            "from gates.base import RunContext; from gates.data_integrity import DataGate; "
            "p = load_policy(Path('policy.toml')); t = time.perf_counter(); "
            "o = DataGate().run(RunContext(policy=p, run_id='scale', reports_dir=Path('reports'))); "
            "Path('reports/data.json').write_text(json.dumps({'status': o.status.value, "
            "'summary': o.summary, 'metrics': o.metrics, "
            "'duration_seconds': time.perf_counter() - t}))"
        )
        for step in (["-m", "gates", "data", "approve"], ["-c", gate_alone]):
            before = _load()
            code, seconds, peak = _run_measured([sys.executable, *step], cwd=root, env=env)
            emit(
                out,
                f"scale: {'data gate' if step[0] == '-c' else ' '.join(step[1:])}: exit {code}, "
                f"{seconds:.1f}s wall, peak RSS of its process tree {peak / 2**30:.2f} GiB; "
                f"load average {before} before, {_load()} after",
            )
        report = json.loads((root / "reports" / "data.json").read_text(encoding="utf-8"))
        emit(out, f"scale: gate status {report['status']}, {report['summary']}")
        emit(out, f"scale: gate duration (in-process) {report['duration_seconds']:.1f}s")
        for check, seconds in sorted(report["metrics"].get("seconds", {}).items()):
            emit(out, f"scale:   {check:<16} {seconds:7.2f}s")
        for check, info in sorted(report["metrics"].get("checks", {}).items()):
            emit(out, f"scale:   {check:<18} flagged {info['flagged']:>7} ({info['share']:.4%})")
        emit(out, f"scale: streaming {json.dumps(report['metrics'].get('streaming', {}))}")


def _load() -> str:
    """The 1, 5 and 15-minute load averages (other jobs on the machine inflate the seconds)."""
    return "/".join(f"{v:.2f}" for v in os.getloadavg())


def summarize(lines: list[str]) -> list[str]:
    """Count the matrix cells that meet issue 16's targets, per setting, from the table lines.

    Label attacks: gate F1 >= max(cleanlab, kNN-10) - 0.02. In-range and near-range triggers:
    recall >= 0.8, precision >= 0.5 and the gate fails. Shift: the gate fails. Outliers and
    out-of-range triggers: recall 1.0 and the gate fails (outliers: precision >= 0.8 too).
    Clean tables: pass, flagged rows identical across two runs. Reads old results files too.
    """
    met: dict[tuple[str, str], list[int]] = {}
    misses: dict[str, list[str]] = {}
    clean: dict[str, list[int]] = {}
    for line in lines:
        fields = line.replace("|", " ").split()
        if line.startswith("  ") and "identical:" in line:
            ok = ": pass," in line and line.rstrip().endswith("True")
            clean.setdefault(fields[1], [0, 0])[0] += ok
            clean[fields[1]][1] += 1
            continue
        if len(fields) < 22 or fields[1] not in ("table", "batch"):
            continue
        name, setting, attack, rate = fields[0], fields[1], fields[2], fields[3]
        p, r, f = (float(v) for v in fields[5:8])
        fails = fields[8] == "FAIL"
        cleanlab_f1, knn_f1 = float(fields[11]), float(fields[14])
        if attack in LABEL_ATTACKS:
            group, ok = "label", f >= max(cleanlab_f1, knn_f1) - 0.02 - 1e-9
        elif attack in ("inrange", "nearrange"):
            group, ok = attack, r >= 0.8 and p >= 0.5 and fails
        elif attack == "shift":
            group, ok = "shift (fails)", fails
        elif attack == "outlier":
            group, ok = "outlier", r >= 1.0 and p >= 0.8 and fails
        else:
            group, ok = attack, r >= 1.0 and fails
        counts = met.setdefault((setting, group), [0, 0])
        counts[0] += ok
        counts[1] += 1
        if not ok:
            misses.setdefault(setting, []).append(f"{name} {attack} {rate}")
    out = ["cells at target (issue 16), per setting:"]
    for (setting, group), (good, total) in sorted(met.items()):
        out.append(f"  {setting:<5} {group:<14} {good:>2} of {total:>2}")
    for setting, (good, total) in sorted(clean.items()):
        out.append(f"  {setting:<5} {'clean (pass)':<14} {good:>2} of {total:>2}")
    for setting, names in sorted(misses.items()):
        out.append(f"  {setting} misses: " + "; ".join(names))
    return out


def emit(out: list[str], line: str) -> None:
    """Print a line now and keep it for the results file."""
    print(line, flush=True)
    out.append(line)


def main() -> int:
    """Run the matrix and the scale run; write bench/results/poisoning.txt."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--only-scale", action="store_true")
    parser.add_argument("--settings", default="table,batch", help="table, batch or both")
    parser.add_argument("--attacks", default="", help="comma-separated subset of attacks")
    parser.add_argument("--datasets", default="", help="comma-separated subset of datasets")
    parser.add_argument("--scale-rows", type=int, default=1_000_000)
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="results file (default bench/results/poisoning.txt; with --only-scale "
        "bench/results/poisoning-scale-<rows>.txt, e.g. poisoning-scale-10m.txt)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=SEED,
        help="data seed (split, approved rows, injections); another value is a held-out run",
    )
    parser.add_argument(
        "--summarize", type=Path, help="only count the cells at target in a results file"
    )
    args = parser.parse_args()
    if args.summarize is not None:
        text = args.summarize.read_text(encoding="utf-8").splitlines()
        print("\n".join(summarize(text)))
        return 0
    global DATA_SEED  # noqa: PLW0603 - one run, one data seed
    DATA_SEED = args.seed
    if args.output is None:
        name = "poisoning.txt"
        if args.only_scale:
            rows = args.scale_rows
            name = (
                f"poisoning-scale-{rows // 1_000_000}m.txt"
                if rows % 1_000_000 == 0
                else (f"poisoning-scale-{rows}.txt")
            )
        args.output = ROOT / "bench" / "results" / name
    out: list[str] = []
    import platform

    import cleanlab
    import sklearn

    emit(
        out,
        f"python {platform.python_version()}, scikit-learn {sklearn.__version__}, "
        f"cleanlab {cleanlab.__version__}, seed {SEED}, data seed {DATA_SEED}",
    )
    start = time.perf_counter()
    if not args.only_scale:
        run_matrix(
            out,
            settings=tuple(args.settings.split(",")),
            only=set(args.attacks.split(",")) if args.attacks else None,
            sets=set(args.datasets.split(",")) if args.datasets else None,
        )
        emit(out, "")
        for line in summarize(out):
            emit(out, line)
        if "table" in args.settings.split(",") and not args.attacks and not args.datasets:
            emit(out, "")
            run_class_means_null(out)
    if not args.skip_scale:
        emit(out, "")
        run_scale(out, rows=args.scale_rows)
    emit(out, f"total {time.perf_counter() - start:.0f}s")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(out) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
