"""One command for every benchmark of issue 8: ``python bench/run.py`` (``--quick`` to try it).

Each comparison runs the two (or more) commands alternately, several times, and reports the
medians and their ratio, so both sides see the same machine load. Sections:

- cold: a fresh ``git clone`` of this branch, then ``nox -s train gate`` (builds the env).
- a: warm no-op ``nox -R -s train gate`` (cache hits) vs a no-op ``dvc repro`` of the same
  two-stage pipeline (train, evaluate) on the same data; and vs our own full run
  (``--no-cache``: ruff, bandit and pip-audit included).
- b: the same work as bare scripts (load, fit, CV, save) done by our chain: ``--rerun-from
  data`` re-runs data, train and cv (and what follows) while the supply-chain gates, whose
  inputs did not change, are reused; with a forced ``dvc repro`` for reference.
- c: ``pipeline.fsio.sha256_file`` vs ``openssl dgst -sha256`` on a 2 GiB file.
- d: ``pipeline.data.check_contract`` vs pandera on 1,000,000 rows.
- e: contract check, train and cv at 10k, 100k, 1M and 10M rows: seconds, peak memory, growth.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))

from pipeline.fsio import sha256_file  # noqa: E402

DVC_YAML = """\
stages:
  train:
    cmd: {python} train.py data.csv model.skops
    deps: [train.py, data.csv]
    outs: [model.skops]
  evaluate:
    cmd: {python} evaluate.py data.csv model.skops scores.json
    deps: [evaluate.py, data.csv, model.skops]
    metrics:
      - scores.json:
          cache: false
"""


class Report:
    """Print lines as they come and keep them for the results file."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)


def _advisory_db() -> Path | None:
    """The policy's offline advisory snapshot, as seen from this checkout (not from a clone)."""
    import tomllib

    policy = tomllib.loads((REPO / "policy.toml").read_text(encoding="utf-8"))
    named = policy.get("audit", {}).get("advisory_db")
    path = (REPO / named).resolve() if named else None
    return path if path is not None and path.is_dir() else None


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for measured commands: no inherited run id or cache switches.

    The clone lives in a temp folder, where the policy's relative advisory snapshot path does
    not reach: the snapshot is named by ``GATES_ADVISORY_DB`` instead, so the audit is offline
    (and cacheable) as it is in the checkout.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATES_")}
    env.pop("PYTHONPATH", None)
    env["DVC_NO_ANALYTICS"] = "1"
    snapshot = _advisory_db()
    if snapshot is not None:
        env["GATES_ADVISORY_DB"] = str(snapshot)
    env.update(extra)
    return env


def timed(command: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> float:
    """Wall seconds of one command; a failing command stops the benchmark with its output."""
    start = time.perf_counter()
    done = subprocess.run(
        command, cwd=cwd, env=env or clean_env(), capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        msg = f"{' '.join(command)} exited {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        raise RuntimeError(msg)
    return seconds


def alternate(runners: dict[str, Callable[[], float]], *, reps: int) -> dict[str, list[float]]:
    """Run each runner once per round, rotating the order, ``reps`` rounds."""
    times: dict[str, list[float]] = {name: [] for name in runners}
    names = list(runners)
    for round_ in range(reps):
        order = names[round_ % len(names) :] + names[: round_ % len(names)]
        for name in order:
            times[name].append(runners[name]())
    return times


def med(values: list[float]) -> float:
    """Median."""
    return statistics.median(values)


def fmt(values: list[float]) -> str:
    """``median s (min-max, n)``."""
    return f"{med(values):8.3f} s  (min {min(values):.3f}, max {max(values):.3f}, n={len(values)})"


def verdict(ratio: float, goal: float, *, at_most: bool) -> str:
    """``meets`` / ``MISSES`` for a goal on a ratio."""
    ok = ratio <= goal if at_most else ratio >= goal
    return f"goal {'<=' if at_most else '>='} {goal:g}x: {'meets' if ok else 'MISSES'}"


@contextlib.contextmanager
def workdir(keep: bool) -> Iterator[Path]:
    """A temp folder for the whole benchmark."""
    folder = Path(tempfile.mkdtemp(prefix="gates-bench-"))
    try:
        yield folder
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)


def find_tool(name: str, override: str | None) -> str:
    """A tool's path: the flag, then PATH; a clear error otherwise.

    A pyenv shim is resolved to the program it runs: the shim is a shell script that starts
    ``pyenv exec`` (about 0.09 s per call here), a cost of this machine's setup that neither
    the tool nor the one compared with it would pay elsewhere.
    """
    found = override or shutil.which(name)
    if not found:
        msg = f"{name} not found on PATH (pass --{name} PATH; see docs/performance.md)"
        raise SystemExit(msg)
    pyenv = shutil.which("pyenv")
    if override is None and Path(found).parent.name == "shims" and pyenv:
        real = subprocess.run(
            [pyenv, "which", name], capture_output=True, text=True, check=False
        ).stdout.strip()
        if real and Path(real).is_file():
            return real
    return found


def section_cold(out: Report, tmp: Path, *, nox: str) -> tuple[Path, float]:
    """Clone this branch and time the first ``nox -s train gate``."""
    git = find_tool("git", None)
    branch = subprocess.run(
        [git, "rev-parse", "--abbrev-ref", "HEAD"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    clone = tmp / "clone"
    start = time.perf_counter()
    subprocess.run([git, "clone", "--quiet", "--branch", branch, str(REPO), str(clone)], check=True)
    cloned = time.perf_counter() - start
    first = timed([nox, "-s", "train", "gate"], cwd=clone)
    out("## cold start: fresh clone, first `nox -s train gate` (builds the shared env)")
    out(f"git clone                                  {cloned:8.3f} s")
    out(f"first nox -s train gate (uv env + chain)   {first:8.3f} s")
    out()
    return clone, first


def build_dvc_project(tmp: Path, clone: Path, *, dvc: str) -> Path:
    """The equivalent two-stage DVC pipeline on the same data, reproduced once."""
    project = tmp / "dvc"
    project.mkdir()
    shutil.copy2(clone / "data" / "breast_cancer.csv", project / "data.csv")
    shutil.copy2(BENCH / "bare_train.py", project / "train.py")
    shutil.copy2(BENCH / "bare_evaluate.py", project / "evaluate.py")
    (project / "dvc.yaml").write_text(DVC_YAML.format(python=sys.executable), encoding="utf-8")
    subprocess.run([dvc, "init", "--no-scm", "-q"], cwd=project, check=True, env=clean_env())
    subprocess.run(
        [dvc, "config", "core.analytics", "false"], cwd=project, check=True, env=clean_env()
    )
    timed([dvc, "repro", "-q"], cwd=project)
    return project


def section_a(
    out: Report, clone: Path, dvc_project: Path, *, nox: str, dvc: str, reps: int
) -> float:
    """Warm no-op vs dvc no-op; returns our full-run median for section b."""
    timed([nox, "-R", "-s", "train", "gate"], cwd=clone)  # warm the cache after the cold run
    venv_python = next((clone / ".nox").glob("*/bin/python"))
    times = alternate(
        {
            "ours_noop": lambda: timed([nox, "-R", "-s", "train", "gate"], cwd=clone),
            "ours_noop_procs": lambda: timed(
                [nox, "-R", "-s", "train", "gate"], cwd=clone, env=clean_env(GATES_NOX_WORKER="0")
            ),
            "ours_cli_noop": lambda: timed([str(venv_python), "-m", "gates", "run"], cwd=clone),
            "dvc_noop": lambda: timed([dvc, "repro", "-q"], cwd=dvc_project),
            "ours_full": lambda: timed(
                [nox, "-R", "-s", "train", "gate", "--", "--no-cache"], cwd=clone
            ),
        },
        reps=reps,
    )
    noop, dvc_noop, full = (med(times[k]) for k in ("ours_noop", "dvc_noop", "ours_full"))
    out("## a. warm no-op: `nox -R -s train gate` (cache hits) vs `dvc repro` with nothing changed")
    out(f"ours, warm no-op        {fmt(times['ours_noop'])}")
    out(f"dvc repro, no-op        {fmt(times['dvc_noop'])}")
    out(f"ours, full (--no-cache) {fmt(times['ours_full'])}")
    out(f"ours, python -m gates run, warm (one process, no nox) {fmt(times['ours_cli_noop'])}")
    out(f"ours, warm no-op without the worker (GATES_NOX_WORKER=0) {fmt(times['ours_noop_procs'])}")
    out(
        f"ratio ours/dvc          {noop / dvc_noop:8.2f}x   {verdict(noop / dvc_noop, 2.0, at_most=True)}"
    )
    out(
        f"ratio no-op/full        {noop / full:8.2%}    goal < 10%: {'meets' if noop / full < 0.10 else 'MISSES'}"
    )
    out()
    return full


def section_b(
    out: Report, clone: Path, dvc_project: Path, *, nox: str, dvc: str, reps: int
) -> None:
    """Full run vs bare scripts (and DVC's own forced run for reference)."""
    python = sys.executable
    data = clone / "data" / "breast_cancer.csv"
    bare_dir = dvc_project.parent / "bare"
    bare_dir.mkdir(exist_ok=True)

    def bare() -> float:
        model, scores = bare_dir / "model.skops", bare_dir / "scores.json"
        return timed(
            [python, str(BENCH / "bare_train.py"), str(data), str(model)], cwd=bare_dir
        ) + timed(
            [python, str(BENCH / "bare_evaluate.py"), str(data), str(model), str(scores)],
            cwd=bare_dir,
        )

    venv_python = next((clone / ".nox").glob("*/bin/python"))
    rerun = ["--rerun-from", "data"]
    times = alternate(
        {
            "ours_nox": lambda: timed([nox, "-R", "-s", "train", "gate", "--", *rerun], cwd=clone),
            "ours_nox_procs": lambda: timed(
                [nox, "-R", "-s", "train", "gate", "--", *rerun],
                cwd=clone,
                env=clean_env(GATES_NOX_WORKER="0"),
            ),
            "ours_cli": lambda: timed([str(venv_python), "-m", "gates", "run", *rerun], cwd=clone),
            "bare": bare,
            "dvc_forced": lambda: timed([dvc, "repro", "-f", "-q"], cwd=dvc_project),
        },
        reps=reps,
    )
    base = med(times["bare"])
    out("## b. the same work as bare scripts (load, fit, CV, save): data, train, cv re-run")
    out("(ours: --rerun-from data; lint, sast and audit are reused, their inputs unchanged)")
    out(f"bare scripts (2 procs)                  {fmt(times['bare'])}")
    out(f"ours, nox -R -s train gate              {fmt(times['ours_nox'])}")
    out(f"ours, nox, GATES_NOX_WORKER=0           {fmt(times['ours_nox_procs'])}")
    out(f"ours, python -m gates run               {fmt(times['ours_cli'])}")
    out(f"dvc repro -f (reference)                {fmt(times['dvc_forced'])}")
    for key, label in (
        ("ours_nox", "nox"),
        ("ours_nox_procs", "nox/procs"),
        ("ours_cli", "cli"),
        ("dvc_forced", "dvc -f"),
    ):
        ratio = med(times[key]) / base
        goal = verdict(ratio, 1.3, at_most=True) if key != "dvc_forced" else "(DVC's own overhead)"
        out(f"ratio {label:<9}/bare                {ratio:8.2f}x   {goal}")
    out()


def section_c(out: Report, tmp: Path, *, openssl: str, gib: float, reps: int) -> None:
    """sha256_file vs openssl on a large file made for the purpose and deleted after."""
    path = tmp / "big.bin"
    size = int(gib * 2**30)
    block = os.urandom(64 * 2**20)
    with path.open("wb") as handle:
        written = 0
        while written < size:
            chunk = block[: size - written]
            handle.write(chunk)
            written += len(chunk)
    try:
        expected = subprocess.run(
            [openssl, "dgst", "-sha256", "-r", str(path)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()[0]  # also brings the file into the page cache for both sides

        def ours() -> float:
            start = time.perf_counter()
            digest = sha256_file(path)
            seconds = time.perf_counter() - start
            assert digest == expected
            return seconds

        times = alternate(
            {
                "ours": ours,
                "openssl": lambda: timed([openssl, "dgst", "-sha256", str(path)], cwd=tmp),
            },
            reps=reps,
        )
    finally:
        path.unlink()
    ours_rate = size / med(times["ours"]) / 1e9
    ssl_rate = size / med(times["openssl"]) / 1e9
    out(f"## c. SHA-256 of a {gib:g} GiB file (page-cached): sha256_file vs openssl dgst -sha256")
    out(f"pipeline.fsio.sha256_file  {fmt(times['ours'])}  {ours_rate:.2f} GB/s")
    out(f"openssl dgst -sha256       {fmt(times['openssl'])}  {ssl_rate:.2f} GB/s")
    out(
        f"throughput ours/openssl    {ours_rate / ssl_rate:8.2f}x   {verdict(ours_rate / ssl_rate, 0.9, at_most=False)}"
    )
    out()


def worker(*args: str, timeout: float = 3600) -> dict[str, object]:
    """Run bench/_workers.py with ``args`` and parse its JSON line."""
    done = subprocess.run(
        [sys.executable, str(BENCH / "_workers.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=clean_env(),
    )
    if done.returncode != 0:
        msg = f"_workers.py {' '.join(args)} failed:\n{done.stderr[-3000:]}"
        raise RuntimeError(msg)
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def section_d(out: Report, *, rows: int, reps: int) -> None:
    """check_contract vs pandera (text cells and typed columns)."""
    times = worker("contract", str(rows), str(reps))
    out(f"## d. contract checks on {rows:,} rows x 22 columns: check_contract vs pandera")
    for mode, what in (
        ("text", "text cells, as read from CSV (parse + check)"),
        ("typed", "typed columns, as read from Parquet (check)"),
    ):
        ours, theirs = times[f"{mode}_ours"], times[f"{mode}_pandera"]
        assert isinstance(ours, list)
        assert isinstance(theirs, list)
        ratio = med(ours) / med(theirs)
        out(f"{what}:")
        out(f"  check_contract  {fmt(ours)}")
        out(f"  pandera         {fmt(theirs)}")
        out(f"  ratio           {ratio:8.2f}x   {verdict(ratio, 2.0, at_most=True)}")
    out()


def section_e(out: Report, *, sizes: list[int], stages: list[str]) -> None:
    """Scaling of contract check, train and cv: seconds and peak memory per size."""
    out("## e. scaling, synthetic data with 20 features (one process per stage and size)")
    out(
        "(RSS MiB: before = process with data loaded; peak = high-water mark; extra = peak - before)"
    )
    out(f"{'stage':<9}{'rows':>12}{'seconds':>10}{'before':>10}{'peak':>10}{'extra':>10}")
    for stage in stages:
        points = []
        for rows in sizes:
            result = worker("scale", stage, str(rows))
            seconds, data, peak = (float(result[k]) for k in ("seconds", "data_mib", "peak_mib"))  # type: ignore[arg-type]
            points.append((rows, seconds, peak))
            out(
                f"{stage:<9}{rows:>12,}{seconds:>10.3f}{data:>10.0f}{peak:>10.0f}"
                f"{max(peak - data, 0):>10.0f}"
            )
        out(f"  growth of {stage}: {growth(points)}")
    out()


def growth(points: list[tuple[int, float, float]]) -> str:
    """Log-log slope of time and of peak memory between consecutive sizes (1.0 = linear)."""
    time_slopes, memory_slopes = [], []
    for (n1, t1, m1), (n2, t2, m2) in itertools.pairwise(points):
        scale = math.log(n2 / n1)
        time_slopes.append(math.log(max(t2, 1e-6) / max(t1, 1e-6)) / scale)
        memory_slopes.append(math.log(m2 / m1) / scale)
    last = time_slopes[-1] if time_slopes else float("nan")
    shape = "linear" if 0.8 <= last <= 1.2 else ("sub-linear" if last < 0.8 else "super-linear")
    return (
        f"time slopes {', '.join(f'{s:.2f}' for s in time_slopes)} "
        f"(last step {shape}); peak-memory slopes {', '.join(f'{s:.2f}' for s in memory_slopes)}"
    )


def main() -> int:
    """Parse flags, run the chosen sections, write the results file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, 3 repetitions")
    parser.add_argument("--sections", default="cold,a,b,c,d,e", help="comma-separated subset")
    parser.add_argument(
        "--stages", default="contract,train,cv", help="section e: comma-separated stages"
    )
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 5, quick 3)")
    parser.add_argument("--out", type=Path, default=None, help="results file")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder")
    parser.add_argument("--dvc", default=None, help="dvc executable (default: on PATH)")
    parser.add_argument("--nox", default=None, help="nox executable (default: on PATH)")
    args = parser.parse_args()
    reps = args.reps or (3 if args.quick else 5)
    sections = set(args.sections.split(","))
    out_path = args.out or BENCH / "results" / ("quick.txt" if args.quick else "latest.txt")
    out = Report()
    load = os.getloadavg()
    out(
        f"# bench/run.py {'--quick ' if args.quick else ''}at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    out(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"load average at start {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}"
    )
    out()
    with workdir(args.keep) as tmp:
        nox = find_tool("nox", args.nox) if sections & {"cold", "a", "b"} else ""
        dvc = find_tool("dvc", args.dvc) if sections & {"a", "b"} else ""
        for label, tool in (("nox", nox), ("dvc", dvc)):
            if tool:
                out(f"{label}: {tool}")
        clone = None
        if sections & {"cold", "a", "b"}:
            clone, _ = section_cold(out, tmp, nox=nox)
        if clone is not None and sections & {"a", "b"}:
            dvc_project = build_dvc_project(tmp, clone, dvc=dvc)
            if "a" in sections:
                section_a(out, clone, dvc_project, nox=nox, dvc=dvc, reps=reps)
            if "b" in sections:
                section_b(out, clone, dvc_project, nox=nox, dvc=dvc, reps=reps)
        if "c" in sections:
            section_c(
                out,
                tmp,
                openssl=find_tool("openssl", None),
                gib=0.0625 if args.quick else 2,
                reps=reps,
            )
        if "d" in sections:
            section_d(out, rows=100_000 if args.quick else 1_000_000, reps=reps)
        if "e" in sections:
            sizes = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000, 10_000_000]
            section_e(out, sizes=sizes, stages=args.stages.split(","))
    load = os.getloadavg()
    out(f"load average at end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text("\n".join(out.lines) + "\n", encoding="utf-8")
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
