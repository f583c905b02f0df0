"""The ``audit`` gate: pip-audit --strict over the hash-pinned lock, with a canary, fail closed.

Rules: AUD001 a locked dependency has a known vulnerability; AUD002 (warning) a vulnerability
waived in policy; AUD003 a dependency pip-audit could not audit (skipped, not found); AUD004 a
pin of the lock missing from pip-audit's report; AUD005 an expired waiver; AUD006 the local
advisory snapshot is older than ``[audit].max_age_days``; AUD007 (warning) the snapshot is over 90
days old and no max age is set; AUD010 vulnerability data
unavailable: the canary (a pin known to be vulnerable) was not reported by the source.

The lock is audited as committed, without installing (``--disable-pip --no-deps
--require-hashes``). pip-audit silently skips pins whose environment marker is false on this
interpreter; the gate audits those pins too, in a second run beside the canary, so that every
line of the lock is audited here.
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

from gates._tools import keep_raw, parse_json, report_artifacts, run_module, tree_digest
from gates.base import Finding, Gate, GateError, Location, Outcome, RunContext, Severity
from pipeline.config import AuditPolicy

ADVISORY_DB_ENV = "GATES_ADVISORY_DB"
# pip-audit: 0 no vulnerability, 1 vulnerabilities found or the audit failed (--strict makes a
# skipped dependency fail the whole audit, with no JSON written).
_KNOWN_EXIT = (0, 1)
# Without a max age in policy, an older snapshot still passes but the report warns about it.
_STALE_DAYS = 90
# With --strict, a dependency pip-audit skips aborts the run: "ERROR:pip_audit._cli:NAME: REASON".
_FATAL = re.compile(r"^ERROR:pip_audit\._cli:(?P<name>[^:\s]+): (?P<reason>.+)$", re.M)


@dataclass(frozen=True)
class Pin:
    """One ``name==version`` line of a requirements file, with its marker and hashes."""

    name: str
    version: str
    marker: str | None
    hashes: tuple[str, ...]
    line: int

    @property
    def canonical(self) -> str:
        """The PEP 503 name pip-audit reports."""
        from packaging.utils import canonicalize_name  # noqa: PLC0415

        return str(canonicalize_name(self.name))


@dataclass(frozen=True)
class Source:
    """Where vulnerability data comes from: pip-audit's online service or a local snapshot."""

    kind: str  # "online" or "local"
    path: Path | None = None
    origin: str = ""

    def describe(self) -> str:
        """For messages: which source, chosen how."""
        if self.path is None:
            return "pip-audit's online service (PyPI)"
        return f"local advisory snapshot {self.path} ({self.origin})"


def read_pins(path: Path) -> list[Pin]:
    """Parse a hash-pinned requirements file; anything unpinned or unparsable is a GateError."""
    from pip_requirements_parser import RequirementsFile  # noqa: PLC0415 - ships with pip-audit

    try:
        parsed = RequirementsFile.from_file(str(path))
    except FileNotFoundError:
        msg = f"{path}: lock file named by [audit].requirements not found"
        raise GateError(msg) from None
    except Exception as err:  # the parser raises several types on bad input
        msg = f"{path}: cannot parse the lock ({type(err).__name__}: {err})"
        raise GateError(msg) from None
    if parsed.invalid_lines:
        bad = parsed.invalid_lines[0]
        msg = f"{path}:{bad.line_number}: invalid requirement line: {bad.error_message}"
        raise GateError(msg)
    pins = []
    for req in parsed.requirements:
        spec = str(req.specifier or "")
        if req.req is not None and req.is_url:
            # pip-audit cannot audit a URL requirement; it is kept so that the skip shows.
            spec = "==(url)"
        elif req.req is None or not spec.startswith("==") or "," in spec or "*" in spec:
            msg = f"{path}:{req.line_number}: '{req.dumps()}' is not pinned to one exact version"
            raise GateError(msg)
        pins.append(
            Pin(
                name=str(req.name),
                version=spec.removeprefix("=="),
                marker=str(req.marker) if req.marker is not None else None,
                hashes=tuple(str(h) for h in req.hash_options),
                line=int(req.line_number or 0),
            )
        )
    if not pins:
        msg = f"{path}: the lock pins nothing; an empty audit is not a pass"
        raise GateError(msg)
    return pins


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


def _pip_audit(
    context: RunContext,
    *,
    label: str,
    requirements: Path,
    expected: list[Pin],
    hashed: bool,
    service: list[str],
    workdir: Path,
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
    run = run_module("pip_audit", *args, cwd=context.root, timeout=audit.timeout_seconds)
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
            return AuditRun(label, tuple(expected), (), skipped)
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
    return AuditRun(label, tuple(expected), tuple(dependencies), ())


def _write_requirements(path: Path, pins: list[Pin]) -> None:
    # Markers are dropped on purpose: these pins are audited whatever this interpreter is.
    path.write_text("".join(f"{p.name}=={p.version}\n" for p in pins), encoding="utf-8")


class AuditGate(Gate):
    """pip-audit --strict finds no unwaived vulnerability in the lock, and the canary is seen."""

    name: ClassVar[str] = "audit"
    description: ClassVar[str] = __doc__ or ""
    # pip-audit reads the lock (an input digest) and vulnerability data, nothing of the data.
    # A local snapshot is digested whole and today's date is part of the key (waiver expiry
    # and snapshot age are judged against it), so a reuse is what a fresh run would say. The
    # online service changes under us with no digest to take: then the gate always runs.
    reads_data: ClassVar[bool] = False

    def cacheable_in(self, context: RunContext) -> bool:
        """Only with a local advisory snapshot; never against the live service."""
        return choose_source(context).path is not None

    def cache_key(self, context: RunContext) -> dict[str, str]:
        """The snapshot's folder and content digest, and today's date (UTC)."""
        source = choose_source(context)
        if source.path is None:
            # cacheable_in refuses the online source; a key naming it can never match a
            # stored local one.
            return {"source": "online"}
        return {
            "source": str(source.path.resolve()),
            "snapshot": tree_digest(source.path, ["."], context.file_sha256),
            "today": datetime.now(UTC).date().isoformat(),
        }

    def run(self, context: RunContext) -> Outcome:
        """Choose the source, run pip-audit over the lock and the canary, judge the results."""
        from packaging.markers import Marker  # noqa: PLC0415

        audit = context.policy.policy.audit
        lock = context.policy.resolve(audit.requirements)
        pins = read_pins(lock)
        if any(not p.hashes for p in pins):
            bare = next(p for p in pins if not p.hashes)
            msg = f"{lock}:{bare.line}: {bare.name}=={bare.version} has no --hash; the lock must be hash-pinned"
            raise GateError(msg)
        canary_name, _, canary_version = audit.canary.partition("==")
        canary = Pin(canary_name, canary_version, None, (), 0)
        active = [p for p in pins if p.marker is None or Marker(p.marker).evaluate()]
        inactive = [p for p in pins if p not in active]
        source = choose_source(context)
        with (
            tempfile.TemporaryDirectory(prefix="gates-audit-") as tmp,
            _service_args(source) as (service, info),
        ):
            workdir = Path(tmp)
            jobs: list[dict[str, Any]] = [
                {"label": "lock", "requirements": lock, "expected": active, "hashed": True}
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
                runs = [future.result() for future in futures]
        return _judge(context, audit, source=source, info=info, runs=runs, lock=lock)


def _judge(  # noqa: PLR0912 - one checklist
    context: RunContext,
    audit: AuditPolicy,
    *,
    source: Source,
    info: dict[str, Any],
    runs: list[AuditRun],
    lock: Path,
) -> Outcome:
    shown_lock = audit.requirements
    today = datetime.now(UTC).date()
    findings: list[Finding] = []
    canary_name, _, canary_version = audit.canary.partition("==")
    canary_seen = False
    audited = 0
    for run in runs:
        for name, reason in run.not_audited:
            findings.append(
                Finding(
                    rule="AUD003",
                    message=f"{name}: {reason} ({source.describe()})",
                    location=Location(path=shown_lock),
                    observed="not audited",
                    threshold="every pin audited",
                    policy_key="[audit].advisory_db",
                )
            )
        reported = {(_canonical(d["name"]), str(d.get("version", ""))): d for d in run.dependencies}
        for pin in run.expected:
            dep = reported.get((pin.canonical, pin.version))
            if dep is None:
                if not run.not_audited:
                    findings.append(
                        Finding(
                            rule="AUD004",
                            message=f"{pin.name}=={pin.version}: missing from pip-audit's report",
                            location=Location(path=shown_lock, line=pin.line or None),
                            observed="absent",
                            threshold="every pin audited",
                            policy_key="[audit].requirements",
                        )
                    )
                continue
            if "skip_reason" in dep:
                findings.append(
                    Finding(
                        rule="AUD003",
                        message=f"{pin.name}=={pin.version}: not audited: {dep['skip_reason']}",
                        location=Location(path=shown_lock, line=pin.line or None),
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
            findings += _vuln_findings(pin, vulns, audit=audit, today=today, lock=shown_lock)
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
        "lock": shown_lock,
        "pins": sum(len([p for p in r.expected if p.line]) for r in runs),
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
    return Outcome.judge(
        findings,
        passed=f"{audited} locked pin(s) of {lock.name} audited against "
        f"{source.kind} data{dated}: no unwaived vulnerability; canary seen",
        failed="{n} audit finding(s): {first}",
        metrics=metrics,
        artifacts=report_artifacts(context, *(f"audit.pip-audit.{r.label}.json" for r in runs)),
    )


def _vuln_findings(
    pin: Pin, vulns: list[dict[str, Any]], *, audit: AuditPolicy, today: date, lock: str
) -> list[Finding]:
    findings = []
    for vuln in vulns:
        ids = [str(vuln.get("id")), *(str(a) for a in vuln.get("aliases") or [])]
        fixes = ", ".join(str(v) for v in vuln.get("fix_versions") or []) or "none"
        waiver = next((w for w in audit.waivers if w.id in ids), None)
        where = Location(path=lock, line=pin.line or None)
        aka = f"aka {', '.join(ids[1:])}; " if len(ids) > 1 else ""
        what = f"{pin.name}=={pin.version}: {ids[0]} ({aka}fixed in {fixes})"
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
