"""Near copies on a column that is constant in the approved data: the whole table vs the batch.

Run from the project root: ``python bench/near_copies.py``. Takes the poisoning benchmark's
digits 3-vs-8 table (80% split, fixed seeds), appends one-ulp-up copies of 10% of its rows, once
as they are and once with a tiny value (``--noise``, default 1e-9) in one column that is
constant in the table, and prints what the data gate flags and decides in the whole-table
setting and in the batch setting (the original rows approved). The whole-table screen
standardizes by the screened table's own standard deviation; the batch screen's near-copy
search takes its scale from the approved rows.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import poisoning as pb


def main() -> int:
    """Print copies flagged and the verdict per setting, without and with the tiny value."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--noise", type=float, default=1e-9)
    parser.add_argument("--share", type=float, default=0.10)
    args = parser.parse_args()
    for number, full in enumerate(pb.datasets()):
        if full.name != "digits_3v8":
            continue
        case, _, _ = pb.split(full, number)
        contract = pb.contract_for(case)
        reference = pb.reference_for(case, contract)
        constant = np.flatnonzero(case.x.std(axis=0) == 0)
        rng = np.random.default_rng(1)
        n = len(case.y)
        source = rng.choice(n, size=round(args.share * n), replace=False)
        print(f"{full.name}: {n} rows, {constant.size} constant columns, {source.size} copies")
        for label, noise in (("one ulp up", 0.0), (f"+ {args.noise:g} in one column", args.noise)):
            copies = np.nextafter(case.x[source], np.inf)
            copies[:, constant[0]] = case.x[source, constant[0]] + noise * rng.uniform(
                0.5, 1.0, source.size
            )
            x = np.vstack([case.x, copies])
            y = np.concatenate([case.y, case.y[source]])
            approved = np.arange(len(y)) < n
            for setting, trusted in (("table", None), ("batch", approved)):
                verdict = pb.gate_verdict(contract, reference, x, y, approved=trusted)
                print(
                    f"  {label:<24} {setting}: copies flagged {int(verdict.mask[n:].sum()):>3} "
                    f"of {source.size}, {'FAIL' if verdict.fails else 'pass'} "
                    f"{','.join(verdict.rules)}"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
