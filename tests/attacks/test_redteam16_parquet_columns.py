"""Red team 16: a Parquet table whose columns are not the schema's, once each.

A Parquet schema may name a column twice (Arrow writes it), and the ``pandas`` metadata in the
footer renames columns as ``to_pandas`` builds the frame. The in-memory reader refused a column
named twice only by Arrow's own error (a kilobyte message quoting the whole schema); the
streaming path (a file above ``[data].stream_above_mb``, which the pull request's file size
decides) read it, and ``frame[name]`` became a table: ``data approve`` and the data gate died
with an AttributeError traceback (the gate ERRORED by the runner's crash handler, never with
the column named). And metadata that swaps two names was read silently, every reader of the
pipeline taking column ``a``'s values as ``b`` while pyarrow, DuckDB or any viewer a reviewer
opens shows them as ``a``.

Every Parquet read now goes through ``pipeline.data.parquet_frame``: the schema's names in its
order, once each (the metadata may only move a column to the index, as pandas does for a
filtered table's row labels); otherwise one DataError naming the file and the column.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.data import read_table
from pipeline.errors import DataError

REPO = Path(__file__).resolve().parents[2]
CSV = "data/breast_cancer.csv"
PARQUET = "data/breast_cancer.parquet"


def _twice(frame: pd.DataFrame, name: str = "mean_radius") -> pa.Table:
    """The table with ``name`` a second time at the end, its values tripled."""
    columns = list(frame.columns)
    arrays = [pa.array(frame[c]) for c in columns] + [pa.array(frame[name] * 3.0)]
    return pa.Table.from_arrays(arrays, names=[*columns, name])


def _swapped(frame: pd.DataFrame, a: str = "mean_radius", b: str = "mean_texture") -> pa.Table:
    """The table with pandas metadata that names field ``a`` as ``b`` and ``b`` as ``a``."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    meta = json.loads(table.schema.metadata[b"pandas"])
    for column in meta["columns"]:
        column["name"] = {a: b, b: a}.get(column["name"], column["name"])
    return table.replace_schema_metadata({b"pandas": json.dumps(meta).encode()})


def _project(root: Path, table: pa.Table) -> Path:
    """The project on the Parquet table, streamed (threshold 0.01 MiB: no policy change of
    meaning, the pull request's file is simply large)."""
    root.mkdir(parents=True)
    shutil.copytree(REPO / "data", root / "data")
    shutil.copytree(REPO / "keys", root / "keys")
    text = (REPO / "policy.toml").read_text(encoding="utf-8")
    text = text.replace("stream_above_mb = 256.0", "stream_above_mb = 0.01")
    text = text.replace(f'path = "{CSV}"', f'path = "{PARQUET}"')
    (root / "policy.toml").write_text(text, encoding="utf-8")
    pq.write_table(table, root / PARQUET)
    (root / CSV).unlink()
    return root


def _frame() -> pd.DataFrame:
    return pd.read_csv(REPO / CSV)


def test_a_column_twice_is_one_message_in_memory(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(_twice(_frame()), path)
    with pytest.raises(DataError) as raised:
        read_table(path, fmt="parquet", max_bytes=64 << 20)
    message = str(raised.value)
    assert "column 'mean_radius' appears 2 times" in message
    assert "\n" not in message


def test_a_column_twice_on_the_streaming_path_fails_the_data_gate_naming_it(
    tmp_path: Path,
) -> None:
    from gates.base import RunContext, Status
    from gates.data_integrity import DataGate
    from pipeline.config import load_policy

    root = _project(tmp_path / "pr", _twice(_frame()))
    assert (root / PARQUET).stat().st_size > 0.01 * 2**20
    context = RunContext(
        policy=load_policy(root / "policy.toml"), run_id="rt16", reports_dir=root / "reports"
    )
    outcome: Any = DataGate().run(context)  # before: AttributeError out of ContractCheck.add
    assert outcome.status is Status.FAILED
    named = [f.message for f in outcome.findings if "appears 2 times" in f.message]
    assert named, [f.message for f in outcome.findings]
    assert "mean_radius" in named[0]


def test_a_column_twice_makes_data_approve_one_line_not_a_traceback(tmp_path: Path) -> None:
    root = _project(tmp_path / "pr", _twice(_frame()))
    done = subprocess.run(  # nosec B603 # fixed argv
        [sys.executable, "-m", "gates", "data", "approve", "--rebaseline"],
        cwd=root,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "column 'mean_radius' appears 2 times" in done.stderr + done.stdout


@pytest.mark.parametrize("streamed", [False, True], ids=["in-memory", "streamed"])
def test_metadata_that_renames_columns_is_refused(tmp_path: Path, streamed: bool) -> None:
    from pipeline.stream import iter_chunks

    path = tmp_path / "t.parquet"
    pq.write_table(_swapped(_frame()), path)
    assert pq.read_table(path).column_names[1:3] == ["mean_radius", "mean_texture"]

    def read() -> None:
        if streamed:
            for _ in iter_chunks(path, fmt="parquet", chunk_rows=100, max_chunk_bytes=64 << 20):
                pass
        else:
            read_table(path, fmt="parquet", max_bytes=64 << 20)

    with pytest.raises(DataError, match="pandas metadata names its columns otherwise"):
        read()


def test_control_a_table_pandas_wrote_with_its_row_labels_still_reads(tmp_path: Path) -> None:
    """pandas stores a filtered table's row labels as a column its metadata makes the index:
    read as before (the schema's other names, in order)."""
    frame = _frame()
    kept = frame[frame["diagnosis"] == "benign"]
    path = tmp_path / "t.parquet"
    kept.to_parquet(path)
    assert "__index_level_0__" in pq.read_table(path).column_names
    read = read_table(path, fmt="parquet", max_bytes=64 << 20)
    assert list(read.columns) == list(frame.columns)
    assert len(read) == len(kept)


def test_a_column_twice_read_on_its_own_is_one_message(tmp_path: Path) -> None:
    """The streaming passes that read one column by name (deciles, per-column scores)."""
    from pipeline.stream import iter_chunks

    path = tmp_path / "t.parquet"
    pq.write_table(_twice(_frame()), path)

    def read() -> None:
        for _ in iter_chunks(
            path, fmt="parquet", chunk_rows=100, columns=("mean_radius",), max_chunk_bytes=1 << 26
        ):
            pass

    with pytest.raises(DataError) as raised:
        read()
    assert "column 'mean_radius' appears 2 times" in str(raised.value)
    assert "\n" not in str(raised.value)
