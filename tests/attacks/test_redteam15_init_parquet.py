"""Red team 15: ``init`` reading a Parquet file with none of the data gate's bounds (row 108).

``python -m gates init DATA --label COLUMN`` reads the user's table to write a policy. For
Parquet it called ``read_table`` without ``max_bytes``, and ``pipeline.data._read_parquet``
applies the footer, page-header, nesting and decoded-size bounds (row 25) only with it: a
10 KB file holding 2,100 rows of one 1 MiB text value (dictionary-encoded: the value once)
was read with its 2.1 GiB of text expanded, unbounded. Under a 1.5 GiB address
space limit (as a small container gives) that is a ``MemoryError`` traceback; without one, the
machine's memory. Now ``init`` reads under the bound the policy it writes will hold the data
gate to (``[data.checks].max_file_mb``, default 2048 MiB): one message naming the file and
the key, exit 2, before the value is expanded.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LIMIT = 1536 * 2**20  # address space of the child: 1.5 GiB


def _bomb(path: Path, *, rows: int, value_bytes: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    text = pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(rows, dtype=np.int32)), pa.array(["x" * value_bytes])
    )
    label = pa.array(["a", "b", "c"] * (rows // 3))
    table = pa.table({"note": text, "y": label, "f": pa.array(np.arange(rows, dtype=float))})
    pq.write_table(table, path, use_dictionary=True, compression="zstd")


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))


def _init(folder: Path, data: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("GATES_RUN_ID", None)
    return subprocess.run(
        [sys.executable, "-m", "gates", "init", str(data), "--label", "y"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        preexec_fn=_limit,  # a limit for this child only, set before exec
    )


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS as Linux applies it")
def test_a_parquet_text_bomb_is_refused_before_it_is_expanded(tmp_path: Path) -> None:
    data = tmp_path / "bomb.parquet"
    _bomb(data, rows=2100, value_bytes=2**20)
    assert data.stat().st_size < 100_000
    folder = tmp_path / "project"
    folder.mkdir()
    done = _init(folder, data)
    assert done.returncode == 2, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "bomb.parquet" in done.stderr + done.stdout
    assert "max_file_mb" in done.stderr + done.stdout
    assert not (folder / "policy.toml").exists()
