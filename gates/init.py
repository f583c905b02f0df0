"""``python -m gates init DATA --label COLUMN``: a policy for a user's own CSV or Parquet table.

What it does, in order, each step stated in the policy it writes (as TOML comments):

1. reads the CSV as the data gate does (every cell as text; a Parquet file's typed cells are
   written as a CSV would hold them, its text columns kept ``string``) and refuses, with one
   line naming the file or column, a missing file or one neither CSV nor Parquet, an empty
   table, an absent label or id column, a blank label, a single class or one of fewer than
   ``MIN_CLASS_ROWS`` rows, or an id column with repeats or blanks;
2. infers each column's contract: ``int64`` when every non-blank cell is a whole number written
   without a point or exponent, ``float64`` when every one is a finite number, ``bool`` for
   true/false, else ``string`` (with its ``allowed`` values when there are at most
   ``MAX_CATEGORIES``); ``nullable`` when a cell is blank; a numeric range of the observed
   [min, max] widened by ``RANGE_MARGIN`` x its width on each side (not below 0 for a column
   with no negative value); ``unique`` for the id column;
3. takes the classes as the label column's text (an integer label stays an integer in TOML,
   which the policy reads as its text), and the row bounds from the row count;
4. copies the table to ``data/<name>`` (unless it is there already), writes the policy with
   provisional thresholds, and approves the snapshot (``gates.approve``, as ``data approve
   --rebaseline``; its line of ``data/SHA256SUMS`` is replaced or added, every other table's
   line kept, and a checksums file not in sha256sum format refused);
5. runs the data gate's poisoning screen on the approved table itself: a check that flags more
   of it than its default allows gets a limit just above what it flagged (approved data is
   the reference by definition; the comment says how much it flagged);
6. cross-validates the chosen estimator as the cv gate will and proposes each threshold from the
   baseline's folds and holdout (``_thresholds``);
7. measures the baseline model as the risk gate will (robust accuracy at the default epsilons,
   membership-inference exposure) and proposes the ``[risk]`` bars from it
   (``_risk_table``), rewrites the policy and approves again.

The policy is rendered with tomli-w, table by table, each preceded by its comment lines, so
every key and value is quoted as TOML requires (a column named ``od280/od315`` included). The
tables of an existing policy it keeps (``--force``: all but ``_WRITTEN``) are kept as the user
wrote them, comments included (``_kept_text``).

All or nothing: before its first write, init journals every file it may change
(``_Journal``, in ``.gates-init/``); the policy fills in as ``.policy.toml.init`` beside the
real one, which it replaces last, in one rename. A failure at any step puts every file back,
and the next init does the same after a kill (``_roll_back``), so the project is either as it
was or wholly initialised; policy.toml never holds the provisional thresholds.
"""

from __future__ import annotations

import functools
import io
import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from gates.errors import GatesError
from gates.journal import JOURNAL, MANIFEST, committed

if TYPE_CHECKING:
    import pandas as pd

    from pipeline.config import LoadedPolicy

# A string column with at most this many distinct values is a category set (``allowed``).
MAX_CATEGORIES = 50
# The contract's numeric range: the observed range widened by this share of its width per side.
RANGE_MARGIN = 1.0
FOLDS = 5
# Rows of each class init needs: one for the holdout and two for 2-fold cross-validation (with
# fewer, the data screen's and the baseline's fits met a fold of one class: a traceback).
HOLDOUT = 0.2
METRICS = ("accuracy", "balanced_accuracy", "f1", "roc_auc")
NEXT_COMMAND = "nox -s train gate"
# Beyond the pydantic defaults: the [data.checks] limits init may raise, by Flags.check name.
_SHARE_KEYS = {
    "duplicate": ("duplicates", "max_exact_share"),
    "near_duplicate": ("duplicates", "max_near_share"),
    "conflicting_labels": ("duplicates", "max_conflict_share"),
    # DATA053 (near copies with another label, exact conflicts included) shares DATA051's limit.
    "near_conflict": ("duplicates", "max_conflict_share"),
    "label": ("labels", "max_share"),
    "isolation": ("isolation", "max_share"),
    "association": ("association", "max_share"),
    "burst": ("bursts", "max_share"),
}
# Tables init writes; every other table of an existing policy is kept as it is (with --force).
_WRITTEN = ("model", "cv", "data", "risk")
# The risk gate's budgets init proposes bars for (training standard deviations), and the room
# it leaves below the baseline's robust accuracy / above its membership exposure.
RISK_EPSILONS = {"linf": (0.05, 0.1, 0.25), "l2": (0.25, 0.5, 1.0)}
RISK_MARGIN = 0.05
# For models the risk gate attacks (not certified): a budget that keeps the gate within seconds
# on a small holdout; the figures are upper bounds either way (RISK030).
ATTACK_BUDGET = {"attack_max_rows": 60, "attack_max_iter": 5, "attack_max_eval": 100}
# An attack's figure moves between runs by a few rows (HopSkipJump is not bit-reproducible on
# every family): its bar leaves more room than a certified or verified figure's.
ATTACK_MARGIN = 0.15


def _margin(method: str) -> float:
    return RISK_MARGIN if method in ("certified", "verified") else ATTACK_MARGIN


class InitError(GatesError):
    """Bad input to ``init``: one line naming the file or column (exit 2)."""


@dataclass(frozen=True)
class Proposal:
    """What init decided, for the console and the test."""

    policy_path: Path
    data_path: Path
    rows: int
    columns: int
    classes: tuple[str, ...]
    estimator: str
    cv: dict[str, dict[str, float]]
    # Metrics whose bars were raised to chance: the baseline did not beat it by its margin.
    at_chance: tuple[str, ...] = ()
    # Text columns (not the id) with more than MAX_CATEGORIES distinct values, by name: count.
    wide_text: tuple[tuple[str, int], ...] = ()


def restore(*, policy_path: Path = Path("policy.toml"), out: TextIO) -> list[str]:
    """``init --restore``: put back every file an interrupted init changed, and nothing else."""
    if policy_path.is_symlink():
        msg = f"{policy_path}: refused: a symlink (to {os.readlink(policy_path)}); init writes a real file"
        raise InitError(msg)
    restored = _restore_first(policy_path.resolve().parent, out=out)
    if not restored:
        out.write(f"nothing to restore: no interrupted init's journal beside {policy_path}\n")
    return restored


def _restore_first(root: Path, *, out: TextIO) -> list[str]:
    """Roll back an interrupted init's journal, after refusing one git tracks (a journal is
    never committed: restoring it would write the files it names over the checkout)."""
    reason = committed(root)
    if reason is not None:
        raise InitError(reason)
    restored = _roll_back(root)
    if restored:
        out.write(
            f"restored what an interrupted init had changed ({', '.join(restored)}): the "
            "project is as it was before it\n"
        )
    return restored


def init(
    csv: Path,
    *,
    label: str,
    id_column: str | None = None,
    positive: str | None = None,
    force: bool = False,
    policy_path: Path = Path("policy.toml"),
    out: TextIO,
) -> Proposal:
    """Write ``policy_path`` for ``csv``, approve it and propose thresholds (see the module).

    All or nothing: every file it writes is journaled first (``_Journal``) and the policy is
    filled in beside ``policy_path``, replacing it last; a failure puts everything back, and
    so does the next init after a kill.
    """
    if policy_path.is_symlink():
        # Its target's folder would become the project, and the data copy would go there.
        msg = f"{policy_path}: refused: a symlink (to {os.readlink(policy_path)}); init writes a real file"
        raise InitError(msg)
    if not policy_path.parent.is_dir():
        msg = (
            f"{policy_path}: expected an existing folder for the policy, found no folder "
            f"{policy_path.parent}"
        )
        raise InitError(msg)
    root = policy_path.resolve().parent
    _restore_first(root, out=out)
    if policy_path.exists() and not force:
        msg = (
            f"{policy_path}: exists; pass --force to replace its [model], [cv], [data] and "
            "[risk] tables"
        )
        raise InitError(msg)
    frame, text_columns = _read(csv, label=label)
    _require_columns(csv, frame, label=label, id_column=id_column)
    classes = _classes(csv, frame[label], label=label)
    if positive is not None and positive not in classes:
        msg = (
            f"{csv}: --positive {positive!r} is not a value of column '{label}'; expected one "
            f"of {', '.join(repr(c) for c in classes)}"
        )
        raise InitError(msg)
    columns = {
        str(name): _column_rule(
            csv, str(name), frame[name], is_id=name == id_column, text=name in text_columns
        )
        for name in frame.columns
        if name != label
    }
    nullable_numeric = [
        n for n, r in columns.items() if r.get("nullable") and r["dtype"] in ("int64", "float64")
    ]
    data_path, copy = _place(csv, root, force=force)
    relative = data_path.relative_to(root).as_posix()
    stem = data_path.stem
    data: dict[str, Any] = {
        "path": relative,
        "lock": f"{data_path.parent.relative_to(root).as_posix()}/{stem}.lock.json",
        "checksums": f"{data_path.parent.relative_to(root).as_posix()}/SHA256SUMS",
        "label": label,
        "classes": [_toml_class(c, classes) for c in classes],
        "min_rows": max(min(len(frame), 2 * FOLDS * len(classes)), len(frame) // 2),
        "max_rows": max(100_000, 10 * len(frame)),
        "holdout_fraction": HOLDOUT,
        "columns": columns,
    }
    if positive is not None:
        data["positive_class"] = _toml_class(positive, classes)
    if id_column is not None:
        data["id_column"] = id_column
    smallest = min(int((frame[label].str.strip() == c).sum()) for c in classes)
    folds = max(2, min(FOLDS, int(smallest * (1 - HOLDOUT))))
    model = _model(nullable_numeric)
    base, kept = _existing(policy_path)
    notes = _Notes(csv=csv, rows=len(frame), classes=classes, nullable=nullable_numeric)
    # The policy is filled in beside policy.toml (same folder, so its paths resolve the same)
    # and replaces it only once whole: policy.toml never holds the provisional thresholds.
    staged = root / f".{policy_path.name}.init"
    lock = root / data["lock"]
    written = [staged, root / policy_path.name, lock, lock.with_suffix(".approval.json")]
    written += [root / data["checksums"], *([data_path] if copy else [])]
    with _Journal(root, written):
        if copy:
            from pipeline.fsio import atomic_write_bytes  # noqa: PLC0415

            # A new file put in place by rename: a symlink planted after the check is
            # replaced, not followed.
            atomic_write_bytes(data_path, csv.resolve().read_bytes())
        write = functools.partial(
            _write, staged, base=base, kept=kept, model=model, data=data, notes=notes
        )
        baseline, thresholds = _fill(
            staged, lock, write=write, data=data, notes=notes, folds=folds, out=out
        )
        _publish(staged, policy_path)
    return Proposal(
        policy_path=policy_path,
        data_path=data_path,
        rows=len(frame),
        columns=len(columns),
        classes=classes,
        estimator=model["estimator"],
        cv=thresholds,
        at_chance=tuple(_floored(baseline)),
        wide_text=tuple(
            (name, int(frame[name].str.strip().nunique()))
            for name, rule in columns.items()
            if rule["dtype"] == "string"
            and "allowed" not in rule
            and not rule.get("unique")
            and frame[name].str.strip().nunique() > MAX_CATEGORIES
        ),
    )


def _fill(
    staged: Path,
    lock: Path,
    *,
    write: Callable[..., None],
    data: dict[str, Any],
    notes: _Notes,
    folds: int,
    out: TextIO,
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """Write the staged policy three times as it fills in (``data`` gains its checks, then the
    thresholds and the risk bars), approving the data after each; the baseline and thresholds.
    """
    provisional = {m: {"min_mean": 0.0} for m in METRICS}
    write(cv={"folds": folds, "thresholds": provisional})
    # Each approval replaces the lock as it was before init: the user sees one approval, and
    # the lock's serial is the one the first approval printed (one above the replaced lock's).
    replaced = _LockBytes(lock)
    loaded = _approve(staged, out=out)
    checks = _screen(loaded, notes)
    if checks:
        data["checks"] = checks
    write(cv={"folds": folds, "thresholds": provisional})
    replaced.restore()
    loaded = _approve(staged, out=io.StringIO())
    baseline, fitted, split = _baseline(loaded)
    thresholds = {m: _thresholds(baseline[m]) for m in METRICS}
    notes.baseline = baseline
    risk = _risk_table(loaded, fitted, split, notes)
    write(cv={"folds": folds, "thresholds": thresholds}, risk=risk)
    replaced.restore()
    _approve(staged, out=io.StringIO())
    return baseline, thresholds


# --- reading and checking the table -------------------------------------------------------


def _read(csv: Path, *, label: str) -> tuple[pd.DataFrame, frozenset[str]]:
    """The table as text, as the data gate reads a CSV, and the columns Parquet types as text.

    A Parquet file's typed cells are written out as a CSV would hold them (a blank for a
    null, ``true``/``false``, a float with its point), so one inference serves both formats;
    its text columns stay ``string`` even when every value looks like a number. The label is
    its cells' text as the data gate reads it (``True``, ``3``).
    """
    from pipeline.data import read_table  # noqa: PLC0415
    from pipeline.errors import DataError  # noqa: PLC0415

    if not csv.is_file():
        what = "a folder" if csv.is_dir() else "nothing"
        msg = f"{csv}: expected a CSV or Parquet file, found {what}"
        raise InitError(msg)
    suffix = csv.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        msg = (
            f"{csv}: expected a .csv file (comma-separated text with a header row) or a "
            f".parquet file, found the suffix {suffix or '(none)'!r}"
        )
        raise InitError(msg)
    if suffix == ".csv":
        with csv.open("rb") as handle:
            if b"\0" in handle.read(65536):
                msg = f"{csv}: expected CSV text, found binary data (a NUL byte)"
                raise InitError(msg)
    # The bounds the data gate reads under (the written policy's default max_file_mb): without
    # max_bytes a Parquet file's footer, pages and decoded text were not bounded at all, and a
    # 10 KB file expanded to 2.1 GiB (red team 15).
    from pipeline.config import DataChecksPolicy  # noqa: PLC0415

    try:
        frame = read_table(csv, fmt=suffix[1:], max_bytes=DataChecksPolicy().max_file_bytes)
    except DataError as err:
        raise InitError(str(err)) from None
    if suffix == ".csv":
        _refuse_renamed_header(csv)
        return frame, frozenset()
    _refuse_binary(csv)
    return _as_text(frame, label=label)


def _refuse_renamed_header(csv: Path) -> None:
    """InitError for a header pandas reads under names the file does not hold: a repeated name
    (read as ``a.1``) or an empty one (``Unnamed: 0``), which the policy would then declare."""
    import csv as csv_module  # noqa: PLC0415
    from collections import Counter  # noqa: PLC0415

    with csv.open(encoding="utf-8-sig", newline="") as handle:
        names = next(csv_module.reader(handle), [])
    counts = Counter(names)
    for position, name in enumerate(names, start=1):
        if not name.strip():
            found = f"column {position} has no name in the header"
        elif counts[name] > 1:
            found = f"column '{name}' appears {counts[name]} times in the header"
        else:
            continue
        msg = f"{csv}: {found}; expected each column named once"
        raise InitError(msg)


def _refuse_binary(parquet: Path) -> None:
    """InitError for a binary Parquet column: its cells are bytes, which the contract's
    ``allowed`` strings cannot name as the data gate reads them."""
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    binary = (pa.types.is_binary, pa.types.is_large_binary, pa.types.is_fixed_size_binary)
    for field in pq.read_schema(parquet):
        if any(is_kind(field.type) for is_kind in binary) or str(field.type) == "binary_view":
            msg = (
                f"{parquet}: column '{field.name}' is binary; expected float64, int64, string "
                "or bool columns (store text as a string column)"
            )
            raise InitError(msg)


def _as_text(frame: pd.DataFrame, *, label: str) -> tuple[pd.DataFrame, frozenset[str]]:
    import pandas as pd  # noqa: PLC0415

    text: dict[str, pd.Series] = {}
    typed_text = set()
    for name in frame.columns:
        column = frame[name]
        missing = column.isna()
        if name == label:
            cells = column.astype(object).map(str)
        elif pd.api.types.is_bool_dtype(column):
            cells = column.map({True: "true", False: "false"})
        elif pd.api.types.is_numeric_dtype(column):
            cells = column.map(repr if pd.api.types.is_float_dtype(column) else str)
        else:
            typed_text.add(str(name))
            cells = column.astype(object).map(str)
        text[str(name)] = cells.where(~missing, "").astype(str)
    return pd.DataFrame(text, index=frame.index), frozenset(typed_text)


def _require_columns(csv: Path, frame: pd.DataFrame, *, label: str, id_column: str | None) -> None:
    names = [str(c) for c in frame.columns]
    shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
    for option, name in (("--label", label), ("--id", id_column)):
        if name is not None and name not in names:
            msg = f"{csv}: {option} column '{name}' not found; the header has: {shown}"
            near = _near(name, names)
            if near is not None:
                msg += f"; did you mean {near!r}?"
            separator = next((c for c in ";\t|" if len(names) == 1 and c in names[0]), None)
            if separator is not None:
                msg += (
                    f" (one column whose name holds {separator!r}: the file looks "
                    f"{separator!r}-separated; init reads comma-separated CSV)"
                )
            raise InitError(msg)
    if id_column is not None and id_column == label:
        msg = f"{csv}: --id and --label name the same column '{label}'"
        raise InitError(msg)
    if len(names) < 2:
        msg = f"{csv}: expected the label column and at least one feature column, found {shown}"
        raise InitError(msg)
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated or any(n != n.strip() for n in names):
        msg = f"{csv}: column names must be distinct and unpadded, found {repeated or names}"
        raise InitError(msg)


def _near(name: str, names: list[str]) -> str | None:
    """The column ``name`` was probably meant to be (any case or padding, or a close spelling),
    among every column, not only the ones the message quotes."""
    import difflib  # noqa: PLC0415

    folded = [n for n in names if n.strip().casefold() == name.strip().casefold()]
    if folded:
        return folded[0]
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.8)
    return close[0] if close else None


def _classes(csv: Path, labels: pd.Series, *, label: str) -> tuple[str, ...]:
    from pipeline.data import MIN_CLASS_ROWS  # noqa: PLC0415 - as the data gate's DATA021

    text = labels.str.strip()
    blank = text == ""
    if blank.any():
        msg = (
            f"{csv}: column '{label}' has {int(blank.sum())} blank label(s) (first data row "
            f"{int(blank.to_numpy().argmax())}); every row needs a class"
        )
        raise InitError(msg)
    found = sorted(set(text), key=_class_order)
    if len(found) < 2:
        msg = f"{csv}: column '{label}' holds one class only ({found[0]!r}); expected at least 2"
        raise InitError(msg)
    counts = text.value_counts()
    rare = [c for c in found if counts[c] < MIN_CLASS_ROWS]
    if rare:
        msg = (
            f"{csv}: column '{label}' has {int(counts[rare[0]])} row(s) of class {rare[0]!r}; "
            f"expected at least {MIN_CLASS_ROWS} of each class (one held out, two for 2-fold "
            "cross-validation)"
        )
        raise InitError(msg)
    return tuple(found)


def _class_order(value: str) -> tuple[int, float, str]:
    return (0, int(value), "") if _is_int_text(value) else (1, 0.0, value)


def _is_int_text(value: str) -> bool:
    """Canonical integer text ("0", "-3"; not "007" or "+1"): the same text as str(int(value))."""
    try:
        return str(int(value)) == value
    except ValueError:
        return False


def _toml_class(value: str, classes: tuple[str, ...]) -> str | int:
    # Integer labels stay integers in the policy (it reads each as its decimal text).
    return int(value) if all(_is_int_text(c) for c in classes) else value


def _column_rule(
    csv: Path, name: str, raw: pd.Series, *, is_id: bool, text: bool = False
) -> dict[str, Any]:
    """The contract of one column; ``text``: a Parquet text column, ``string`` whatever it holds."""
    import pandas as pd  # noqa: PLC0415

    stripped = raw.str.strip()
    blank = (stripped == "") | stripped.str.lower().isin(["nan", "na", "null"])
    present = stripped[~blank]
    rule: dict[str, Any]
    numbers = pd.to_numeric(present, errors="coerce")
    finite = len(present) and numbers.notna().all() and bool(numbers.abs().lt(math.inf).all())
    if finite and not text:
        whole = not present.str.contains(r"[.eE]", regex=True).any()
        rule = {"dtype": "int64" if whole else "float64"}
        if not is_id:
            rule.update(_bounds(float(numbers.min()), float(numbers.max()), whole=whole))
    elif len(present) and not text and present.str.lower().isin(["true", "false"]).all():
        rule = {"dtype": "bool"}
    else:
        rule = {"dtype": "string"}
        values = sorted(set(present))
        if values and len(values) <= MAX_CATEGORIES and not is_id:
            rule["allowed"] = values
    if blank.any():
        if is_id:
            msg = f"{csv}: --id column '{name}' has {int(blank.sum())} blank value(s)"
            raise InitError(msg)
        rule["nullable"] = True
    if is_id:
        repeats = present[present.duplicated()]
        if len(repeats):
            msg = f"{csv}: --id column '{name}' repeats {repeats.iloc[0]!r}; ids must be unique"
            raise InitError(msg)
        rule["unique"] = True
    return rule


def _bounds(low: float, high: float, *, whole: bool) -> dict[str, float | int]:
    width = high - low if high > low else max(abs(high), 1.0)
    lower = low - RANGE_MARGIN * width
    upper = high + RANGE_MARGIN * width
    if low >= 0:
        lower = max(0.0, lower)
    if whole:
        return {"min": math.floor(lower), "max": math.ceil(upper)}
    return {"min": _round(lower, math.floor), "max": _round(upper, math.ceil)}


def _round(value: float, direction: Callable[[float], float]) -> float:
    """``value`` rounded outward (``direction``) to 4 significant digits."""
    if value == 0:
        return 0.0
    scale = 10 ** (3 - math.floor(math.log10(abs(value))))
    return float(direction(value * scale) / scale)


def _place(csv: Path, root: Path, *, force: bool) -> tuple[Path, bool]:
    """The data file inside the project: ``csv`` itself when it is there, else ``data/<name>``;
    and whether init must copy it there (which it does once its journal is written)."""
    source = csv.resolve()
    if source.is_relative_to(root):
        return source, False
    target = root / "data" / source.name
    # Never through a symlink: one committed as data/ or data/<name> could lead anywhere, and
    # the copy would land there (over whatever it names, with --force).
    for path in (target.parent, target):
        if path.is_symlink():
            msg = (
                f"{path}: refused: a symlink (to {os.readlink(path)}); init copies {csv.name} "
                "only into a real data/ folder of the project"
            )
            raise InitError(msg)
    if target.exists() and not target.is_file():
        what = "a folder" if target.is_dir() else "something that is not a regular file"
        msg = f"{target}: expected a file to copy {csv} over, found {what}"
        raise InitError(msg)
    if target.exists() and target.read_bytes() != source.read_bytes() and not force:
        msg = f"{target}: exists with other content; pass --force to replace it with {csv}"
        raise InitError(msg)
    return target, True


def _model(nullable_numeric: list[str]) -> dict[str, Any]:
    if nullable_numeric:
        return {"estimator": "hist_gradient_boosting", "scale": False, "params": {}}
    return {"estimator": "logistic_regression", "scale": True, "params": {"max_iter": 5000}}


# --- the policy file ----------------------------------------------------------------------


@dataclass
class _Notes:
    csv: Path
    rows: int
    classes: tuple[str, ...]
    nullable: list[str]
    screened: dict[str, tuple[float, float]] | None = None
    baseline: dict[str, dict[str, float]] | None = None
    risk: str | None = None


def _existing(policy_path: Path) -> tuple[dict[str, Any], str | None]:
    """The tables of an existing policy init keeps (with --force), else none (the defaults);
    and their text as the user wrote it, comments included (``_kept_text``; None when it cannot
    be cut out exactly, and then they are written from their values)."""
    import tomllib  # noqa: PLC0415

    if not policy_path.exists():
        return {}, None
    try:
        text = policy_path.read_text(encoding="utf-8")
        document = tomllib.loads(text)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        msg = f"{policy_path}: cannot keep its other tables, it is not valid TOML ({err})"
        raise InitError(msg) from None
    base = {k: v for k, v in document.items() if k not in _WRITTEN}
    return base, _kept_text(text, {k: v for k, v in base.items() if k != "schema_version"})


def _kept_text(text: str, kept: dict[str, Any]) -> str | None:
    """The lines of ``text`` that hold the tables ``kept`` (comments included), else None.

    Cut header by header: a table runs from its ``[header]`` line (with the comment lines right
    above it) to the next header; a table whose first key is one init writes is left out, and
    so is every key line before the first table (``schema_version``: init writes its own), not
    the comments there. The cut is parsed back and must give exactly ``kept``: a text it does
    not cut cleanly (a multi-line string holding a line like a header, a dotted key in the
    preamble) gives None, never other values. No TOML library that keeps comments is in the
    lock (tomlkit is not), and this is all that is needed.
    """
    import tomllib  # noqa: PLC0415

    lines = text.splitlines(keepends=True)
    owner: list[str | None] = [None] * len(lines)  # each line's top-level table; None: preamble
    current: str | None = None
    for number, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("["):
            try:
                header = tomllib.loads(stripped + "\n")
            except tomllib.TOMLDecodeError:
                return None
            current = next(iter(header), None)
            # The comment lines right above a header are that table's.
            above = number
            while above > 0 and lines[above - 1].lstrip().startswith("#"):
                above -= 1
                owner[above] = current
        owner[number] = current
    cut = [
        line
        for line, table in zip(lines, owner, strict=True)
        if (table is None and (not line.strip() or line.lstrip().startswith("#")))
        or (table is not None and table not in _WRITTEN)
    ]
    joined = "".join(cut).strip("\n")
    try:
        same = tomllib.loads(joined) == kept
    except tomllib.TOMLDecodeError:
        return None
    return joined + "\n" if same and joined else None


def _write(
    policy_path: Path,
    *,
    base: dict[str, Any],
    kept: str | None,
    model: dict[str, Any],
    cv: dict[str, Any],
    data: dict[str, Any],
    notes: _Notes,
    risk: dict[str, Any] | None = None,
) -> None:
    import tomli_w  # noqa: PLC0415

    from pipeline.fsio import atomic_write_text  # noqa: PLC0415

    head = {"schema_version": base.get("schema_version", 1)}
    tables = {k: v for k, v in base.items() if k != "schema_version"}
    parts = [
        _comment(
            f"Written by `python -m gates init {notes.csv.name}`: {notes.rows} rows, classes "
            f"{list(notes.classes)}. Every inferred value below says where it came from; edit "
            "freely, then `python -m gates policy check`."
        ),
        tomli_w.dumps(head),
    ]
    if tables:
        parts.append(_comment("Kept from the policy this one replaced."))
        parts.append(tomli_w.dumps(tables) if kept is None else kept)
    parts.append(_comment(_model_note(model, notes)))
    parts.append(tomli_w.dumps({"model": model}))
    parts.append(_comment(_cv_note(cv, notes)))
    parts.append(tomli_w.dumps({"cv": cv}))
    parts.append(
        _comment(
            "The data contract, inferred from the table: dtype from the cells (int64 = whole "
            "numbers, float64 = other numbers, bool = true/false, string = anything else, with "
            f"its allowed values when at most {MAX_CATEGORIES}); nullable where a cell is blank; "
            f"min/max = the observed range widened by {RANGE_MARGIN:g} x its width on each side "
            "(not below 0 when nothing was negative). Rows: at least half of today's, at most "
            "ten times (or 100000). Undeclared columns are rejected."
        )
    )
    if notes.screened:
        parts.append(_comment(_screen_note(notes.screened)))
    parts.append(tomli_w.dumps({"data": data}))
    if risk is not None and notes.risk is not None:
        parts.append(_comment(notes.risk))
        parts.append(tomli_w.dumps({"risk": risk}))
    atomic_write_text(policy_path, "\n".join(p.rstrip("\n") + "\n" for p in parts))


def _comment(text: str, width: int = 98) -> str:
    """``text`` as comment lines of at most ``width``; a `command` in backticks is never split
    over two lines (``python -m gates policy check`` was, and could not be copied whole)."""
    import re  # noqa: PLC0415
    import textwrap  # noqa: PLC0415

    glued = re.sub(r"`[^`]*`", lambda m: m.group(0).replace(" ", "\0"), text)
    lines = textwrap.wrap(glued, width - 2, break_on_hyphens=False, break_long_words=False)
    return "\n".join(f"# {line}".replace("\0", " ") for line in lines) + "\n"


def _model_note(model: dict[str, Any], notes: _Notes) -> str:
    if notes.nullable:
        return (
            f"hist_gradient_boosting: the numeric column(s) {notes.nullable[:3]} have blank "
            "cells, which it takes as they are (logistic_regression cannot). String and bool "
            "columns are one-hot encoded in front of the estimator."
        )
    return (
        "logistic_regression on standardized features: fast and a sound baseline; "
        "random_forest and hist_gradient_boosting are the alternatives. String and bool "
        "columns are one-hot encoded in front of the estimator."
    )


def _cv_note(cv: dict[str, Any], notes: _Notes) -> str:
    head = (
        f"{cv['folds']} stratified folds (at most 5, at most the smallest class's training rows). "
    )
    if notes.baseline is None:
        return head + "Provisional thresholds: init replaces them after its baseline run."
    seen = "; ".join(
        f"{m} mean {b['mean']:.4f} std {b['std']:.4f} worst fold {b['min_fold']:.4f} holdout "
        f"{b['holdout']:.4f} chance {b['chance']:.4f}"
        for m, b in notes.baseline.items()
    )
    text = head + (
        f"Baseline cross-validation by init (this estimator, this data): {seen}. Proposed "
        "from it: min_mean = mean - max(2 x std, 0.02); min_fold = worst fold - max(std, "
        "0.02), at most min_mean; max_std = max(2 x std, 0.03); min_holdout = holdout - max(2 x std, 0.03); "
        "each rounded down (max_std up) to 0.01 and kept within [0, 1], and min_mean and "
        "min_holdout never below chance (the better of a majority-class and a class-share "
        "guess on the same folds, rounded up). A candidate that falls below these is worse "
        "than the baseline by more than its own noise."
    )
    floored = _floored(notes.baseline)
    if floored:
        text += (
            f" WARNING: the baseline does not beat chance by its margin on {', '.join(floored)}:"
            " those bars are set at chance, so the chain fails until a candidate beats a model "
            "that learned nothing (a better estimator or features; lower a bar only knowingly)."
        )
    return text


def _floored(baseline: dict[str, dict[str, float]]) -> list[str]:
    """The metrics whose proposed bars were raised to chance."""
    return [m for m, b in baseline.items() if _thresholds({**b, "chance": 0.0}) != _thresholds(b)]


def _screen_note(screened: dict[str, tuple[float, float]]) -> str:
    raised = "; ".join(
        f"[data.checks.{_SHARE_KEYS[c][0]}].{_SHARE_KEYS[c][1]} {limit:g} (it flagged "
        f"{share:.2%} of the approved rows)"
        for c, (share, limit) in screened.items()
    )
    return (
        "The poisoning screen, run by init on the approved table itself, flagged more than a "
        f"default limit allows; raised just above what it flagged: {raised}. Review "
        "reports/data.flagged.csv after the first run."
    )


# --- all or nothing: the journal ----------------------------------------------------------

# Beside the policy: the files init may change, as they were, while it runs (gates/journal.py:
# what every other command makes of it).
_MANIFEST = MANIFEST


def _publish(staged: Path, policy_path: Path) -> None:
    """The whole policy replaces ``policy_path`` (one rename, then its folder is fsynced)."""
    from pipeline.fsio import fsync_dir  # noqa: PLC0415

    os.replace(staged, policy_path)
    fsync_dir(policy_path.parent)


class _Journal:
    """Every file init writes, as it was before: put back when init fails, or by the next init
    when this one was killed.

    On entry, before init writes anything: each of ``paths`` that exists is hard-linked into
    ``<root>/.gates-init/`` (a copy where links do not work; every write init makes replaces
    a file by rename, so the link keeps the old bytes), then ``journal.json`` names them (and
    the ones that did not exist), written atomically: from then on the journal is armed. On a
    clean exit ``journal.json`` is removed first (init is done), then the rest. On any
    exception, ``KeyboardInterrupt`` included, ``_roll_back`` puts every file back. A SIGKILL
    leaves the journal armed; the next ``init`` rolls it back before anything else (a kill
    while it is made leaves no ``journal.json``, and nothing was written yet).
    """

    def __init__(self, root: Path, paths: list[Path]) -> None:
        self.root = root
        self.paths = list(dict.fromkeys(paths))
        self.folder = root / JOURNAL

    def __enter__(self) -> _Journal:
        import shutil  # noqa: PLC0415

        from pipeline.fsio import atomic_write_json, fsync_dir  # noqa: PLC0415

        for path in self.paths:
            if path.is_symlink():
                msg = f"{path}: refused: a symlink (to {os.readlink(path)}); init writes real files"
                raise InitError(msg)
        shutil.rmtree(self.folder, ignore_errors=True)  # no manifest: a kill before arming
        self.folder.mkdir()
        files: list[dict[str, Any]] = []
        made: list[str] = []
        for number, path in enumerate(self.paths):
            backup = None
            if path.exists():
                backup = str(number)
                try:
                    os.link(path, self.folder / backup)
                except OSError:
                    shutil.copy2(path, self.folder / backup)
            elif not path.parent.exists():
                made.append(path.parent.relative_to(self.root).as_posix())
            files.append({"path": path.relative_to(self.root).as_posix(), "backup": backup})
        fsync_dir(self.folder)
        atomic_write_json(self.folder / _MANIFEST, {"files": files, "made": made})
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        import shutil  # noqa: PLC0415

        from pipeline.fsio import fsync_dir  # noqa: PLC0415

        if kind is not None:
            _roll_back(self.root)
            return
        (self.folder / _MANIFEST).unlink()
        fsync_dir(self.folder)
        shutil.rmtree(self.folder, ignore_errors=True)


def _roll_back(root: Path) -> list[str]:
    """Put back every file an interrupted init changed (its journal names them); the names.

    A journal is input like any other file of the project (a pull request can commit one), so
    each entry must name a file inside the project, reached through no symlink, and a backup
    in the journal's own folder; anything else is refused with the journal's name, changing
    nothing. Idempotent: a kill while it runs leaves the journal, and the next init repeats it.
    """
    import json  # noqa: PLC0415
    import shutil  # noqa: PLC0415

    from pipeline.fsio import fsync_dir, temp_files  # noqa: PLC0415

    folder = root / JOURNAL
    manifest = folder / _MANIFEST
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        msg = f"{folder}: refused: init keeps its journal in a real folder of that name"
        raise InitError(msg)
    if not manifest.is_file():
        shutil.rmtree(folder, ignore_errors=True)  # killed before it was armed: nothing written
        return []
    try:
        document = json.loads(manifest.read_text(encoding="utf-8"))
        entries = [(str(f["path"]), f["backup"]) for f in document["files"]]
        made = [str(name) for name in document.get("made", [])]
    except (OSError, ValueError, KeyError, TypeError) as err:
        msg = f"{manifest}: an interrupted init's journal is unreadable ({err}); restore by hand"
        raise InitError(msg) from None
    restored = []
    for name, backup in entries:
        path = _inside(root, name, manifest)
        if backup is not None:
            source = folder / str(backup)
            if not str(backup).isdigit() or source.is_symlink() or not source.is_file():
                msg = f"{manifest}: entry {name!r} names no backup of this journal"
                raise InitError(msg)
            temp = path.with_name(f".{path.name}.init-restore")
            temp.unlink(missing_ok=True)
            if not (path.is_file() and os.path.samefile(source, path)):  # else: never replaced
                try:
                    os.link(source, temp)
                except OSError:
                    shutil.copy2(source, temp)
                os.replace(temp, path)
        else:
            path.unlink(missing_ok=True)
        for left in temp_files(path):  # what an atomic write killed mid-way left
            left.unlink(missing_ok=True)
        fsync_dir(path.parent)
        restored.append(name)
    for name in made:
        folder_made = _inside(root, name, manifest)
        if folder_made.is_dir() and not any(folder_made.iterdir()):
            folder_made.rmdir()
    manifest.unlink()
    shutil.rmtree(folder, ignore_errors=True)
    return restored


def _inside(root: Path, name: str, manifest: Path) -> Path:
    path = root / name
    parts = Path(name).parts
    escapes = Path(name).is_absolute() or ".." in parts or not parts or parts[0] == JOURNAL
    if escapes or not path.parent.resolve().is_relative_to(root) or path.is_symlink():
        msg = f"{manifest}: refused: entry {name!r} is not a file inside {root}; restore by hand"
        raise InitError(msg)
    return path


# --- approve, screen, baseline ------------------------------------------------------------


class _LockBytes:
    """The data lock's bytes before init approved anything; ``restore`` puts them back."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.raw = path.read_bytes() if path.is_file() and not path.is_symlink() else None

    def restore(self) -> None:
        from pipeline.fsio import atomic_write_bytes  # noqa: PLC0415

        if self.raw is None:
            self.path.unlink(missing_ok=True)
        else:
            atomic_write_bytes(self.path, self.raw)


def _approve(policy_path: Path, *, out: TextIO) -> LoadedPolicy:
    from gates.approve import approve  # noqa: PLC0415
    from pipeline.config import load_policy  # noqa: PLC0415

    loaded = load_policy(policy_path)
    if approve(loaded, out=out, rebaseline=True) != 0:
        msg = f"{policy_path}: the inferred contract does not hold on the data (a bug in init)"
        raise InitError(msg)
    return loaded


def _screen(loaded: LoadedPolicy, notes: _Notes) -> dict[str, Any]:
    """The [data.checks] limits that the approved table itself needs; notes what was raised."""
    from gates.base import RunContext  # noqa: PLC0415
    from gates.data_integrity import DataGate  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="gates-init-") as reports:
        context = RunContext(policy=loaded, run_id="init", reports_dir=Path(reports))
        outcome = DataGate().run(context)
    checks = loaded.policy.data.checks
    tables: dict[str, dict[str, Any]] = {}
    raised: dict[str, tuple[float, float]] = {}
    for check, found in outcome.metrics.get("checks", {}).items():
        if check not in _SHARE_KEYS or not found.get("flagged"):
            continue
        table, key = _SHARE_KEYS[check]
        share = float(found["share"])
        # Two checks may share a limit (DATA051, DATA053): never lower one already raised.
        if share <= tables.get(table, {}).get(key, getattr(getattr(checks, table), key)):
            continue
        # Just above what it flagged: one more flagged row in a hundred fails the gate.
        limit = min(1.0, math.ceil((share + 0.01) * 100) / 100)
        tables.setdefault(table, {})[key] = limit
        raised[check] = (share, limit)
    notes.screened = raised
    return tables


def _baseline(loaded: LoadedPolicy) -> tuple[dict[str, dict[str, float]], Any, Any]:
    """Cross-validation and a holdout score, exactly as the train and cv gates compute them;
    with the model fitted on the training split and the split itself."""
    from sklearn.base import clone  # noqa: PLC0415
    from sklearn.dummy import DummyClassifier  # noqa: PLC0415

    from pipeline.evaluate import build_scorers, cross_validate_scores, holdout_scores  # noqa: PLC0415
    from pipeline.model import build_estimator  # noqa: PLC0415
    from pipeline.train import prepare  # noqa: PLC0415

    policy = loaded.policy
    _, split = prepare(loaded)
    scorers = build_scorers(
        METRICS, classes=policy.data.classes, positive_class=policy.data.positive_class
    )
    estimator = build_estimator(policy.model, seed=policy.run.seed, contract=policy.data)
    cross_validate = functools.partial(
        cross_validate_scores,
        features=split.x_train,
        labels=split.y_train,
        scorers=scorers,
        folds=policy.cv.folds,
        seed=policy.run.seed,
    )
    scores = cross_validate(estimator)
    model = clone(estimator).fit(split.x_train, split.y_train)
    holdout = holdout_scores(model, split.x_holdout, split.y_holdout, scorers=scorers)
    seen = {
        m: {
            "mean": scores.mean(m),
            "std": scores.std(m),
            "min_fold": min(scores.folds[m]),
            "holdout": holdout[m],
            "chance": 0.0,
        }
        for m in METRICS
    }
    # What a model that learned nothing scores on the same folds: always the majority class,
    # or classes drawn at their training shares. No threshold init proposes lies below it.
    for strategy in ("most_frequent", "stratified"):
        chance = cross_validate(DummyClassifier(strategy=strategy, random_state=policy.run.seed))
        for m in METRICS:
            seen[m]["chance"] = max(seen[m]["chance"], chance.mean(m))
    return seen, model, split


def _risk_table(loaded: LoadedPolicy, model: Any, split: Any, notes: _Notes) -> dict[str, Any]:
    """The ``[risk]`` bars: the baseline model measured as the risk gate measures a candidate.

    Each robust accuracy bar is the baseline's figure less ``RISK_MARGIN`` (rounded down to
    0.01); each membership bar the baseline's exposure plus ``RISK_MARGIN`` (rounded up), never
    below the policy's defaults. A candidate that misses them is less robust, or leaks more,
    than the baseline by more than the margin.
    """
    from gates.risk import measure_model  # noqa: PLC0415
    from pipeline.config import PrivacyPolicy, RiskPolicy  # noqa: PLC0415
    from pipeline.risk import linear_parts  # noqa: PLC0415

    budget: dict[str, Any] = {}
    if linear_parts(model) is None:
        # Not certified: HopSkipJump, whose cost grows with rows x iterations x evaluations.
        budget = dict(ATTACK_BUDGET)
    risk = RiskPolicy.model_validate(
        {
            "robustness": {
                **{
                    norm: {"epsilons": list(eps), "min_accuracy": [0.0] * len(eps)}
                    for norm, eps in RISK_EPSILONS.items()
                },
                **budget,
            }
        }
    )
    robust, privacy = measure_model(loaded, model, split, risk, who="the baseline")
    bars: dict[str, Any] = {}
    for norm, eps in RISK_EPSILONS.items():
        seen = [next(r for r in robust if r.norm == norm and r.epsilon == e) for e in eps]
        bars[norm] = {
            "epsilons": list(eps),
            "min_accuracy": [
                max(0.0, math.floor((r.accuracy - _margin(r.method)) * 100) / 100) for r in seen
            ],
        }
    defaults = PrivacyPolicy()

    def up(value: float, floor: float) -> float:
        return min(1.0, max(floor, math.ceil((value + RISK_MARGIN) * 100) / 100))

    auc = max(m.auc for m in privacy)
    tpr = {key: max(m.tpr[key] for m in privacy) for key in privacy[0].tpr}
    low, one = sorted(tpr)
    proposed = {
        "robustness": {**budget, **bars},
        "privacy": {
            "max_auc": up(auc, defaults.max_auc),
            "max_tpr_at_0_1pct_fpr": up(tpr[low], defaults.max_tpr_at_0_1pct_fpr),
            "max_tpr_at_1pct_fpr": up(tpr[one], defaults.max_tpr_at_1pct_fpr),
        },
    }
    shown = "; ".join(f"{r.norm} eps {r.epsilon:g}: {r.accuracy:.3f} ({r.method})" for r in robust)
    notes.risk = (
        f"Model risk of the baseline, measured by init as the risk gate will: robust accuracy "
        f"{shown}; membership-inference AUC {auc:.3f} (worst of {len(privacy)} attacks). "
        f"Proposed from it: min_accuracy = robust accuracy - {RISK_MARGIN:g} (- {ATTACK_MARGIN:g} "
        "for an attack's figure, which varies between runs), rounded down; "
        f"max_auc and the TPR bars = exposure + {RISK_MARGIN:g}, rounded up, never below the "
        "defaults (AUC 0.6, TPR 0.05 / 0.1). Epsilons are in training standard deviations; "
        "set mutable = false on columns an attacker cannot change."
    )
    return proposed


def _thresholds(seen: dict[str, float]) -> dict[str, float]:
    """Thresholds a candidate as good as the baseline meets with room for its noise.

    ``min_mean`` and ``min_holdout`` never lie below ``chance`` (what a model that learned
    nothing scores, rounded up to 0.01): a bar a constant guess clears checks nothing. A
    baseline that does not beat it by its margin gets the chance bar, and the chain fails
    until a candidate beats it (``_cv_note`` says which metrics).
    """
    std = seen["std"]
    floor = min(1.0, math.ceil(seen["chance"] * 100) / 100)

    def down(value: float) -> float:
        return max(0.0, math.floor(value * 100) / 100)

    min_mean = max(floor, down(seen["mean"] - max(2 * std, 0.02)))
    return {
        "min_mean": min_mean,
        # The policy requires min_fold <= min_mean.
        "min_fold": min(min_mean, down(seen["min_fold"] - max(std, 0.02))),
        "max_std": min(1.0, math.ceil(max(2 * std, 0.03) * 100) / 100),
        "min_holdout": max(floor, down(seen["holdout"] - max(2 * std, 0.03))),
    }
