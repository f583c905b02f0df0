"""Subprocess workers for bench/run.py: one measurement per process, printed as one JSON line.

``python bench/_workers.py scale STAGE ROWS`` times one stage (contract, train, cv) on ROWS
synthetic rows x 20 features and reports seconds and peak memory; ``python bench/_workers.py
contract ROWS`` times check_contract against pandera on the same text frame.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

# The pipeline's own thread default (gates/__main__.py) applies to the benchmark too.
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from typing import TYPE_CHECKING  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

if TYPE_CHECKING:
    from pipeline.config import DataPolicy

FEATURES = 20
CLASSES = ("neg", "pos")


def _rss_mib() -> float:
    with open("/proc/self/statm", encoding="ascii") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def synthetic(rows: int, *, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """ROWS x 20 standard-normal features and a label linearly separable up to noise."""
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((rows, FEATURES))
    weights = rng.standard_normal(FEATURES)
    score = values @ weights + rng.standard_normal(rows)
    frame = pd.DataFrame(values, columns=[f"f{i}" for i in range(FEATURES)], copy=False)
    labels = pd.Series(np.where(score > 0, CLASSES[1], CLASSES[0]), name="label")
    return frame, labels


def contract_policy(rows: int) -> DataPolicy:
    """The contract of the synthetic table: id, 20 bounded floats, a two-class label."""
    from pipeline.config import DataPolicy

    columns = {"id": {"dtype": "int64", "min": 0, "unique": True}}
    columns.update(
        {f"f{i}": {"dtype": "float64", "min": -10.0, "max": 10.0} for i in range(FEATURES)}
    )
    return DataPolicy.model_validate(
        {
            "path": "synthetic.csv",
            "lock": "synthetic.lock.json",
            "label": "label",
            "classes": list(CLASSES),
            "id_column": "id",
            "max_rows": max(rows, 1),
            "columns": columns,
        },
        strict=False,
    )


def scale(stage: str, rows: int) -> dict[str, float]:
    """Time one stage on typed synthetic data (as read from Parquet)."""
    features, labels = synthetic(rows)
    base = _rss_mib()
    if stage == "contract":
        from pipeline.data import check_contract

        frame = features.copy()
        frame.insert(0, "id", np.arange(rows, dtype="int64"))
        frame["label"] = labels
        policy = contract_policy(rows)
        base = _rss_mib()
        start = time.perf_counter()
        _, violations = check_contract(frame, policy)
        seconds = time.perf_counter() - start
        assert not violations, violations[:3]
    else:
        from pipeline.config import ModelPolicy
        from pipeline.evaluate import build_scorers, cross_validate_scores
        from pipeline.model import build_estimator

        estimator = build_estimator(ModelPolicy(params={"C": 1.0, "max_iter": 1000}), seed=42)
        scorers = build_scorers(["accuracy", "roc_auc"], classes=CLASSES, positive_class="pos")
        base = _rss_mib()
        start = time.perf_counter()
        if stage == "train":
            estimator.fit(features, labels)
        else:
            cross_validate_scores(estimator, features, labels, scorers=scorers, folds=5, seed=42)
        seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "data_mib": base,
        "peak_mib": _peak_mib(),
    }


def contract_vs_pandera(rows: int, reps: int) -> dict[str, list[float]]:
    """check_contract vs pandera, alternating, on the same frames.

    Twice: on text cells (as read from CSV: both parse and check) and on typed columns (as
    read from Parquet: both only check).
    """
    import pandera.pandas as pa

    from pipeline.data import check_contract

    features, labels = synthetic(rows)
    typed = features.round(6)
    typed.insert(0, "id", np.arange(rows, dtype="int64"))
    typed["label"] = labels
    text = typed.astype(str)
    policy = contract_policy(rows)
    checks = {
        "id": pa.Column("int64", pa.Check.ge(0), unique=True, coerce=True),
        "label": pa.Column(str, pa.Check.isin(list(CLASSES))),
    }
    for i in range(FEATURES):
        checks[f"f{i}"] = pa.Column(
            "float64", [pa.Check.ge(-10.0), pa.Check.le(10.0)], nullable=False, coerce=True
        )
    schema = pa.DataFrameSchema(checks, strict=True)
    typed_checks = {
        name: pa.Column(col.dtype, col.checks, unique=col.unique, nullable=False)
        for name, col in checks.items()
    }
    typed_schema = pa.DataFrameSchema(typed_checks, strict=True)
    times: dict[str, list[float]] = {
        "text_ours": [],
        "text_pandera": [],
        "typed_ours": [],
        "typed_pandera": [],
    }
    for _ in range(reps):
        for mode, frame, theirs in (("text", text, schema), ("typed", typed, typed_schema)):
            start = time.perf_counter()
            _, violations = check_contract(frame, policy)
            times[f"{mode}_ours"].append(time.perf_counter() - start)
            assert not violations, violations[:3]
            start = time.perf_counter()
            theirs.validate(frame, lazy=True)
            times[f"{mode}_pandera"].append(time.perf_counter() - start)
    return times


def main() -> None:
    """Dispatch on argv; print one JSON line."""
    if sys.argv[1] == "scale":
        print(json.dumps(scale(sys.argv[2], int(sys.argv[3]))))
    elif sys.argv[1] == "contract":
        print(json.dumps(contract_vs_pandera(int(sys.argv[2]), int(sys.argv[3]))))
    else:
        raise SystemExit(f"unknown worker {sys.argv[1]!r}")


if __name__ == "__main__":
    main()
