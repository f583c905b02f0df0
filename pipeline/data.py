"""Load a data file per its contract, check every contract rule, and keep the data lock."""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.config import ColumnRule, DataPolicy, LoadedPolicy
from pipeline.errors import DataError
from pipeline.fsio import atomic_write_json, atomic_write_text, sha256_file
from pipeline.profile import DataProfile, build_profile, parse_profile

LOCK_SCHEMA_VERSION = 1
# How many offending rows a finding quotes; the count is always exact.
_QUOTE_ROWS = 5


@dataclass(frozen=True)
class Violation:
    """One broken contract rule: which rule, where, what was found and what was expected."""

    rule: str
    message: str
    column: str | None = None
    rows: tuple[int, ...] = ()
    count: int = 0
    observed: str | None = None
    expected: str | None = None
    policy_key: str | None = None


@dataclass(frozen=True)
class Dataset:
    """A contract-clean table split into features and labels, with the file it came from."""

    path: Path
    sha256: str
    features: pd.DataFrame
    labels: pd.Series
    ids: pd.Series | None = None


@dataclass(frozen=True)
class LockEntry:
    """What the lock records of one data file."""

    name: str
    sha256: str
    size: int
    rows: int
    columns: tuple[str, ...]
    profile: DataProfile | None = None
    reference: DataProfile | None = None


@dataclass(frozen=True)
class DataLock:
    """The committed lock of the approved data snapshot."""

    path: Path
    files: dict[str, LockEntry] = field(default_factory=dict)


def read_table(path: Path, *, fmt: str, max_bytes: int | None = None) -> pd.DataFrame:
    """Read a CSV (every cell as text, converted later per contract) or a Parquet file.

    ``max_bytes`` (policy ``[data.checks].max_file_mb``) is checked before a byte is parsed, so
    a file too large for memory is refused with a message instead of an out-of-memory kill.
    """
    check_data_file(path, max_bytes=max_bytes)
    if fmt == "parquet":
        return _read_parquet(path)
    return _read_csv(path)


def check_data_file(path: Path, *, max_bytes: int | None = None) -> int:
    """Refuse a missing, folder, empty or too-large data file before reading it; return its size."""
    if not path.exists():
        msg = f"{path}: data file not found"
        raise DataError(msg)
    if path.is_dir():
        msg = f"{path}: expected a data file, found a folder"
        raise DataError(msg)
    if path.stat().st_size == 0:
        msg = f"{path}: data file is empty (0 bytes)"
        raise DataError(msg)
    size = path.stat().st_size
    if max_bytes is not None and size > max_bytes:
        msg = (
            f"{path}: data file is {size / 2**20:.1f} MiB, larger than the "
            f"{max_bytes / 2**20:.1f} MiB allowed ([data.checks].max_file_mb)"
        )
        raise DataError(msg)
    return size


@contextlib.contextmanager
def csv_errors(path: Path) -> Iterator[None]:
    """Turn pandas' CSV reading errors into one DataError naming ``path`` (whole or chunked)."""
    try:
        yield
    except UnicodeDecodeError as err:
        msg = f"{path}: expected UTF-8 CSV, found undecodable bytes at offset {err.start}"
        raise DataError(msg) from None
    except pd.errors.EmptyDataError:
        msg = f"{path}: expected a CSV header row, found no columns"
        raise DataError(msg) from None
    except pd.errors.ParserError as err:
        msg = f"{path}: malformed CSV: {str(err).strip()}"
        raise DataError(msg) from None


def _read_csv(path: Path) -> pd.DataFrame:
    with csv_errors(path):
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    if frame.empty:
        msg = f"{path}: expected data rows after the header, found none"
        raise DataError(msg)
    return frame


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow as pa  # noqa: PLC0415 - pyarrow is only needed for Parquet input
    import pyarrow.parquet as pq  # noqa: PLC0415

    try:
        frame: pd.DataFrame = pq.read_table(path).to_pandas()
    except (pa.ArrowInvalid, OSError) as err:
        msg = f"{path}: expected a Parquet file, found something else ({err})"
        raise DataError(msg) from None
    if frame.empty:
        msg = f"{path}: expected data rows, found none"
        raise DataError(msg)
    return frame


def check_contract(
    frame: pd.DataFrame, contract: DataPolicy, *, require_label: bool = True
) -> tuple[pd.DataFrame, list[Violation]]:
    """Convert columns to their declared dtypes and return every violation of the contract.

    Row numbers in violations are 0-based data rows (the CSV header is not a row). With
    ``require_label=False`` (rows to predict) the label column may be absent.
    """
    violations: list[Violation] = []
    labelled = require_label or contract.label in frame.columns
    declared = [*contract.columns, contract.label] if labelled else [*contract.columns]
    missing = [name for name in declared if name not in frame.columns]
    extra = [name for name in frame.columns if name not in declared]
    for name in missing:
        violations.append(
            Violation(
                rule="DATA010",
                message=f"column '{name}' is missing",
                column=name,
                expected="present",
                observed="absent",
                policy_key=f"[data.columns].{name}" if name != contract.label else "[data].label",
            )
        )
    for name in extra:
        violations.append(
            Violation(
                rule="DATA011",
                message=f"column '{name}' is not declared in the contract",
                column=name,
                expected="only declared columns",
                observed=name,
                policy_key="[data.columns]",
            )
        )
    n_rows = len(frame)
    if require_label and not contract.min_rows <= n_rows <= contract.max_rows:
        violations.append(
            Violation(
                rule="DATA030",
                message=f"{n_rows} rows, expected between {contract.min_rows} and {contract.max_rows}",
                count=n_rows,
                observed=str(n_rows),
                expected=f"{contract.min_rows}..{contract.max_rows}",
                policy_key="[data].min_rows / [data].max_rows",
            )
        )
    converted: dict[str, pd.Series] = {}
    for name, rule in contract.columns.items():
        if name in frame.columns:
            series, found = _check_column(frame[name], name, rule)
            converted[name] = series
            violations.extend(found)
    if labelled and contract.label in frame.columns:
        labels, found = _check_labels(frame[contract.label], contract)
        converted[contract.label] = labels
        violations.extend(found)
    # concat keeps one block per column: DataFrame(dict) would copy every column into one 2-D
    # block, the largest single cost at 10M rows (issue 8's scaling benchmark).
    checked = pd.concat(converted, axis=1) if converted else pd.DataFrame(index=frame.index)
    return checked, violations


def _rows(mask: pd.Series | np.ndarray[Any, Any]) -> tuple[tuple[int, ...], int]:
    positions = np.flatnonzero(np.asarray(mask))
    return tuple(int(p) for p in positions[:_QUOTE_ROWS]), int(positions.size)


def quote_rows(rows: tuple[int, ...], count: int) -> str:
    """``row 3`` or ``12 rows (first: 3, 8, ...)``: how a finding names its rows."""
    shown = ", ".join(str(r) for r in rows)
    return f"row {shown}" if count == 1 else f"{count} rows (first: {shown})"


def _is_blank(raw: pd.Series) -> pd.Series:
    if raw.dtype == object or pd.api.types.is_string_dtype(raw):
        return raw.isna() | (raw.astype(str).str.strip() == "")
    return raw.isna()


def _parse_float(text: pd.Series) -> pd.Series:
    """Parse a column as float64, unparsable cells becoming NaN.

    Text goes through Arrow's strict parser first (about 10x pandas' on 1M cells, issue 8's
    contract benchmark); when any cell is not a plain number Arrow refuses the whole column
    and pandas' per-cell parser decides, so the result is the same either way.
    """
    if text.dtype == object or pd.api.types.is_string_dtype(text):
        import pyarrow as pa  # noqa: PLC0415 - a dependency already (Parquet); loaded on demand
        import pyarrow.compute as pc  # noqa: PLC0415

        try:
            parsed = pc.cast(pa.Array.from_pandas(text), pa.float64())
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            pass
        else:
            return pd.Series(
                parsed.to_numpy(zero_copy_only=False), index=text.index, dtype="float64"
            )
    return pd.to_numeric(text, errors="coerce").astype("float64")


def _check_numeric(
    raw: pd.Series, blank: pd.Series, name: str, rule: ColumnRule, key: str
) -> tuple[pd.Series, pd.Series, list[Violation]]:
    """Parse a numeric column; return the values, the null mask, and the violations."""
    found: list[Violation] = []
    textual = raw.dtype == object or pd.api.types.is_string_dtype(raw)
    # A numeric column's blanks are its NaNs already: masking them again would only copy it.
    values = _parse_float(raw.where(~blank) if textual else raw)
    unparsable = values.isna() & ~blank
    # Text such as "nan" parses to NaN: it is a null written as text, not a number.
    # Only unparsable cells are turned to text: on a float column (Parquet) that is none of them.
    text_nan = unparsable.copy()
    if unparsable.any():
        text_nan[unparsable] = (
            raw[unparsable].astype(str).str.strip().str.lower().isin(["nan", "na", "null"])
        )
    unparsable &= ~text_nan
    null = blank | text_nan
    if unparsable.any():
        rows, count = _rows(unparsable)
        sample = str(raw.iloc[rows[0]])[:40]
        found.append(
            Violation(
                "DATA012",
                f"column '{name}': {quote_rows(rows, count)} not {rule.dtype} (e.g. {sample!r})",
                name,
                rows,
                count,
                observed=repr(sample),
                expected=rule.dtype,
                policy_key=f"{key}.dtype",
            )
        )
    non_finite = np.isinf(values.to_numpy())
    if non_finite.any():
        rows, count = _rows(non_finite)
        found.append(
            Violation(
                "DATA014",
                f"column '{name}': {quote_rows(rows, count)} infinite",
                name,
                rows,
                count,
                observed="inf",
                expected="finite numbers",
                policy_key=f"{key}.dtype",
            )
        )
    finite = values.where(~non_finite) if non_finite.any() else values
    if rule.dtype == "int64":
        fractional = finite.notna() & (finite != finite.round())
        if fractional.any():
            rows, count = _rows(fractional)
            found.append(
                Violation(
                    "DATA012",
                    f"column '{name}': {quote_rows(rows, count)} not whole numbers "
                    f"(e.g. {finite.iloc[rows[0]]!r})",
                    name,
                    rows,
                    count,
                    observed=repr(float(finite.iloc[rows[0]])),
                    expected="int64",
                    policy_key=f"{key}.dtype",
                )
            )
    found.extend(_range_violations(finite, name, rule, key))
    return values, null, found


def _check_column(raw: pd.Series, name: str, rule: ColumnRule) -> tuple[pd.Series, list[Violation]]:
    key = f"[data.columns].{name}"
    found: list[Violation] = []
    blank = _is_blank(raw)
    if rule.dtype in ("float64", "int64"):
        series, null, numeric_found = _check_numeric(raw, blank, name, rule, key)
        found.extend(numeric_found)
    elif rule.dtype == "bool":
        text = raw.astype(str).str.strip().str.lower()
        mapping = {"true": True, "false": False, "1": True, "0": False}
        mapped = text.map(mapping)
        bad = mapped.isna() & ~blank
        null = blank
        if bad.any():
            rows, count = _rows(bad)
            found.append(
                Violation(
                    "DATA012",
                    f"column '{name}': {quote_rows(rows, count)} not bool (e.g. {raw.iloc[rows[0]]!r})",
                    name,
                    rows,
                    count,
                    observed=repr(raw.iloc[rows[0]]),
                    expected="true/false",
                    policy_key=f"{key}.dtype",
                )
            )
        series = mapped
    else:
        series = raw.where(~blank).astype("string")
        null = blank
        if rule.allowed is not None:
            outside = ~blank & ~series.isin(list(rule.allowed)).fillna(False)
            if outside.any():
                rows, count = _rows(outside)
                observed = sorted({str(v) for v in series[outside].head(50)})[:5]
                found.append(
                    Violation(
                        "DATA017",
                        f"column '{name}': {quote_rows(rows, count)} outside the allowed values "
                        f"{list(rule.allowed)} (found {observed})",
                        name,
                        rows,
                        count,
                        observed=", ".join(observed),
                        expected=", ".join(rule.allowed),
                        policy_key=f"{key}.allowed",
                    )
                )
    if not rule.nullable and null.any():
        rows, count = _rows(null)
        found.append(
            Violation(
                "DATA013",
                f"column '{name}': {quote_rows(rows, count)} empty or NaN, and nulls are not allowed",
                name,
                rows,
                count,
                observed="null",
                expected="a value",
                policy_key=f"{key}.nullable",
            )
        )
    if rule.unique:
        dup = series.duplicated(keep="first") & series.notna()
        if dup.any():
            rows, count = _rows(dup)
            found.append(
                Violation(
                    "DATA018",
                    f"column '{name}': {quote_rows(rows, count)} repeat an earlier value; it must be unique",
                    name,
                    rows,
                    count,
                    observed=repr(series.iloc[rows[0]]),
                    expected="unique values",
                    policy_key=f"{key}.unique",
                )
            )
    return series, found


def _range_violations(values: pd.Series, name: str, rule: ColumnRule, key: str) -> list[Violation]:
    found = []
    for bound, op, rule_id, word in (
        (rule.min, values.lt, "DATA015", "below min"),
        (rule.max, values.gt, "DATA016", "above max"),
    ):
        if bound is None:
            continue
        mask = op(bound).fillna(False)
        if mask.any():
            rows, count = _rows(mask)
            worst = float(values[mask].min() if word == "below min" else values[mask].max())
            found.append(
                Violation(
                    rule_id,
                    f"column '{name}': {quote_rows(rows, count)} {word} {bound:g} (extreme {worst:g})",
                    name,
                    rows,
                    count,
                    observed=f"{worst:g}",
                    expected=f"{'>=' if word == 'below min' else '<='} {bound:g}",
                    policy_key=f"{key}.{'min' if word == 'below min' else 'max'}",
                )
            )
    return found


def _check_labels(raw: pd.Series, contract: DataPolicy) -> tuple[pd.Series, list[Violation]]:
    found = []
    text = raw.astype("string").str.strip()
    blank = text.isna() | (text == "")
    outside = ~blank & ~text.isin(list(contract.classes)).fillna(False)
    name = contract.label
    if blank.any():
        rows, count = _rows(blank)
        found.append(
            Violation(
                "DATA020",
                f"label '{name}': {quote_rows(rows, count)} have no label",
                name,
                rows,
                count,
                observed="empty",
                expected=" / ".join(contract.classes),
                policy_key="[data].classes",
            )
        )
    if outside.any():
        rows, count = _rows(outside)
        observed = sorted({str(v) for v in text[outside].head(50)})[:5]
        found.append(
            Violation(
                "DATA020",
                f"label '{name}': {quote_rows(rows, count)} outside the declared classes "
                f"{list(contract.classes)} (found {observed})",
                name,
                rows,
                count,
                observed=", ".join(observed),
                expected=", ".join(contract.classes),
                policy_key="[data].classes",
            )
        )
    # unique() first: iterating a million labels in Python cost a second (issue 8 benchmark).
    present = set(text[~blank & ~outside].unique())
    absent = [c for c in contract.classes if c not in present]
    if absent and not outside.all():
        found.append(
            Violation(
                "DATA021",
                f"label '{name}': declared classes {absent} have no rows",
                name,
                observed="0 rows",
                expected="at least one row per class",
                policy_key="[data].classes",
            )
        )
    return text, found


# --- the lock -----------------------------------------------------------------------------


def read_lock(path: Path) -> DataLock:
    """Parse the data lock; a missing or malformed lock is a DataError naming it."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        msg = f"{path}: data lock not found (approve the data with: python -m gates data approve)"
        raise DataError(msg) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        msg = f"{path}: data lock is not valid JSON: {err}"
        raise DataError(msg) from None
    try:
        if document["schema_version"] != LOCK_SCHEMA_VERSION:
            msg = (
                f"{path}: schema_version: expected {LOCK_SCHEMA_VERSION}, "
                f"found {document['schema_version']!r}"
            )
            raise DataError(msg)
        files = {
            name: LockEntry(
                name=name,
                sha256=str(entry["sha256"]),
                size=int(entry["size"]),
                rows=int(entry["rows"]),
                columns=tuple(str(c) for c in entry["columns"]),
                profile=parse_profile(entry["profile"], where=f"{path} profile")
                if entry.get("profile") is not None
                else None,
                reference=parse_profile(entry["reference"], where=f"{path} reference")
                if entry.get("reference") is not None
                else None,
            )
            for name, entry in document["files"].items()
        }
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        msg = f"{path}: data lock is malformed: missing or wrong key {err}"
        raise DataError(msg) from None
    return DataLock(path=path, files=files)


def lock_key(policy: LoadedPolicy, data_path: Path) -> str:
    """The name a data file has in the lock: its path relative to the lock's folder."""
    lock_dir = policy.resolve(policy.policy.data.lock).parent
    try:
        return data_path.resolve().relative_to(lock_dir.resolve()).as_posix()
    except ValueError:
        return data_path.resolve().as_posix()


def verify_lock(policy: LoadedPolicy) -> list[Violation]:
    """Compare the data file with the lock (and the sha256sum-format checksums file)."""
    data = policy.policy.data
    data_path = policy.resolve(data.path)
    lock = read_lock(policy.resolve(data.lock))
    key = lock_key(policy, data_path)
    if not data_path.exists():
        msg = f"{data_path}: data file not found"
        raise DataError(msg)
    actual = sha256_file(data_path)
    found: list[Violation] = []
    entry = lock.files.get(key)
    if entry is None:
        found.append(
            Violation(
                "DATA001",
                f"{key} is not in the data lock {lock.path.name}: the data was never approved",
                observed="not locked",
                expected="a locked, approved file",
                policy_key="[data].lock",
            )
        )
    elif entry.sha256 != actual:
        found.append(
            Violation(
                "DATA001",
                f"{key}: SHA-256 {actual[:12]}... differs from the approved {entry.sha256[:12]}... "
                f"in {lock.path.name}; approve the change with: python -m gates data approve",
                observed=actual,
                expected=entry.sha256,
                policy_key="[data].lock",
            )
        )
    if data.checksums is not None:
        sums_path = policy.resolve(data.checksums)
        sums = _read_sha256sums(sums_path)
        name = data_path.name
        if sums.get(name) != actual:
            found.append(
                Violation(
                    "DATA002",
                    f"{sums_path.name}: checksum of {name} is "
                    f"{(sums.get(name) or 'absent')[:12]}..., the file's is {actual[:12]}...",
                    observed=sums.get(name) or "absent",
                    expected=actual,
                    policy_key="[data].checksums",
                )
            )
    return found


def _read_sha256sums(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        msg = (
            f"{path}: checksum file not found (approve the data with: python -m gates data approve)"
        )
        raise DataError(msg) from None
    sums = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64:
            msg = f"{path}:{number}: expected '<sha256>  <file>' (sha256sum format), found {line!r}"
            raise DataError(msg)
        sums[name.lstrip("*")] = digest
    return sums


def write_lock(
    policy: LoadedPolicy,
    frame: pd.DataFrame,
    *,
    profile: DataProfile | None = None,
    reference: DataProfile | None = None,
) -> LockEntry:
    """Record the data file in the lock and the checksums file, atomically.

    ``profile`` describes this snapshot (profiled here when not given and the contract holds);
    ``reference`` is the baseline the data gate measures drift and range against: by default
    the lock's earlier baseline is kept, and the first approval makes its own profile the
    baseline.
    """
    data = policy.policy.data
    if profile is None:
        clean, violations = check_contract(frame, data)
        profile = None if violations else build_profile(clean, data)
    return write_lock_entry(
        policy,
        rows=len(frame),
        columns=tuple(str(c) for c in frame.columns),
        profile=profile,
        reference=reference,
    )


def write_lock_entry(
    policy: LoadedPolicy,
    *,
    rows: int,
    columns: tuple[str, ...],
    profile: DataProfile | None,
    reference: DataProfile | None = None,
) -> LockEntry:
    """``write_lock`` for a file that was never loaded whole: its shape and profile are given."""
    data = policy.policy.data
    data_path = policy.resolve(data.path)
    if reference is None:
        reference = _previous_reference(policy, data_path) or profile
    entry = LockEntry(
        name=lock_key(policy, data_path),
        sha256=sha256_file(data_path),
        size=data_path.stat().st_size,
        rows=rows,
        columns=columns,
        profile=profile,
        reference=reference,
    )
    record: dict[str, Any] = {
        "sha256": entry.sha256,
        "size": entry.size,
        "rows": entry.rows,
        "columns": list(entry.columns),
    }
    if entry.profile is not None:
        record["profile"] = entry.profile.to_dict()
    if entry.reference is not None:
        record["reference"] = entry.reference.to_dict()
    document = {
        "schema_version": LOCK_SCHEMA_VERSION,
        "files": {entry.name: record},
    }
    # The checksums file first, the lock last: the lock is the approval, so a kill between the
    # two leaves the data unapproved (DATA001, approve again), never a lock the checksums
    # contradict.
    write_checksums(policy, entry.sha256)
    atomic_write_json(policy.resolve(data.lock), document)
    return entry


def write_checksums(policy: LoadedPolicy, sha256: str) -> None:
    """Write ``[data].checksums`` (sha256sum format) for the data file, atomically, if set."""
    data = policy.policy.data
    if data.checksums is not None:
        name = policy.resolve(data.path).name
        atomic_write_text(policy.resolve(data.checksums), f"{sha256}  {name}\n")


def _previous_reference(policy: LoadedPolicy, data_path: Path) -> DataProfile | None:
    try:
        lock = read_lock(policy.resolve(policy.policy.data.lock))
    except DataError:
        return None
    entry = lock.files.get(lock_key(policy, data_path))
    return entry.reference if entry is not None else None


# --- loading for training --------------------------------------------------------------------


def load_dataset(policy: LoadedPolicy) -> Dataset:
    """Load the approved data for training: the lock must match and the contract must hold."""
    data = policy.policy.data
    problems = verify_lock(policy)
    path = policy.resolve(data.path)
    frame = read_table(path, fmt=data.resolved_format, max_bytes=data.checks.max_file_bytes)
    clean, violations = check_contract(frame, data)
    problems.extend(violations)
    if problems:
        shown = "\n  ".join(f"{v.rule} {v.message}" for v in problems[:5])
        more = f"\n  ... and {len(problems) - 5} more" if len(problems) > 5 else ""
        msg = f"{path}: refused: the data breaks its lock or contract:\n  {shown}{more}"
        raise DataError(msg)
    features = clean[list(data.feature_columns)]
    labels = clean[data.label].astype(str)
    ids = clean[data.id_column] if data.id_column else None
    return Dataset(path=path, sha256=sha256_file(path), features=features, labels=labels, ids=ids)


def describe_value(value: float) -> str:
    """Short, stable text for a number in a message."""
    return "nan" if math.isnan(value) else f"{value:g}"
