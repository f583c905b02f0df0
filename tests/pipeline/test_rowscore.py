"""Every row scored on the streaming path: local processes or a Dask cluster, same flags; a
file that changes between the scan and the scoring pass is refused."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.config import DataPolicy
from pipeline.errors import DataError
from pipeline.rowscore import score_every_row
from pipeline.stream import scan
from tests.contract_support import data_policy, floats
from tests.stream_support import scan_and_score

_FEATURES = 6
_ROWS = 1500
_BURST = np.arange(700, 712)


def _table(path: Path) -> DataPolicy:
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=_ROWS, n_features=_FEATURES, n_informative=4, random_state=3
    )
    y[::37] = 1 - y[::37]  # some wrong labels, for the label check to find
    x[5] += 12.0  # one row far out, for the isolation check
    # Row 99 copied 12 times with 0.3%-SD jitter, for the burst check (a 400-row sample draws ~3).
    jitter = np.random.default_rng(3).normal(0.0, 0.003, (12, _FEATURES)) * x.std(axis=0)
    x[_BURST] = x[99] + jitter
    frame = pd.DataFrame(x.round(6), columns=[f"f{j}" for j in range(_FEATURES)])
    frame.insert(0, "id", np.arange(1, _ROWS + 1))
    frame["y"] = np.where(y == 1, "b", "a")
    frame.to_csv(path, index=False, lineterminator="\n")
    return data_policy(
        {
            "id": {"dtype": "int64", "min": 1, "unique": True},
            **floats(f"f{j}" for j in range(_FEATURES)),
        },
        path=path,
        checks={"labels": {"max_fit_rows": 400, "max_index_rows": 200}},
    )


def _score(path: Path, data: DataPolicy, **options: object) -> list[tuple[str, list[int]]]:
    _, found, seconds = scan_and_score(path, data, chunk_rows=250, **options)
    assert {"fit_on_sample", "score_every_row", "label_decision"} <= set(seconds)
    return [(f.check, f.rows.tolist()) for f in found]


@pytest.mark.slow
def test_a_dask_cluster_scores_every_row_as_local_processes_do(tmp_path, dask_cluster):
    data = _table(tmp_path / "d.csv")
    local = _score(tmp_path / "d.csv", data, jobs=2)
    assert [check for check, _ in local] == ["label", "isolation", "association", "burst"]
    assert local[0][1], "the planted wrong labels are found"
    assert 5 in local[1][1], "the planted far row is found"
    assert set(local[3][1]) == {99, *_BURST}, "the planted burst is found, every copy"
    before = dask_cluster.scheduler.transition_counter
    remote = _score(tmp_path / "d.csv", data, scheduler=dask_cluster.scheduler_address)
    assert dask_cluster.scheduler.transition_counter > before, "the chunks ran on the cluster"
    assert remote == local


@pytest.mark.parametrize("change", ["relabelled", "appended", "truncated"])
def test_a_file_changed_between_the_scan_and_the_scoring_pass_is_refused(tmp_path, change):
    """The attacker's moment: the file is swapped after the scan passed it, before scoring."""
    path = tmp_path / "d.csv"
    data = _table(path)
    first = scan(path, data, chunk_rows=250, sample_rows=400, seed=11)
    assert first.sample is not None
    text = path.read_text(encoding="utf-8")
    if change == "relabelled":  # same size, same rows: only the labels differ
        body = text.replace(",a\n", ",X\n").replace(",b\n", ",a\n").replace(",X\n", ",b\n")
        path.write_text(body, encoding="utf-8")
        os.utime(path, ns=(first.signature[1] + 10**9, first.signature[1] + 10**9))
    elif change == "appended":
        path.write_text(text + text.splitlines()[-1].replace("1500,", "1501,", 1) + "\n")
    else:
        path.write_text("".join(text.splitlines(keepends=True)[:-10]), encoding="utf-8")
    with pytest.raises(DataError, match=r"d\.csv: the file changed while it was being scored"):
        score_every_row(
            path,
            data,
            first.sample,
            rows=first.rows,
            chunk_rows=250,
            max_bytes=None,
            seed=11,
            signature=first.signature,
        )


def test_a_file_swapped_for_a_parquet_bomb_after_the_scan_is_refused_before_decoding(tmp_path):
    """The scoring pass reads the file again: swapped after the scan for one whose text decodes
    to far more than ``[data].stream_chunk_mb``, it is refused chunk by chunk as the scan
    would refuse it, not decoded whole and only then found changed."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    csv = tmp_path / "d.csv"
    data = _table(csv)
    frame = pd.read_csv(csv)
    frame["note"] = "ok"
    path = tmp_path / "d.parquet"
    frame.to_parquet(path, index=False, row_group_size=500)
    columns = {**data.columns, "note": {"dtype": "string"}}
    data = DataPolicy.model_validate(
        {
            **data.model_dump(mode="json", exclude={"path", "columns"}),
            "path": str(path),
            "columns": {
                k: v if isinstance(v, dict) else v.model_dump() for k, v in columns.items()
            },
            "stream_chunk_mb": 4.0,
        }
    )
    first = scan(path, data, chunk_rows=250, sample_rows=400, seed=11)
    assert first.sample is not None
    # The same rows, the note column now one 256 KiB value from row 500 on: a few KB on disk,
    # about 62 MiB per 250-row chunk once decoded.
    table = pa.Table.from_pandas(frame, preserve_index=False)
    bomb = pa.DictionaryArray.from_arrays(
        pa.array((np.arange(len(frame)) >= 500).astype(np.int32)),
        pa.array(["ok", "n" * (256 * 1024)]),
    )
    table = table.set_column(table.schema.get_field_index("note"), "note", bomb)
    pq.write_table(table, path, store_schema=False, compression="zstd", row_group_size=500)
    assert path.stat().st_size < 256 * 1024
    with pytest.raises(DataError, match=r"d\.parquet: row group 1 .*\[data\]\.stream_chunk_mb"):
        score_every_row(
            path,
            data,
            first.sample,
            rows=first.rows,
            chunk_rows=250,
            max_bytes=None,
            seed=11,
            signature=first.signature,
        )
