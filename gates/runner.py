"""Run gates in registry order, stamp each result with the run and its inputs, write the reports."""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TextIO

from gates import crashlog
from gates.base import (
    Finding,
    Gate,
    GateError,
    GateResult,
    Outcome,
    RunContext,
    Severity,
    Status,
)
from gates.cache import METRICS_KEY as CACHE_METRICS_KEY
from gates.cache import (
    CacheKey,
    DigestMemo,
    GateCache,
    OutputSnapshot,
    cache_dir_of,
    digest_memo,
)
from gates.closing import read_report_json
from gates.console import Display, PlainDisplay
from gates.errors import GatesError
from gates.inputs import from_the_tree, input_digests, tracked_files
from gates.registry import GATES, NAMES, GateSpec, checked_before
from pipeline.config import LoadedPolicy
from pipeline.errors import PipelineError
from pipeline.fsio import atomic_write_json

RUN_FILE = "run.json"
RUN_ID_ENV = "GATES_RUN_ID"


@dataclass(frozen=True)
class RunSummary:
    """The results of the gates one invocation ran, in order."""

    run_id: str
    results: tuple[GateResult, ...]

    @property
    def exit_code(self) -> int:
        """0 all passed; 2 a gate could not run (ERRORED); 1 any other gate not PASSED."""
        if any(r.status is Status.ERRORED for r in self.results):
            return 2
        if any(r.status is not Status.PASSED for r in self.results):
            return 1
        return 0


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus 6 random hex digits."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def resolve_run_id(reports_dir: Path, *, starts_chain: bool) -> str:
    """The run this invocation belongs to.

    ``GATES_RUN_ID`` wins (CI sets it so that jobs on different machines share one run).
    Otherwise a chain that starts at the first gate opens a new run, and a later gate joins
    the run recorded in ``reports/run.json``.
    """
    from_env = os.environ.get(RUN_ID_ENV, "").strip()
    if from_env:
        return from_env
    if starts_chain:
        return new_run_id()
    run_file = reports_dir / RUN_FILE
    try:
        return str(read_report_json(run_file)["run_id"])
    except FileNotFoundError:
        msg = (
            f"{run_file}: no run in progress; start one from the first gate "
            f"('python -m gates run' or 'python -m gates run {NAMES[0]}'), "
            f"or set {RUN_ID_ENV}"
        )
        raise GateError(msg) from None
    except OSError as err:  # a symlink, FIFO, device or folder; over the size bound
        msg = f"{run_file}: run file refused, not read: {err}; start a new run"
        raise GateError(msg) from None
    except (ValueError, KeyError, TypeError) as err:  # JSON, UTF-8, nesting, huge numbers
        msg = f"{run_file}: unparsable run file ({type(err).__name__}: {err}); start a new run"
        raise GateError(msg) from None


@dataclass(frozen=True)
class _GivenGate(GateSpec):
    """A ``Gate`` instance handed to ``run_chain`` in place of a registered spec."""

    gate: Gate | None = field(default=None, compare=False, repr=False)

    def load(self) -> Gate:
        """The instance itself (nothing to import)."""
        if self.gate is None:
            msg = f"gate '{self.name}' was given without an instance"
            raise GateError(msg)
        return self.gate


def as_spec(entry: GateSpec | Gate) -> GateSpec:
    """``entry`` as a spec: a registered spec as it is, a ``Gate`` instance wrapped.

    An instance takes the role (verdict, always-run) of the registered gate of its name, so a
    stand-in for a registered gate is judged, skipped and cached as that gate would be.
    """
    if isinstance(entry, GateSpec):
        return entry
    registered = next((s for s in GATES if s.name == entry.name), None)
    kind = type(entry)
    return _GivenGate(
        name=entry.name,
        target=f"{kind.__module__}:{kind.__qualname__}",
        summary=(entry.description.strip().splitlines() or [entry.name])[0],
        verdict=registered.verdict if registered else False,
        always=registered.always if registered else False,
        gate=entry,
    )


def _checked_before(chain: Sequence[GateSpec], name: str) -> tuple[GateSpec, ...]:
    """As ``registry.checked_before``, in ``chain``'s order."""
    index = [s.name for s in chain].index(name)
    return tuple(s for s in chain[:index] if not (s.verdict or s.always))


def _prerequisite_problem(
    before: Sequence[GateSpec], context: RunContext, inputs: dict[str, str]
) -> str | None:
    for earlier in before:
        try:
            report = context.read_report(earlier.name)
        except GateError as err:
            return f"prerequisite gate '{earlier.name}' has no report of this run ({err})"
        if report.status is not Status.PASSED:
            return f"prerequisite gate '{earlier.name}' is {report.status.value} in this run"
        if report.inputs != inputs:
            changed = sorted(
                k
                for k in inputs.keys() | report.inputs.keys()
                if inputs.get(k) != report.inputs.get(k)
            )
            return (
                f"inputs changed since gate '{earlier.name}' passed ({', '.join(changed)}); "
                "every gate of a run checks the same snapshot of the run's inputs, whichever "
                "it reads: run the chain again from the first gate"
            )
    return None


def run_gate(
    spec: GateSpec,
    context: RunContext,
    inputs: dict[str, str],
    *,
    cache: GateCache | None = None,
    before: Sequence[GateSpec] | None = None,
) -> GateResult:
    """Run one gate and return its stamped result; a crash becomes ERRORED, never PASSED.

    With a ``cache``, a gate whose key (code, packages, inputs, earlier reports) matches a
    verified entry is not run: its stored outcome is re-issued for this run, saying where it
    was reused from. The verdict and the always-run stages are never cached. ``before`` are
    the gates that must have PASSED first (default: those the registry puts before it).
    """
    started = datetime.now(UTC).isoformat(timespec="seconds")
    start = time.perf_counter()
    if before is None:
        before = checked_before(spec.name)
    problem = (
        None if spec.verdict or spec.always else _prerequisite_problem(before, context, inputs)
    )
    key: CacheKey | None = None
    if problem is not None:
        outcome = Outcome(
            status=Status.SKIPPED,
            summary=f"not run: {problem}",
            # The skipped gate is named: several gates skipped for one failure are several
            # findings, not one result listed three times in SARIF.
            findings=(Finding(rule="GATE001", message=f"{spec.name} not run: {problem}"),),
        )
    else:
        if cache is not None:
            key = cache.key(spec, inputs)
        hit = cache.lookup(spec, key) if cache is not None and key is not None else None
        if hit is not None and key is not None:
            cached, origin, saved = hit
            outcome = replace(
                cached,
                summary=f"reused from run {origin}: {cached.summary}",
                metrics={
                    **cached.metrics,
                    CACHE_METRICS_KEY: {
                        "key": key.digest,
                        "reused_from": origin,
                        "saved_seconds": saved,
                    },
                },
            )
            return _stamp(spec, context, inputs, outcome, started=started, start=start)
        snapshot = OutputSnapshot(spec, context) if key is not None else None
        outcome = _guarded(spec, context)
        if key is not None:
            outcome = replace(
                outcome, metrics={**outcome.metrics, CACHE_METRICS_KEY: {"key": key.digest}}
            )
    result = _stamp(spec, context, inputs, outcome, started=started, start=start)
    if cache is not None and key is not None and snapshot is not None:
        _store(cache, spec, key, result, written=snapshot.written())
    return result


def _stamp(
    spec: GateSpec,
    context: RunContext,
    inputs: dict[str, str],
    outcome: Outcome,
    *,
    started: str,
    start: float,
) -> GateResult:
    return GateResult(
        gate=spec.name,
        status=outcome.status,
        summary=outcome.summary,
        run_id=context.run_id,
        inputs=inputs,
        findings=outcome.findings,
        metrics=outcome.metrics,
        artifacts=outcome.artifacts,
        started=started,
        duration_seconds=time.perf_counter() - start,
    )


def _store(
    cache: GateCache, spec: GateSpec, key: CacheKey, result: GateResult, *, written: list[Path]
) -> None:
    try:
        cache.store(spec, key, result, written=written)
    except (OSError, ValueError, TypeError, ImportError, AttributeError) as err:
        # A full disk or read-only cache folder must not change the verdict of the run.
        sys.stderr.write(f"warning: gate cache: could not store '{spec.name}': {err}\n")


def _guarded(spec: GateSpec, context: RunContext) -> Outcome:
    with contextlib.suppress(OSError):  # a stale traceback of an earlier run is not this run's
        crashlog.log_path(context, spec.name).unlink()
    try:
        outcome = spec.load().run(context)
    except (GatesError, PipelineError) as err:
        return _errored(str(err))
    # Fail closed: a crash (or a gate calling sys.exit) is a verdict of "could not judge"; its
    # traceback goes to reports/<gate>.log, never to the console.
    except (Exception, SystemExit) as err:
        return crashlog.crashed(spec.name, context, err)
    if (
        outcome.status is Status.PASSED
        and outcome.findings
        and any(f.severity is Severity.ERROR for f in outcome.findings)
    ):
        return _errored("reported PASSED with error findings; refusing to trust it")
    return outcome


def _errored(message: str) -> Outcome:
    return Outcome(
        status=Status.ERRORED,
        summary=f"could not run: {message}",
        findings=(Finding(rule="GATE000", message=message),),
    )


def run_chain(
    names: Sequence[str],
    *,
    gates: Sequence[GateSpec | Gate] = GATES,
    policy: LoadedPolicy,
    reports_dir: Path,
    out: TextIO | None = None,
    on_result: Callable[[GateResult], None] | None = None,
    display: Display | None = None,
    use_cache: bool = False,
    read_cache: bool = True,
    rerun_from: str | None = None,
) -> RunSummary:
    """Run the named gates in registry order; every result is written before the next starts.

    Progress goes to ``display`` (default: plain lines on ``out``, which is standard output at
    call time when not given). ``use_cache`` turns the gate cache on (the CLI does, unless
    ``--no-cache``, ``GATES_NO_CACHE`` or ``[run].cache = false``); ``read_cache=False`` runs
    every gate but refreshes the cache. ``rerun_from`` names a gate from which on (in registry
    order) cached outcomes are not read, as ``dvc repro --force --downstream`` does: the gates
    before it may still be reused. ``gates`` is the chain, in order: registered specs or
    ``Gate`` instances (default: the registry); tests hand in stand-ins this way.
    """
    out = out if out is not None else sys.stdout
    chain = tuple(as_spec(entry) for entry in gates)
    known = tuple(spec.name for spec in chain)
    if not chain or len(set(known)) != len(known):
        msg = f"a chain needs at least one gate, each name once; got {list(known)}"
        raise GateError(msg)
    if rerun_from is not None and rerun_from not in known:
        msg = f"--rerun-from: unknown gate '{rerun_from}'; expected one of: {', '.join(known)}"
        raise GateError(msg)
    unknown = [name for name in names if name not in known]
    if unknown:
        msg = f"unknown gate '{unknown[0]}'; expected one of: {', '.join(known)}"
        raise GateError(msg)
    chosen = [spec for spec in chain if spec.name in set(names)] if names else list(chain)
    starts_chain = chosen[0].name == known[0]
    _refuse_committed_outputs(policy, reports_dir)
    run_id = resolve_run_id(reports_dir, starts_chain=starts_chain)
    reports_dir.mkdir(parents=True, exist_ok=True)
    caching = use_cache and policy.policy.run.cache and _cache_is_the_machines(policy)
    # A forced refresh (read_cache=False) trusts no digest remembered by an earlier process.
    memo: DigestMemo | None = None
    if caching:
        memo = digest_memo(cache_dir_of(policy.base_dir)) if read_cache else DigestMemo()
    inputs = input_digests(policy, partial(memo.sha256, stored=False) if memo is not None else None)
    if starts_chain:
        atomic_write_json(
            reports_dir / RUN_FILE,
            {
                "run_id": run_id,
                "started": datetime.now(UTC).isoformat(timespec="seconds"),
                "inputs": inputs,
            },
        )
    context = RunContext(policy=policy, run_id=run_id, reports_dir=reports_dir)
    cache = GateCache(context, read=read_cache, memo=memo) if caching else None
    forced = GateCache(context, read=False, memo=memo) if cache is not None else None
    first_forced = known.index(rerun_from) if rerun_from else len(known)
    if display is None:
        display = PlainDisplay(out)
    results = []
    try:
        for spec in chosen:
            display.start(spec)
            fresh = known.index(spec.name) >= first_forced
            result = run_gate(
                spec,
                context,
                inputs,
                cache=forced if fresh else cache,
                before=_checked_before(chain, spec.name),
            )
            atomic_write_json(context.report_path(spec.name), result.to_dict())
            results.append(result)
            display.finish(result)
            if on_result is not None:
                on_result(result)
    finally:
        display.close()
        if memo is not None:
            _save_memo(memo)
    return RunSummary(run_id=run_id, results=tuple(results))


def _cache_is_the_machines(policy: LoadedPolicy) -> bool:
    """Whether the gate cache folder may be used: nothing in it may come from the commit.

    Without GATES_CACHE_HMAC_KEY an entry is sealed with plain SHA-256: one the commit brings
    (a FAILED entry rewritten as PASSED) would pass for this machine's own.
    """
    planted = from_the_tree(cache_dir_of(policy.base_dir), policy.base_dir)
    if planted:
        sys.stderr.write(
            f"warning: gate cache: {cache_dir_of(policy.base_dir)} not used ({planted}): "
            "nothing in it may come from the commit; every gate runs\n"
        )
    return not planted


def _refuse_committed_outputs(policy: LoadedPolicy, reports_dir: Path) -> None:
    """GateError when git tracks a file in the reports or artifacts folder.

    Gates trust a report of this run and sign what the artifacts folder holds. A report in
    the checkout (committed with ``git add -f``) carries whatever run id its author predicted
    (CI run ids are counters: ``jenkins-<job>-<build>``, ``gitlab-<pipeline>``), so the verdict
    and every later gate would take it for the report of a gate that never ran; a file
    committed to the artifacts folder would be signed beside the model.
    """
    root = policy.base_dir
    for label, folder in (
        ("[run].reports_dir", reports_dir),
        ("[run].artifacts_dir", policy.resolve(policy.policy.run.artifacts_dir)),
    ):
        # Fail closed: a folder reached through a symlink the tree holds, or a checkout git
        # cannot read, could deliver the same files.
        reason = from_the_tree(folder, root)
        if reason is None:
            continue
        tracked = tracked_files(root, folder)
        if tracked:
            more = f" (and {len(tracked) - 1} more)" if len(tracked) > 1 else ""
            msg = (
                f"{tracked[0]}{more}: committed to the repository, in the folder {label} names; "
                "reports and artifacts are written by this run's gates, never taken from the "
                f"checkout: remove them (git rm -r --cached {Path(tracked[0]).parent.as_posix()})"
            )
        else:
            msg = (
                f"{folder}: {reason}, in the folder {label} names; reports and artifacts are "
                "written by this run's gates, never taken from the checkout"
            )
        raise GateError(msg)


def _save_memo(memo: DigestMemo) -> None:
    try:
        memo.save()
    except (OSError, ValueError, TypeError) as err:
        # Only speed is lost: the next run hashes those files again.
        sys.stderr.write(f"warning: gate cache: could not save the digest memo: {err}\n")
