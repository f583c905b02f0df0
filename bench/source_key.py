"""The cost of the source digest behind every gate's cache key (red team 19).

python bench/source_key.py [--project DIR] [--reps 20]: times ``gates.cache.source_digest`` on
the project at DIR (default: this checkout) with the code of this checkout, the way a run
computes it for each gate: cold (no memo: every file read and hashed) and warm (the
``DigestMemo`` holding every digest: a stat per file), reps alternated, min and median printed,
with the number of files git tracks. Run it with the code
before and after a change (``git archive <commit> | tar -x -C DIR`` then ``DIR``'s python) on
the same project to compare. No assertion: figures only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess  # nosec B404 # fixed argv, git resolved by shutil.which
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gates import cache  # noqa: E402
from gates.base import RunContext  # noqa: E402
from pipeline.config import load_policy  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=ROOT)
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args()
    root = args.project.resolve()
    context = RunContext(
        policy=load_policy(root / "policy.toml"), run_id="bench", reports_dir=root / "reports"
    )
    git = shutil.which("git")
    listed = subprocess.run(  # nosec B603 # fixed argv
        [git or "git", "ls-files", "-z"], cwd=root, capture_output=True, check=False
    )
    tracked = listed.stdout.count(b"\0")
    with tempfile.TemporaryDirectory() as folder:
        memo = cache.DigestMemo(Path(folder) / "memo")
        memo.settle_ns = -(10**18)  # remember every digest, however fresh (a bench, not a run)
        cache.source_digest(context, memo)  # fill the memo
        cold: list[float] = []
        warm: list[float] = []
        for _ in range(args.reps):
            for series, used in ((cold, None), (warm, memo)):
                started = time.perf_counter()
                cache.source_digest(context, used)
                series.append(time.perf_counter() - started)
    print(f"code {ROOT}  project {root}  load {os.getloadavg()[0]:.2f}")
    print(f"files git tracks {tracked}, reps {args.reps}")
    for name, series in (("cold (every file read)", cold), ("warm (memo: a stat per file)", warm)):
        ms = [s * 1000 for s in series]
        print(f"{name:30} min {min(ms):7.1f} ms  median {statistics.median(ms):7.1f} ms")


if __name__ == "__main__":
    main()
