"""The whole-table label witness (DATA070) on the poisoning benchmark: why cells miss, what else was tried.

Run from the project root: ``python bench/label_witness.py`` (``--seed 7`` for the held-out
data seed, ``--draws 0`` to skip part 3). Uses ``bench/poisoning.py``'s sets, splits,
injections and policy. Three parts:

1. Per label cell (random, boundary, class-conditional and region flips), the kNN witness's
   evidence: its count against the approved snapshot's rate (one-sided binomial p), its
   disagreement mass (excess and z), the witness rows cleanlab and the other row checks
   explain (``overlap``) against what the rule asks for (``need``: ``witness_explained`` x the
   count excess), whether the unexplained-excess rule fires, and the gate's F1 as committed,
   with the rule forced on and forced off, beside issue 16's target.
2. Alternatives to the rule, each scored by the cells at target (label cells, and every
   whole-table cell) on the same screens: only the label check's rows change.
3. Clean tables that are not the approved one (as for DATA043): *grown* (approved profile of
   70% of the rows, table of all of them) and *disjoint* (approved profile of one half, table of
   the other half): how often the rule fires and how often DATA070 fails the table (the
   label check alone: no other check's rows count as explained; on clean tables they are few).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import poisoning as pb

from pipeline.poison import (
    KNN_MEAN,
    KNN_VAR,
    LabelScores,
    cleanlab_issues,
    encode_labels,
    feature_matrix,
    label_flags,
    label_rates,
    label_scores,
    screen,
)

Array = np.ndarray[Any, Any]


@dataclass
class Cell:
    """One whole-table cell: the label check's inputs and the other checks' verdict."""

    name: str
    attack: str
    rate: float
    truth: Array
    y: Array
    scores: LabelScores
    rates: dict[str, float]
    classes: list[str]
    check: Any
    other: Array  # rows another row check flagged (they explain the witness's rows)
    errors: set[str]  # error rules other than DATA070
    cleanlab_f1: float
    knn_f1: float


def capture(seed: int, sets: set[str] | None = None) -> list[Cell]:
    """Screen every whole-table cell once (and each clean table), as the benchmark does."""
    from gates.base import Severity
    from gates.data_integrity import DataGate

    pb.DATA_SEED = seed
    cells: list[Cell] = []
    for number, full in enumerate(pb.datasets()):
        if sets is not None and full.name not in sets:
            continue
        case, _, _ = pb.split(full, number)
        contract = pb.contract_for(case)
        reference = pb.reference_for(case, contract)
        runs = [(a, r, *pb.inject(case, a, r, seed + number)) for a, r in pb.ATTACKS]
        runs.append(("clean", 0.0, case.x, case.y, np.zeros(len(case.y), dtype=bool)))
        for attack, rate, x, y, truth in runs:
            frame = pb.frame_for(x, y)
            result = screen(frame, contract, reference=reference, seed=pb.SEED)
            findings = DataGate.judge(result, contract, "bench.csv")
            other = np.zeros(len(y), dtype=bool)
            for flags in result.flags:
                if flags.check != "label":
                    other[flags.rows] = True
            check = contract.checks.labels
            codes = encode_labels(frame[contract.label], contract.classes)
            scores = label_scores(
                feature_matrix(frame, contract),
                codes,
                n_classes=len(contract.classes),
                check=check,
                seed=pb.SEED,
            )
            base = pb.baselines(contract, x, y) if attack != "clean" else {}
            cell = Cell(
                case.name,
                attack,
                rate,
                truth,
                codes,
                scores,
                dict(reference.label_rates or {}),
                list(contract.classes),
                check,
                other,
                {f.rule for f in findings if f.severity is Severity.ERROR} - {"DATA070"},
                pb.score(base["cleanlab"][0], truth)[2] if base else 0.0,
                pb.score(base["knn10"][0], truth)[2] if base else 0.0,
            )
            committed = label_rows(cell)
            label = next(f for f in result.flags if f.check == "label")
            if not np.array_equal(np.flatnonzero(committed), label.rows):
                msg = f"{case.name} {attack}: label rows differ from the gate's"
                raise RuntimeError(msg)
            cells.append(cell)
        print(f"  screened {case.name}", file=sys.stderr, flush=True)
    return cells


def label_rows(cell: Cell, scores: LabelScores | None = None, **over: float) -> Array:
    """The label check's rows with the committed policy, ``over`` replacing its witness keys."""
    check = cell.check
    keys = {
        "slack": check.witness_slack,
        "alpha": check.witness_alpha,
        "explained": check.witness_explained,
        "min_excess": check.witness_min_excess,
        "model_below": check.witness_model_below,
    }
    keys.update(over)
    found = label_flags(
        cell.scores if scores is None else scores,
        cell.y,
        classes=cell.classes,
        rates=cell.rates,
        explained_rows=np.flatnonzero(cell.other),
        **keys,
    )
    mask = np.zeros(len(cell.y), dtype=bool)
    mask[found.rows] = True
    return mask


@dataclass(frozen=True)
class Evidence:
    """The witness's numbers behind the rule's decision on one cell."""

    count: int
    expected: float
    pvalue: float
    mass_excess: float
    mass_z: float
    overlap: int
    need: float
    significant: bool
    fires: bool
    residual: float  # share of the mass excess carried by rows nobody explains
    two_sample: bool  # fires when the approved rate and mass are estimates (Fisher, pooled var)


def evidence(cell: Cell, approved: int | None = None) -> Evidence:
    """Recompute the rule's statistics (``pipeline.poison.label_flags``) for the report.

    ``approved``: the approved snapshot's row count (default: this table's), for the
    two-sample variant, which treats the approved rate and mass as estimates from those rows:
    a one-sided Fisher exact test of the two counts and the mass test with the approved mean's
    variance added.
    """
    from scipy.stats import binom, fisher_exact, norm

    check, n, rates = cell.check, len(cell.y), cell.rates
    knn = cell.scores.knn[np.arange(n), cell.y]
    hit = knn < 0.5
    count, expected = int(hit.sum()), rates["knn"] * n
    pvalue = float(binom.sf(count - 1, n, max(rates["knn"], 1e-9))) if count else 1.0
    disagreement = 1.0 - knn
    mass_excess = float(disagreement.sum()) - rates[KNN_MEAN] * n
    mass_z = mass_excess / float(np.sqrt(max(rates[KNN_VAR], 1e-6) * n))
    accounted = cleanlab_issues(cell.y, cell.scores.combined) | cell.other
    overlap = int((accounted & hit).sum())
    floor = check.witness_min_excess * n
    significant = (pvalue < check.witness_alpha and count - expected >= floor) or (
        float(norm.sf(mass_z)) < check.witness_alpha and mass_excess >= floor
    )
    need = check.witness_explained * max(count - expected, 1.0)
    explained = float((disagreement[accounted] - rates[KNN_MEAN]).sum())
    rows = len(cell.y) if approved is None else approved
    before = round(rates["knn"] * rows)
    fisher = fisher_exact([[count, n - count], [before, rows - before]], alternative="greater")
    pooled = mass_excess / float(np.sqrt(max(rates[KNN_VAR], 1e-6) * n * (1 + n / rows)))
    two_sample = (float(fisher[1]) < check.witness_alpha and count - expected >= floor) or (
        float(norm.sf(pooled)) < check.witness_alpha and mass_excess >= floor
    )
    return Evidence(
        count,
        expected,
        pvalue,
        mass_excess,
        mass_z,
        overlap,
        need,
        significant,
        significant and overlap < need,
        (mass_excess - explained) / mass_excess if mass_excess > 0 else 0.0,
        two_sample and overlap < need,
    )


def _mixture(cell: Cell, weight: float) -> LabelScores:
    scores = cell.scores
    return replace(scores, combined=weight * scores.model + (1 - weight) * scores.knn)


def _fitted_weight(clean: Cell) -> float:
    """The model weight minimizing the approved snapshot's log loss of the mixture (0.05 grid)."""
    n = len(clean.y)
    losses = []
    grid = np.linspace(0.0, 1.0, 21)
    for weight in grid:
        probs = _mixture(clean, weight).combined[np.arange(n), clean.y]
        losses.append(-np.log(np.clip(probs, 1e-6, 1.0)).mean())
    return float(grid[int(np.argmin(losses))])


def alternatives(cells: list[Cell]) -> dict[str, Callable[[Cell], Array]]:
    """Each alternative as label rows per cell (the first is the committed rule)."""
    weights = {c.name: _fitted_weight(c) for c in cells if c.attack == "clean"}

    def residual(cell: Cell) -> Array:
        found = evidence(cell)
        fire = found.significant and found.residual > 0.55
        return label_rows(cell, explained=1e9 if fire else 0.0)

    def fired_plus_model(cell: Cell) -> Array:
        rows = label_rows(cell)
        if evidence(cell).fires:
            rows |= cleanlab_issues(cell.y, cell.scores.model)
        return rows

    def mass_extra(cell: Cell) -> Array:
        rows = label_rows(cell)
        found = evidence(cell)
        if found.fires or not found.significant:
            return rows
        # the explained branch's count-based excess, or the mass excess beyond its slack
        spread = float(np.sqrt(max(cell.rates[KNN_VAR], 1e-6) * len(cell.y)))
        extra = int(np.ceil(found.mass_excess - cell.check.witness_slack * spread))
        extra -= found.overlap + int((rows & ~cleanlab_issues(cell.y, cell.scores.combined)).sum())
        knn = cell.scores.knn[np.arange(len(cell.y)), cell.y]
        candidates = np.flatnonzero((knn < 0.5) & ~rows)
        rows = rows.copy()
        rows[candidates[np.argsort(knn[candidates], kind="stable")][: max(extra, 0)]] = True
        return rows

    def two_sample(cell: Cell) -> Array:
        found = evidence(cell)
        return label_rows(cell, explained=1e9 if found.two_sample and found.fires else 0.0)

    return {
        "committed (alpha 0.01, explained 0.5, model_below 0.9)": label_rows,
        "witness_alpha 0.05": lambda c: label_rows(c, alpha=0.05),
        "witness_alpha 0.02": lambda c: label_rows(c, alpha=0.02),
        "witness_model_below 0.8": lambda c: label_rows(c, model_below=0.8),
        "witness_model_below 0.85": lambda c: label_rows(c, model_below=0.85),
        "fire on residual mass share > 0.55": residual,
        "two-sample tests (approved rate and mass are estimates)": two_sample,
        "when it fires, add cleanlab on the model alone": fired_plus_model,
        "not fired: add the mass excess too, not only the count's": mass_extra,
        "model weight fitted on the approved snapshot": lambda c: label_rows(
            c, scores=_mixture(c, weights[c.name])
        ),
        "model weight 0.4": lambda c: label_rows(c, scores=_mixture(c, 0.4)),
        "model weight 0.6": lambda c: label_rows(c, scores=_mixture(c, 0.6)),
    }


def table_lines(cells: list[Cell], rows: Callable[[Cell], Array]) -> list[str]:
    """The cells as ``bench/poisoning.py`` table lines, for its ``summarize``."""
    lines = []
    for cell in cells:
        label = rows(cell)
        mask = cell.other | label
        n = len(cell.y)
        fails = bool(cell.errors) or label.sum() / n > cell.check.max_share
        if cell.attack == "clean":
            lines.append(
                f"  {cell.name:<13} table {n:>5} rows: {'FAIL' if fails else 'pass'}, "
                f"{int(mask.sum())} rows flagged; identical: True"
            )
            continue
        p, r, f = pb.score(mask, cell.truth)
        lines.append(
            f"{cell.name:<13} table {cell.attack:<9} {cell.rate:>4.0%} {int(cell.truth.sum()):>4} | "
            f"{p:4.2f} {r:4.2f} {f:4.2f}  {'FAIL' if fails else 'pass'} | "
            f"- - {cell.cleanlab_f1:4.2f} | - - {cell.knn_f1:4.2f} | - - - | - - - -"
        )
    return lines


def met(lines: list[str]) -> tuple[int, int, str]:
    """(label cells at target, all cells at target incl. clean, label misses)."""
    summary = pb.summarize(lines)
    label = next(s for s in summary if " label " in s)
    total = sum(
        int(s.split()[-3]) for s in summary if s.startswith("  table ") and "misses" not in s
    )
    misses = next((s for s in summary if "misses" in s), "")
    label_misses = [
        m.strip()
        for m in misses.split(":", 1)[-1].split(";")
        if m.split()[1:2] and m.split()[1] in pb.LABEL_ATTACKS
    ]
    return int(label.split()[-3]), total, "; ".join(label_misses)


def report(cells: list[Cell], out: list[str]) -> None:
    """Parts 1 and 2."""
    pb.emit(out, "1. per label cell: the kNN witness's evidence and the gate's F1")
    pb.emit(
        out,
        f"{'dataset':<13} {'attack':<9} {'rate':>4} | {'count':>5} {'exp':>5} {'binom p':>8} | "
        f"{'mass':>5} {'z':>5} | {'overlap':>7} {'need':>5} {'fires':>5} | "
        f"{'F1':>4} {'on':>4} {'off':>4} | {'target':>6}",
    )
    for cell in cells:
        if cell.attack not in pb.LABEL_ATTACKS:
            continue
        found = evidence(cell)
        f1 = {
            k: pb.score(cell.other | label_rows(cell, **v), cell.truth)[2]
            for k, v in (("as", {}), ("on", {"explained": 1e9}), ("off", {"explained": 0.0}))
        }
        target = max(cell.cleanlab_f1, cell.knn_f1) - 0.02
        pb.emit(
            out,
            f"{cell.name:<13} {cell.attack:<9} {cell.rate:>4.0%} | {found.count:>5} "
            f"{found.expected:>5.1f} {found.pvalue:>8.2g} | {found.mass_excess:>5.1f} "
            f"{found.mass_z:>5.1f} | {found.overlap:>7} {found.need:>5.1f} "
            f"{('yes' if found.fires else 'no') if found.significant else 'n.s.':>5} | "
            f"{f1['as']:4.2f} {f1['on']:4.2f} {f1['off']:4.2f} | {target:>6.2f}"
            + ("" if f1["as"] >= target - 1e-9 else "  miss"),
        )
    pb.emit(out, "")
    pb.emit(
        out, "2. alternatives: cells at target (label of 45; all whole-table cells incl. clean)"
    )
    for name, rows in alternatives(cells).items():
        label, total, misses = met(table_lines(cells, rows))
        pb.emit(out, f"  {name:<56} label {label:>2}  all {total:>2}  misses: {misses}")


def run_null(out: list[str], *, draws: int) -> None:
    """Part 3: the rule on clean tables that are not the approved one."""
    from sklearn.model_selection import train_test_split

    pb.emit(out, "")
    pb.emit(
        out,
        f"3. clean tables that are not the approved one ({draws} seeded splits): "
        "the rule fires / DATA070 fails, committed (and with the two-sample tests)",
    )
    for full in pb.datasets():
        contract = pb.contract_for(full)
        check = contract.checks.labels
        counts = {"grown": [0, 0, 0, 0], "disjoint": [0, 0, 0, 0]}
        for draw in range(draws):
            rows = np.arange(len(full.y))
            for kind, share in (("grown", 0.3), ("disjoint", 0.5)):
                kept, other = train_test_split(
                    rows, test_size=share, stratify=full.y, random_state=pb.DATA_SEED + draw
                )
                table = np.concatenate([kept, other]) if kind == "grown" else other
                approved = pb.frame_for(full.x[kept], full.y[kept])
                rates = label_rates(
                    label_scores(
                        feature_matrix(approved, contract),
                        encode_labels(approved[contract.label], contract.classes),
                        n_classes=len(contract.classes),
                        check=check,
                        seed=pb.SEED,
                    ),
                    encode_labels(approved[contract.label], contract.classes),
                )
                frame = pb.frame_for(full.x[table], full.y[table])
                codes = encode_labels(frame[contract.label], contract.classes)
                scores = label_scores(
                    feature_matrix(frame, contract),
                    codes,
                    n_classes=len(contract.classes),
                    check=check,
                    seed=pb.SEED,
                )
                cell = Cell(
                    full.name,
                    "clean",
                    0.0,
                    np.zeros(len(codes), dtype=bool),
                    codes,
                    scores,
                    rates,
                    list(contract.classes),
                    check,
                    np.zeros(len(codes), dtype=bool),
                    set(),
                    0.0,
                    0.0,
                )
                found = evidence(cell, approved=len(kept))
                counts[kind][0] += found.fires
                counts[kind][1] += label_rows(cell).mean() > check.max_share
                counts[kind][2] += found.two_sample
                flagged = label_rows(cell, explained=1e9 if found.two_sample else 0.0)
                counts[kind][3] += flagged.mean() > check.max_share
        pb.emit(
            out,
            f"  {full.name:<13} "
            + "; ".join(
                f"{kind}: fires {c[0]:>2}, fails {c[1]:>2} (two-sample {c[2]:>2}, {c[3]:>2})"
                for kind, c in counts.items()
            )
            + f" of {draws}",
        )


def main() -> int:
    """Run the parts and write the results file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=pb.SEED, help="data seed (7: held out)")
    parser.add_argument("--draws", type=int, default=40, help="part 3's splits (0: skip)")
    parser.add_argument("--datasets", default="", help="comma-separated subset (a quick look)")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    out: list[str] = []
    pb.emit(out, f"label witness, data seed {args.seed} (detectors seed {pb.SEED})")
    report(capture(args.seed, set(args.datasets.split(",")) if args.datasets else None), out)
    if args.draws:
        run_null(out, draws=args.draws)
    name = "label-witness.txt" if args.seed == pb.SEED else f"label-witness-seed{args.seed}.txt"
    path = args.output or pb.ROOT / "bench" / "results" / name
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
