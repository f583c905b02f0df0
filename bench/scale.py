"""Out-of-core train and cv on a local Dask cluster against one process and memory (issue 21).

python bench/scale.py [--rows 1000000] [--workers 2] [--chunk-rows 100000] [--memory-max-rows
2000000] [--folder /tmp/scale-bench]: writes a CSV of ROWS rows x 22 columns (id, 20 floats,
label) and a policy under FOLDER (never in the project), locks it, then runs each measurement
in a fresh process:

- ``data``: the data gate's streaming pass (``pipeline.stream.scan``: contract, duplicates, a
  50,000-row sample), one process, as the gate runs it;
- ``train-memory`` / ``cv-memory``: the in-memory path (``pipeline.train.train``; CV and the
  holdout scores), only up to ``--memory-max-rows``;
- ``train-one`` / ``cv-one``: the out-of-core path with every task in one process;
- ``train-cluster`` / ``cv-cluster``: the out-of-core path on a LocalCluster of ``--workers``
  worker processes (one thread each) started for the measurement.

Each prints wall seconds, the measuring process's peak RSS and, on the cluster, each worker's
peak RSS (``resource.getrusage`` inside the worker), the partitions and Newton passes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FEATURES = 20


def write_table(path: Path, rows: int) -> None:
    """A separable-ish binary problem: the label depends on a linear score of the features."""
    rng = np.random.default_rng(0)
    weights = rng.normal(0, 1, FEATURES)
    with path.open("w", encoding="utf-8") as handle:
        names = ",".join(f"f{i}" for i in range(FEATURES))
        handle.write(f"id,{names},y\n")
        block = 500_000
        for start in range(0, rows, block):
            n = min(block, rows - start)
            x = np.round(rng.normal(0, 10, (n, FEATURES)), 4)
            score = x @ weights / 10 + rng.normal(0, 2, n)
            frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(FEATURES)])
            frame.insert(0, "id", np.arange(start, start + n))
            frame["y"] = np.where(score > 0.5, "b", "a")
            frame.to_csv(handle, index=False, header=False, lineterminator="\n")


def write_project(folder: Path, rows: int, chunk_rows: int) -> Path:
    """policy.toml, data/table.csv and its lock (shape and digest; no profile: not screened)."""
    from pipeline.config import load_policy
    from pipeline.data import write_lock_entry

    (folder / "data").mkdir(parents=True, exist_ok=True)
    table = folder / "data" / "table.csv"
    if not table.exists():
        write_table(table, rows)
    columns = ['id = { dtype = "int64", min = 0, unique = true }']
    columns += [f'f{i} = {{ dtype = "float64", min = -100.0, max = 100.0 }}' for i in range(20)]
    thresholds = "\n".join(
        f"[cv.thresholds.{m}]\nmin_mean = 0.5\n" for m in ("accuracy", "roc_auc", "f1")
    )
    (folder / "policy.toml").write_text(
        f"""schema_version = 1
[run]
seed = 42
[model]
estimator = "logistic_regression"
params = {{ C = 1.0, max_iter = 1000 }}
[data]
path = "data/table.csv"
lock = "data/table.lock.json"
label = "y"
classes = ["a", "b"]
positive_class = "b"
id_column = "id"
max_rows = 1000000000
stream_above_mb = 1.0
stream_chunk_rows = {chunk_rows}
[data.checks]
max_file_mb = 1000000
[data.columns]
{chr(10).join(columns)}
[cv]
folds = 5
{thresholds}
""",
        encoding="utf-8",
    )
    (folder / "data" / "table.lock.json").write_text('{"schema_version": 1, "files": {}}')
    policy = load_policy(folder / "policy.toml")
    write_lock_entry(
        policy, rows=rows, columns=("id", *(f"f{i}" for i in range(20)), "y"), profile=None
    )
    return folder / "policy.toml"


def _peak_mib() -> float:
    """This process's peak RSS (Linux ``VmHWM``: unlike ``ru_maxrss``, not inherited from the
    process that forked it)."""
    text = Path("/proc/self/status").read_text(encoding="ascii")
    match = re.search(r"VmHWM:\s+(\d+) kB", text)
    return int(match.group(1)) / 1024 if match else float("nan")


def _worker_peak() -> float:
    return _peak_mib()


def _cv_memory(policy: Any, metrics: list[str]) -> dict[str, Any]:
    """The in-memory cv: CV on the training split and the holdout scores (the fit untimed)."""
    from pipeline.evaluate import (
        build_scorers,
        cross_validate_scores,
        holdout_scores,
    )
    from pipeline.model import build_estimator
    from pipeline.train import prepare, train

    settings = policy.policy
    began = time.perf_counter()
    model = train(policy).model  # not timed as cv
    fit = time.perf_counter() - began
    start = time.perf_counter()
    _, split = prepare(policy)
    scorers = build_scorers(metrics, classes=settings.data.classes, positive_class="b")
    estimator = build_estimator(settings.model, seed=42, contract=settings.data)
    scores = cross_validate_scores(
        estimator, split.x_train, split.y_train, scorers=scorers, folds=5, seed=42
    )
    holdout = holdout_scores(model, split.x_holdout, split.y_holdout, scorers=scorers)
    found: dict[str, Any] = {}
    found["folds"] = {m: [round(v, 5) for v in scores.folds[m]] for m in metrics}
    found["holdout"] = {m: round(v, 5) for m, v in holdout.items()}
    found["untimed_fit_seconds"] = round(fit, 2)
    found["cv_seconds"] = time.perf_counter() - start
    return found


def measure(mode: str, policy_path: Path, workers: int) -> dict[str, Any]:
    """One measurement in this (fresh) process; returns what it found."""
    from pipeline import outofcore
    from pipeline.config import load_policy
    from pipeline.persist import MODEL_FILE, load_verified, save_model

    policy = load_policy(policy_path)
    model_path = policy_path.parent / "artifacts" / MODEL_FILE
    metrics = ["accuracy", "roc_auc", "f1"]
    found: dict[str, Any] = {"mode": mode}
    cluster = None
    scheduler = None
    if mode.endswith("-cluster"):
        from distributed import LocalCluster

        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",  # loopback, a free port: never 8787 on every interface
            memory_limit="4GiB",
        )
        scheduler = cluster.scheduler_address
    if mode.endswith("-one"):
        policy = dataclasses.replace(
            policy,
            policy=policy.policy.model_copy(
                update={"run": policy.policy.run.model_copy(update={"local_workers": 0})}
            ),
        )
    start = time.perf_counter()
    if mode == "data":
        from pipeline.stream import scan

        data = policy.policy.data
        result = scan(
            policy.resolve(data.path),
            data,
            chunk_rows=data.stream_chunk_rows,
            duplicates=True,
            sample_rows=50_000,
        )
        found["violations"] = len(result.violations)
    elif mode == "train-memory":
        from pipeline.train import train

        trained = train(policy)
        found["n_train"] = len(trained.split.y_train)
    elif mode == "cv-memory":
        found |= _cv_memory(policy, metrics)
        start = time.perf_counter() - found.pop("cv_seconds")
    elif mode.startswith("train-"):
        trained_ooc = outofcore.train(policy, scheduler=scheduler)
        save_model(trained_ooc.model, model_path, estimator="logistic_regression")
        found |= {
            "partitions": trained_ooc.partitions,
            "newton_passes": trained_ooc.iterations,
            "n_train": trained_ooc.n_train,
            "where": trained_ooc.where,
        }
    else:
        model, _ = load_verified(model_path)
        result_cv = outofcore.cross_validate(
            policy, model, champion=None, metrics=metrics, scheduler=scheduler
        )
        found |= {
            "partitions": result_cv.partitions,
            "folds": {m: [round(v, 5) for v in result_cv.folds[m]] for m in metrics},
            "holdout": {m: round(v, 5) for m, v in result_cv.holdout.items()},
            "auc_tie_bound": result_cv.auc_tie_bound,
            "where": result_cv.where,
        }
    found["seconds"] = round(time.perf_counter() - start, 2)
    found["peak_mib"] = round(_peak_mib(), 1)
    if cluster is not None:
        from distributed import Client

        with Client(cluster, set_as_default=False) as client:
            found["worker_peak_mib"] = sorted(
                round(v, 1) for v in client.run(_worker_peak).values()
            )
        cluster.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    parser.add_argument("--memory-max-rows", type=int, default=2_000_000)
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "scale-bench")
    parser.add_argument("--modes", default="")
    parser.add_argument("--measure")
    parser.add_argument("--policy", type=Path)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.policy, args.workers)))
        return
    folder = args.folder / f"rows-{args.rows}"
    start = time.perf_counter()
    policy = write_project(folder, args.rows, args.chunk_rows)
    size = (folder / "data" / "table.csv").stat().st_size / 2**20
    print(
        f"# {args.rows} rows x 22 columns, {size:.0f} MiB CSV, partitions of about "
        f"{args.chunk_rows} rows, {args.workers} workers; written and locked in "
        f"{time.perf_counter() - start:.1f}s",
        flush=True,
    )
    modes = ["data", "train-one", "cv-one", "train-cluster", "cv-cluster"]
    if args.rows <= args.memory_max_rows:
        modes += ["train-memory", "cv-memory"]
    if args.modes:
        modes = args.modes.split(",")
    for mode in modes:
        done = subprocess.run(
            [
                *(sys.executable, __file__, "--measure", mode, "--policy", str(policy)),
                *("--workers", str(args.workers)),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        print(done.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
