"""Production feedback: labelled outcomes wait in quarantine until a person approves them.

Feedback loops are a poisoning path, so nothing here reaches training on its own. ``ingest``
copies a CSV of features, the model's prediction and the true label into
``[feedback].quarantine_dir/<batch>/`` and checks it against the data contract and a screen;
``approve`` (an explicit, named act) re-checks the batch, appends it to the training file and
re-locks the data through ``pipeline.data.write_lock`` (the data-approval path). The next run's
data gate then screens the whole, grown data set again.

Rules: FBQ001 a prediction outside the declared classes; FBQ002 the batch is larger than
``max_batch_rows``; FBQ010 an id already in the training data; FBQ011 features identical to a
training row, or within the data gate's near-duplicate radius of one (``near_duplicates`` on
the data gate's batch matrix), with a different label (label flip); FBQ012 more labels
contradict the predictions than ``max_label_disagreement``; FBQ013 a feature value more than
``outlier_z`` standard deviations from the training mean; FBQ014 such copies with the training
label above ``[data.checks.duplicates].max_near_share`` of the batch (twins of training and
holdout rows). Contract rules keep their DATA ids.

An approval changes three files (the training data, its lock, the batch record), and a process
killed between them must not leave them disagreeing for good. Before the data is replaced,
``<batch>/approving.json`` records the data's digest and size before and its digest after; it
is removed once the batch record says approved. The next ``approve`` (of any batch) first
finishes or undoes what such a record describes, under the same lock: data and lock already
new, only the batch record is written; data new but the lock not, the data is cut back to its
approved prefix (whose digest must be the one the lock names) and the approval is to be done
again; data untouched, the record is dropped. Anything else is a DataError naming the record.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gates.feedback.history import locked
from pipeline.config import LoadedPolicy
from pipeline.data import (
    QUOTE_ROWS,
    check_contract,
    lock_key,
    model_features,
    read_lock,
    read_table,
    rows_of,
    verify_lock,
    write_checksums,
    write_lock,
)
from pipeline.errors import DataError
from pipeline.fsio import (
    atomic_write_bytes,
    atomic_write_json,
    fsync_dir,
    read_regular,
    sha256_bytes,
    sha256_file,
    strict_json,
    temp_files,
)

BATCH_FILE = "batch.json"
ROWS_FILE = "rows.csv"
JOURNAL_FILE = "approving.json"
# A batch record and an approval's journal hold ids, counts, digests and problems (kilobytes);
# both lie under data/, which a pull request commits: read as regular files of at most this.
_MAX_RECORD_BYTES = 16 << 20
QUARANTINED, REJECTED, APPROVED = "quarantined", "rejected", "approved"
# Row-count bounds and "every class has rows" apply to the whole training set: a small batch
# may well hold one class only. Both are checked on the merged data at approval.
_WHOLE_SET_RULES = frozenset({"DATA030", "DATA021"})


@dataclass(frozen=True)
class Problem:
    """One reason a batch may not enter training: rule, message, and the rows it concerns."""

    rule: str
    message: str
    rows: tuple[int, ...] = ()
    count: int = 0
    policy_key: str | None = None


@dataclass(frozen=True)
class Batch:
    """A quarantined batch as recorded in its ``batch.json``."""

    batch_id: str
    source: str
    sha256: str
    rows: int
    ingested: str
    status: str
    problems: tuple[Problem, ...]
    disagreement_rate: float
    approved_by: str | None = None
    approved_at: str | None = None
    data_sha256_after: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data = asdict(self)
        data["problems"] = [
            {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(p).items()}
            for p in self.problems
        ]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Batch:
        """Inverse of ``to_dict``."""
        problems = tuple(
            Problem(
                rule=str(p["rule"]),
                message=str(p["message"]),
                rows=tuple(int(r) for r in p.get("rows", ())),
                count=int(p.get("count", 0)),
                policy_key=p.get("policy_key"),
            )
            for p in data["problems"]
        )
        return cls(**{**data, "problems": problems})


def quarantine_dir(policy: LoadedPolicy) -> Path:
    """``[feedback].quarantine_dir`` resolved against the policy's folder."""
    return policy.resolve(policy.policy.feedback.quarantine_dir)


def _training(policy: LoadedPolicy) -> pd.DataFrame:
    data = policy.policy.data
    # Bounded as the data gate reads it: a Parquet file of a few KB can decode to gigabytes.
    frame = read_table(
        policy.resolve(data.path),
        fmt=data.resolved_format,
        max_bytes=data.checks.max_file_bytes,
        max_pages=data.max_pages,
    )
    clean, _ = check_contract(frame, data)
    return clean


def champion_model(policy: LoadedPolicy) -> Any | None:
    """The verified champion's model, which recomputes a batch's predictions; None when none
    was promoted. DataError when one was and it does not verify (never "no champion")."""
    from gates.release import verified_champion  # noqa: PLC0415
    from pipeline.errors import PipelineError  # noqa: PLC0415
    from pipeline.persist import load_attested  # noqa: PLC0415

    registry = policy.resolve(policy.policy.release.registry_dir)
    try:
        # The log first: one cut (or deleted with the pointer) behind $GATES_REGISTRY_HEAD is
        # refused, not taken for a registry that never had a champion (gates.release).
        champion = verified_champion(policy)
        if champion is None:
            return None
        model, _ = load_attested(champion.attestation)
    except PipelineError as err:
        msg = f"{registry}: the champion that recomputes the feedback's predictions: {err}"
        raise DataError(msg) from None
    except OSError as err:  # the registry folder is a file, or unreadable: not "no champion"
        msg = f"{registry}: the champion that recomputes the feedback's predictions: {err.strerror}"
        raise DataError(msg) from None
    return model


def screen(
    policy: LoadedPolicy, frame: pd.DataFrame, *, model: Any | None = None
) -> tuple[list[Problem], float]:
    """Contract and screening problems of a feedback batch, and its label-disagreement rate.

    With ``model`` (the verified champion) the disagreement (FBQ012) is measured against the
    predictions it makes for the batch's features, not the file's own column: whoever writes
    the labels could write matching predictions too.
    """
    settings = policy.policy.feedback
    data = policy.policy.data
    column = settings.prediction_column
    problems: list[Problem] = []
    if column not in frame.columns:
        msg = (
            f"expected a column '{column}' with the model's prediction "
            f"([feedback].prediction_column), found columns {list(frame.columns)[:8]}"
        )
        raise DataError(msg)
    if len(frame) > settings.max_batch_rows:
        problems.append(
            Problem(
                "FBQ002",
                f"{len(frame)} rows, more than max_batch_rows {settings.max_batch_rows}",
                count=len(frame),
                policy_key="[feedback].max_batch_rows",
            )
        )
    predictions = frame[column].astype(str).str.strip()
    problems += _flagged(
        "FBQ001",
        ~predictions.isin(list(data.classes)).to_numpy(),
        "[data].classes",
        lambda _, n: f"{n} prediction(s) outside the classes {list(data.classes)}",
    )
    clean, violations = check_contract(frame.drop(columns=[column]), data)
    for violation in violations:
        if violation.rule in _WHOLE_SET_RULES:
            continue
        problems.append(
            Problem(
                violation.rule,
                violation.message,
                violation.rows,
                violation.count,
                violation.policy_key,
            )
        )
    disagreement = 0.0
    if data.label in clean.columns and len(clean):
        labels = clean[data.label].astype(str).to_numpy()
        whose = "the file's predictions"
        if model is not None:
            predicted = np.asarray(model.predict(model_features(clean, data))).astype(str)
            whose = "the champion's predictions for these features"
        else:
            predicted = predictions.loc[clean.index].to_numpy()
        disagreement = float(np.mean(labels != predicted))
        if disagreement > settings.max_label_disagreement:
            problems.append(
                Problem(
                    "FBQ012",
                    f"{disagreement:.0%} of true labels contradict {whose} "
                    f"(more than {settings.max_label_disagreement:.0%}): possible label poisoning",
                    count=round(disagreement * len(clean)),
                    policy_key="[feedback].max_label_disagreement",
                )
            )
    problems.extend(_against_training(policy, clean))
    return problems, disagreement


def _against_training(policy: LoadedPolicy, clean: pd.DataFrame) -> list[Problem]:
    data = policy.policy.data
    settings = policy.policy.feedback
    training = _training(policy)
    found: list[Problem] = []
    if data.id_column and data.id_column in clean and data.id_column in training:
        found += _flagged(
            "FBQ010",
            clean[data.id_column].isin(set(training[data.id_column].dropna())).to_numpy(),
            f"[data.columns].{data.id_column}",
            lambda _, n: f"{n} id(s) already in the training data",
        )
    numeric = [
        c
        for c, rule in data.columns.items()
        if rule.dtype in ("float64", "int64") and c != data.id_column and c in clean
    ]
    features = [c for c in data.feature_columns if c in clean and c in training]
    if features and data.label in clean and data.label in training:
        found += _copies_of_training(policy, training, clean, features)
    if numeric:
        reference = training[numeric].astype("float64")
        mean, std = reference.mean(), reference.std(ddof=0).replace(0.0, np.nan)
        z = ((clean[numeric].astype("float64") - mean) / std).abs()
        found += _flagged(
            "FBQ013",
            (z > settings.outlier_z).any(axis=1).to_numpy(),
            "[feedback].outlier_z",
            lambda rows, n: (
                f"{n} row(s) have a feature more than {settings.outlier_z:g} standard "
                f"deviations from the training mean (first: {z.max(axis=1).iloc[rows[0]]:.1f})"
            ),
        )
    return found


def _copies_of_training(
    policy: LoadedPolicy, training: pd.DataFrame, clean: pd.DataFrame, features: list[str]
) -> list[Problem]:
    """FBQ011: batch rows that copy a training row, exactly or within the data gate's
    near-duplicate radius, with a different label; FBQ014: near copies with the same label,
    above ``max_near_share`` of the batch.

    Each copy is named with its training twin: ``{batch row: (training row, distance)}``.
    """
    data = policy.policy.data
    # Exact: equal as parsed, every feature column (text ones too).
    known = training[[*features, data.label]].astype(str).rename_axis("twin").reset_index()
    batch = clean[[*features, data.label]].astype(str).rename_axis("row").reset_index()
    merged = batch.merge(known, on=features, how="inner", suffixes=("", "_train"))
    # A row equal to several training rows is named with one whose label differs, if any.
    merged = merged.assign(flip=merged[data.label] != merged[f"{data.label}_train"])
    merged = merged.sort_values("flip", kind="stable")
    exact = {int(r): (int(t), 0.0) for r, t in zip(merged["row"], merged["twin"], strict=True)}
    near, radius = _near_copies(policy, training, clean)
    copies = {**near, **exact}
    labels = clean[data.label].astype(str)
    trained = training[data.label].astype(str)
    flips = {r: copies[r] for r in sorted(copies) if labels.loc[r] != trained.loc[copies[r][0]]}
    same = {r: copies[r] for r in sorted(copies) if r not in flips}
    found: list[Problem] = []
    within = f"equal, or within the data gate's near-duplicate radius {radius}, standardized"
    if flips:
        found.append(
            Problem(
                "FBQ011",
                f"{len(flips)} row(s) copy a training row's features with a different label "
                f"({within}): {_pairs(flips)}",
                tuple(list(flips)[:QUOTE_ROWS]),
                len(flips),
                "[data.checks.bursts].radius" if set(flips) - set(exact) else "[data].label",
            )
        )
    checks = data.checks.duplicates
    if checks.enabled and len(same) > checks.max_near_share * len(clean):
        found.append(
            Problem(
                "FBQ014",
                f"{len(same)} of {len(clean)} row(s) copy a training row with its label "
                f"({within}), more than max_near_share {checks.max_near_share:g} of the batch: "
                f"twins of training rows (and of the holdout): {_pairs(same)}",
                tuple(list(same)[:QUOTE_ROWS]),
                len(same),
                "[data.checks.duplicates].max_near_share",
            )
        )
    return found


def _near_copies(
    policy: LoadedPolicy, training: pd.DataFrame, clean: pd.DataFrame
) -> tuple[dict[int, tuple[int, float]], str]:
    """Batch rows within the data gate's near-duplicate radius of a training row, each with
    its twin and distance (standardized units), and how the data gate sets the radius.

    The matrix is the data gate's batch matrix (numeric features standardized on the training
    rows), searched by ``near_duplicates`` with the training rows as the approved ones. A row
    whose nearest row is another batch row is followed through it to a training twin: two
    copies of one training row must not hide each other. Above ``max_rows`` batch rows a sample
    of them is searched there, each against every training row, as in the data gate.
    """
    from gates.data_integrity import approved_standardized  # noqa: PLC0415
    from pipeline.profile import numeric_columns  # noqa: PLC0415
    from pipeline.targeted import near_duplicates  # noqa: PLC0415

    data = policy.policy.data
    names = tuple(c for c in numeric_columns(data) if c in clean and c in training)
    if not names or not len(training) or not len(clean):
        return {}, "(no numeric features to measure it on)"
    both = pd.concat([training[list(names)], clean[list(names)]], ignore_index=True)
    n = len(training)
    x = approved_standardized(both, names, np.arange(len(both)) < n)
    # Names: a training row's position (< n), or n + a batch row's position.
    found = near_duplicates(
        x[n:],
        check=data.checks.bursts,
        seed=policy.policy.run.seed,
        approved=x[:n],
        names=np.arange(n, len(both)),
        approved_names=np.arange(n),
    )
    twins = found.twins if found.twins is not None else np.zeros(0, dtype=np.int64)
    twin_of = {int(r): int(t) for r, t in zip(found.rows, twins, strict=True)}
    copies: dict[int, tuple[int, float]] = {}
    for row, nearest in twin_of.items():
        twin, seen = nearest, {row}
        while twin >= n and twin - n in twin_of and twin - n not in seen:
            seen.add(twin - n)
            twin = twin_of[twin - n]
        if twin < n:
            distance = float(np.linalg.norm(x[n + row] - x[twin]))
            copies[int(clean.index[row])] = (int(training.index[twin]), distance)
    how = "([data.checks.bursts].radius x the median distance to the min_copies-th nearest row)"
    return copies, how


def _pairs(copies: dict[int, tuple[int, float]]) -> str:
    """``row 10 ~ training row 3 at distance 1.2e-16, ...`` for the first ``QUOTE_ROWS``."""
    shown = [
        f"row {r} ~ training row {t} at distance {d:.3g}"
        for r, (t, d) in list(copies.items())[:QUOTE_ROWS]
    ]
    more = len(copies) - len(shown)
    return ", ".join(shown) + (f", and {more} more" if more > 0 else "")


def _flagged(
    rule: str,
    mask: np.ndarray[Any, Any],
    policy_key: str,
    say: Callable[[tuple[int, ...], int], str],
) -> list[Problem]:
    """One problem naming the rows ``mask`` flags (``say`` words it), or none."""
    rows, count = rows_of(mask)
    return [Problem(rule, say(rows, count), rows, count, policy_key)] if count else []


def ingest(policy: LoadedPolicy, source: Path) -> Batch:
    """Copy ``source`` into quarantine, check and screen it, and record the batch."""
    try:
        raw = source.read_bytes()
    except FileNotFoundError:
        msg = f"{source}: feedback file not found"
        raise DataError(msg) from None
    except IsADirectoryError:
        msg = f"{source}: expected a CSV file, found a folder"
        raise DataError(msg) from None
    digest = sha256_bytes(raw)
    root = quarantine_dir(policy)
    for existing in list_batches(policy):
        if existing.sha256 == digest:
            msg = f"{source}: already ingested as batch {existing.batch_id} ({existing.status})"
            raise DataError(msg)
    now = datetime.now(UTC)
    batch_id = f"fb-{now:%Y%m%dT%H%M%SZ}-{digest[:8]}"
    folder = root / batch_id
    # Parse the stored copy, not the source: what is checked is exactly what may be approved.
    atomic_write_bytes(folder / ROWS_FILE, raw)
    try:
        frame = read_table(folder / ROWS_FILE, fmt="csv")
        problems, disagreement = screen(policy, frame, model=champion_model(policy))
    except DataError as err:
        shutil.rmtree(folder, ignore_errors=True)
        raise DataError(str(err).replace(str(folder / ROWS_FILE), str(source))) from None
    batch = Batch(
        batch_id=batch_id,
        source=source.name,
        sha256=digest,
        rows=len(frame),
        ingested=now.isoformat(timespec="seconds"),
        status=REJECTED if problems else QUARANTINED,
        problems=tuple(problems),
        disagreement_rate=round(disagreement, 6),
    )
    atomic_write_json(folder / BATCH_FILE, batch.to_dict())
    return batch


def list_batches(policy: LoadedPolicy) -> list[Batch]:
    """Every batch in quarantine, oldest first."""
    root = quarantine_dir(policy)
    return [read_batch(policy, p.parent.name) for p in sorted(root.glob(f"*/{BATCH_FILE}"))]


def read_batch(policy: LoadedPolicy, batch_id: str) -> Batch:
    """The record of one batch; an unknown or malformed batch is a DataError."""
    if not batch_id or "/" in batch_id or "\\" in batch_id or batch_id.startswith("."):
        msg = f"'{batch_id}' is not a batch id (see: python -m gates feedback list)"
        raise DataError(msg)
    path = quarantine_dir(policy) / batch_id / BATCH_FILE
    try:
        return Batch.from_dict(
            strict_json(read_regular(path, limit=_MAX_RECORD_BYTES).decode("utf-8"))
        )
    except FileNotFoundError:
        msg = f"{path}: no such batch '{batch_id}' (see: python -m gates feedback list)"
        raise DataError(msg) from None
    except OSError as err:
        msg = f"{path}: batch record refused, not read: {err}"
        raise DataError(msg) from None
    except (RecursionError, KeyError, TypeError, ValueError) as err:
        msg = f"{path}: malformed batch record ({type(err).__name__}: {err})"
        raise DataError(msg) from None


def approve(policy: LoadedPolicy, batch_id: str, *, by: str) -> tuple[Batch, list[Problem]]:
    """Append a clean quarantined batch to the training data and re-lock it.

    Returns the batch and the problems that stopped it (empty when it was approved). Refuses a
    rejected or already approved batch, a batch whose bytes changed since ingestion, and
    training data that does not match its lock.
    """
    data = policy.policy.data
    if data.resolved_format != "csv":
        msg = f"{data.path}: feedback can be appended to CSV training data only"
        raise DataError(msg)
    root = quarantine_dir(policy)
    with locked(root / "approve"):
        _finish_interrupted(policy, root)
        batch = read_batch(policy, batch_id)
        if batch.status != QUARANTINED:
            why = "was rejected at ingestion" if batch.status == REJECTED else f"is {batch.status}"
            return batch, [Problem("FBQ020", f"batch {batch_id} {why}; nothing changed")]
        rows_path = root / batch_id / ROWS_FILE
        if not rows_path.is_file() or sha256_file(rows_path) != batch.sha256:
            return batch, [
                Problem("FBQ021", f"{rows_path} changed since ingestion; re-ingest the source")
            ]
        lock_problems = verify_lock(policy)
        if lock_problems:
            return batch, [
                Problem(v.rule, f"training data does not match its lock: {v.message}")
                for v in lock_problems
            ]
        frame = read_table(rows_path, fmt="csv")
        problems, _ = screen(policy, frame, model=champion_model(policy))
        if problems:
            return batch, problems
        data_path = policy.resolve(data.path)
        original = data_path.read_bytes()
        merged_bytes = _appended(
            original, frame.drop(columns=[policy.policy.feedback.prediction_column])
        )
        staging = _staging(data_path, batch_id)
        journal = root / batch_id / JOURNAL_FILE
        try:
            atomic_write_bytes(staging, merged_bytes)
            merged = read_table(staging, fmt="csv")
            _, violations = check_contract(merged, data)
            if violations:
                return batch, [
                    Problem(
                        v.rule,
                        f"training data with the batch: {v.message}",
                        v.rows,
                        v.count,
                        v.policy_key,
                    )
                    for v in violations
                ]
            atomic_write_json(
                journal,
                {
                    "data_sha256_before": sha256_bytes(original),
                    "data_size_before": len(original),
                    "data_sha256_after": sha256_bytes(merged_bytes),
                    "approved_by": by,
                },
            )
            os.replace(staging, data_path)
            fsync_dir(data_path.parent)
        finally:
            staging.unlink(missing_ok=True)
        entry = write_lock(policy, merged)
        approved = Batch(
            **{
                **asdict(batch),
                "problems": batch.problems,
                "status": APPROVED,
                "approved_by": by,
                "approved_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "data_sha256_after": entry.sha256,
            }
        )
        atomic_write_json(root / batch_id / BATCH_FILE, approved.to_dict())
        journal.unlink()
        fsync_dir(journal.parent)
    return approved, []


def _staging(data_path: Path, batch_id: str) -> Path:
    return data_path.with_name(f".{data_path.name}.{batch_id}.staging")


def _finish_interrupted(policy: LoadedPolicy, root: Path) -> None:
    """Under the approve lock: finish or undo every approval a kill interrupted (module doc)."""
    data_path = policy.resolve(policy.policy.data.path)
    for staging in data_path.parent.glob(f".{data_path.name}.*.staging"):
        for leftover in [*temp_files(staging), staging]:
            leftover.unlink(missing_ok=True)
    for journal in sorted(root.glob(f"*/{JOURNAL_FILE}")):
        try:
            document = strict_json(read_regular(journal, limit=_MAX_RECORD_BYTES).decode("utf-8"))
            before, after = str(document["data_sha256_before"]), str(document["data_sha256_after"])
            size = int(document["data_size_before"])
        except (OSError, RecursionError, KeyError, TypeError, ValueError) as err:
            msg = f"{journal}: unreadable record of an interrupted approval ({type(err).__name__})"
            raise DataError(msg) from None
        current = data_path.read_bytes()
        digest = sha256_bytes(current)
        entry = read_lock(policy.resolve(policy.policy.data.lock)).files.get(
            lock_key(policy, data_path)
        )
        approved = entry.sha256 if entry is not None else None
        if digest == after and approved == after:
            # Killed after the lock: only the batch record is behind.
            batch = read_batch(policy, journal.parent.name)
            record = {**asdict(batch), "problems": batch.problems, "status": APPROVED}
            record["approved_by"] = document.get("approved_by")
            record["approved_at"] = datetime.now(UTC).isoformat(timespec="seconds")
            record["data_sha256_after"] = after
            atomic_write_json(journal.parent / BATCH_FILE, Batch(**record).to_dict())
        elif digest == after and approved == before and sha256_bytes(current[:size]) == before:
            # Killed between the data and its lock: back to the data the lock approves.
            atomic_write_bytes(data_path, current[:size])
            write_checksums(policy, before)
        elif digest != before:
            msg = (
                f"{journal}: an approval of batch {journal.parent.name} was interrupted, and "
                f"{policy.policy.data.path} is neither the data before it nor after it; restore "
                "the data and its lock, then remove this file"
            )
            raise DataError(msg)
        journal.unlink()
        fsync_dir(journal.parent)


def _appended(original: bytes, rows: pd.DataFrame) -> bytes:
    """The training file's bytes unchanged, followed by the batch's rows in its column order."""
    header = next(csv.reader(io.StringIO(original.decode("utf-8").split("\n", 1)[0].rstrip("\r"))))
    newline = "\r\n" if b"\r\n" in original[:65536] else "\n"
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=newline)
    for record in rows[header].itertuples(index=False):
        writer.writerow([str(v) for v in record])
    prefix = original if original.endswith(b"\n") else original + newline.encode()
    return prefix + buffer.getvalue().encode("utf-8")
