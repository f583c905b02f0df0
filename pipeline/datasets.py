"""The embedded default dataset: Wisconsin breast cancer as scikit-learn ships it, as one CSV."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd


def breast_cancer_frame() -> pd.DataFrame:
    """The 569 rows of scikit-learn's copy, with snake_case columns, an id, and named labels.

    scikit-learn codes the target 0 = malignant, 1 = benign (``load_breast_cancer().target_names``);
    the CSV spells the class out so the policy and every report read plainly.
    """
    from sklearn.datasets import load_breast_cancer  # noqa: PLC0415 - only the export needs it

    bunch = load_breast_cancer(as_frame=True)
    features = bunch.data.rename(columns=lambda name: re.sub(r"\W+", "_", name.strip()).lower())
    names = bunch.target_names
    frame = pd.DataFrame({"id": range(1, len(features) + 1)})
    frame = pd.concat([frame, features], axis=1)
    frame["diagnosis"] = [str(names[code]) for code in bunch.target]
    result: pd.DataFrame = frame
    return result


def write_breast_cancer_csv(path: Path) -> None:
    """Write the embedded CSV (used once to create data/breast_cancer.csv; a test re-derives it)."""
    from pipeline.fsio import atomic_write_text  # noqa: PLC0415

    atomic_write_text(path, breast_cancer_frame().to_csv(index=False, lineterminator="\n"))
