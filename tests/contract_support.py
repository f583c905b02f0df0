"""A small data contract for tests that build tables in memory.

Every such test needs the same frame around its own columns: a path and lock nobody reads, the
label ``y``, two or more classes, and ``id`` as the id column when the table has one.
``data_policy`` writes that frame once; a test names only its columns and the settings it is
about.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

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
