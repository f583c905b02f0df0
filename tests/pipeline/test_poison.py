"""Row-level detectors on small planted data: each check flags what was planted, and only that."""

from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from pipeline.config import DataPolicy, IsolationCheck, LabelCheck
from pipeline.poison import (
    duplicates,
    feature_matrix,
    flagged_frame,
    knn_probabilities,
    label_issues,
    label_scores,
    off_manifold,
    oof_probabilities,
    out_of_range,
    screen,
)
from pipeline.profile import build_profile
from tests.contract_support import ID_COLUMN, data_policy, floats, labelled_frame, two_classes

SEED = 7


def _contract(**checks: object) -> DataPolicy:
    return data_policy({**ID_COLUMN, **floats(f"x{j}" for j in range(4))}, checks=checks)


def _blobs(n: int = 240, *, seed: int = 0) -> pd.DataFrame:
    """Two well-separated Gaussian blobs: clean data on which nothing should be flagged."""
    return two_classes(n, shift=4.0, seed=seed)


def test_duplicates_flag_copies_and_conflicting_labels_only():
    contract = _contract()
    frame = _blobs()
    exact, conflict = duplicates(frame, contract)
    assert exact.count == 0
    assert conflict.count == 0
    planted = frame.copy()
    planted.loc[10, ["x0", "x1", "x2", "x3", "y"]] = planted.loc[3, ["x0", "x1", "x2", "x3", "y"]]
    planted.loc[20, ["x0", "x1", "x2", "x3"]] = planted.loc[5, ["x0", "x1", "x2", "x3"]]
    planted.loc[20, "y"] = "a" if planted.loc[5, "y"] == "b" else "b"
    exact, conflict = duplicates(planted, contract)
    assert exact.rows.tolist() == [10]
    assert "row 3" in exact.reasons[0]
    assert conflict.rows.tolist() == [5, 20]


def test_out_of_range_honours_the_margin():
    contract = _contract()
    frame = _blobs()
    reference = build_profile(frame, contract)
    ref = reference.columns["x1"]
    width = ref.maximum - ref.minimum
    planted = frame.copy()
    planted.loc[4, "x1"] = ref.maximum + 0.2 * width  # inside a 0.25 margin
    planted.loc[9, "x1"] = ref.maximum + 0.5 * width  # beyond it
    planted.loc[11, "x2"] = reference.columns["x2"].minimum - width * 3
    found = out_of_range(planted, contract, reference, margin=0.25)
    assert found.rows.tolist() == [9, 11]
    assert "x1=" in found.reasons[0]
    assert found.scores[1] > found.scores[0] > 0
    assert out_of_range(frame, contract, reference, margin=0.0).count == 0


def test_label_issues_find_planted_flips_and_nothing_on_clean_blobs():
    contract = _contract()
    frame = _blobs()
    x = feature_matrix(frame, contract)
    y = (frame["y"] == "b").to_numpy().astype(np.int64)
    clean, _ = label_issues(x, y, classes=("a", "b"), check=LabelCheck(), seed=SEED)
    assert clean.count == 0
    planted = y.copy()
    rows = np.array([2, 33, 70, 101, 150, 199])
    planted[rows] = 1 - planted[rows]
    found, scores = label_issues(x, planted, classes=("a", "b"), check=LabelCheck(), seed=SEED)
    assert found.rows.tolist() == rows.tolist()
    assert scores.combined.shape == (240, 2)
    assert np.allclose(scores.combined.sum(axis=1), 1.0)
    assert "likely" in found.reasons[0]


def test_knn_votes_are_bounded_by_the_index_sample_and_never_count_the_row_itself():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    y = np.zeros(300, dtype=np.int64)
    y[0] = 1  # alone in its class: its own vote would say "1"
    probs = knn_probabilities(x, y, n_classes=2, neighbors=5, max_index_rows=100, seed=SEED)
    assert probs.shape == (300, 2)
    assert np.allclose(probs.sum(axis=1), 1.0)
    full = knn_probabilities(x, y, n_classes=2, neighbors=5, max_index_rows=1000, seed=SEED)
    assert full[0, 1] == pytest.approx((0 + 1 / 300) / 6)


def test_isolation_flags_a_far_point_and_not_the_bulk():
    contract = _contract()
    frame = _blobs()
    planted = frame.copy()
    planted.loc[42, ["x0", "x1", "x2", "x3"]] = [40.0, -40.0, 40.0, -40.0]
    check = IsolationCheck()
    assert off_manifold(feature_matrix(frame, contract), check=check, seed=SEED).count == 0
    found = off_manifold(feature_matrix(planted, contract), check=check, seed=SEED)
    assert found.rows.tolist() == [42]
    assert found.scores[0] >= check.min_score


def test_screen_is_deterministic_and_lists_every_flag_once_per_check():
    contract = _contract()
    frame = _blobs()
    reference = build_profile(frame, contract)
    planted = frame.copy()
    planted.loc[7, "y"] = "a" if planted.loc[7, "y"] == "b" else "b"
    planted.loc[8, "x0"] = 1000.0
    first = screen(planted, contract, reference=reference, seed=SEED)
    second = screen(planted, contract, reference=reference, seed=SEED)
    table = flagged_frame(first, ids=planted["id"])
    assert table.equals(flagged_frame(second, ids=planted["id"]))
    assert list(table.columns) == ["row", "id", "check", "score", "reason"]
    assert {(7, "label"), (8, "range"), (8, "isolation")} <= set(
        zip(table["row"], table["check"], strict=True)
    )
    assert table.loc[table["row"] == 7, "id"].iloc[0] == "8"
    assert set(first.seconds) >= {"duplicates", "drift", "range", "label", "isolation"}


def test_screen_skips_disabled_checks_and_reference_checks_without_a_reference():
    contract = _contract(
        labels={"enabled": False},
        isolation={"enabled": False},
        bursts={"enabled": False},
        association={"enabled": False},
    )
    result = screen(_blobs(), contract, reference=None, seed=SEED)
    # The near-duplicate search is part of the duplicates check (it borrows the bursts radius).
    assert [f.check for f in result.flags] == [
        "duplicate",
        "conflicting_labels",
        "near_duplicate",
        "near_conflict",
    ]
    assert result.drift == ()


def test_duplicates_from_hashes_matches_pandas_grouping_on_random_collisions():
    from pipeline.poison import duplicates_from_hashes

    rng = np.random.default_rng(3)
    for n in (1, 2, 60, 3_000):
        feature_hash = rng.integers(0, max(2, n // 3), n).astype(np.uint64)
        codes = rng.integers(0, 3, n)
        labels = np.asarray(["a", "b", "c"], dtype=object)[codes]
        row_hash = feature_hash * np.uint64(3) + codes.astype(np.uint64)
        exact, conflict = duplicates_from_hashes(feature_hash, row_hash, labels, start=0.0)
        # The definitions, written with pandas' grouping (what the gate did before).
        copies = pd.Series(row_hash).duplicated(keep="first").to_numpy()
        first_of = pd.Series(np.arange(n)).groupby(row_hash).transform("min").to_numpy()
        assert exact.rows.tolist() == np.flatnonzero(copies).tolist()
        assert exact.reasons == tuple(f"exact copy of row {first_of[r]}" for r in exact.rows)
        groups = pd.DataFrame({"h": feature_hash, "y": labels})
        mixed = groups.groupby("h")["y"].transform("nunique").to_numpy() > 1
        assert conflict.rows.tolist() == np.flatnonzero(mixed).tolist()


# --- the label model's folds run through joblib: the same numbers wherever they run --------


def _serial_oof(x, y, *, n_classes, folds, max_fit_rows, seed):
    """The serial loop that oof_probabilities replaced, kept as the reference it must equal."""
    rng = np.random.default_rng(seed)
    smallest = int(np.bincount(y, minlength=n_classes).min())
    splitter = StratifiedKFold(
        n_splits=max(2, min(folds, smallest)), shuffle=True, random_state=seed
    )
    probs = np.zeros((len(y), n_classes))
    for train, test in splitter.split(x, y):
        fit_rows = train
        if fit_rows.size > max_fit_rows:
            fit_rows = np.sort(rng.choice(train, size=max_fit_rows, replace=False))
        model = LogisticRegression(max_iter=1000, C=1.0).fit(x[fit_rows], y[fit_rows])
        probs[np.ix_(test, model.classes_)] = model.predict_proba(x[test])
    return probs


def _three_classes(n: int = 600, *, rare: int = 0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three overlapping blobs; with ``rare`` > 0 the third class has only that many rows."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    if rare:
        y[rng.choice(n, size=rare, replace=False)] = 2
    else:
        y = np.arange(n) % 3
    x = rng.normal(0.0, 1.0, (n, 5)) + y[:, None] * 1.5
    return x, y.astype(np.int64)


@pytest.mark.parametrize(
    ("rare", "n_classes", "max_fit_rows"),
    [
        (0, 3, 50_000),  # every fold fitted on all the other folds
        (0, 3, 100),  # every fold fitted on a seeded sample: the generator order matters
        (6, 3, 100),  # a 6-row class: some samples miss it, its p is 0 there
        (0, 4, 100),  # a declared class with no rows at all keeps a column of zeros
    ],
)
def test_oof_probabilities_equal_the_serial_loop_bit_for_bit(rare, n_classes, max_fit_rows):
    x, y = _three_classes(rare=rare)
    kwargs = {"n_classes": n_classes, "folds": 5, "max_fit_rows": max_fit_rows, "seed": SEED}
    assert np.array_equal(oof_probabilities(x, y, **kwargs), _serial_oof(x, y, **kwargs))


def test_oof_probabilities_do_not_depend_on_the_joblib_backend():
    x, y = _three_classes()
    kwargs = {"n_classes": 3, "folds": 5, "max_fit_rows": 100, "seed": SEED}
    serial = oof_probabilities(x, y, **kwargs)
    # Two threads finish the folds in whatever order they like; the samples were drawn before.
    with joblib.parallel_config(backend="threading", n_jobs=2):
        threaded = oof_probabilities(x, y, **kwargs)
    assert np.array_equal(threaded, serial)


@pytest.mark.slow
def test_the_screen_on_a_dask_cluster_gives_the_local_probabilities_and_flags(dask_cluster):
    contract = _contract(labels={"max_fit_rows": 100})  # 240 rows: every fold is sampled
    frame = _blobs()
    reference = build_profile(frame, contract)
    planted = frame.copy()
    flips = [2, 33, 70, 101, 150, 199]
    planted.loc[flips, "y"] = planted.loc[flips, "y"].map({"a": "b", "b": "a"})
    planted.loc[8, "x0"] = 1000.0
    address = dask_cluster.scheduler_address
    local = screen(planted, contract, reference=reference, seed=SEED)
    before = dask_cluster.scheduler.transition_counter
    remote = screen(planted, contract, reference=reference, seed=SEED, scheduler=address)
    # The folds really ran on the cluster (joblib's tasks went through its scheduler).
    assert dask_cluster.scheduler.transition_counter > before
    assert remote.flagged_rows().tolist() == local.flagged_rows().tolist()
    # Row 8 is beyond the approved range (DATA060 fails it), so the label check runs on the
    # other 239 rows: other folds, and flip 199 (combined p 0.06 -> 0.11) is left unflagged.
    assert len(set(flips) & set(local.by_check("label").rows.tolist())) >= 5
    assert flagged_frame(remote, ids=planted["id"]).equals(flagged_frame(local, ids=planted["id"]))
    x = feature_matrix(planted, contract)
    y = (planted["y"] == "b").to_numpy().astype(np.int64)
    check = contract.checks.labels
    here = label_scores(x, y, n_classes=2, check=check, seed=SEED)
    there = label_scores(x, y, n_classes=2, check=check, seed=SEED, scheduler=address)
    assert np.array_equal(there.model, here.model)
    assert np.array_equal(there.combined, here.combined)


def _quiet_boundary_scores() -> tuple[np.ndarray, object]:
    """400 rows; 20 have labels their neighbours reject (kNN 0.3) that the model learned (0.85):
    as many witness hits as the approved rate predicts, but every other row's support lower."""
    from pipeline.poison import LabelScores

    n = 400
    y = np.arange(n) % 2
    own_knn = np.full(n, 0.88)
    own_model = np.full(n, 0.95)
    own_knn[:20], own_model[:20] = 0.3, 0.85
    knn = np.zeros((n, 2))
    model = np.zeros((n, 2))
    knn[np.arange(n), y], knn[np.arange(n), 1 - y] = own_knn, 1 - own_knn
    model[np.arange(n), y], model[np.arange(n), 1 - y] = own_model, 1 - own_model
    return y, LabelScores(model=model, knn=knn, combined=(model + knn) / 2)


@pytest.mark.parametrize("recorded", [True, False])
def test_the_disagreement_mass_fires_when_the_witness_count_does_not(recorded):
    """Boundary flips replace the rows the kNN witness flags on clean data (its count stays
    at the approved rate) but lower their neighbours' support: the mass test sees it. A lock
    approved before the mass was recorded keeps the count test alone."""
    from pipeline.poison import label_flags

    y, scores = _quiet_boundary_scores()
    rates = {"knn": 0.05}
    if recorded:
        rates |= {"knn_mean": 0.08, "knn_var": 0.01}
    found = label_flags(scores, y, classes=["a", "b"], rates=rates)
    if recorded:
        assert found.rows.tolist() == list(range(20))
        assert "disagreement mass p=" in found.reasons[0]
    else:
        assert found.count == 0


def test_the_unexplained_rule_keeps_rows_the_model_trusts_and_rows_above_their_class_support():
    from pipeline.poison import label_flags

    y, scores = _quiet_boundary_scores()
    rates = {"knn": 0.05, "knn_mean": 0.08, "knn_var": 0.01}
    # The model is sure of rows 0-9 (p 0.95 >= witness_model_below): they stay.
    scores.model[np.arange(10), y[:10]] = 0.95
    scores.model[np.arange(10), 1 - y[:10]] = 0.05
    found = label_flags(scores, y, classes=["a", "b"], rates=rates, model_below=0.9)
    assert found.rows.tolist() == list(range(10, 20))


def test_label_rates_record_the_disagreement_mean_and_variance():
    from pipeline.poison import label_rates

    y, scores = _quiet_boundary_scores()
    rates = label_rates(scores, y)
    disagreement = 1 - scores.knn[np.arange(len(y)), y]
    assert rates["knn"] == pytest.approx(0.05)
    assert rates["knn_mean"] == pytest.approx(disagreement.mean(), abs=1e-6)
    assert rates["knn_var"] == pytest.approx(disagreement.var(), abs=1e-6)


# --- class-conditional mean shift against the approved profile (DATA043) -------------------


def _correlated(n: int = 400, *, seed: int = 0) -> pd.DataFrame:
    """Two classes; x0 and x1 strongly correlated within each class."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    base = rng.normal(0.0, 1.0, (n, 4))
    base[:, 1] = 0.95 * base[:, 0] + 0.3 * rng.normal(0.0, 1.0, n)
    return labelled_frame(base + np.where(y[:, None] == 1, 3.0, 0.0), y)


def _only_means(**more: object) -> DataPolicy:
    off = {"enabled": False}
    return _contract(
        duplicates=off,
        range=off,
        labels=off,
        isolation=off,
        association=off,
        bursts=off,
        **more,
    )


def test_class_means_pass_the_approved_table_and_one_grown_with_clean_rows():
    contract = _only_means()
    approved = _correlated(400, seed=1)
    reference = build_profile(approved, contract)
    assert reference.class_moments is not None
    assert set(reference.class_moments) == {"a", "b"}
    same = screen(approved, contract, reference=reference, seed=SEED)
    assert [m.pvalue for m in same.class_means] == [1.0, 1.0]
    fresh = _correlated(160, seed=2)
    fresh["id"] += 1000
    grown = pd.concat([approved, fresh], ignore_index=True)
    result = screen(grown, contract, reference=reference, seed=SEED)
    assert len(result.class_means) == 2
    assert all(m.pvalue >= 0.01 for m in result.class_means)


def test_class_means_flag_a_class_moved_against_its_correlation_inside_every_range():
    """60 rows of class b: x0 up and x1 down by one SD. Each feature's marginal barely moves
    (PSI and range see nothing), but the pair leaves the class's correlation."""
    contract = _only_means()
    approved = _correlated(400, seed=1)
    reference = build_profile(approved, contract)
    poisoned = approved.copy()
    rows = poisoned.index[poisoned["y"] == "b"][:60]
    poisoned.loc[rows, "x0"] += 1.0
    poisoned.loc[rows, "x1"] -= 1.0
    result = screen(poisoned, contract, reference=reference, seed=SEED)
    by_class = {m.cls: m for m in result.class_means}
    assert by_class["b"].pvalue < 0.01
    assert by_class["b"].worst_column in ("x0", "x1")
    assert by_class["a"].pvalue == 1.0
    assert all(d.psi < 0.25 for d in result.drift)
    # Without the recorded moments (a lock approved before them) the test does not run.
    old = build_profile(approved, _only_means(class_means={"enabled": False}))
    assert old.class_moments is None
    assert screen(poisoned, contract, reference=old, seed=SEED).class_means == ()


def test_near_copies_hidden_by_a_value_in_a_column_the_approved_data_holds_constant():
    # Standardized by the screened table's own spread, a column constant in the approved data
    # that the copies alone carry (0.2, inside the range check's margin of 0.25 x max(|0|, 1))
    # pushed every copy 3.4 SD from its original: no near copy was found and the table passed.
    # Without the columns the approved data holds constant, the copies are one ulp away.
    off = {"enabled": False}
    contract = _contract(
        range=off, labels=off, isolation=off, association=off, bursts=off, class_means=off
    )
    approved = _blobs()
    approved["x3"] = 0.0
    reference = build_profile(approved, contract)
    copies = approved.iloc[:24].copy()
    copies["id"] += 10_000
    copies["x0"] = np.nextafter(copies["x0"].to_numpy(), np.inf)
    copies["x3"] = 0.2
    planted = pd.concat([approved, copies], ignore_index=True)
    result = screen(planted, contract, reference=reference, seed=SEED)
    found = result.by_check("near_duplicate")
    assert found is not None
    assert set(range(len(approved), len(planted))) <= set(found.rows.tolist())
    # The approved table itself has none.
    clean = screen(approved, contract, reference=reference, seed=SEED).by_check("near_duplicate")
    assert clean is not None
    assert clean.count == 0
