"""A small data contract for tests that build tables in memory.

Every such test needs the same frame around its own columns: a path and lock nobody reads, the
label ``y``, two or more classes, and ``id`` as the id column when the table has one.
``data_policy`` writes that frame once; a test names only its columns and the settings it is
about.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config import DataPolicy

ID_COLUMN = {"id": {"dtype": "int64", "unique": True}}


def floats(names: Iterable[str]) -> dict[str, dict[str, object]]:
    """``float64`` columns with no other rule, one for each name."""
    return {name: {"dtype": "float64"} for name in names}


def data_policy(
    columns: Mapping[str, Mapping[str, object]],
    *,
    classes: Iterable[str] = ("a", "b"),
    path: str | Path = "d.csv",
    **settings: object,
) -> DataPolicy:
    """The contract of a table with ``columns`` labelled ``y``; ``id`` is its id column if present.

    ``settings`` are further keys of ``[data]`` (``checks``, ``min_rows`` ...), as in policy.toml.
    """
    document: dict[str, object] = {
        "path": str(path),
        "lock": "d.lock.json",
        "label": "y",
        "classes": list(classes),
        "columns": {name: dict(rule) for name, rule in columns.items()},
    }
    if "id" in columns:
        document["id_column"] = "id"
    document.update(settings)
    return DataPolicy.model_validate(document)


def labelled_frame(x: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    """A table of ``id`` (1 to n), ``x``'s columns as ``x0``, ``x1`` ... and ``y``: class ``b``
    where ``y`` is 1, ``a`` elsewhere."""
    frame = pd.DataFrame(x, columns=[f"x{j}" for j in range(x.shape[1])])
    frame.insert(0, "id", np.arange(1, len(x) + 1, dtype=float))
    frame["y"] = pd.Series(np.where(y == 1, "b", "a"), dtype="string")
    return frame


def two_classes(n: int, *, shift: float, seed: int) -> pd.DataFrame:
    """``labelled_frame`` of ``n`` rows, classes alternating, four standard normal features,
    class ``b``'s moved by ``shift`` on each."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.normal(0.0, 1.0, (n, 4)) + np.where(y[:, None] == 1, shift, 0.0)
    return labelled_frame(x, y)
