"""Planted targeted-poisoning attacks on the embedded data: each must stop the data gate.

Every case edits the data as a pull request would (and re-approves it, so the lock matches:
the attacker controls the lock too), then runs the data gate. In CI the approved rows come
from the protected branch's lock (``GATES_APPROVED_LOCK``); the cases marked ``trusted`` use a
copy of the lock taken before the attack, the others rely on the whole-table checks alone.
Each must turn the gate FAILED and name the data file and a row.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from gates.approve import approve
from gates.base import RunContext, Severity, Status
from gates.data_integrity import DataGate

DATA = "data/breast_cancer.csv"
FEATURES = ("mean_texture", "mean_smoothness")


def _malignant(frame: pd.DataFrame, count: int) -> pd.Index:
    return frame.index[frame["diagnosis"] == "malignant"][:count]


def in_range_trigger(frame: pd.DataFrame) -> pd.DataFrame:
    """17 malignant rows (3%) get a rare but valid combination of two features, label benign."""
    rows = _malignant(frame, 17)
    frame.loc[rows, FEATURES[0]] = frame[FEATURES[0]].quantile(0.95)
    frame.loc[rows, FEATURES[1]] = frame[FEATURES[1]].quantile(0.05)
    frame.loc[rows, "diagnosis"] = "benign"
    return frame


def near_range_trigger(frame: pd.DataFrame) -> pd.DataFrame:
    """17 malignant rows: two features just past the approved maximum (inside the range margin)."""
    rows = _malignant(frame, 17)
    for name in FEATURES:
        spread = frame[name].max() - frame[name].min()
        frame.loc[rows, name] = round(frame[name].max() + 0.1 * spread, 5)
    frame.loc[rows, "diagnosis"] = "benign"
    return frame


def jittered_burst(frame: pd.DataFrame) -> pd.DataFrame:
    """One benign row copied 12 times with jitter far below the data's spacing, new ids."""
    rng = np.random.default_rng(3)
    source = frame.iloc[[10] * 12].copy()
    features = [c for c in frame.columns if c not in ("id", "diagnosis")]
    jitter = rng.normal(0.0, 0.002, (12, len(features))) * frame[features].std().to_numpy()
    source[features] = (source[features].to_numpy() + jitter).round(6)
    source["id"] = np.arange(5000, 5012)
    return pd.concat([frame, source], ignore_index=True)


def flips_near_the_boundary(frame: pd.DataFrame, count: int = 40) -> pd.DataFrame:
    """``count`` rows closest to a logistic regression's boundary, labels swapped."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features = [c for c in frame.columns if c not in ("id", "diagnosis")]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    p = model.fit(frame[features], frame["diagnosis"]).predict_proba(frame[features])[:, 1]
    rows = frame.index[np.argsort(np.abs(p - 0.5), kind="stable")[:count]]
    swap = {"benign": "malignant", "malignant": "benign"}
    frame.loc[rows, "diagnosis"] = frame.loc[rows, "diagnosis"].map(swap)
    return frame


def class_shift(frame: pd.DataFrame) -> pd.DataFrame:
    """Half the malignant rows: mean_smoothness moved half a standard deviation down."""
    rows = _malignant(frame, 106)
    frame.loc[rows, "mean_smoothness"] = (
        frame.loc[rows, "mean_smoothness"] - 0.5 * frame["mean_smoothness"].std()
    ).round(5)
    return frame


def shift_on_every_feature(frame: pd.DataFrame) -> pd.DataFrame:
    """30 malignant rows moved half a standard deviation towards the benign mean, every feature."""
    features = [c for c in frame.columns if c not in ("id", "diagnosis")]
    rows = _malignant(frame, 30)
    benign = frame["diagnosis"] == "benign"
    towards = np.sign(frame.loc[benign, features].mean() - frame.loc[~benign, features].mean())
    moved = frame.loc[rows, features] + 0.5 * frame[features].std() * towards
    frame.loc[rows, features] = moved.clip(lower=0.0).round(5)
    return frame


def many_wrong_labels(frame: pd.DataFrame) -> pd.DataFrame:
    """A batch of 100 relabelled rows taught against the approved data: negative impact.

    100 of the 569 approved rows changed: within ``[data.checks.batch].max_dropped`` (0.2),
    beyond which the table is DATA109 before the batch screen runs (120 rows were)."""
    rows = frame.index[::4][:100]
    swap = {"benign": "malignant", "malignant": "benign"}
    frame.loc[rows, "diagnosis"] = frame.loc[rows, "diagnosis"].map(swap)
    return frame


# (attack, trusted approved lock?, rules any of which must fail the gate)
CASES: dict[str, tuple[Callable[[pd.DataFrame], pd.DataFrame], bool, set[str]]] = {
    "in-range-trigger": (in_range_trigger, False, {"DATA071"}),
    "in-range-trigger-batch": (in_range_trigger, True, {"DATA102"}),
    "near-range-trigger": (near_range_trigger, False, {"DATA071"}),
    "jittered-burst": (jittered_burst, False, {"DATA072"}),
    "jittered-burst-batch": (jittered_burst, True, {"DATA103"}),
    "boundary-flips-forged-approval": (flips_near_the_boundary, True, {"DATA100"}),
    # 106 rows shifted 0.5 SD: below the Holm-corrected mean test's power here; the shifted
    # rows' labels then disagree with the approved rows' model and neighbours.
    "class-conditional-shift-batch": (class_shift, True, {"DATA104", "DATA100", "DATA101"}),
    "negative-impact-batch": (many_wrong_labels, True, {"DATA105"}),
    "class-conditional-shift-every-feature-batch": (shift_on_every_feature, True, {"DATA107"}),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_targeted_poisoning_fails_the_data_gate(case, project, monkeypatch, tmp_path):
    attack, trusted, rules = CASES[case]
    if trusted:
        # The protected branch's lock, before the pull request: CI passes it to the gate.
        copy = tmp_path / "approved.lock.json"
        shutil.copy(project.root / "data" / "breast_cancer.lock.json", copy)
        monkeypatch.setenv("GATES_APPROVED_LOCK", str(copy))
    frame = pd.read_csv(project.data_path)
    attack(frame).to_csv(project.data_path, index=False, lineterminator="\n")
    # The attacker approves the change and re-baselines: the committed lock now calls every
    # row approved and the poisoned table the reference.
    assert approve(project.load(), out=io.StringIO(), rebaseline=True) == 0
    # The data gate itself (the runner's upstream gates are not what this is about).
    context = RunContext(policy=project.load(), run_id=case, reports_dir=project.root / "reports")
    outcome = DataGate().run(context)
    assert outcome.status is Status.FAILED
    errors = [f for f in outcome.findings if f.severity is Severity.ERROR]
    hit = [f for f in errors if f.rule in rules]
    assert hit, [f"{f.rule} {f.message}" for f in errors]
    assert hit[0].location.path == DATA
    if hit[0].rule not in ("DATA104", "DATA105", "DATA107"):  # table-level: no row
        assert isinstance(hit[0].location.row, int)


@pytest.mark.slow
def test_boundary_flips_fail_the_whole_table_label_check_against_the_kept_reference(project):
    """No trusted lock, re-approved without --rebaseline (that is its own, visible act): the
    kept reference's label rates are the yardstick. Flips aimed at the boundary teach the model
    their labels, so cleanlab is blind; the kNN witness's unexplained excess adds its rows."""
    # The maintainers' approval of the clean table records its label witnesses' rates.
    assert approve(project.load(), out=io.StringIO(), rebaseline=True) == 0
    frame = pd.read_csv(project.data_path)
    # 10% of the rows, as in the benchmark's whole-table boundary cell.
    flipped = flips_near_the_boundary(frame, count=57)
    flipped.to_csv(project.data_path, index=False, lineterminator="\n")
    assert approve(project.load(), out=io.StringIO(), rebaseline=False) == 0
    context = RunContext(
        policy=project.load(), run_id="boundary", reports_dir=project.root / "reports"
    )
    outcome = DataGate().run(context)
    assert outcome.status is Status.FAILED
    hit = [f for f in outcome.findings if f.rule == "DATA070" and f.severity is Severity.ERROR]
    assert hit, [f"{f.rule} {f.message}" for f in outcome.findings]
    assert hit[0].location.path == DATA
    flagged = pd.read_csv(project.root / "reports" / "data.flagged.csv")
    assert flagged["reason"].str.contains("every row it flags").any()


def _bench():  # the benchmark's own cells (bench/poisoning.py), so test and table agree
    import importlib.util
    import sys
    from pathlib import Path

    if "bench_poisoning" in sys.modules:
        return sys.modules["bench_poisoning"]
    path = Path(__file__).resolve().parents[2] / "bench" / "poisoning.py"
    spec = importlib.util.spec_from_file_location("bench_poisoning", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_poisoning"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


# (dataset, attack, rate): whole-table label cells where the gate's label check fell short of
# max(cleanlab, kNN-10) - 0.02 before the disagreement-mass test and the class threshold.
LABEL_CELLS = {
    "wine-region-10": ("wine", "region", 0.10),
    "digits-3v8-region-5": ("digits_3v8", "region", 0.05),
    # One class flooded with another's label: the kNN witness flags the flooded class's clean
    # rows too; only rows below their class's average neighbour support are added.
    "digits-10-classflip-5": ("digits_10", "classflip", 0.05),
}


@pytest.mark.slow
@pytest.mark.parametrize("cell", sorted(LABEL_CELLS))
def test_targeted_label_flips_meet_the_benchmark_target_on_the_whole_table(cell):
    """No trusted rows: the gate's flagged rows score at least max(cleanlab, kNN-10) - 0.02
    in F1, its label check fails the table, and the same table without the attack passes."""
    from gates.data_integrity import DataGate

    bench = _bench()
    name, attack, rate = LABEL_CELLS[cell]
    number, full = next((i, c) for i, c in enumerate(bench.datasets()) if c.name == name)
    case, _, _ = bench.split(full, number)
    contract = bench.contract_for(case)
    reference = bench.reference_for(case, contract)
    x, y, truth = bench.inject(case, attack, rate, bench.SEED + number)
    verdict = bench.gate_verdict(contract, reference, x, y, approved=None)
    others = bench.baselines(contract, x, y)
    best = max(bench.score(others[b][0], truth)[2] for b in ("cleanlab", "knn10"))
    assert bench.score(verdict.mask, truth)[2] >= best - 0.02, cell
    assert "DATA070" in verdict.rules
    clean = bench.gate_verdict(contract, reference, case.x, case.y, approved=None)
    assert not clean.fails, clean.rules
    frame = bench.frame_for(x, y)
    from pipeline.poison import screen

    found = screen(frame, contract, reference=reference, seed=bench.SEED)
    findings = [f for f in DataGate.judge(found, contract, "bench.csv") if f.rule == "DATA070"]
    assert findings
    assert findings[0].location.path == "bench.csv"
    assert isinstance(findings[0].location.row, int)
    label = found.by_check("label")
    assert label is not None
    assert any("disagreement mass" in r for r in label.reasons)


@pytest.mark.slow
@pytest.mark.parametrize("attack", ["inrange", "nearrange"])
def test_a_batch_trigger_on_the_synthetic_set_flags_its_rows_more_than_their_neighbours(attack):
    """The benchmark's synthetic batch cell (3% of rows, approved rows trusted): recall 1.0,
    precision at least 0.5, the gate fails. The batch screen's rows explain the kNN witness's
    excess, so the whole-table label rule does not add the trigger rows' clean neighbours
    (before: 95 label rows, 17 of them trigger rows, precision 0.39)."""
    from pipeline.poison import screen

    bench = _bench()
    number, full = next((i, c) for i, c in enumerate(bench.datasets()) if c.name == "synthetic_3c")
    case, _, _ = bench.split(full, number)
    contract = bench.contract_for(case)
    reference = bench.reference_for(case, contract)
    n = len(case.y)
    approved = np.zeros(n, dtype=bool)
    approved[np.random.default_rng(bench.SEED + number).permutation(n)[: round(0.7 * n)]] = True
    x, y, truth = bench.inject(
        case, attack, 0.03, bench.SEED + number, rows_from=np.flatnonzero(~approved)
    )
    verdict = bench.gate_verdict(contract, reference, x, y, approved=approved)
    precision, recall, _ = bench.score(verdict.mask, truth)
    assert verdict.fails
    assert "DATA102" in verdict.rules
    assert recall == 1.0
    assert precision >= 0.495, precision  # 72 of 145 rows
    # Without the batch screen's rows as explanation, the label rule adds every witness row.
    from gates.data_integrity import Approval, screen_new_rows
    from pipeline.profile import row_digests

    frame = bench.frame_for(x, y)
    digests = row_digests(frame, contract)
    trusted = {i: digests[i] for i, ok in zip(list(digests), approved, strict=True) if ok}
    batch, _ = screen_new_rows(
        frame, contract, Approval(reference, trusted, "bench", trusted=True), seed=bench.SEED
    )
    assert batch is not None

    def added(policy=contract, **extra):
        found = screen(
            frame,
            policy,
            reference=reference,
            seed=bench.SEED,
            approved_rows=batch.approved_rows,
            **extra,
        ).by_check("label")
        assert found is not None
        return sum("every row it flags" in r for r in found.reasons)

    assert added(batch_rows=batch.explaining_rows()) == 0
    if attack == "inrange":
        # The whole-table association explains them too since its screen restores the set's
        # features from the others (it flags the trigger: DATA071); without it as well:
        checks = contract.checks
        off = checks.association.model_copy(update={"enabled": False})
        assert (
            added(
                contract.model_copy(
                    update={"checks": checks.model_copy(update={"association": off})}
                )
            )
            > 50
        )


@pytest.mark.slow
@pytest.mark.parametrize("attack", ["every-feature", "against-the-correlation"])
def test_a_class_conditional_shift_fails_the_whole_table_against_the_kept_class_moments(
    attack, project
):
    """No trusted lock, re-approved without --rebaseline: the kept reference's class means and
    covariances (recorded by the maintainers' approval) are the yardstick (DATA043)."""
    assert approve(project.load(), out=io.StringIO(), rebaseline=True) == 0
    frame = pd.read_csv(project.data_path)
    if attack == "every-feature":
        # 30 benign rows (5% of the table, as in the benchmark) half an SD towards the
        # malignant mean on every feature.
        features = [c for c in frame.columns if c not in ("id", "diagnosis")]
        rows = frame.index[frame["diagnosis"] == "benign"][:30]
        benign = frame["diagnosis"] == "benign"
        towards = np.sign(frame.loc[~benign, features].mean() - frame.loc[benign, features].mean())
        moved = frame.loc[rows, features] + 0.5 * frame[features].std() * towards
        frame.loc[rows, features] = moved.clip(lower=0.0).round(5)
        shifted = frame
    else:
        # 40 benign rows: mean_radius up and mean_perimeter down (0.4 SD each); they are
        # correlated 0.998, so each marginal barely moves and stays in range.
        rows = frame.index[frame["diagnosis"] == "benign"][:40]
        for name, sign in (("mean_radius", 1.0), ("mean_perimeter", -1.0)):
            frame.loc[rows, name] = (frame.loc[rows, name] + sign * 0.4 * frame[name].std()).round(
                5
            )
        shifted = frame
    shifted.to_csv(project.data_path, index=False, lineterminator="\n")
    assert approve(project.load(), out=io.StringIO(), rebaseline=False) == 0
    context = RunContext(policy=project.load(), run_id=attack, reports_dir=project.root / "reports")
    outcome = DataGate().run(context)
    assert outcome.status is Status.FAILED
    hit = [f for f in outcome.findings if f.rule == "DATA043" and f.severity is Severity.ERROR]
    assert hit, [f"{f.rule} {f.message}" for f in outcome.findings]
    assert hit[0].location.path == DATA
    assert hit[0].location.column in frame.columns
    assert "Hotelling" in hit[0].message
