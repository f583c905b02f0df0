"""Small plants on the streaming path: does the data gate see a trigger or a burst on a few rows?

Run from the project root: ``python bench/stream_association.py`` (``--rows``, ``--plants``,
``--output``). Writes ``bench/results/stream-association-<rows>.txt`` by default.

The table is ``bench/poisoning.py``'s scale table (seeded ``make_classification``, N x 20 float
features, Parquet), approved clean (``python -m gates data approve``). Then, one at a time, the
same file is rewritten with a plant and the whole data gate runs as a subprocess on the
streaming path (``stream_above_mb = 1``: a 50,000-row stratified sample, every row scored):

- ``clean``: the approved table itself (no false failure expected);
- ``inrange-N``: a backdoor trigger on N rows of class "b" relabelled "a": the two most
  correlated features set to a combination that is rare but inside both ranges (one at its 5th
  percentile, the other at its 95th, against the sign of their correlation; how many clean rows
  share the trigger's cell is printed);
- ``burst-N``: one "b" row copied N times with jitter of 1% of each feature's SD, every copy
  labelled "a" (``bench/poisoning.py``'s ``burst``).

The file's digest then differs from the lock (DATA001 fails): the figures here are the row
checks', read from the gate's report and ``data.flagged.csv``: rows flagged per check, and of
the planted rows how many the association (DATA071), burst (DATA072) and near-duplicate
(DATA052) checks flagged. Each line names the load average before and after the run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from poisoning import SEED, _load, _run_measured  # noqa: E402 - bench/ on sys.path

Array = np.ndarray[Any, Any]
FEATURES = 20


def _write(path: Path, x: Array, y: Array) -> None:
    """The table as Parquet (id, f00..f19, label "a"/"b"), one row group of 1,048,576 at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    try:
        for first in range(0, len(y), 1_048_576):
            part = slice(first, min(first + 1_048_576, len(y)))
            table = pa.table(
                {
                    "id": np.arange(first + 1, part.stop + 1, dtype=np.int64),
                    **{f"f{j:02d}": np.ascontiguousarray(x[part, j]) for j in range(x.shape[1])},
                    "label": np.where(y[part] == 1, "b", "a"),
                }
            )
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


def _trigger(x: Array, y: Array, count: int, rng: Any) -> tuple[Array, Array, Array, str]:
    """The in-range trigger on ``count`` rows of class 1 (label forced to 0); rows and a note."""
    corr = np.corrcoef(x[:200_000].T)
    np.fill_diagonal(corr, 0.0)
    j, k = np.unravel_index(int(np.argmax(np.abs(corr))), corr.shape)
    # Against the correlation: low j with high k when they rise together (and the rarer way).
    qj = np.quantile(x[:, j], [0.05, 0.1, 0.9, 0.95])
    qk = np.quantile(x[:, k], [0.05, 0.1, 0.9, 0.95])
    sign = np.sign(corr[j, k])
    options = [
        (
            qj[0],
            qk[3] if sign > 0 else qk[0],
            (x[:, j] < qj[1]) & ((x[:, k] >= qk[2]) if sign > 0 else (x[:, k] < qk[1])),
        ),
        (
            qj[3],
            qk[0] if sign > 0 else qk[3],
            (x[:, j] >= qj[2]) & ((x[:, k] < qk[1]) if sign > 0 else (x[:, k] >= qk[2])),
        ),
    ]
    vj, vk, cell = min(options, key=lambda o: int(o[2].sum()))
    rows = np.sort(rng.choice(np.flatnonzero(y == 1), size=count, replace=False))
    x, y = x.copy(), y.copy()
    x[rows, j], x[rows, k] = vj, vk
    y[rows] = 0
    note = (
        f"f{j:02d}={vj:.3g}, f{k:02d}={vk:.3g} (correlation {corr[j, k]:+.2f}); "
        f"{int(cell.sum())} clean rows share its decile cell"
    )
    return x, y, rows, note


def _burst(x: Array, y: Array, count: int, rng: Any) -> tuple[Array, Array, Array, str]:
    source = int(rng.choice(np.flatnonzero(y == 1)))
    pool = np.setdiff1d(np.arange(len(y)), [source])
    rows = np.sort(rng.choice(pool, size=count, replace=False))
    x, y = x.copy(), y.copy()
    x[rows] = x[source] + rng.normal(0.0, 0.01, (count, x.shape[1])) * x.std(axis=0)
    y[rows] = 0
    return x, y, rows, f"copies of row {source}"


_GATE = (
    "import json, time; from pathlib import Path; from pipeline.config import load_policy; "
    "from gates.base import RunContext; from gates.data_integrity import DataGate; "
    "p = load_policy(Path('policy.toml')); t = time.perf_counter(); "
    "o = DataGate().run(RunContext(policy=p, run_id='plant', reports_dir=Path('reports'))); "
    "Path('reports/data.json').write_text(json.dumps({'status': o.status.value, "
    "'summary': o.summary, 'metrics': o.metrics, "
    "'rules': sorted({f.rule for f in o.findings if f.severity.value == 'error'}), "
    "'duration_seconds': time.perf_counter() - t}))"
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--plants", default="clean,inrange-100,inrange-200,inrange-500,inrange-2000,burst-200"
    )
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    output = args.output or ROOT / "bench" / "results" / f"stream-association-{args.rows}.txt"
    out: list[str] = []

    def emit(line: str) -> None:
        print(line, flush=True)
        out.append(line)

    from sklearn.datasets import make_classification

    start = time.perf_counter()
    emit(f"{os.cpu_count()} cores; load average {_load()} at start; {args.rows:,} x {FEATURES}")
    x, y = make_classification(
        n_samples=args.rows, n_features=FEATURES, n_informative=10, random_state=SEED
    )
    with tempfile.TemporaryDirectory(prefix="bench-plant-") as tmp:
        root = Path(tmp)
        (root / "data").mkdir()
        path = root / "data" / "synthetic.parquet"
        _write(path, x, y)
        policy = (ROOT / "policy.toml").read_text(encoding="utf-8")
        checks = policy[policy.index("[data.checks]") :]
        columns = "\n".join(f'f{j:02d} = {{ dtype = "float64" }}' for j in range(FEATURES))
        (root / "policy.toml").write_text(
            "schema_version = 1\n\n[cv]\nfolds = 5\n[cv.thresholds.accuracy]\nmin_mean = 0.5\n\n"
            '[data]\npath = "data/synthetic.parquet"\nlock = "data/synthetic.lock.json"\n'
            'label = "label"\nclasses = ["a", "b"]\nid_column = "id"\nmax_rows = 20000000\n'
            "stream_above_mb = 1.0\n\n"
            f'[data.columns]\nid = {{ dtype = "int64", min = 1, unique = true }}\n{columns}\n\n'
            f"{checks}",
            encoding="utf-8",
        )
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        code, seconds, _ = _run_measured(
            [sys.executable, "-m", "gates", "data", "approve"], cwd=root, env=env
        )
        emit(f"approve: exit {code}, {seconds:.1f}s")
        for plant in args.plants.split(","):
            rng = np.random.default_rng(SEED)
            truth = np.zeros(0, dtype=np.int64)
            note = "the approved table"
            if plant == "clean":
                _write(path, x, y)
            else:
                kind, count = plant.split("-")
                make = _trigger if kind == "inrange" else _burst
                px, py, truth, note = make(x, y, int(count), rng)
                _write(path, px, py)
            before = _load()
            code, seconds, peak = _run_measured([sys.executable, "-c", _GATE], cwd=root, env=env)
            report = json.loads((root / "reports" / "data.json").read_text(encoding="utf-8"))
            flagged = pd.read_csv(root / "reports" / "data.flagged.csv")
            found = {}
            for check in ("association", "burst", "near_duplicate"):
                rows = flagged.loc[flagged["check"] == check, "row"].to_numpy()
                found[check] = (rows.size, int(np.isin(truth, rows).sum()))
            per_check = report["metrics"].get("seconds", {})
            emit(
                f"{plant:<13} rules failing {','.join(report['rules']) or '-'}; "
                + "; ".join(
                    f"{c} {n} rows ({hit} of {truth.size} planted)" for c, (n, hit) in found.items()
                )
                + f"; {seconds:.1f}s wall (association {per_check.get('association', 0):.1f}s, "
                f"burst {per_check.get('burst', 0):.1f}s, score_every_row "
                f"{per_check.get('score_every_row', 0):.1f}s), peak RSS {peak / 2**30:.2f} GiB; "
                f"load {before} before, {_load()} after; {note}"
            )
    emit(f"total {time.perf_counter() - start:.0f}s")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("\n".join(out) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
