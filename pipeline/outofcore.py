"""Train and cross-validate on a CSV no single process has to hold, over byte-range partitions.

The gate's process reads the file once (``plan``): it cuts it into partitions of whole rows
(byte ranges ending at a newline outside quotes, about ``[data].stream_chunk_rows`` rows each)
and records each partition's SHA-256 and the whole file's, which must be the locked digest.
Tasks then run on a dask.distributed cluster (or in this process: the same functions, the same
results) and receive only the file path, a partition and plain settings; every task re-hashes
the bytes it reads and refuses a partition whose digest differs, so a worker that sees another
file, or a file changed between passes, stops the run. Tasks return plain numbers and numpy
arrays (counts, moments, gradients, Hessians, confusion matrices, score histograms), which the
gate checks for shape and finiteness; the model is assembled in the gate's process and saved
by ``pipeline.persist`` with skops, as in memory.

Split and folds without loading the table: each row's seeded SipHash (``pandas.util.
hash_pandas_object`` with a key from ``[run].seed``) of the id column's text, or of the whole
row's text when there is no id column, puts it in the holdout when its top 53 bits fall below
``holdout_fraction``, and in fold ``hash mod folds`` otherwise. The split is stratified in
expectation only, so the class counts of every part are checked: a class whose holdout or fold
share is further than four binomial standard deviations (and 5 points) from the expected share
is refused, naming the class (ids chosen to steer rows are caught there).

The estimator is the in-memory ``logistic_regression`` family solved by Newton's method on
sufficient statistics: each pass returns every partition's gradient, Hessian and loss (the
``(features + 1)^2`` numbers per class pair), summed in partition order in the gate, so a
cluster and one process give the same model to the last bit, and the optimum is the one
scikit-learn's solver approaches (the same L2 penalty ``C``, intercept unpenalized, features
standardized with the training rows' mean and population deviation when ``[model].scale``).
The CV folds' models and the final model share every pass.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from pipeline.config import DataPolicy, LoadedPolicy
from pipeline.data import (
    ContractCheck,
    check_data_file,
    lock_key,
    model_features,
    read_lock,
    verify_lock,
)
from pipeline.errors import DataError, PipelineError, PolicyError

Array = np.ndarray[Any, Any]
# Metrics computed from a confusion matrix and score histograms (the in-memory path takes any
# scikit-learn scorer name).
METRICS = ("accuracy", "balanced_accuracy", "f1", "precision", "recall", "roc_auc")
# ROC AUC from histograms of predicted probabilities: pairs in one bin count one half, so the
# AUC is within the reported ``auc_tie_bound`` (at most half the share of tied pairs) of the
# exact one.
AUC_BINS = 2**12
# Newton's method stops when no coefficient moves by more than this (standardized units).
NEWTON_TOL = 1e-9
NEWTON_MAX_ITER = 50
_BLOCK = 8 * 2**20
# Partitions scored per round trip (each returns classes^2 x AUC_BINS counts per model).
_SCORE_BATCH = 64
_QUOTE_OR_NEWLINE = re.compile(rb'["\n]')
# Parameters of LogisticRegression this path reproduces (others are refused by name).
_LR_PARAMS = {"C", "max_iter", "tol", "solver", "random_state", "penalty"}


@dataclass(frozen=True)
class Partition:
    """Whole rows of the data file: bytes ``start`` to ``end`` (exclusive), and their digest."""

    index: int
    start: int
    end: int
    sha256: str


@dataclass(frozen=True)
class Plan:
    """The file cut into partitions, with the header the gate read and the file's digest."""

    path: Path
    header: tuple[str, ...]
    partitions: tuple[Partition, ...]
    sha256: str
    size: int


@dataclass(frozen=True)
class Setup:
    """What every task needs besides its partition: plain settings, sent to the workers."""

    path: str
    header: tuple[str, ...]
    contract: DataPolicy
    classes: tuple[str, ...]
    seed: int
    folds: int
    holdout_fraction: float
    drop: tuple[int, ...] = ()
    starts: tuple[int, ...] | None = None


# --- policy -----------------------------------------------------------------------------------


def takes_out_of_core(policy: LoadedPolicy) -> bool:
    """Whether train and cv run out of core: ``[run].out_of_core`` says so, or auto and large.

    ``auto`` takes this path for a data file above ``[data].stream_above_mb`` when the model is
    a family this path trains (``logistic_regression``); any other family keeps the in-memory
    path, as before. ``always`` with another family is a PolicyError (``check_supported``).
    """
    settings = policy.policy
    mode = settings.run.out_of_core
    if mode == "never":
        return False
    if mode == "always":
        return True
    if settings.model.estimator != "logistic_regression":
        return False
    path = policy.resolve(settings.data.path)
    return path.is_file() and settings.data.streams(path.stat().st_size)


def check_supported(policy: LoadedPolicy, metrics: Sequence[str] = ()) -> None:
    """Refuse, naming the key, what the out-of-core path cannot reproduce."""
    settings = policy.policy
    model, data = settings.model, settings.data
    if model.estimator != "logistic_regression":
        msg = (
            f"[model].estimator: the out-of-core path ([run].out_of_core) trains "
            f"logistic_regression only; found '{model.estimator}'"
        )
        raise PolicyError(msg)
    if model.adversarial_epsilon is not None:
        msg = '[model].adversarial_epsilon: adversarial training runs in memory only; unset it or set [run].out_of_core = "never"'
        raise PolicyError(msg)
    unknown = sorted(set(model.params) - _LR_PARAMS)
    if unknown:
        msg = (
            f"[model.params].{unknown[0]}: the out-of-core path reproduces {sorted(_LR_PARAMS)} "
            "of LogisticRegression only"
        )
        raise PolicyError(msg)
    if model.params.get("penalty", "l2") != "l2":
        msg = f"[model.params].penalty: the out-of-core path solves 'l2'; found {model.params['penalty']!r}"
        raise PolicyError(msg)
    if data.resolved_format != "csv":
        msg = f"[data].format: the out-of-core path reads CSV; found '{data.resolved_format}'"
        raise PolicyError(msg)
    for name in data.feature_columns:
        rule = data.columns[name]
        if rule.dtype not in ("float64", "int64") or rule.nullable:
            msg = (
                f"[data.columns].{name}: the out-of-core path takes non-nullable numeric "
                f"features; found dtype '{rule.dtype}'{' (nullable)' if rule.nullable else ''}"
            )
            raise PolicyError(msg)
    for metric in metrics:
        if metric not in METRICS:
            msg = (
                f"[cv.thresholds].{metric}: the out-of-core path scores {', '.join(METRICS)}; "
                f"found '{metric}'"
            )
            raise PolicyError(msg)


# --- planning: partitions and their digests, in the gate's process -----------------------------


def plan(policy: LoadedPolicy) -> Plan:
    """Check the lock, then cut the data file into partitions (one read, digests on the way)."""
    data = policy.policy.data
    path = policy.resolve(data.path)
    problems = verify_lock(policy)
    if problems:
        shown = "\n  ".join(f"{v.rule} {v.message}" for v in problems[:5])
        msg = f"{path}: refused: the data breaks its lock:\n  {shown}"
        raise DataError(msg)
    check_data_file(path, max_bytes=None)
    header, header_end, row_bytes = _header(path)
    target = max(1, data.stream_chunk_rows) * row_bytes
    partitions, whole = _cut(path, header_end, target)
    entry = read_lock(policy.resolve(data.lock)).files.get(lock_key(policy, path))
    if entry is None or entry.sha256 != whole:
        msg = f"{path}: changed while it was being read (its SHA-256 is no longer the locked one)"
        raise DataError(msg)
    return Plan(path, header, partitions, whole, path.stat().st_size)


def _header(path: Path) -> tuple[tuple[str, ...], int, int]:
    """The header's names, where the first row starts, and the mean bytes of the next rows."""
    with path.open("rb") as handle:
        head = handle.read(_BLOCK)
    end = head.find(b"\n")
    if end < 0 or head.count(b'"', 0, end) % 2:
        msg = f"{path}: expected a CSV header line, found none within {_BLOCK} bytes"
        raise DataError(msg)
    try:
        line = head[:end].decode("utf-8").rstrip("\r")
    except UnicodeDecodeError as err:
        msg = f"{path}: expected UTF-8 CSV, found undecodable bytes at offset {err.start}"
        raise DataError(msg) from None
    names = tuple(pd.read_csv(io.StringIO(line + "\n"), dtype=str, nrows=0).columns)
    sample = head[end + 1 :]
    lines = sample.count(b"\n")
    row_bytes = max(1, len(sample) // lines) if lines else max(1, len(sample))
    return names, end + 1, row_bytes


def _cut(path: Path, first: int, target: int) -> tuple[tuple[Partition, ...], str]:
    """Byte ranges of about ``target`` bytes that end after a newline outside quotes.

    RFC 4180 quoting: a newline is inside a quoted field exactly when an odd number of quote
    characters precede it (an escaped quote is two), so one pass tracks the parity.
    """
    cutter = _Cutter(first, target)
    with path.open("rb") as handle:
        while block := handle.read(_BLOCK):
            cutter.add(block)
    if cutter.inside:
        msg = f"{path}: malformed CSV: a quoted field is still open at the end of the file"
        raise DataError(msg)
    cuts, digests = cutter.finish()
    partitions = tuple(Partition(i, cuts[i], cuts[i + 1], digests[i]) for i in range(len(cuts) - 1))
    if not partitions:
        msg = f"{path}: expected data rows after the header, found none"
        raise DataError(msg)
    return partitions, cutter.whole.hexdigest()


class _Cutter:
    """The state of ``_cut``: quote parity, the cuts so far, each partition's running digest."""

    def __init__(self, first: int, target: int) -> None:
        self.first, self.target = first, target
        self.whole = hashlib.sha256()
        self.part = hashlib.sha256()
        self.cuts = [first]
        self.digests: list[str] = []
        self.inside = False
        self.pos = 0  # file offset of the current block
        self.taken = 0  # bytes of the current block already in a finished partition's digest
        self.next_cut = first + target

    def add(self, block: bytes) -> None:
        self.whole.update(block)
        if self.pos + len(block) <= self.first:
            self.pos += len(block)
            return
        self.taken = max(0, self.first - self.pos)
        if b'"' not in block:
            while not self.inside and self.next_cut < self.pos + len(block):
                newline = block.find(b"\n", max(self.next_cut - self.pos, self.taken))
                if newline < 0:
                    break
                self._close(block, self.pos + newline + 1)
        else:
            for match in _QUOTE_OR_NEWLINE.finditer(block, self.taken):
                if match.group() == b'"':
                    self.inside = not self.inside
                elif not self.inside and self.pos + match.start() >= self.next_cut:
                    self._close(block, self.pos + match.start() + 1)
        self.part.update(block[self.taken :])
        self.pos += len(block)

    def _close(self, block: bytes, at: int) -> None:
        self.part.update(block[self.taken : at - self.pos])
        self.digests.append(self.part.hexdigest())
        self.part, self.taken = hashlib.sha256(), at - self.pos
        self.cuts.append(at)
        self.next_cut = at + self.target

    def finish(self) -> tuple[list[int], list[str]]:
        if self.cuts[-1] < self.pos:
            self.digests.append(self.part.hexdigest())
            self.cuts.append(self.pos)
        return self.cuts, self.digests


# --- what a task does with its partition --------------------------------------------------------


@dataclass(frozen=True)
class Rows:
    """One partition's contract-clean rows: features, class codes, split group (folds = holdout)."""

    frame: pd.DataFrame
    x: Array
    y: Array
    group: Array
    rows: int


class PartitionError(DataError):
    """A task's refusal, as text (returned, not raised, across the cluster)."""


def _read(setup: Setup, part: Partition) -> Any:
    with open(setup.path, "rb") as handle:
        handle.seek(part.start)
        payload = handle.read(part.end - part.start)
    found = hashlib.sha256(payload).hexdigest()
    if found != part.sha256:
        msg = (
            f"{setup.path}: partition {part.index} (bytes {part.start}-{part.end}) has SHA-256 "
            f"{found[:12]}..., the gate read {part.sha256[:12]}...: the worker reads another "
            "file, or the file changed during the run"
        )
        raise PartitionError(msg)
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.csv as pv  # noqa: PLC0415

    try:
        table = pv.read_csv(
            io.BytesIO(payload),
            read_options=pv.ReadOptions(column_names=list(setup.header), use_threads=False),
            convert_options=pv.ConvertOptions(
                column_types=dict.fromkeys(setup.header, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as err:
        msg = f"malformed CSV: {str(err).strip()}"
        raise PartitionError(msg) from None
    return table


def _hashes(target: pd.DataFrame | pd.Series, setup: Setup) -> Array:
    key = f"{setup.seed:016d}"[-16:]
    hashed: Array = pd.util.hash_pandas_object(target, index=False, hash_key=key).to_numpy()
    return hashed


def groups_of(hashed: Array, *, folds: int, holdout_fraction: float) -> Array:
    """Split group per row from its 64-bit hash: 0..folds-1 a CV fold, ``folds`` the holdout."""
    unit = (hashed >> np.uint64(11)).astype(np.float64) / float(2**53)
    group = (hashed % np.uint64(folds)).astype(np.int64)
    group[unit < holdout_fraction] = folds
    return group


def _rows(setup: Setup, part: Partition, *, checked: bool = True) -> Rows:
    """The partition's rows as the model takes them.

    The first pass (``checked=False``) runs the contract on the cells' text, as the in-memory
    path does. Later passes read bytes whose digest equals the checked ones, so they only cast
    the feature columns with Arrow, the parser ``pipeline.data`` tries first.
    """
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.compute as pc  # noqa: PLC0415

    table = _read(setup, part)
    contract = setup.contract
    start = setup.starts[part.index] if setup.starts is not None else 0
    features = list(contract.feature_columns)
    if not checked:
        raw = table.to_pandas().set_axis(pd.RangeIndex(start, start + table.num_rows))
        check = ContractCheck(contract)
        clean = check.add(raw, start=start)
        # A unique column's repeats across partitions are the data gate's to judge, over the
        # whole file; within a partition every rule holds here too.
        if check.failed:
            raise PartitionError("contract")
        frame = model_features(clean, contract)
        labels = clean[contract.label].astype(str).to_numpy()
    else:
        columns = {c: _floats(table.column(c), pa, pc) for c in features}
        frame = pd.DataFrame(columns, index=pd.RangeIndex(start, start + table.num_rows))
        # As ContractCheck reads a label: the text without surrounding whitespace.
        labels = table.column(contract.label).to_pandas().str.strip().to_numpy(dtype=str)
    hashed_from = (
        table.column(contract.id_column).to_pandas() if contract.id_column else table.to_pandas()
    )
    group = groups_of(
        _hashes(hashed_from, setup), folds=setup.folds, holdout_fraction=setup.holdout_fraction
    )
    known = np.asarray(setup.classes)
    codes = np.minimum(np.searchsorted(known, labels), len(known) - 1)
    if len(labels) and not (known[codes] == labels).all():
        msg = "a label is not one of the classes, in a partition the contract passed"
        raise PartitionError(msg)
    keep = np.ones(table.num_rows, dtype=bool)
    if setup.drop:
        dropped = np.asarray(setup.drop, dtype=np.int64) - start
        keep[dropped[(dropped >= 0) & (dropped < table.num_rows)]] = False
    return Rows(
        frame=frame[keep],
        x=frame.to_numpy(dtype=np.float64)[keep],
        y=codes[keep],
        group=group[keep],
        rows=table.num_rows,
    )


def _floats(column: Any, pa: Any, pc: Any) -> Array:
    """A checked feature column as float64, parsed as ``pipeline.data`` parses it.

    Arrow's strict parser first; a column it refuses goes to pandas' per-cell parser, which
    the contract accepted it with (so a cell that now fails to parse is an error).
    """
    try:
        parsed: Array = pc.cast(column, pa.float64()).to_numpy()
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        parsed = pd.to_numeric(column.to_pandas(), errors="coerce").to_numpy(dtype=np.float64)
        if np.isnan(parsed).any():
            msg = "a feature cell no longer parses as it did in the checked pass"
            raise PartitionError(msg) from None
    return parsed


def task_count(setup: Setup, part: Partition) -> dict[str, Any]:
    """The partition's row count (the first pass when quarantined rows need file rows)."""
    try:
        return {"rows": _read(setup, part).num_rows}
    except PartitionError as err:
        return {"error": str(err)}


def task_stats(setup: Setup, part: Partition) -> dict[str, Any]:
    """Rows, class counts per group, feature count/mean/M2 per group, the holdout's digest."""
    try:
        rows = _rows(setup, part, checked=False)
    except PartitionError as err:
        return {"error": str(err)}
    groups = setup.folds + 1
    classes = len(setup.classes)
    counts = np.zeros((groups, classes), dtype=np.int64)
    np.add.at(counts, (rows.group, rows.y), 1)
    width = rows.x.shape[1]
    n = np.zeros(groups, dtype=np.int64)
    mean = np.zeros((groups, width))
    m2 = np.zeros((groups, width))
    for g in range(groups):
        block = rows.x[rows.group == g]
        n[g] = len(block)
        if len(block):
            mean[g] = block.mean(axis=0)
            m2[g] = ((block - mean[g]) ** 2).sum(axis=0)
    held = np.flatnonzero(rows.group == setup.folds)
    holdout = hashlib.sha256(held.astype("<i8").tobytes()).hexdigest()
    return {"rows": rows.rows, "counts": counts, "n": n, "mean": mean, "m2": m2, "holdout": holdout}


@dataclass(frozen=True)
class Linear:
    """One model being solved: the groups it trains on, its scaling and coefficients."""

    excluded: tuple[int, ...]
    mean: Array
    scale: Array
    coef: Array  # (outputs, features + 1): the last column is the intercept


def task_newton(
    setup: Setup, part: Partition, models: tuple[Linear, ...], c: float
) -> dict[str, Any]:
    """Per model: the penalized-loss gradient and Hessian's data part, and the data loss."""
    try:
        rows = _rows(setup, part)
    except PartitionError as err:
        return {"error": str(err)}
    grads, hessians, losses = [], [], []
    for model in models:
        mask = ~np.isin(rows.group, model.excluded)
        x = (rows.x[mask] - model.mean) / model.scale
        x = np.hstack([x, np.ones((len(x), 1))])
        grad, hess, loss = _logistic_terms(x, rows.y[mask], model.coef, len(setup.classes))
        grads.append(c * grad)
        hessians.append(c * hess)
        losses.append(c * loss)
    return {"grad": grads, "hess": hessians, "loss": losses}


def _logistic_terms(x: Array, y: Array, coef: Array, classes: int) -> tuple[Array, Array, float]:
    """Gradient, Hessian and summed log loss of the data term (no penalty)."""
    q = x.shape[1]
    if classes == 2:
        z = x @ coef[0]
        p = 1.0 / (1.0 + np.exp(-z))
        t = (y == 1).astype(np.float64)
        grad = x.T @ (p - t)
        hess = (x * (p * (1.0 - p))[:, None]).T @ x
        # log(1 + exp(-z)) for class 1, log(1 + exp(z)) for class 0, computed stably.
        loss = float(np.logaddexp(0.0, np.where(t == 1.0, -z, z)).sum())
        return grad.reshape(1, q), hess, loss
    z = x @ coef.T
    z -= z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    p = np.exp(log_p)
    onehot = np.eye(classes)[y]
    grad = (p - onehot).T @ x  # (classes, q)
    hess = np.zeros((classes * q, classes * q))
    for k in range(classes):
        for m in range(k, classes):
            w = p[:, k] * ((1.0 if k == m else 0.0) - p[:, m])
            block = (x * w[:, None]).T @ x
            hess[k * q : (k + 1) * q, m * q : (m + 1) * q] = block
            hess[m * q : (m + 1) * q, k * q : (k + 1) * q] = block
    loss = float(-log_p[np.arange(len(y)), y].sum())
    return grad, hess, loss


@dataclass(frozen=True)
class ScoreJob:
    """A fitted model (the saved one, the champion, a fold's) and the group it is scored on."""

    name: str
    model: Any
    group: int


def task_score(setup: Setup, part: Partition, jobs: tuple[ScoreJob, ...]) -> dict[str, Any]:
    """Per job: the confusion matrix and, per class, histograms of that class's probability."""
    try:
        rows = _rows(setup, part)
    except PartitionError as err:
        return {"error": str(err)}
    k = len(setup.classes)
    out: list[tuple[Array, Array]] = []
    for job in jobs:
        mask = rows.group == job.group
        confusion = np.zeros((k, k), dtype=np.int64)
        hist = np.zeros((k, k, AUC_BINS), dtype=np.int64)
        if mask.any():
            try:
                proba, predicted = _predict(job.model, rows.frame[mask], setup.classes)
            except (ValueError, KeyError, TypeError, AttributeError) as err:
                return {
                    "error": f"{job.name} cannot score these rows ({type(err).__name__}: {err})"
                }
            truth = rows.y[mask]
            np.add.at(confusion, (truth, predicted), 1)
            bins = np.minimum((proba * AUC_BINS).astype(np.int64), AUC_BINS - 1)
            for c in range(k):
                np.add.at(hist[:, c, :], (truth, bins[:, c]), 1)
        out.append((confusion, hist))
    return {"scores": out}


def _predict(model: Any, frame: pd.DataFrame, classes: tuple[str, ...]) -> tuple[Array, Array]:
    """Probabilities in ``classes`` order and predicted class codes."""
    names = list(classes)
    proba = np.asarray(model.predict_proba(frame), dtype=np.float64)
    full = np.zeros((len(frame), len(names)))
    full[:, [names.index(str(c)) for c in model.classes_]] = proba
    predicted = np.asarray([names.index(str(c)) for c in model.predict(frame)], dtype=np.int64)
    return full, predicted


# --- where tasks run ----------------------------------------------------------------------------


class Runner(Protocol):
    """Runs one task over every partition and returns the results in partition order."""

    where: str

    def map(
        self, task: Callable[..., dict[str, Any]], parts: Sequence[Partition], *args: Any
    ) -> list[dict[str, Any]]: ...


class InProcess:
    """Every task in this process, one partition after another."""

    where = "in one process"

    def map(
        self, task: Callable[..., dict[str, Any]], parts: Sequence[Partition], *args: Any
    ) -> list[dict[str, Any]]:
        """Run ``task`` over ``parts`` here."""
        return [task(args[0], part, *args[1:]) for part in parts]


class OnCluster:
    """Every task on a dask.distributed cluster, through a ``distributed.Client``."""

    def __init__(self, client: Any, where: str) -> None:
        self.client = client
        self.where = where

    def map(
        self, task: Callable[..., dict[str, Any]], parts: Sequence[Partition], *args: Any
    ) -> list[dict[str, Any]]:
        """Run ``task`` over ``parts`` on the cluster; a lost worker or scheduler is an error."""
        setup, rest = args[0], args[1:]
        try:
            futures = [self.client.submit(task, setup, part, *rest, pure=False) for part in parts]
            results: list[dict[str, Any]] = self.client.gather(futures)
        except Exception as err:
            msg = (
                f"the Dask cluster ({self.where}) failed during {task.__name__} "
                f"({type(err).__name__}: {err}); nothing computed there was used"
            )
            raise PipelineError(msg) from None
        return results


@contextlib.contextmanager
def runner(policy: LoadedPolicy, scheduler: str | None) -> Iterator[Runner]:
    """The cluster at ``scheduler``; else a LocalCluster of ``[run].local_workers`` (0: here)."""
    settings = policy.policy.run
    if not scheduler and settings.local_workers == 0:
        yield InProcess()
        return
    try:
        from distributed import Client, LocalCluster  # noqa: PLC0415 - optional extra 'dask'
    except ImportError:
        msg = (
            "the out-of-core path runs on dask.distributed, which is not installed; pip install "
            "'secure-ml-pipeline[dask]', or set [run].local_workers = 0 to run in one process"
        )
        raise PipelineError(msg) from None
    from pipeline.evaluate import _DASK_TIMEOUT_SECONDS  # noqa: PLC0415

    cluster = None
    try:
        if scheduler:
            client = Client(scheduler, timeout=_DASK_TIMEOUT_SECONDS, set_as_default=False)  # type: ignore[no-untyped-call, unused-ignore]
            where = f"dask {scheduler}"
        else:
            cluster = LocalCluster(  # type: ignore[no-untyped-call, unused-ignore]
                n_workers=settings.local_workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address="127.0.0.1:0",  # loopback, a free port: never 8787 on every interface
                memory_limit=f"{settings.worker_memory_mb}MiB",
            )
            client = Client(cluster, set_as_default=False)  # type: ignore[no-untyped-call, unused-ignore]
            where = f"a local Dask cluster of {settings.local_workers} workers"
    except (OSError, TimeoutError, ValueError) as err:
        if cluster is not None:
            cluster.close()  # type: ignore[no-untyped-call, unused-ignore]
        msg = (
            f"cannot reach the Dask scheduler at {scheduler} ({type(err).__name__}: {err}); "
            "check GATES_DASK_SCHEDULER or [run].dask_scheduler"
        )
        raise PipelineError(msg) from None
    try:
        yield OnCluster(client, where)
    finally:
        client.close()  # type: ignore[no-untyped-call, unused-ignore]
        if cluster is not None:
            cluster.close()  # type: ignore[no-untyped-call, unused-ignore]


# --- the gate-side computations ----------------------------------------------------------------


def _checked(
    results: list[dict[str, Any]],
    plan: Plan,
    setup: Setup,
    parts: Sequence[Partition] | None = None,
) -> None:
    """Raise the first partition's refusal; a contract failure is re-checked with file rows."""
    for part, result in zip(plan.partitions if parts is None else parts, results, strict=True):
        error = result.get("error")
        if error is None:
            continue
        if error == "contract":
            raise DataError(_contract_message(plan, setup, part))
        msg = f"{plan.path}: partition {part.index} (bytes {part.start}-{part.end}): {error}"
        raise DataError(msg)


def _contract_message(plan: Plan, setup: Setup, part: Partition) -> str:
    """The failing partition's violations, with file rows (its start counted if not known)."""
    starts = setup.starts
    if starts is None:
        counts = InProcess().map(task_count, plan.partitions[: part.index], setup)
        starts = tuple(np.cumsum([0] + [int(c.get("rows", 0)) for c in counts]).tolist())
    start = starts[part.index]
    check = ContractCheck(setup.contract)
    check.add(_framed(setup, part, start), start=start)
    shown = "\n  ".join(f"{v.rule} {v.message}" for v in check.violations()[:5])
    return f"{plan.path}: refused: the data breaks its contract:\n  {shown}"


def _framed(setup: Setup, part: Partition, start: int) -> pd.DataFrame:
    raw: pd.DataFrame = _read(setup, part).to_pandas()
    return raw.set_axis(pd.RangeIndex(start, start + len(raw)))


@dataclass(frozen=True)
class SplitStats:
    """The split's class counts per group and the features' moments per group."""

    counts: Array  # (folds + 1, classes)
    n: Array
    mean: Array
    m2: Array
    rows: int
    digest: str
    starts: tuple[int, ...]

    def moments(self, excluded: Sequence[int]) -> tuple[Array, Array]:
        """Mean and population variance over the groups not excluded (Chan's merge)."""
        total, mean, m2 = 0, np.zeros(self.mean.shape[1]), np.zeros(self.mean.shape[1])
        for g in range(len(self.n)):
            if g in excluded or self.n[g] == 0:
                continue
            n_g = int(self.n[g])
            delta = self.mean[g] - mean
            both = total + n_g
            mean = mean + delta * n_g / both
            m2 = m2 + self.m2[g] + delta**2 * total * n_g / both
            total = both
        return mean, m2 / max(total, 1)


def split_stats(plan: Plan, setup: Setup, run: Runner) -> tuple[SplitStats, Setup]:
    """One pass: the contract on every partition, the split's counts, the features' moments."""
    if setup.drop and setup.starts is None:
        counted = run.map(task_count, plan.partitions, setup)
        _checked(counted, plan, setup)
        starts = tuple(np.cumsum([0] + [int(c["rows"]) for c in counted]).tolist()[:-1])
        setup = _replace_starts(setup, starts)
    results = run.map(task_stats, plan.partitions, setup)
    _checked(results, plan, setup)
    groups, classes = setup.folds + 1, len(setup.classes)
    width = len(setup.contract.feature_columns)
    rows = [int(r["rows"]) for r in results]
    starts = tuple(np.cumsum([0, *rows]).tolist()[:-1])
    merged_counts = np.zeros((groups, classes), dtype=np.int64)
    n = np.zeros(groups, dtype=np.int64)
    mean, m2 = np.zeros((groups, width)), np.zeros((groups, width))
    digest = hashlib.sha256()
    for start, result in zip(starts, results, strict=True):
        counts = _array(result["counts"], (groups, classes))
        part_n = _array(result["n"], (groups,))
        part_mean, part_m2 = (
            _array(result["mean"], (groups, width)),
            _array(result["m2"], (groups, width)),
        )
        for g in range(groups):
            both = n[g] + part_n[g]
            if part_n[g] == 0:
                continue
            delta = part_mean[g] - mean[g]
            mean[g] = mean[g] + delta * part_n[g] / both
            m2[g] = m2[g] + part_m2[g] + delta**2 * n[g] * part_n[g] / both
            n[g] = both
        merged_counts += counts
        digest.update(f"{start}:{result['holdout']};".encode())
    stats = SplitStats(merged_counts, n, mean, m2, sum(rows), digest.hexdigest(), starts)
    return stats, _replace_starts(setup, starts)


def _replace_starts(setup: Setup, starts: tuple[int, ...]) -> Setup:
    from dataclasses import replace  # noqa: PLC0415

    return replace(setup, starts=starts)


def _array(value: Any, shape: tuple[int, ...]) -> Array:
    """A worker's array, refused unless it is numeric, of the expected shape and finite."""
    array = np.asarray(value)
    if array.shape != shape or array.dtype.kind not in "iuf" or not np.isfinite(array).all():
        msg = f"a task returned an array of shape {array.shape} ({array.dtype}), expected {shape} finite numbers"
        raise PipelineError(msg)
    return array


def check_split(stats: SplitStats, setup: Setup) -> None:
    """Refuse a split whose class shares are far from what a seeded hash gives.

    Each class's holdout share must be within max(0.05, 4 standard deviations) of
    ``holdout_fraction``, its share of each fold within the same of ``1 / folds``, and every
    class needs a row in the holdout and in every fold.
    """
    where = "[data].id_column" if setup.contract.id_column else "the rows' contents"
    for c, name in enumerate(setup.classes):
        total = int(stats.counts[:, c].sum())
        held = int(stats.counts[setup.folds, c])
        if total == 0:
            msg = f"class '{name}' has no rows in {setup.path}"
            raise DataError(msg)
        _share_check(
            name, held, total, expected=setup.holdout_fraction, what="the holdout", where=where
        )
        trained = total - held
        for fold in range(setup.folds):
            in_fold = int(stats.counts[fold, c])
            if in_fold == 0:
                msg = (
                    f"[cv].folds = {setup.folds}: class '{name}' has no row in fold {fold} "
                    f"(of {trained} training rows); the hash split needs more rows of it"
                )
                raise DataError(msg)
            _share_check(
                name, in_fold, trained, expected=1 / setup.folds, what=f"fold {fold}", where=where
            )


def _share_check(
    name: str, part: int, total: int, *, expected: float, what: str, where: str
) -> None:
    share = part / total
    allowed = max(0.05, 4 * math.sqrt(expected * (1 - expected) / total))
    if part == 0 or abs(share - expected) > allowed:
        msg = (
            f"split: class '{name}' has {part} of its {total} rows ({share:.0%}) in {what}; "
            f"a seeded hash split gives {expected:.0%} ± {allowed:.0%}: the hash of {where} "
            "steers the split"
        )
        raise DataError(msg)


def solve(
    plan: Plan,
    setup: Setup,
    stats: SplitStats,
    run: Runner,
    *,
    excluded: Sequence[tuple[int, ...]],
    c: float,
    scale: bool,
) -> list[tuple[Linear, int]]:
    """Newton's method for every model at once; returns each model and its iterations."""
    width = len(setup.contract.feature_columns)
    classes = len(setup.classes)
    outputs = 1 if classes == 2 else classes
    q = width + 1
    models: list[Linear] = []
    for groups in excluded:
        mean, var = stats.moments(groups)
        if scale:
            spread = np.sqrt(var)
            spread[spread < 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0)] = 1.0
        else:
            mean, spread = np.zeros(width), np.ones(width)
        models.append(Linear(tuple(groups), mean, spread, np.zeros((outputs, q))))
    penalty = np.ones((outputs, q))
    penalty[:, -1] = 0.0
    active = list(range(len(models)))
    iterations = [0] * len(models)
    previous: dict[int, tuple[float, Array]] = {}  # model -> (objective, step) of the last move
    while active:
        results = run.map(task_newton, plan.partitions, setup, tuple(models[i] for i in active), c)
        _checked(results, plan, setup)
        still: list[int] = []
        for slot, i in enumerate(active):
            model = models[i]
            grad = sum(_array(r["grad"][slot], (outputs, q)) for r in results)
            hess = sum(_array(r["hess"][slot], (outputs * q, outputs * q)) for r in results)
            loss = float(sum(float(r["loss"][slot]) for r in results))
            objective = loss + 0.5 * float((penalty * model.coef**2).sum())
            last = previous.get(i)
            if last is not None and objective > last[0] * (1 + 1e-12) + 1e-12:
                # The full step went uphill: go back half of it and evaluate again.
                half = last[1] / 2
                models[i] = Linear(model.excluded, model.mean, model.scale, model.coef + half)
                previous[i] = (last[0], half)
                iterations[i] += 1
                if np.abs(half).max() > NEWTON_TOL and iterations[i] < NEWTON_MAX_ITER:
                    still.append(i)
                continue
            grad = grad + penalty * model.coef
            hess = hess + np.diag(penalty.reshape(-1))
            step = -np.linalg.lstsq(hess, grad.reshape(-1), rcond=None)[0].reshape(outputs, q)
            models[i] = Linear(model.excluded, model.mean, model.scale, model.coef + step)
            previous[i] = (objective, -step)
            iterations[i] += 1
            if np.abs(step).max() > NEWTON_TOL and iterations[i] < NEWTON_MAX_ITER:
                still.append(i)
        active = still
    return list(zip(models, iterations, strict=True))


def as_pipeline(model: Linear, setup: Setup, *, scale: bool) -> Any:
    """The solved model as the in-memory family's fitted Pipeline (StandardScaler, LogisticRegression).

    The fitted attributes are scikit-learn's documented ones (``mean_``, ``var_``, ``scale_``,
    ``coef_``, ``intercept_``, ``classes_``...), so the saved file has exactly the reviewed
    types of ``logistic_regression`` and every consumer treats it as that family.
    """
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415
    from sklearn.pipeline import Pipeline  # noqa: PLC0415
    from sklearn.preprocessing import StandardScaler  # noqa: PLC0415

    names = np.asarray(setup.contract.feature_columns, dtype=object)
    classifier = LogisticRegression()
    classifier.classes_ = np.asarray(setup.classes, dtype=object)
    classifier.coef_ = model.coef[:, :-1].copy()
    classifier.intercept_ = model.coef[:, -1].copy()
    classifier.n_iter_ = np.asarray([1], dtype=np.int32)
    classifier.n_features_in_ = len(names)
    steps: list[tuple[str, Any]] = []
    if scale:
        scaler = StandardScaler()
        scaler.mean_ = model.mean.copy()
        scaler.scale_ = model.scale.copy()
        scaler.var_ = model.scale.copy() ** 2
        scaler.n_samples_seen_ = np.int64(0)
        scaler.n_features_in_ = len(names)
        scaler.feature_names_in_ = names
        steps.append(("scale", scaler))
    else:
        classifier.feature_names_in_ = names
    steps.append(("classifier", classifier))
    return Pipeline(steps)


# --- scores from confusion matrices and histograms ----------------------------------------------


@dataclass(frozen=True)
class Tally:
    """A model's summed confusion matrix and probability histograms on one group."""

    confusion: Array
    hist: Array
    auc_tie_bound: float = field(default=0.0)


def score(plan: Plan, setup: Setup, run: Runner, jobs: Sequence[ScoreJob]) -> list[Tally]:
    """Score every job in one pass; returns each job's summed tallies.

    Partitions go out in batches of ``_SCORE_BATCH`` and each batch is summed as it returns,
    so the gate holds at most that many partitions' histograms whatever the file's size.
    """
    k = len(setup.classes)
    confusions = [np.zeros((k, k), dtype=np.int64) for _ in jobs]
    hists = [np.zeros((k, k, AUC_BINS), dtype=np.int64) for _ in jobs]
    for first in range(0, len(plan.partitions), _SCORE_BATCH):
        batch = plan.partitions[first : first + _SCORE_BATCH]
        results = run.map(task_score, batch, setup, tuple(jobs))
        _checked(results, plan, setup, batch)
        for result in results:
            for j in range(len(jobs)):
                confusions[j] += _array(result["scores"][j][0], (k, k))
                hists[j] += _array(result["scores"][j][1], (k, k, AUC_BINS))
    return [Tally(c, h) for c, h in zip(confusions, hists, strict=True)]


def metric(
    tally: Tally, name: str, *, classes: Sequence[str], positive_class: str | None
) -> tuple[float, float]:
    """The metric as scikit-learn's scorer computes it, and its bound (non-zero for AUC only)."""
    confusion = tally.confusion.astype(np.float64)
    k = len(classes)
    truth, predicted = confusion.sum(axis=1), confusion.sum(axis=0)
    tp = np.diag(confusion)
    positive = classes.index(positive_class if positive_class is not None else classes[-1])
    recall = np.divide(tp, truth, out=np.zeros(k), where=truth > 0)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros(k), where=denominator > 0)
    binary = k == 2
    if name == "accuracy":
        return float(tp.sum() / confusion.sum()), 0.0
    if name == "balanced_accuracy":
        return float(recall[truth > 0].mean()), 0.0
    per = {"f1": f1, "precision": precision, "recall": recall}
    if name in per:
        values = per[name]
        return (float(values[positive]) if binary else float(values.mean())), 0.0
    if name == "roc_auc":
        scored = [1] if binary else list(range(k))
        aucs, bounds = [], []
        for c in scored:
            pos = tally.hist[c, c, :].astype(np.float64)
            neg = tally.hist[:, c, :].sum(axis=0).astype(np.float64) - pos
            pairs = pos.sum() * neg.sum()
            below = np.concatenate([[0.0], np.cumsum(neg)[:-1]])
            aucs.append(float(((pos * below).sum() + 0.5 * (pos * neg).sum()) / pairs))
            bounds.append(float(0.5 * (pos * neg).sum() / pairs))
        return float(np.mean(aucs)), float(np.max(bounds))
    msg = f"[cv.thresholds].{name}: the out-of-core path cannot score it"
    raise PolicyError(msg)


def setup_for(policy: LoadedPolicy, plan: Plan, *, drop: Sequence[int] = ()) -> Setup:
    """The tasks' settings from the policy."""
    settings = policy.policy
    return Setup(
        path=str(plan.path),
        header=plan.header,
        contract=settings.data,
        classes=tuple(sorted(settings.data.classes)),
        seed=settings.run.seed,
        folds=settings.cv.folds,
        holdout_fraction=settings.data.holdout_fraction,
        drop=tuple(sorted(set(drop))),
    )


def penalty_c(policy: LoadedPolicy) -> float:
    """``[model.params].C`` (1.0 by default, as LogisticRegression's)."""
    value = policy.policy.model.params.get("C", 1.0)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        msg = f"[model.params].C: expected a positive number, found {value!r}"
        raise PolicyError(msg)
    return float(value)


# --- the two entry points the gates call --------------------------------------------------------


@dataclass(frozen=True)
class TrainedOutOfCore:
    """The fitted model (the in-memory family's Pipeline) and what it was trained on."""

    model: Any
    rows: int
    n_train: int
    n_holdout: int
    split_digest: str
    data_sha256: str
    partitions: int
    iterations: int
    fit_seconds: float
    where: str


def train(
    policy: LoadedPolicy, *, drop: Sequence[int] = (), scheduler: str | None = None
) -> TrainedOutOfCore:
    """Fit ``logistic_regression`` on the training split, over partitions, on the cluster."""
    import time  # noqa: PLC0415

    check_supported(policy)
    settings = policy.policy
    the_plan = plan(policy)
    setup = setup_for(policy, the_plan, drop=drop)
    with runner(policy, scheduler) as run:
        stats, setup = split_stats(the_plan, setup, run)
        check_split(stats, setup)
        start = time.perf_counter()
        [(solved, iterations)] = solve(
            the_plan,
            setup,
            stats,
            run,
            excluded=[(setup.folds,)],
            c=penalty_c(policy),
            scale=settings.model.scale,
        )
        seconds = time.perf_counter() - start
        where = run.where
    held = int(stats.counts[setup.folds].sum())
    return TrainedOutOfCore(
        model=as_pipeline(solved, setup, scale=settings.model.scale),
        rows=int(stats.counts.sum()),
        n_train=int(stats.counts.sum()) - held,
        n_holdout=held,
        split_digest=stats.digest,
        data_sha256=the_plan.sha256,
        partitions=len(the_plan.partitions),
        iterations=iterations,
        fit_seconds=seconds,
        where=where,
    )


@dataclass(frozen=True)
class CvOutOfCore:
    """Per metric, each fold's score; the saved model's and the champion's holdout scores."""

    folds: dict[str, tuple[float, ...]]
    holdout: dict[str, float]
    champion: dict[str, float] | None
    auc_tie_bound: float
    split_digest: str
    partitions: int
    where: str


def cross_validate(
    policy: LoadedPolicy,
    model: Any,
    *,
    champion: Any | None,
    metrics: Sequence[str],
    drop: Sequence[int] = (),
    scheduler: str | None = None,
) -> CvOutOfCore:
    """k-fold CV of the policy's estimator and the holdout scores of ``model`` (and the champion).

    The fold models are solved together over the same partitions; then one pass scores every
    fold model on its fold, ``model`` and the champion on the holdout.
    """
    check_supported(policy, metrics)
    settings = policy.policy
    the_plan = plan(policy)
    setup = setup_for(policy, the_plan, drop=drop)
    with runner(policy, scheduler) as run:
        stats, setup = split_stats(the_plan, setup, run)
        check_split(stats, setup)
        solved = solve(
            the_plan,
            setup,
            stats,
            run,
            excluded=[(f, setup.folds) for f in range(setup.folds)],
            c=penalty_c(policy),
            scale=settings.model.scale,
        )
        jobs = [
            ScoreJob(f"fold {f}", as_pipeline(m, setup, scale=settings.model.scale), f)
            for f, (m, _) in enumerate(solved)
        ]
        jobs.append(ScoreJob("the saved model", model, setup.folds))
        if champion is not None:
            jobs.append(ScoreJob("the champion", champion, setup.folds))
        tallies = score(the_plan, setup, run, jobs)
        where = run.where
    classes = list(setup.classes)
    positive = settings.data.positive_class

    def values(tally: Tally) -> dict[str, tuple[float, float]]:
        return {m: metric(tally, m, classes=classes, positive_class=positive) for m in metrics}

    per_fold = [values(t) for t in tallies[: setup.folds]]
    holdout = values(tallies[setup.folds])
    theirs = values(tallies[setup.folds + 1]) if champion is not None else None
    bound = max(
        [
            b
            for scores in [*per_fold, holdout, *([theirs] if theirs else [])]
            for _, b in scores.values()
        ],
        default=0.0,
    )
    return CvOutOfCore(
        folds={m: tuple(s[m][0] for s in per_fold) for m in metrics},
        holdout={m: v for m, (v, _) in holdout.items()},
        champion={m: v for m, (v, _) in theirs.items()} if theirs else None,
        auc_tie_bound=bound,
        split_digest=stats.digest,
        partitions=len(the_plan.partitions),
        where=where,
    )
