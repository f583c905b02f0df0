"""Clean tables the data gate was not tuned on: does it fail any of them?

Run from the project root: ``python bench/clean_tables.py`` (``--output``, default
``bench/results/clean-tables.txt``). Judges each clean table exactly as ``bench/poisoning.py``
judges its clean tables (its ``contract_for``, ``reference_for`` and ``gate_verdict``): the
whole-table setting (the approved profile is the table's own) and the batch setting (a
seeded 70% of the rows approved, the other 30% the new batch). Per table and setting: rows x
features, verdict, rows flagged, the error rules that fail it, and whether a second run flags
the same rows.

The tables: ``make_classification`` with ``flip_y=0`` (no noisy label): 1k and 10k rows x 2, 3
and 5 classes x class_sep 0.5, 1 and 2; 30k and 50k rows at three of those nine, each class
count and each class_sep once (``LARGE``; ``--full``: all nine there too); the feature count (8, 16, 20, 40) cycling through the grid
(24 tables, not the 144 of the whole product, which does not fit 15 minutes on 2 cores); a few with the default
``flip_y=0.01`` reported apart (1% noisy labels may rightly be flagged); and real tables
installed with scikit-learn that the benchmark does not use: iris, diabetes (target above its
median), digits 1-vs-7, 4-vs-9 and 0-vs-6 (digits 3-vs-8 and the ten digits are benchmark
sets; these pairs are other tables from the same source).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from poisoning import (  # noqa: E402 - needs bench/ on sys.path
    APPROVED_SHARE,
    SEED,
    Case,
    contract_for,
    gate_verdict,
    reference_for,
)

SIZES = (1_000, 10_000, 30_000, 50_000)
FEATURES = (8, 16, 20, 40)
CLASSES = (2, 3, 5)
SEPARATIONS = (0.5, 1.0, 2.0)
# At 30k and 50k rows, the (class count, class_sep) positions run by default: each class count
# and each class_sep once per size, features 20/40/16 and 8/20/40.
LARGE = {30_000: ((0, 0), (1, 2), (2, 1)), 50_000: ((0, 1), (1, 0), (2, 2))}


@dataclass(frozen=True)
class Table:
    """A clean table and the group it is reported in."""

    group: str
    case: Case
    note: str


def synthetic(  # noqa: PLR0917 - one argument per make_classification setting
    rows: int, features: int, classes: int, sep: float, flip: float, seed: int
) -> Case:
    """A seeded ``make_classification`` table: half the features informative, a quarter redundant."""
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=rows,
        n_features=features,
        n_informative=features // 2,
        n_redundant=features // 4,
        n_classes=classes,
        class_sep=sep,
        flip_y=flip,
        random_state=seed,
    )
    noisy = f"-flip{flip:g}" if flip else ""
    return Case(f"mc-{rows // 1000}k-{features}f-{classes}c-sep{sep:g}{noisy}", x, y)


def tables(quick: bool, *, full: bool = False) -> list[Table]:
    """The grid (see the module text); ``quick``: the 1k and 10k rows only; ``full``: every
    class count x class_sep at 30k and 50k rows too (by default the three of ``LARGE``: the
    whole product takes about 50 minutes on 2 quiet cores)."""
    from sklearn.datasets import load_diabetes, load_digits, load_iris

    out: list[Table] = []
    k = 0
    for rows in SIZES[:2] if quick else SIZES:
        for c, classes in enumerate(CLASSES):
            for s, sep in enumerate(SEPARATIONS):
                features = FEATURES[k % len(FEATURES)]
                if rows <= SIZES[1] or full or (c, s) in LARGE.get(rows, ()):
                    table = synthetic(rows, features, classes, sep, 0.0, SEED + k)
                    out.append(Table("flip_y=0", table, ""))
                k += 1
    for rows, features, classes in ((10_000, 20, 2), (10_000, 16, 3), (30_000, 16, 2)):
        out.append(
            Table("flip_y=0.01", synthetic(rows, features, classes, 1.0, 0.01, SEED + k), "")
        )
        k += 1
    iris = load_iris()
    out.append(Table("real", Case("iris", iris.data, iris.target), "3 classes"))
    diabetes = load_diabetes()
    above = (diabetes.target > np.median(diabetes.target)).astype(int)
    out.append(Table("real", Case("diabetes>median", diabetes.data, above), "2 classes"))
    digits = load_digits()
    for a, b in ((1, 7), (4, 9), (0, 6)):
        pair = (digits.target == a) | (digits.target == b)
        out.append(
            Table(
                "real",
                Case(f"digits_{a}v{b}", digits.data[pair], (digits.target[pair] == b).astype(int)),
                "2 classes",
            )
        )
    return out


def judge(
    table: Table, setting: str, split_seed: int = SEED, *, trend: bool | None = None
) -> tuple[str, dict[str, Any]]:
    """One table in one setting, twice: the report line and its figures (``split_seed``: the
    seeded approved/new split of the batch and grown settings; ``trend``: the association
    test's ``neighbour_trend`` set on or off, None: as policy.toml has it)."""
    case = table.case
    contract = contract_for(case)
    if trend is not None:
        checks = contract.checks
        association = checks.association.model_copy(update={"neighbour_trend": trend})
        contract = contract.model_copy(
            update={"checks": checks.model_copy(update={"association": association})}
        )
    n = len(case.y)
    approved = None
    if setting in ("batch", "grown"):
        approved = np.zeros(n, dtype=bool)
        approved[np.random.default_rng(split_seed).permutation(n)[: round(APPROVED_SHARE * n)]] = (
            True
        )
    # ``grown``: the batch setting with the approved profile (and label rates) of the approved
    # rows only, as ``data approve`` recorded it before the new rows came; in ``table`` and
    # ``batch`` the profile is the whole table's, as bench/poisoning.py judges its clean tables.
    approved_case = (
        Case(case.name, case.x[approved], case.y[approved])
        if setting == "grown" and approved is not None
        else case
    )
    reference = reference_for(approved_case, contract)
    start = time.perf_counter()
    first = gate_verdict(contract, reference, case.x, case.y, approved=approved)
    second = gate_verdict(contract, reference, case.x, case.y, approved=approved)
    seconds = (time.perf_counter() - start) / 2
    same = bool(np.array_equal(first.mask, second.mask))
    verdict = "FAIL" if first.fails else "pass"
    line = (
        f"  {case.name:<24} {setting:<5} {n:>6} x {case.x.shape[1]:>2} "
        f"{len(set(case.y.tolist())):>2}c  {verdict}  {int(first.mask.sum()):>5} flagged "
        f"({first.mask.mean():6.2%})  identical: {same!s:<5} {seconds:6.1f}s"
        + (f"  {','.join(first.rules)}" if first.rules else "")
    )
    return line, {"fails": first.fails, "rules": first.rules, "same": same}


def main() -> int:
    """Run the sweep; write the results file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output", type=Path, default=ROOT / "bench" / "results" / "clean-tables.txt"
    )
    parser.add_argument(
        "--settings", default="table,batch", help="table, batch and/or grown (see judge)"
    )
    parser.add_argument("--quick", action="store_true", help="1k and 10k rows only")
    parser.add_argument("--full", action="store_true", help="every 30k and 50k table too")
    parser.add_argument("--only", default="", help="comma-separated table names")
    parser.add_argument(
        "--split-seed",
        type=int,
        default=SEED,
        help="seed of the batch/grown settings' approved/new split (default: the gate's seed)",
    )
    parser.add_argument(
        "--neighbour-trend",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="set [data.checks.association].neighbour_trend on or off (default: as policy.toml, on)",
    )
    args = parser.parse_args()
    out: list[str] = []

    def emit(line: str) -> None:
        print(line, flush=True)
        out.append(line)

    import platform

    import sklearn

    start = time.perf_counter()
    emit(
        f"python {platform.python_version()}, scikit-learn {sklearn.__version__}, seed {SEED}, "
        f"split seed {args.split_seed}, neighbour_trend {args.neighbour_trend}; "
        f"{os.cpu_count()} cores, load {'/'.join(f'{v:.2f}' for v in os.getloadavg())} at start"
    )
    emit(
        "  table                    setting   rows x  f  classes verdict, rows flagged, "
        "two runs identical, seconds per run, error rules"
    )
    settings = tuple(args.settings.split(","))
    only = set(args.only.split(",")) if args.only else None
    tally: dict[tuple[str, str], list[int]] = {}
    rules: dict[tuple[str, str], dict[str, int]] = {}
    group = ""
    for table in tables(args.quick, full=args.full):
        if only is not None and table.case.name not in only:
            continue
        if table.group != group:
            group = table.group
            emit(f"{group}:")
        for setting in settings:
            line, got = judge(table, setting, args.split_seed, trend=args.neighbour_trend)
            emit(line)
            counts = tally.setdefault((table.group, setting), [0, 0, 0])
            counts[0] += got["fails"]
            counts[1] += 1
            counts[2] += not got["same"]
            for rule in got["rules"]:
                per = rules.setdefault((table.group, setting), {})
                per[rule] = per.get(rule, 0) + 1
    emit("")
    emit("summary: tables the gate FAILS (clean: every one is a false failure), per group")
    for (name, setting), (fails, total, differ) in tally.items():
        named = ", ".join(f"{r} {c}" for r, c in sorted(rules.get((name, setting), {}).items()))
        emit(
            f"  {name:<12} {setting:<5} {fails:>2} of {total:>2} fail"
            + (f" ({named})" if named else "")
            + f"; flagged rows differ between two runs on {differ}"
        )
    emit(f"total {time.perf_counter() - start:.0f}s")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(out) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
