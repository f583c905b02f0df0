"""Predict with a verified model on rows that pass the feature contract."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.config import LoadedPolicy
from pipeline.data import check_contract, model_features, read_table
from pipeline.errors import DataError


def predict_file(policy: LoadedPolicy, *, model: Any, input_path: Path) -> pd.DataFrame:
    """Return id (when declared), predicted label and one probability column per class.

    ``model`` comes from ``pipeline.persist.load_attested``: a signed, verified model.
    """
    data = policy.policy.data
    fmt = "parquet" if input_path.suffix.lower() in (".parquet", ".pq") else "csv"
    # The data gate's bound: a small Parquet file can decode to gigabytes.
    frame = read_table(
        input_path, fmt=fmt, max_bytes=data.checks.max_file_bytes, max_pages=data.max_pages
    )
    clean, violations = check_contract(frame, data, require_label=False)
    if violations:
        shown = "\n  ".join(f"{v.rule} {v.message}" for v in violations[:5])
        msg = f"{input_path}: refused: the rows break the feature contract:\n  {shown}"
        raise DataError(msg)
    features = model_features(clean, data)
    out = pd.DataFrame(index=clean.index)
    if data.id_column:
        ids = clean[data.id_column]
        out[data.id_column] = (
            ids.astype("int64") if data.columns[data.id_column].dtype == "int64" else ids
        )
    out["prediction"] = model.predict(features)
    if hasattr(model, "predict_proba"):
        for label, column in zip(model.classes_, model.predict_proba(features).T, strict=True):
            out[f"proba_{label}"] = column.round(6)
    return out
