"""The ``audit`` gate: pip-audit --strict over the hash-pinned lock, with a canary, fail closed.

Rules: AUD001 a locked dependency has a known vulnerability; AUD002 (warning) a vulnerability
waived in policy; AUD003 a dependency pip-audit could not audit (skipped, not found, a
hash-pinned direct reference); AUD004 a pin of the lock missing from pip-audit's report; AUD005
an expired waiver; AUD006 the local advisory snapshot is older than ``[audit].max_age_days``;
AUD007 (warning) the snapshot is over 90 days old and no max age is set; AUD008 pip-audit
reported a dependency the gate did not read from the lock (pip's reading of the lock and the
gate's disagree); AUD010 vulnerability data unavailable: the canary (a pin known to be
vulnerable) was not reported by the source.

The locks (``[audit].requirements`` and every file in ``[audit].locks``) are audited as
committed, without installing (``--disable-pip --no-deps --require-hashes``). Before pip-audit
runs, ``gates.lockfile`` reads each lock as pip would and accepts only hash-pinned
``name==version`` lines: any other line (``-r``, ``-e``, index options, an unpinned, unhashed
or duplicated requirement, an option a continued line brings in, ...) makes the gate ERRORED
naming the file and line; a hash-pinned direct reference (URL, VCS, local path) is AUD003.
pip-audit's report must then name exactly the pins read, both ways (AUD004, AUD008).
pip-audit silently skips pins whose environment marker is false on this interpreter; the gate
audits those pins too, in a second run beside the canary, so that every line is audited here.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, ClassVar

from gates._tools import keep_raw, parse_json, report_artifacts, run_module
from gates.base import (
    Finding,
    Gate,
    GateError,
    Location,
    Outcome,
    Reads,
    RunContext,
    Severity,
)
from gates.lockfile import Lock, LockLine, Pin, read_lock
from pipeline.config import AuditPolicy

ADVISORY_DB_ENV = "GATES_ADVISORY_DB"
# pip-audit: 0 no vulnerability, 1 vulnerabilities found or the audit failed (--strict makes a
# skipped dependency fail the whole audit, with no JSON written).
_KNOWN_EXIT = (0, 1)
# Without a max age in policy, an older snapshot still passes but the report warns about it.
_STALE_DAYS = 90
# The lock nox's env session and CI install (noxfile.LOCK, gates.ci.interface.INSTALL), whose
# digest the attestation records (gates.artifacts.DEPENDENCY_LOCK): always among those audited.
INSTALLED_LOCK = "requirements.lock"
# With --strict, a dependency pip-audit skips aborts the run: "ERROR:pip_audit._cli:NAME: REASON".
_FATAL = re.compile(r"^ERROR:pip_audit\._cli:(?P<name>[^:\s]+): (?P<reason>.+)$", re.M)


@dataclass(frozen=True)
class Source:
    """Where vulnerability data comes from: pip-audit's online service or a local snapshot."""

    kind: str  # "online" or "local"
    path: Path | None = None
    origin: str = ""
    # The local snapshot [audit].advisory_db names when it was not there (the online fallback).
    missing: Path | None = None

    def describe(self) -> str:
        """For messages: which source, chosen how."""
        if self.path is None:
            return "pip-audit's online service (PyPI)"
        return f"local advisory snapshot {self.path} ({self.origin})"


def read_pins(path: Path, *, key: str = "[audit].requirements") -> list[Pin]:
    """The pins of a hash-pinned lock; any line that is not one is a GateError naming it."""
    lock = _read_lock(path, path.name, key=key)
    _refuse_problems([lock])
    return list(lock.pins)


def _read_lock(path: Path, shown: str, *, key: str) -> Lock:
    try:
        return read_lock(path, shown)
    except FileNotFoundError:
        msg = f"{path}: lock file named by {key} not found"
        raise GateError(msg) from None
    except OSError as err:
        msg = f"{path}: cannot read the lock named by {key} ({err.strerror or err})"
        raise GateError(msg) from None


# At most this many bad lines are spelled out in the error; the rest are counted.
_SHOWN_PROBLEMS = 10


def _refuse_problems(locks: list[Lock]) -> None:
    """A lock line that is not a hash-pinned pin: the audit cannot judge the lock as committed."""
    problems = [p.describe(lock.shown) for lock in locks for p in lock.problems]
    if not problems:
        return
    listed = "; ".join(problems[:_SHOWN_PROBLEMS])
    more = len(problems) - _SHOWN_PROBLEMS
    tail = f"; and {more} more" if more > 0 else ""
    count = f" ({len(problems)} lines are not hash-pinned name==version pins)"
    raise GateError(f"{listed}{tail}{count if len(problems) > 1 else ''}")


def choose_source(context: RunContext) -> Source:
    """``GATES_ADVISORY_DB`` wins; else ``[audit].advisory_db`` when it exists; else online."""
    audit = context.policy.policy.audit
    from_env = os.environ.get(ADVISORY_DB_ENV, "").strip()
    if from_env:
        path = Path(from_env)
        if not path.is_dir():
            msg = f"{ADVISORY_DB_ENV}={from_env}: not a directory (unset it to use the policy's source)"
            raise GateError(msg)
        return Source("local", path, f"from {ADVISORY_DB_ENV}")
    if audit.advisory_db is not None:
        path = context.policy.resolve(audit.advisory_db)
        if path.is_dir():
            return Source("local", path, "from [audit].advisory_db")
        if audit.require_advisory_db:
            msg = (
                f"{path}: advisory snapshot named by [audit].advisory_db not found, and "
                "[audit].require_advisory_db = true forbids falling back to the online service"
            )
            raise GateError(msg)
        return Source("online", missing=path)
    return Source("online")


@contextmanager
def _service_args(source: Source) -> Iterator[tuple[list[str], dict[str, Any]]]:
    if source.path is None:
        yield [], {}
        return
    from gates.osv_server import AdvisoryDb, AdvisoryDbError, serve  # noqa: PLC0415

    try:
        db = AdvisoryDb(source.path)
        snapshot = db.snapshot()
    except (AdvisoryDbError, OSError) as err:
        raise GateError(str(err)) from None
    info: dict[str, Any] = {
        "records": snapshot.records,
        "snapshot_date": snapshot.newest_modified.date().isoformat()
        if snapshot.newest_modified
        else None,
    }
    with serve(db) as url:
        info["osv_url"] = url
        try:
            yield ["--vulnerability-service", "osv", "--osv-url", url], info
        except GateError as err:
            if not db.errors:
                raise
            # pip-audit says only "500 Server Error"; the server knows which record and why.
            msg = f"{err}; the offline OSV server could not answer: {db.errors[0]}"
            raise GateError(msg) from None


def _rounds(pins: list[Pin]) -> list[list[Pin]]:
    # pip-audit rejects two pins of one name in one run; spread them over as many runs as needed.
    rounds: list[list[Pin]] = []
    for pin in pins:
        for batch in rounds:
            if all(p.canonical != pin.canonical for p in batch):
                batch.append(pin)
                break
        else:
            rounds.append([pin])
    return rounds


@dataclass(frozen=True)
class AuditRun:
    """One pip-audit invocation: what it was asked to audit and what it said."""

    label: str
    expected: tuple[Pin, ...]
    dependencies: tuple[dict[str, Any], ...]
    not_audited: tuple[tuple[str, str], ...]  # (name, reason) from a --strict abort
    lock: str = ""  # the lock file it read as committed ("" for a file the gate wrote)


def _pip_audit(
    context: RunContext,
    *,
    label: str,
    requirements: Path,
    expected: list[Pin],
    hashed: bool,
    service: list[str],
    workdir: Path,
    lock: str = "",
) -> AuditRun:
    audit = context.policy.policy.audit
    out = workdir / f"{label}.json"
    args = [
        "--strict",
        "--disable-pip",
        "--no-deps",
        "-r",
        str(requirements),
        "--format",
        "json",
        "--output",
        str(out),
        "--progress-spinner",
        "off",
        "--desc",
        "on",
        "--aliases",
        "on",
        "--cache-dir",
        str(workdir / "cache"),
        "--timeout",
        str(min(audit.timeout_seconds, 60)),
        *service,
    ]
    if hashed:
        args.append("--require-hashes")
    # Its working folder is the gate's own: nothing of the tree is on hand (paths are absolute).
    run = run_module("pip_audit", *args, cwd=workdir, timeout=audit.timeout_seconds)
    raw = out.read_text(encoding="utf-8") if out.is_file() else ""
    keep_raw(context.reports_dir / f"audit.pip-audit.{label}.json", raw)
    if run.returncode not in _KNOWN_EXIT:
        msg = f"pip-audit ({label}) exited {run.returncode}, an unknown exit code: {run.tail()}"
        raise GateError(msg)
    if not raw:
        names = {p.canonical for p in expected} | {p.name for p in expected}
        skipped = tuple(
            (m["name"], m["reason"].strip())
            for m in _FATAL.finditer(run.stderr)
            if m["name"] in names or _canonical(m["name"]) in names
        )
        if run.returncode == 1 and skipped:
            return AuditRun(label, tuple(expected), (), skipped, lock)
        msg = f"pip-audit ({label}) exited {run.returncode} without a report: {run.tail()}"
        raise GateError(msg)
    data = parse_json(raw, tool=f"pip-audit ({label})")
    dependencies = data.get("dependencies") if isinstance(data, dict) else None
    if not isinstance(dependencies, list) or not dependencies:
        msg = f"pip-audit ({label}) report is empty or malformed: {raw[:200]!r}"
        raise GateError(msg)
    if not all(isinstance(d, dict) and "name" in d for d in dependencies):
        msg = f"pip-audit ({label}) report has a dependency without a name: {raw[:200]!r}"
        raise GateError(msg)
    vulnerable = any(d.get("vulns") for d in dependencies)
    if run.returncode == 1 and not vulnerable:
        msg = f"pip-audit ({label}) exited 1 but reported no vulnerability: {run.tail()}"
        raise GateError(msg)
    if run.returncode == 0 and vulnerable:
        msg = f"pip-audit ({label}) exited 0 but reported vulnerabilities; refusing to trust it"
        raise GateError(msg)
    return AuditRun(label, tuple(expected), tuple(dependencies), (), lock)


def _write_requirements(path: Path, pins: list[Pin]) -> None:
    # Markers are dropped on purpose: these pins are audited whatever this interpreter is.
    path.write_text("".join(f"{p.name}=={p.version}\n" for p in pins), encoding="utf-8")


class AuditGate(Gate):
    """pip-audit --strict finds no unwaived vulnerability in the lock, and the canary is seen."""

    name: ClassVar[str] = "audit"
    description: ClassVar[str] = __doc__ or ""

    def reads(self, context: RunContext) -> Reads:
        """Every lock, the whole advisory snapshot and today's date (UTC); no data.

        Today's date counts because waiver expiry and snapshot age are judged against it, so a
        reuse is what a fresh run would say. The online service changes under us with no
        digest to take: against it the gate is not reusable and always runs.
        """
        audit = context.policy.policy.audit
        locks = tuple(context.policy.resolve(n) for n in (audit.requirements, *audit.locks))
        source = choose_source(context)
        if source.path is None:
            return Reads(data=False, files=locks, external={"source": "online"}, reusable=False)
        return Reads(
            data=False,
            files=(*locks, source.path.resolve()),
            external={"today": datetime.now(UTC).date().isoformat()},
        )

    def run(self, context: RunContext) -> Outcome:
        """Read the locks, run pip-audit over them and the canary, judge the results."""
        audit = context.policy.policy.audit
        locks = _locks(context)
        _refuse_problems(locks)
        direct = [(lock, d) for lock in locks for d in lock.direct]
        if direct:
            return _not_auditable(direct, audit)
        canary_name, _, canary_version = audit.canary.partition("==")
        canary = Pin(canary_name, canary_version, None, (), 0)
        active = {lock.shown: [p for p in lock.pins if _applies(p, lock)] for lock in locks}
        inactive = [p for lock in locks for p in lock.pins if p not in active[lock.shown]]
        source = choose_source(context)
        with (
            tempfile.TemporaryDirectory(prefix="gates-audit-") as tmp,
            _service_args(source) as (service, info),
        ):
            workdir = Path(tmp)
            jobs: list[dict[str, Any]] = [
                {
                    "label": "lock" if number == 0 else f"lock{number + 1}",
                    "requirements": lock.path,
                    "expected": active[lock.shown],
                    "hashed": True,
                    "lock": lock.shown,
                }
                for number, lock in enumerate(locks)
                # A lock whose every marker is false here is audited in the runs below only.
                if active[lock.shown]
            ]
            for number, batch in enumerate(_rounds([canary, *inactive])):
                label = "canary" if number == 0 else f"extra{number}"
                extra = workdir / f"{label}.txt"
                _write_requirements(extra, batch)
                jobs.append(
                    {"label": label, "requirements": extra, "expected": batch, "hashed": False}
                )
            # The runs are independent subprocesses: run them side by side (pip-audit spends
            # most of its time starting up), and collect them in job order.
            with ThreadPoolExecutor(max_workers=min(len(jobs), 4)) as pool:
                futures = [
                    pool.submit(_pip_audit, context, service=service, workdir=workdir, **job)
                    for job in jobs
                ]
                try:
                    runs = [future.result() for future in futures]
                except GateError as err:
                    if source.missing is None:
                        raise
                    # Say first why the online service was asked at all.
                    msg = f"{_missing_first(source.missing)}{err}"
                    raise GateError(msg) from err
        return _judge(context, audit, source=source, info=info, runs=runs, locks=locks)


def _locks(context: RunContext) -> list[Lock]:
    """``[audit].requirements`` and every ``[audit].locks`` file, read and checked line by line.

    The lock that is installed must be among them: a policy naming a clean decoy instead would
    have the audit judge one file while nox and CI install another.
    """
    audit = context.policy.policy.audit
    named = [(audit.requirements, "[audit].requirements")]
    named += [(name, "[audit].locks") for name in audit.locks]
    # Absolute: pip-audit runs in a folder of its own.
    paths = [context.policy.resolve(name).absolute() for name, _ in named]
    installed = context.policy.base_dir / INSTALLED_LOCK
    if installed.is_file() and installed.resolve() not in {p.resolve() for p in paths}:
        msg = (
            f"{INSTALLED_LOCK}: nox and CI install this lock, but the audit reads "
            f"{', '.join(name for name, _ in named)} ([audit].requirements, [audit].locks): "
            f"name {INSTALLED_LOCK} there, or the audit judges another file than the one installed"
        )
        raise GateError(msg)
    return [_read_lock(path, name, key=key) for path, (name, key) in zip(paths, named, strict=True)]


def _applies(pin: Pin, lock: Lock) -> bool:
    """Whether the pin's marker holds on this interpreter (pip-audit audits only those)."""
    from packaging.markers import Marker  # noqa: PLC0415

    if pin.marker is None:
        return True
    try:
        return bool(Marker(pin.marker).evaluate())
    except Exception as err:  # packaging raises several types on markers it cannot evaluate
        msg = f"{lock.shown}:{pin.line}: cannot evaluate the marker {pin.marker!r} ({err})"
        raise GateError(msg) from None


def _not_auditable(direct: list[tuple[Lock, LockLine]], audit: AuditPolicy) -> Outcome:
    """AUD003 for every hash-pinned direct reference; pip-audit is not run."""
    findings = [
        Finding(
            rule="AUD003",
            message=f"{line.describe(lock.shown)}; it is not audited, so the lock is not",
            location=Location(path=lock.shown, line=line.line),
            observed="not audited",
            threshold="every pin audited",
            policy_key="[audit].requirements"
            if lock.shown == audit.requirements
            else "[audit].locks",
        )
        for lock, line in direct
    ]
    return Outcome.judge(
        findings,
        passed="",
        failed="{n} lock line(s) cannot be audited: {first}",
        metrics={"not_audited": [f"{lock.shown}:{line.line}" for lock, line in direct]},
    )


def _run_findings(
    run: AuditRun, *, audit: AuditPolicy, source: Source, today: date
) -> tuple[list[Finding], int, bool]:
    """What one pip-audit run says: findings, pins audited, whether the canary was reported.

    Its report is compared with what it was asked, both ways: a pin it did not report on is
    AUD004, a dependency it reported that the gate did not read from the lock is AUD008.
    """
    findings: list[Finding] = []
    audited, canary_seen = 0, False
    for name, reason in run.not_audited:
        findings.append(
            Finding(
                rule="AUD003",
                message=f"{run.lock or 'the audit'}: {name}: {reason} ({source.describe()})",
                location=Location(path=run.lock or None),
                observed="not audited",
                threshold="every pin audited",
                policy_key="[audit].advisory_db",
            )
        )
    reported = {_identity(d["name"], d.get("version", "")): d for d in run.dependencies}
    expected = {_identity(p.name, p.version): p for p in run.expected}
    for key, dep in reported.items():
        if key not in expected:
            findings.append(
                Finding(
                    rule="AUD008",
                    message=f"{run.lock or 'the audit'}: pip-audit reported {dep['name']}=="
                    f"{dep.get('version', '?')}, which the gate did not read from the lock: "
                    "pip and the gate read the lock differently",
                    location=Location(path=run.lock or None),
                    observed=f"{dep['name']}=={dep.get('version', '?')}",
                    threshold="exactly the pins of the lock",
                    policy_key="[audit].requirements",
                )
            )
    for key, pin in expected.items():
        where = f"{pin.lock}:{pin.line}: " if pin.line else ""
        location = Location(path=pin.lock or None, line=pin.line or None)
        if key not in reported:
            if not run.not_audited:
                findings.append(
                    Finding(
                        rule="AUD004",
                        message=f"{where}{pin.name}=={pin.version}: missing from pip-audit's report",
                        location=location,
                        observed="absent",
                        threshold="every pin audited",
                        policy_key="[audit].requirements",
                    )
                )
            continue
        dep = reported[key]
        if "skip_reason" in dep:
            findings.append(
                Finding(
                    rule="AUD003",
                    message=f"{where}{pin.name}=={pin.version}: not audited: {dep['skip_reason']}",
                    location=location,
                    observed="skipped",
                    threshold="every pin audited",
                    policy_key="[audit].advisory_db",
                )
            )
            continue
        vulns = dep.get("vulns") or []
        if pin.line == 0:  # the canary
            ids = {str(i) for v in vulns for i in [v.get("id"), *(v.get("aliases") or [])]}
            canary_seen = audit.canary_id in ids
            continue
        audited += 1
        findings += _vuln_findings(pin, vulns, audit=audit, today=today)
    return findings, audited, canary_seen


def _identity(name: str, version: str) -> tuple[str, str]:
    """A dependency as pip-audit names it: canonical name, normalized version where it parses."""
    from packaging.version import InvalidVersion, Version  # noqa: PLC0415

    try:
        normal = str(Version(str(version)))
    except InvalidVersion:
        normal = str(version)
    return _canonical(str(name)), normal


def _judge(
    context: RunContext,
    audit: AuditPolicy,
    *,
    source: Source,
    info: dict[str, Any],
    runs: list[AuditRun],
    locks: list[Lock],
) -> Outcome:
    today = datetime.now(UTC).date()
    findings: list[Finding] = []
    canary_name, _, canary_version = audit.canary.partition("==")
    canary_seen = False
    audited = 0
    for run in runs:
        found, count, seen = _run_findings(run, audit=audit, source=source, today=today)
        findings += found
        audited += count
        canary_seen = canary_seen or seen
    if not canary_seen:
        findings.append(
            Finding(
                rule="AUD010",
                message=f"vulnerability data unavailable: {source.describe()} did not report "
                f"the canary {canary_name}=={canary_version} as {audit.canary_id}; "
                "no result of this audit can be trusted",
                observed="canary not reported",
                threshold=f"{audit.canary_id} reported",
                policy_key="[audit].advisory_db",
            )
        )
    for waiver in audit.waivers:
        if waiver.expires < today:
            findings.append(
                Finding(
                    rule="AUD005",
                    message=f"waiver for {waiver.id} expired on {waiver.expires.isoformat()} "
                    f"({waiver.reason}); fix the dependency or renew the waiver with a new reason",
                    observed=waiver.expires.isoformat(),
                    threshold=f">= {today.isoformat()}",
                    policy_key="[[audit.waivers]].expires",
                )
            )
    metrics: dict[str, Any] = {
        "source": source.kind,
        "source_detail": source.describe(),
        "lock": audit.requirements,
        "locks": [lock.shown for lock in locks],
        "pins": sum(len(lock.pins) for lock in locks),
        "audited": audited,
        "canary": audit.canary,
        "canary_reported": canary_seen,
        "vulnerabilities": sum(1 for f in findings if f.rule in ("AUD001", "AUD002")),
        "waived": [f.observed for f in findings if f.rule == "AUD002"],
    }
    if source.path is not None:
        snapshot_date = info.get("snapshot_date")
        metrics.update(
            advisory_db=str(source.path),
            advisory_records=info.get("records"),
            snapshot_date=snapshot_date,
        )
        if snapshot_date is not None:
            age = (today - date.fromisoformat(snapshot_date)).days
            metrics["snapshot_age_days"] = age
            if audit.max_age_days is None and age > _STALE_DAYS:
                findings.append(
                    Finding(
                        rule="AUD007",
                        message=f"advisory snapshot {source.path} is {age} days old (newest "
                        f"record {snapshot_date}): vulnerabilities published since are not seen",
                        severity=Severity.WARNING,
                        observed=f"{age} days",
                        threshold=f"<= {_STALE_DAYS} days (advice; set max_age_days to enforce)",
                        policy_key="[audit].max_age_days",
                    )
                )
            if audit.max_age_days is not None and age > audit.max_age_days:
                findings.append(
                    Finding(
                        rule="AUD006",
                        message=f"advisory snapshot {source.path} is {age} days old "
                        f"(newest record {snapshot_date}), more than {audit.max_age_days}",
                        observed=f"{age} days",
                        threshold=f"<= {audit.max_age_days} days",
                        policy_key="[audit].max_age_days",
                    )
                )
        elif audit.max_age_days is not None:
            findings.append(
                Finding(
                    rule="AUD006",
                    message=f"advisory snapshot {source.path} has no dated record, so its age "
                    "cannot be checked",
                    observed="unknown",
                    threshold=f"<= {audit.max_age_days} days",
                    policy_key="[audit].max_age_days",
                )
            )
    dated = f" of {metrics.get('snapshot_date')}" if source.path is not None else ""
    # A missing local snapshot is said first: every later line is about the online fallback.
    first = ""
    if source.missing is not None:
        first = _missing_first(source.missing)
        metrics["advisory_db_missing"] = str(source.missing)
        findings.insert(
            0,
            Finding(
                rule="AUD011",
                message=first.removesuffix(": ")
                + " (set [audit].require_advisory_db = true to make this an error)",
                severity=Severity.WARNING,
                observed="not found",
                threshold="the folder exists",
                policy_key="[audit].advisory_db",
            ),
        )
    return Outcome.judge(
        findings,
        passed=f"{first}{audited} locked pin(s) of "
        f"{', '.join(Path(k.shown).name for k in locks)} audited against "
        f"{source.kind} data{dated}: no unwaived vulnerability; canary seen",
        failed=first.replace("{", "{{").replace("}", "}}") + "{n} audit finding(s): {first}",
        metrics=metrics,
        artifacts=report_artifacts(context, *(f"audit.pip-audit.{r.label}.json" for r in runs)),
    )


def _missing_first(path: Path) -> str:
    return (
        f"local advisory snapshot {path} ([audit].advisory_db) not found, audited with "
        "pip-audit's online service instead: "
    )


def _vuln_findings(
    pin: Pin, vulns: list[dict[str, Any]], *, audit: AuditPolicy, today: date
) -> list[Finding]:
    findings = []
    lock = pin.lock or None
    for vuln in vulns:
        ids = [str(vuln.get("id")), *(str(a) for a in vuln.get("aliases") or [])]
        fixes = ", ".join(str(v) for v in vuln.get("fix_versions") or []) or "none"
        waiver = next((w for w in audit.waivers if w.id in ids), None)
        where = Location(path=lock, line=pin.line or None)
        aka = f"aka {', '.join(ids[1:])}; " if len(ids) > 1 else ""
        at = f"{pin.lock}:{pin.line}: " if pin.lock and pin.line else ""
        what = f"{at}{pin.name}=={pin.version}: {ids[0]} ({aka}fixed in {fixes})"
        if waiver is not None and waiver.expires >= today:
            findings.append(
                Finding(
                    rule="AUD002",
                    message=f"{what} waived until {waiver.expires.isoformat()}: {waiver.reason}",
                    severity=Severity.WARNING,
                    location=where,
                    observed=ids[0],
                    threshold=f"waiver expires {waiver.expires.isoformat()}",
                    policy_key="[[audit.waivers]]",
                )
            )
            continue
        findings.append(
            Finding(
                rule="AUD001",
                message=f"{what}: {str(vuln.get('description', ''))[:160]}".rstrip(": "),
                location=where,
                observed=ids[0],
                threshold="no known vulnerability",
                policy_key="[[audit.waivers]]",
            )
        )
    return findings


def _canonical(name: str) -> str:
    from packaging.utils import canonicalize_name  # noqa: PLC0415

    return str(canonicalize_name(name))
