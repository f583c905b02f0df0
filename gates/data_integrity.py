"""The ``data`` gate: the approved lock, the contract, and layered poisoning checks.

Rules: DATA000 unreadable, too large or wrong-format file; DATA001 lock digest; DATA002
checksums file; DATA010 missing column; DATA011 undeclared column; DATA012 wrong dtype; DATA013
null; DATA014 infinite; DATA015 below min; DATA016 above max; DATA017 category not allowed;
DATA018 duplicate in a unique column; DATA020 label missing or outside the classes; DATA021 a
declared class has fewer than 3 rows; DATA030 row count outside bounds; DATA040 the lock has no reference
profile; DATA041 column drift (PSI) above max_psi; DATA042 class-balance shift; DATA043 a class's
mean vector moved from the approved profile's (Hotelling T^2 with the approved covariance); DATA050 exact
duplicate rows; DATA051 equal features with different labels; DATA052 near-duplicate rows
(another row within the bursts radius, exact copies included); DATA053 such near copies whose
twin has another label (judged like DATA051, against max_conflict_share); DATA060 values beyond the reference
range plus margin; DATA070 label issues (cleanlab + kNN); DATA080 off-manifold rows
(IsolationForest); DATA090 (a note) the streaming path fitted labels and isolation on a
sample (and scored every row) and screened associations and bursts on it. Batch setting (rows
not approved, screened against approved rows): DATA100 label disagreement, DATA101
class-conditional density, DATA102 label associations, DATA103 bursts, DATA104
class-conditional mean shift, DATA105 negative impact, DATA106 (a note) where the approved rows
came from, DATA107 class-conditional joint (Hotelling) shift, DATA108 near copies of approved
or new rows. Whole table: DATA071 label associations, DATA072 bursts. Every flagged row is
listed in ``reports/data.flagged.csv``.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

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
from pipeline.errors import DataError, PipelineError
from pipeline.fsio import atomic_write_json, atomic_write_text, sha256_bytes, sha256_file

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd

    from pipeline.config import BatchCheck, DataPolicy, LoadedPolicy
    from pipeline.data import Violation
    from pipeline.poison import Screening
    from pipeline.profile import DataProfile
    from pipeline.targeted import BatchScreening

FLAGGED_FILE = "data.flagged.csv"
# A cell a spreadsheet runs as a formula when it starts with one of these (OWASP, "CSV Injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
QUARANTINE_FILE = "data.quarantine.json"

# check name in Flags -> (rule, what, policy key of its max share, attribute path)
_ROW_CHECKS: dict[str, tuple[str, str, str]] = {
    "duplicate": ("DATA050", "exact duplicate rows", "duplicates.max_exact_share"),
    "near_duplicate": (
        "DATA052",
        "near-duplicate rows (another row within the bursts radius, exact copies included)",
        "duplicates.max_near_share",
    ),
    "conflicting_labels": (
        "DATA051",
        "rows with equal features but different labels",
        "duplicates.max_conflict_share",
    ),
    "near_conflict": (
        "DATA053",
        "near copies of a row with another label (within the bursts radius, exact conflicts included)",
        "duplicates.max_conflict_share",
    ),
    "range": ("DATA060", "rows beyond the reference range plus margin", "range.max_share"),
    "label": ("DATA070", "rows with likely wrong labels (cleanlab + kNN)", "labels.max_share"),
    "isolation": ("DATA080", "off-manifold rows (IsolationForest)", "isolation.max_share"),
    "association": (
        "DATA071",
        "rows in a feature-value combination over-represented for one label",
        "association.max_share",
    ),
    "burst": ("DATA072", "rows in a burst of near-duplicates", "bursts.max_share"),
    "batch_association": (
        "DATA102",
        "new rows in a feature-value combination over-represented for one label vs the approved rows",
        "association.max_share",
    ),
    "batch_burst": ("DATA103", "new rows in a burst of near-duplicates", "bursts.max_share"),
    "batch_near_duplicate": (
        "DATA108",
        "new rows within the bursts radius of an approved or another new row",
        "duplicates.max_near_share",
    ),
}
# Batch checks judged by a rate test against the approved rows (not by a max share).
_RATE_CHECKS: dict[str, tuple[str, str]] = {
    "batch_label": ("DATA100", "new rows whose label the approved rows contradict"),
    "batch_density": ("DATA101", "new rows far from the approved rows of their class"),
}
# Where the approved rows come from: a lock the pull request cannot change (CI sets this to a
# copy of the lock from the protected branch), else the committed lock's reference profile.
APPROVED_LOCK_ENV = "GATES_APPROVED_LOCK"


def violation_finding(violation: Violation, *, path: str) -> Finding:
    """A contract violation as a finding that points at the file, column and first row."""
    return Finding(
        rule=violation.rule,
        message=violation.message,
        location=Location(
            path=path,
            column=violation.column,
            row=violation.rows[0] if violation.rows else None,
        ),
        observed=violation.observed,
        threshold=violation.expected,
        policy_key=violation.policy_key,
    )


def _limit(data: DataPolicy, dotted: str) -> float:
    section, field = dotted.split(".")
    return float(getattr(getattr(data.checks, section), field))


@dataclass(frozen=True)
class _Examined:
    """What reading and checking the data file gave, in memory or in chunks."""

    rows: int
    columns: int
    violations: tuple[Violation, ...]
    class_counts: dict[str, int] = field(default_factory=dict)
    screening: Screening | None = None
    ids: pd.Series | Mapping[int, str] | None = None
    sampled: tuple[int, int] | None = None  # (screened, of) rows, when a sample was screened
    streaming: dict[str, int] = field(default_factory=dict)
    batch: BatchScreening | None = None
    batch_note: str | None = None


@dataclass(frozen=True)
class Approval:
    """The approved state the gate screens against: reference profile and approved row digests."""

    reference: DataProfile | None
    digests: dict[str, str] | None
    source: str
    trusted: bool
    # The features the digests joined, in that order (``DataProfile.digest_columns``).
    digest_columns: tuple[str, ...] = ()


def _relative(path: Path, root: Path) -> str:
    """``path`` as reports and cache keys name it: relative to the project when inside it (a copy
    of the project elsewhere keeps its names), else as given."""
    absolute, top = Path(os.path.abspath(path)), Path(os.path.abspath(root))
    return absolute.relative_to(top).as_posix() if absolute.is_relative_to(top) else str(path)


def _approver_findings(policy: LoadedPolicy) -> list[Finding]:
    """DATA003 when [roles].approvers is set and the lock is not signed by one (see
    ``pipeline.approval``); nothing when no approvers are configured."""
    from pipeline.approval import ApprovalError, approval_path, check_approval  # noqa: PLC0415

    try:
        check_approval(policy, trusted=trusted_lock_bytes())
    except (ApprovalError, GateError) as err:  # GateError: the base's lock cannot be read
        lock = Path(policy.policy.data.lock)
        return [
            Finding(
                rule="DATA003",
                message=str(err),
                location=Location(path=approval_path(lock).as_posix()),
                policy_key="[roles].approvers",
            )
        ]
    return []


def _trusted_lock() -> tuple[Path, str] | None:
    """The lock of the approved data that a pull request cannot change, and how it was named.

    ``$GATES_APPROVED_LOCK`` when set; else, with ``$GATES_BASE_POLICY`` (the base branch's
    policy, checked out apart from the pull request), the lock that policy's ``[data].lock``
    names, resolved against the base branch's folder; None when neither is set. GateError when
    the base policy cannot be read: an unreadable base branch never means "nothing approved".
    """
    from pipeline.approval import BASE_POLICY_ENV, ApprovalError, base_policy  # noqa: PLC0415

    named = os.environ.get(APPROVED_LOCK_ENV)
    if named:
        return Path(named), f"${APPROVED_LOCK_ENV} ({named})"
    try:
        base = base_policy()
    except ApprovalError as err:
        raise GateError(str(err)) from None
    if base is None:
        return None
    lock = base.resolve(base.policy.data.lock)
    return lock, f"${BASE_POLICY_ENV}'s [data].lock ({lock})"


def trusted_lock() -> tuple[Path, str] | None:
    """The approved lock ``$GATES_APPROVED_LOCK`` or ``$GATES_BASE_POLICY`` names and how it
    was named (None: neither is set); GateError when the base policy cannot be read."""
    return _trusted_lock()


def trusted_lock_bytes() -> bytes | None:
    """The bytes of the approved lock ``_trusted_lock`` names (None: none named); a changed
    lock's approval must have been given over it. GateError when it cannot be read."""
    trusted = _trusted_lock()
    if trusted is None:
        return None
    path, named = trusted
    try:
        return path.read_bytes()
    except OSError as err:
        msg = f"{named}: the approved lock cannot be read: {err.strerror or err}"
        raise GateError(msg) from None


def _approvers_key(context: RunContext) -> str:
    """The approval file, the base policy and every approver key, by digest, for the cache key:
    a verdict reached under other approvers or another approval is never reused."""
    from pipeline.approval import BASE_POLICY_ENV, approval_path, read_approval  # noqa: PLC0415

    policy = context.policy
    parts = []
    base = os.environ.get(BASE_POLICY_ENV)
    approval = approval_path(policy.resolve(policy.policy.data.lock))
    shown = _relative(approval, context.root)
    try:  # the pull request's file: never through a symlink, FIFO or device (it could hang)
        parts.append(f"{shown}:{sha256_bytes(read_approval(approval))}")
    except OSError as err:
        parts.append(f"{shown}: unreadable ({type(err).__name__}: {err.strerror or err})")
    trusted_paths = []
    if base:
        trusted_paths.append(Path(base))
    trusted_paths.extend(policy.resolve(p) for p in policy.policy.roles.approvers.values())
    for path in trusted_paths:
        try:
            parts.append(f"{_relative(path, context.root)}:{sha256_file(path)}")
        except OSError as err:
            parts.append(f"{_relative(path, context.root)}: unreadable ({type(err).__name__})")
    if base:
        # The base policy's own keys, resolved against its folder.
        try:
            from pipeline.config import load_policy  # noqa: PLC0415

            loaded = load_policy(Path(base))
            for value in loaded.policy.roles.approvers.values():
                key_path = loaded.resolve(value)
                parts.append(f"{_relative(key_path, context.root)}:{sha256_file(key_path)}")
        except (OSError, PipelineError) as err:
            parts.append(f"{base}: unreadable ({type(err).__name__})")
    return sha256_bytes("\n".join(parts).encode())


def _trusted_inputs(context: RunContext) -> dict[str, str]:
    """The approvers (``_approvers_key``) and the approved lock named by ``$GATES_APPROVED_LOCK``
    or the base policy, by digest: inputs outside the data's own digests."""
    key = {"approvers": _approvers_key(context)}
    try:
        trusted = _trusted_lock()
    except GateError as err:
        return {**key, "approved_lock": f"unreadable: {err}"}
    if trusted is None:
        return {**key, "approved_lock": "unset"}
    path, _ = trusted
    shown = _relative(path, context.root)
    try:
        return {**key, "approved_lock": f"{shown}:{sha256_file(path)}"}
    except OSError as err:
        return {**key, "approved_lock": f"{shown}: unreadable ({type(err).__name__})"}


class DataGate(Gate):
    """Lock digests match, the contract holds, and no poisoning check exceeds its threshold."""

    name: ClassVar[str] = "data"
    description: ClassVar[str] = __doc__ or ""

    def reads(self, context: RunContext) -> Reads:
        """The data, and what judges it from outside the data's own digests: the approval file,
        the approvers' keys, ``$GATES_BASE_POLICY`` and the approved lock (``_trusted_inputs``).

        A verdict reached under other approvers, another approval or another approved lock is
        never reused (red team 7: a PASSED outcome outlived the base branch revoking its
        approver, as a method named ``cache_key`` that the cache never called held these).
        """
        return Reads(external=_trusted_inputs(context))

    def run(self, context: RunContext) -> Outcome:
        """Verify the lock, read the file per its format, check the contract, screen the rows.

        A file over ``[data].stream_above_mb`` is read in chunks (``pipeline.stream``): the
        lock, contract, drift, range and duplicate checks see every row, the label and
        isolation checks a seeded, stratified sample, and the report says so.
        """
        # pandas and scikit-learn load here, not at import: a cached run never needs them.
        from pipeline.data import check_data_file, verify_lock  # noqa: PLC0415

        policy = context.policy
        data = policy.policy.data
        path = policy.resolve(data.path)
        shown = data.path
        findings: list[Finding] = []
        try:
            findings.extend(violation_finding(v, path=shown) for v in verify_lock(policy))
            findings.extend(_approver_findings(policy))
            approval = self._approval(context, path)
            reference = approval.reference
            size = check_data_file(path, max_bytes=data.checks.max_file_bytes)
            if data.streams(size):
                examined = self._streamed(context, path, approval=approval)
            else:
                examined = self._in_memory(context, path, approval=approval)
        except DataError as err:
            findings.append(
                Finding(
                    rule="DATA000",
                    message=str(err),
                    location=Location(path=shown),
                    policy_key="[data].path",
                )
            )
            return Outcome.judge(findings, passed="", failed="{n} problem(s): {first}")
        findings.extend(violation_finding(v, path=shown) for v in examined.violations)
        metrics: dict[str, Any] = {"rows": examined.rows, "columns": examined.columns}
        if examined.streaming:
            metrics["streaming"] = dict(examined.streaming)
        if examined.screening is None:
            # The poisoning checks need contract-clean numbers; the contract already failed.
            return Outcome.judge(
                findings,
                passed="",
                failed="{n} contract/lock violation(s): {first}",
                metrics=metrics,
            )
        return self._screened(
            context,
            examined=examined,
            screening=examined.screening,
            reference=reference,
            findings=findings,
            metrics=metrics,
        )

    def _screened(
        self,
        context: RunContext,
        *,
        examined: _Examined,
        screening: Screening,
        reference: DataProfile | None,
        findings: list[Finding],
        metrics: dict[str, Any],
    ) -> Outcome:
        from pipeline.poison import flagged_frame, ids_of  # noqa: PLC0415

        data = context.policy.policy.data
        shown = data.path
        metrics["class_counts"] = dict(examined.class_counts)
        if reference is None:
            findings.append(
                Finding(
                    "DATA040",
                    f"{data.lock} has no reference profile for {shown}: drift and range cannot "
                    "be checked; re-approve with: python -m gates data approve",
                    location=Location(path=data.lock),
                    observed="no profile",
                    threshold="a reference profile",
                    policy_key="[data].lock",
                )
            )
        elif data.checks.class_means.enabled:
            findings.extend(_moment_findings(data, reference))
        sampled = ""
        if examined.sampled is not None:
            n, total = examined.sampled
            sampled = (
                f"; streaming: label, isolation, association and burst checks fitted on a "
                f"seeded, stratified sample of {n} of {total} rows and scored every row; the "
                "near-duplicate check screened that sample"
            )
            findings.append(
                Finding(
                    "DATA090",
                    f"streaming mode: the label, isolation, association and burst checks fitted "
                    f"on a seeded, stratified sample of {n} of {total} rows and scored (counted) "
                    "every row in chunks (the burst radius carried from the sample to every "
                    "row); the near-duplicate check screened that sample (a near pair counts "
                    "only when both its rows are drawn); the lock, contract, exact-duplicate, "
                    "drift and range checks read every row",
                    severity=Severity.NOTE,
                    location=Location(path=shown),
                    observed=f"{n} of {total} rows",
                    threshold=f"at most {data.checks.labels.max_fit_rows} rows",
                    policy_key="[data.checks.labels].max_fit_rows",
                )
            )
        findings.extend(self.judge(screening, data, shown))
        batch = examined.batch
        if batch is not None:
            approval = self._approval(context, context.policy.resolve(data.path))
            findings.extend(
                judge_batch(batch, data, shown, source=approval.source, trusted=approval.trusted)
            )
            screening = replace(screening, flags=screening.flags + batch.flags)
            metrics["batch"] = {
                "approved_rows": batch.approved,
                "new_rows": batch.new,
                "source": approval.source,
                "trusted": approval.trusted,
                "flagged_new_rows": int(batch.flagged_rows().size),
                "seconds": {k: round(v, 3) for k, v in batch.seconds.items()},
            }
            if batch.impact is not None:
                metrics["batch"]["impact"] = {
                    "holdout_rows": batch.impact.holdout_rows,
                    "accuracy_approved_only": round(batch.impact.approved_only, 6),
                    "accuracy_with_new_rows": round(batch.impact.with_batch, 6),
                    "accuracy_without_flagged": round(batch.impact.without_flagged, 6),
                }
        elif examined.batch_note is not None:
            metrics["batch"] = {"skipped": str(examined.batch_note)}
            if not data.checks.batch.enabled:
                findings.append(
                    Finding(
                        "DATA109",
                        f"batch screen off: {examined.batch_note}",
                        severity=Severity.WARNING,
                        location=Location(path=shown),
                        observed="off",
                        threshold="on against a trusted lock with approved rows",
                        policy_key="[data.checks.batch].enabled",
                    )
                )
            if isinstance(examined.batch_note, BatchRefused):
                findings.append(
                    Finding(
                        "DATA109",
                        f"batch screen: {examined.batch_note}",
                        location=Location(path=shown),
                        observed=examined.batch_note.observed,
                        threshold=examined.batch_note.threshold,
                        policy_key=examined.batch_note.policy_key,
                    )
                )
        flagged = flagged_frame(screening, ids=examined.ids)
        context.reports_dir.mkdir(parents=True, exist_ok=True)
        flagged_path = context.reports_dir / FLAGGED_FILE
        atomic_write_text(flagged_path, flagged_csv(flagged))
        artifacts = {_relative(flagged_path, context.root): sha256_file(flagged_path)}
        rows = screening.flagged_rows()
        metrics["checks"] = {
            f.check: {
                "flagged": f.count,
                "share": round(f.count / max(f.screened or examined.rows, 1), 6),
                "seconds": round(f.seconds, 3),
            }
            for f in screening.flags
        }
        metrics["seconds"] = {k: round(v, 3) for k, v in screening.seconds.items()}
        metrics["flagged_rows"] = int(rows.size)
        if screening.drift:
            worst = max(screening.drift, key=lambda d: d.psi)
            metrics["drift"] = {"worst_column": worst.column, "worst_psi": round(worst.psi, 6)}
            metrics["class_shift"] = round(screening.class_shift[1], 6)
        if screening.class_means:
            metrics["class_means"] = {
                m.cls: {"rows": m.rows, "dims": m.dims, "t2": round(m.t2, 3), "p": m.pvalue}
                for m in screening.class_means
            }
        if data.checks.quarantine:
            quarantine_path = context.reports_dir / QUARANTINE_FILE
            atomic_write_json(
                quarantine_path,
                {
                    "run_id": context.run_id,
                    "rows": [int(r) for r in rows],
                    "ids": ids_of(examined.ids, rows) if examined.ids is not None else [],
                },
            )
            artifacts[_relative(quarantine_path, context.root)] = sha256_file(quarantine_path)
            metrics["quarantined_rows"] = int(rows.size)
        return Outcome.judge(
            findings,
            passed=(
                f"{examined.rows} rows x {examined.columns} columns match the lock and contract; "
                f"{rows.size} row(s) flagged, every check within its threshold{sampled}"
            ),
            failed="{n} violation(s): {first}" + sampled,
            metrics=metrics,
            artifacts=artifacts,
        )

    @staticmethod
    def _in_memory(context: RunContext, path: Path, *, approval: Approval) -> _Examined:
        from pipeline.data import check_contract, read_table  # noqa: PLC0415
        from pipeline.evaluate import resolve_scheduler  # noqa: PLC0415
        from pipeline.poison import screen  # noqa: PLC0415

        policy = context.policy
        data = policy.policy.data
        frame = read_table(
            path,
            fmt=data.resolved_format,
            max_bytes=data.checks.max_file_bytes,
            max_pages=data.max_pages,
        )
        clean, violations = check_contract(frame, data)
        rows, columns = len(frame), len(frame.columns)
        if violations:
            return _Examined(rows, columns, violations=tuple(violations))
        counts = clean[data.label].value_counts()
        batch, note = screen_new_rows(clean, data, approval, seed=policy.policy.run.seed)
        return _Examined(
            rows,
            columns,
            violations=(),
            class_counts={str(k): int(v) for k, v in counts.items()},
            # As in cv: GATES_DASK_SCHEDULER or [run].dask_scheduler sends the label check's
            # out-of-fold fits to a Dask cluster; an unreachable one raises: the gate is ERRORED.
            screening=screen(
                clean,
                data,
                reference=approval.reference,
                seed=policy.policy.run.seed,
                scheduler=resolve_scheduler(policy.policy.run.dask_scheduler),
                approved_rows=batch.approved_rows if batch is not None else None,
                batch_rows=batch.explaining_rows() if batch is not None else None,
                cleared_rows=batch.cleared_rows if batch is not None else None,
                # DATA071's trend from the lock's approved rows even when the batch screen
                # does not run ([data.checks.batch].enabled = false: red team 18).
                trend_rows=trend_rows(clean, data, approval, batch=batch),
            ),
            ids=clean[data.id_column] if data.id_column else None,
            batch=batch,
            batch_note=note,
        )

    @staticmethod
    def _streamed(context: RunContext, path: Path, *, approval: Approval) -> _Examined:
        import numpy as np  # noqa: PLC0415

        from pipeline.stream import ids_at, scan, screen_scan  # noqa: PLC0415

        reference = approval.reference
        policy = context.policy
        data = policy.policy.data
        checks = data.checks
        sample_rows = checks.labels.max_fit_rows
        scanned = scan(
            path,
            data,
            chunk_rows=data.stream_chunk_rows,
            max_bytes=checks.max_file_bytes,
            reference=reference,
            drift=checks.drift.enabled,
            range_margin=checks.range.margin if checks.range.enabled else None,
            duplicates=checks.duplicates.enabled,
            sample_rows=sample_rows if checks.labels.enabled or checks.isolation.enabled else 0,
            seed=policy.policy.run.seed,
            digests=False,
            class_means=checks.class_means.enabled,
        )
        streaming = {
            "chunk_rows": data.stream_chunk_rows,
            "largest_chunk": scanned.largest_chunk,
            "state_bytes": scanned.state_bytes,
        }
        rows, columns = scanned.rows, len(scanned.columns)
        if scanned.violations:
            return _Examined(rows, columns, violations=scanned.violations, streaming=streaming)
        from pipeline.evaluate import resolve_scheduler  # noqa: PLC0415

        # When the sample is smaller than the file, every row is scored below and the label
        # and isolation flags of the sample alone would be replaced: they are not computed.
        every_row = scanned.sample is not None and len(scanned.sample) < scanned.rows
        screening = screen_scan(
            replace(scanned, sample=None) if every_row else scanned,
            data,
            seed=policy.policy.run.seed,
            scheduler=resolve_scheduler(policy.policy.run.dask_scheduler),
            rates=reference.label_rates if reference is not None else None,
        )
        # The batch screen (DATA100-DATA108) needs the rows in memory: it runs here when the
        # sample holds every row (the file is large, the table is not: a table padded past
        # stream_above_mb skipped it and said nothing, red team 15); otherwise a note says so.
        batch, note, trend = None, None, None
        if scanned.sample is not None and len(scanned.sample) == scanned.rows:
            whole = scanned.sample.reset_index(drop=True)
            batch, note = screen_new_rows(whole, data, approval, seed=policy.policy.run.seed)
            trend = trend_rows(whole, data, approval, batch=batch)
        elif approval.digests:
            held = 0 if scanned.sample is None else len(scanned.sample)
            note = _unsampled(data, approval, held=held, rows=scanned.rows)
        if scanned.sample is not None:
            # Associations and bursts on the same sample as the label and isolation checks.
            from pipeline.poison import targeted_on_sample  # noqa: PLC0415

            # When every row is scored, the association counts every row there instead, its
            # trend every row's (no row identity in chunks). When the sample holds every row,
            # the association's trend is the lock's approved rows' (as in memory).
            extra, seconds = targeted_on_sample(
                scanned.sample,
                data,
                seed=policy.policy.run.seed,
                association=not every_row,
                burst=not every_row,
                trend_rows=trend,
            )
            screening = replace(
                screening,
                flags=screening.flags + tuple(extra),
                seconds={**screening.seconds, **seconds},
            )
        sampled = None
        if scanned.sample is not None:
            streaming["screened_rows"] = len(scanned.sample)
            if every_row:
                sampled = (len(scanned.sample), scanned.rows)
                screening = _score_every_row(
                    context,
                    path,
                    sample=scanned.sample,
                    rows=scanned.rows,
                    screening=screening,
                    reference=reference,
                    signature=scanned.signature,
                )
                streaming["scored_rows"] = scanned.rows
        flagged = screening.flagged_rows()
        if batch is not None:
            flagged = np.union1d(flagged, batch.flagged_rows())
        return _Examined(
            rows,
            columns,
            violations=(),
            class_counts=scanned.class_counts,
            screening=screening,
            ids=ids_at(path, data, rows=flagged, chunk_rows=data.stream_chunk_rows)
            if data.id_column
            else None,
            sampled=sampled,
            streaming=streaming,
            batch=batch,
            batch_note=note,
        )

    @staticmethod
    def _approval(context: RunContext, path: Path) -> Approval:
        """The reference profile and approved row digests, from the trusted lock when given.

        ``GATES_APPROVED_LOCK`` names a lock the pull request cannot change (CI copies it from
        the protected branch): its reference profile is the yardstick and its snapshot's row
        digests say which rows are approved. Without it, the committed lock's reference
        profile serves for both; anyone who can edit the lock can edit that, and the report
        says so. A named trusted lock that is missing, unreadable or has no entry for the
        data file is an error (the gate cannot run as configured).
        """
        from pipeline.data import lock_key, read_lock  # noqa: PLC0415

        policy = context.policy
        key = lock_key(policy, path)
        trusted = _trusted_lock()
        if trusted is not None:
            trusted_path, named = trusted
            try:
                lock = read_lock(trusted_path)
            except DataError as err:
                msg = f"{named}: {err}"
                raise GateError(msg) from None
            entry = lock.files.get(key)
            if entry is None:
                msg = f"{named} has no entry for {key}"
                raise GateError(msg)
            snapshot = entry.profile
            return Approval(
                reference=entry.reference,
                digests=snapshot.row_digests if snapshot is not None else None,
                source=f"the approved lock {named}",
                trusted=True,
                digest_columns=snapshot.digest_columns if snapshot is not None else (),
            )
        lock = read_lock(policy.resolve(policy.policy.data.lock))
        entry = lock.files.get(key)
        reference = entry.reference if entry is not None else None
        return Approval(
            reference=reference,
            digests=reference.row_digests if reference is not None else None,
            source=f"the reference profile of the committed {policy.policy.data.lock}",
            trusted=False,
            digest_columns=reference.digest_columns if reference is not None else (),
        )

    @staticmethod
    def judge(screening: Screening, data: DataPolicy, shown: str) -> list[Finding]:
        findings: list[Finding] = []
        for flags in screening.flags:
            rule, what, dotted = _ROW_CHECKS[flags.check]
            if flags.count == 0:
                continue
            total = max(flags.screened or screening.rows, 1)
            share = flags.count / total
            if flags.screened is not None:
                what = f"{what} in a sample of {flags.screened} rows"
            limit = _limit(data, dotted)
            over = share > limit
            base = flags.baseline
            within = ""
            if base is not None and share > limit and base.basis:
                # The near-copy check: coarse measurements repeat on clean data too; judged
                # against the approved snapshot's own near copies as well.
                over = base.beyond
                within = f"; {'beyond' if over else 'within'} {base.basis}"
            elif base is not None and share > limit:
                # The label check: the approved snapshot's own share (overlapping classes flag
                # clean rows too) is the yardstick as well; beyond max_share alone is not enough.
                over = base.beyond
                within = (
                    f"; {'beyond' if over else 'within'} the approved snapshot's "
                    f"{base.rate:.2%} ({base.expected:.0f} expected, binomial p={base.pvalue:.2g}"
                    f", [data.checks.labels].witness_alpha {data.checks.labels.witness_alpha:g}"
                    f", witness_min_excess {data.checks.labels.witness_min_excess:g})"
                )
            findings.append(
                Finding(
                    rule=rule,
                    message=(
                        f"{flags.count} {what} ({share:.2%} {'>' if share > limit else '<='} "
                        f"{limit:.2%}{within}); "
                        f"first row {int(flags.rows[0])}: {flags.reasons[0]}"
                    ),
                    severity=Severity.ERROR if over else Severity.NOTE,
                    location=Location(path=shown, row=int(flags.rows[0])),
                    observed=f"{share:.6f}",
                    threshold=f"{limit}",
                    policy_key=f"[data.checks.{dotted.split('.')[0]}].{dotted.split('.')[1]}",
                )
            )
        max_psi = data.checks.drift.max_psi
        for drift in screening.drift:
            if drift.psi > max_psi:
                findings.append(
                    Finding(
                        "DATA041",
                        f"column '{drift.column}' drifted from the reference: PSI {drift.psi:.3f} "
                        f"> {max_psi:g}; {_REFERENCE_IS}",
                        location=Location(path=shown, column=drift.column),
                        observed=f"{drift.psi:.6f}",
                        threshold=f"{max_psi}",
                        policy_key="[data.checks.drift].max_psi",
                    )
                )
        cls, moved = screening.class_shift
        limit = data.checks.drift.max_class_shift
        if moved > limit:
            findings.append(
                Finding(
                    "DATA042",
                    f"class '{cls}' share moved {moved:.3f} from the reference (> {limit:g}); "
                    f"{_REFERENCE_IS}",
                    location=Location(path=shown, column=data.label),
                    observed=f"{moved:.6f}",
                    threshold=f"{limit}",
                    policy_key="[data.checks.drift].max_class_shift",
                )
            )
        alpha = data.checks.class_means.alpha
        for mean in screening.class_means:
            if mean.pvalue < alpha:
                findings.append(
                    Finding(
                        "DATA043",
                        f"class '{mean.cls}': the mean of its {mean.rows} rows moved from the "
                        f"approved profile's ({mean.approved_rows} rows): Hotelling T^2 "
                        f"{mean.t2:.1f} on {mean.dims} principal axes of the approved "
                        f"covariance, p={mean.pvalue:.2g} (Bonferroni over classes) < "
                        f"{alpha:g}; largest move '{mean.worst_column}' "
                        f"{mean.worst_shift:+.2f} approved SD",
                        location=Location(path=shown, column=mean.worst_column),
                        observed=f"{mean.pvalue:.6g}",
                        threshold=f"{alpha}",
                        policy_key="[data.checks.class_means].alpha",
                    )
                )
        return findings


def _score_every_row(
    context: RunContext,
    path: Path,
    *,
    sample: pd.DataFrame,
    rows: int,
    screening: Screening,
    reference: DataProfile | None,
    signature: tuple[int, int, int] | None = None,
) -> Screening:
    """The label, isolation and association flags of every row, scored in chunks, in place of
    any the screening holds (``signature``: the file's as the scan read it; a change fails the
    run). The association test leaves out the rows the range check flagged, as in memory."""
    from pipeline.evaluate import resolve_scheduler  # noqa: PLC0415
    from pipeline.rowscore import score_every_row  # noqa: PLC0415

    policy = context.policy
    data = policy.policy.data
    checks = data.checks
    if not (
        checks.labels.enabled
        or checks.isolation.enabled
        or checks.association.enabled
        or checks.bursts.enabled
    ):
        return screening
    beyond = screening.by_check("range")
    every, seconds = score_every_row(
        path,
        data,
        sample,
        rows=rows,
        chunk_rows=data.stream_chunk_rows,
        max_bytes=data.checks.max_file_bytes,
        seed=policy.policy.run.seed,
        scheduler=resolve_scheduler(policy.policy.run.dask_scheduler),
        rates=reference.label_rates if reference is not None else None,
        jobs=data.stream_jobs,
        signature=signature,
        exclude=None if beyond is None else beyond.rows,
    )
    replaced = {f.check for f in every}
    return replace(
        screening,
        flags=tuple(f for f in screening.flags if f.check not in replaced) + tuple(every),
        seconds={**screening.seconds, **seconds},
    )


def _moment_findings(data: DataPolicy, reference: DataProfile) -> list[Finding]:
    """DATA043 warnings: the reference records no class moments for the contract's numeric
    columns (the test did not run), or none for some of them (it ran on the others, matched
    by name: ``pipeline.profile.moment_overlap``)."""
    from pipeline.profile import moment_overlap, numeric_columns  # noqa: PLC0415

    shared, _ = moment_overlap(reference, data)
    if not reference.class_moments or not shared:
        # A lock approved before class moments were recorded (or over none of these numeric
        # columns): the class-mean test cannot run, and the report says so.
        return [
            Finding(
                "DATA043",
                f"{data.lock}'s reference profile records no class moments for the "
                "contract's numeric columns: the class-mean test (DATA043) did not run; "
                "re-approve with: python -m gates data approve --rebaseline",
                severity=Severity.WARNING,
                location=Location(path=data.lock),
                observed="no class moments",
                threshold="class moments of the numeric columns",
                policy_key="[data.checks.class_means].enabled",
            )
        ]
    missing = [c for c in numeric_columns(data) if c not in shared]
    if not missing:
        return []
    more = ", ..." if len(missing) > 5 else ""
    return [
        Finding(
            "DATA043",
            f"{data.lock}'s reference profile records no class moments for {len(missing)} of "
            f"the contract's numeric columns ({', '.join(missing[:5])}{more}): the class-mean "
            "test (DATA043) ran without them; re-approve with: python -m gates data approve "
            "--rebaseline",
            severity=Severity.WARNING,
            location=Location(path=data.lock),
            observed=f"{len(missing)} column(s) without class moments",
            threshold="class moments of the numeric columns",
            policy_key="[data.checks.class_means].enabled",
        )
    ]


class BatchRefused(str):
    """Why the batch screen could not run, where that fails the gate (DATA109) rather than
    being a note: a trusted lock approved enough rows, and the table keeps too few of them or
    has lost too many; with the policy key, the limit and what was found."""

    policy_key: str
    threshold: str
    observed: str

    def __new__(cls, text: str, *, key: str, threshold: str, observed: str) -> BatchRefused:
        refused = super().__new__(cls, text)
        refused.policy_key, refused.threshold, refused.observed = key, threshold, observed
        return refused


# Which reference DATA041/DATA042 measure against: a --rebaseline in a pull request does not
# move the base branch's (the yardstick in CI) until it is merged.
_REFERENCE_IS = (
    "the reference is the approved lock's profile, on a pull request the base branch's "
    "($GATES_BASE_POLICY): a data approve --rebaseline there counts only once merged"
)

# DATA109's way out, said the same in each of its messages: what to change, what the verdict
# then asks for, and that the screen must come back on.
_ON_PURPOSE = (
    "set [data.checks.batch].enabled = false in this pull request's policy: a policy change "
    "the verdict lists (GATE017) and, when the base branch's policy sets [roles].approvers, "
    "refuses until an approver signs it (python -m gates policy approve --base "
    "BASE/policy.toml); set it back to true in the next data change (docs/own-data.md, "
    '"Changing the data")'
)


def _refused(approval: Approval, batch: BatchCheck, *, kept: int, new: int) -> BatchRefused | None:
    """DATA109's reason, against a trusted lock that approved at least ``min_approved`` rows
    (or its default, 50): the table keeps fewer of them, or more than ``max_dropped`` of them
    are gone."""
    recorded, least = len(approval.digests or ()), batch.min_approved
    screenable = _screenable(approval, batch)
    if kept < least and approval.trusted and screenable:
        # The rows are the pull request's to write: one ulp on every row made each new, and
        # a note let the gate pass unscreened (red team 17). Fail closed: DATA109.
        return BatchRefused(
            f"{kept} of the {recorded} rows approved in {approval.source} are in the table "
            f"(by id or by their exact values), fewer than [data.checks.batch].min_approved = "
            f"{least}: the batch screen (DATA100-DATA108) has nothing to judge the "
            f"{new} other rows against (a value changed even by one ulp makes a "
            f"row new); to replace the approved snapshot on purpose, {_ON_PURPOSE}",
            key="[data.checks.batch].min_approved",
            threshold=f"{least}",
            observed=f"{kept}",
        )
    dropped, share = recorded - kept, batch.max_dropped
    if approval.trusted and screenable and dropped > share * recorded:
        # One ulp on 400 of 569 rows kept 163 approved: the 406 "new" rows diluted 12
        # relabelled ones below DATA100's rate test and the gate passed (red team 17).
        return BatchRefused(
            f"{dropped} of the {recorded} rows approved in {approval.source} are not in the "
            f"table (by id or by their exact values), more than [data.checks.batch].max_dropped "
            f"= {share:g} of them, beside {new} new rows: an approved row changed "
            "even by one ulp is a new row, and changed rows would dilute the new rows the batch "
            "screen judges; a batch adds rows (drop approved rows in a change of their own), or "
            f"to replace the approved snapshot on purpose, {_ON_PURPOSE}",
            key="[data.checks.batch].max_dropped",
            threshold=f"{share:g} of {recorded}",
            observed=f"{dropped}",
        )
    return None


def _screenable(approval: Approval, batch: BatchCheck) -> bool:
    """Whether the lock approved rows enough to screen against: at least the smaller of
    ``min_approved`` and its default (50)."""
    from pipeline.config import BatchCheck  # noqa: PLC0415

    # min_approved is the pull request's to raise above the rows the trusted lock approved (a
    # change that reads as stricter): that turned both refusals and the screen off, and 12
    # relabelled rows passed (red team 18). The lock is screenable at the default too.
    default: int = BatchCheck.model_fields["min_approved"].default
    return len(approval.digests or ()) >= min(batch.min_approved, default)


def _unsampled(data: DataPolicy, approval: Approval, *, held: int, rows: int) -> str:
    """Why the streaming path did not run the batch screen (its sample of ``held`` rows does
    not hold all ``rows``): DATA109 against a trusted lock that approved rows enough, where
    ``[data].stream_above_mb = 0.01`` and ``[data.checks.labels].max_fit_rows = 100``, two
    lines that read as tuning, had made it a note and 12 relabelled rows PASSED (red team 19).
    """
    text = (
        f"the streaming path holds a sample of {held} of {rows} rows, not every row: the "
        "batch screen did not run"
    )
    batch = data.checks.batch
    if not (batch.enabled and approval.trusted and _screenable(approval, batch)):
        return text
    return _unnamed(data, approval) or BatchRefused(
        f"{text} against the {len(approval.digests or ())} rows approved in "
        f"{approval.source}: set [data.checks.labels].max_fit_rows to at least {rows} (or "
        "[data].stream_above_mb above the file's size) so that every row is screened, or, to "
        "replace the approved snapshot on purpose, set [data.checks.batch].enabled = false in "
        "this pull request's policy (a change the verdict lists)",
        key="[data.checks.labels].max_fit_rows",
        threshold=f"a sample of every row ({rows})",
        observed=f"{held}",
    )


def _unnamed(data: DataPolicy, approval: Approval) -> BatchRefused | None:
    """DATA109's reason when the policy names no id column but the trusted lock approved rows
    by id: a pull request dropping [data] id_column made the screen a note, and 12 relabelled
    rows passed (red team 18)."""
    if data.id_column is not None or not approval.trusted or not approval.digests:
        return None
    return BatchRefused(
        f"[data] id_column is not set, but {approval.source} approved "
        f"{len(approval.digests)} rows by id: the batch screen (DATA100-DATA108) cannot "
        "tell them from new rows; set [data] id_column back, or, to replace the approved "
        f"snapshot on purpose, {_ON_PURPOSE}",
        key="[data].id_column",
        threshold="the id column the approved lock's rows are named by",
        observed="none",
    )


def _switched_off(approval: Approval) -> str | None:
    """The note for a batch screen the policy switched off against a trusted lock with
    approved rows (the judge makes it a DATA109 warning): left off on the base branch after a
    replacement, every later batch would go unscreened without a word (review19)."""
    if not (approval.trusted and approval.digests):
        return None
    return (
        f"[data.checks.batch].enabled = false: the rows are not screened against the "
        f"{len(approval.digests)} rows approved in {approval.source}; set it back to true "
        "once the snapshot it was turned off for is merged"
    )


def screen_new_rows(
    clean: pd.DataFrame, data: DataPolicy, approval: Approval, *, seed: int
) -> tuple[BatchScreening | None, str | None]:
    """Screen the rows that are not approved against those that are; or say why it cannot
    (a ``BatchRefused`` when that fails the data gate)."""

    from pipeline.poison import encode_labels, out_of_range  # noqa: PLC0415
    from pipeline.profile import numeric_columns  # noqa: PLC0415
    from pipeline.targeted import screen_batch  # noqa: PLC0415

    checks = data.checks
    if not checks.batch.enabled:
        return None, _switched_off(approval)
    names = numeric_columns(data)
    why = _unnamed(data, approval) or _batch_unavailable(data, approval, names)
    if why is not None or approval.digests is None:
        return None, why
    approved = approved_mask(clean, data, approval.digests, approval.digest_columns)
    if approved.all():
        return None, f"every row is approved in {approval.source}"
    kept, least = int(approved.sum()), checks.batch.min_approved
    refused = _refused(approval, checks.batch, kept=kept, new=len(clean) - kept)
    if refused is not None:
        return None, refused
    if kept < least:
        return None, (
            f"{kept} approved rows in {approval.source}, fewer than "
            f"[data.checks.batch].min_approved = {least}"
        )
    x = approved_standardized(clean, names, approved)
    y = encode_labels(clean[data.label], data.classes)
    beyond = (
        out_of_range(clean, data, approval.reference, margin=checks.range.margin).rows
        if approval.reference is not None and checks.range.enabled
        else None
    )
    return (
        screen_batch(
            x,
            y,
            approved,
            classes=data.classes,
            names=names,
            labels=checks.labels,
            association=checks.association,
            burst=checks.bursts,
            batch=checks.batch,
            seed=seed,
            beyond_range=beyond,
            duplicates=checks.duplicates,
            quarantine=checks.quarantine,
        ),
        None,
    )


def approved_mask(
    clean: pd.DataFrame,
    data: DataPolicy,
    digests: Mapping[str, str],
    digest_columns: tuple[str, ...],
) -> npt.NDArray[np.bool_]:
    """Which rows of ``clean`` the approval's row ``digests`` approve (``_approved_rows``: by
    id, else by content, each approving one row); none without ``[data] id_column``."""
    import numpy as np  # noqa: PLC0415

    from pipeline.profile import id_text, row_digest_list  # noqa: PLC0415

    if data.id_column is None:
        return np.zeros(len(clean), dtype=bool)
    # In the approval's order when it names the contract's features (a reordered
    # ``[data.columns]`` is no policy change: it must not make every approved row new).
    same = sorted(digest_columns) == sorted(data.feature_columns)
    now = row_digest_list(clean, data, digest_columns if same else ())
    ids = [id_text(v) for v in clean[data.id_column]]
    return _approved_rows(ids, now, digests)


# The fewest approved rows DATA071's neighbour trend is taken from (below either, from every
# row, as before trend19): at least 50 (min_approved's default) and half the table. Constants,
# not [data.checks.batch].min_approved: that key is the pull request's to raise (red team 18).
# Few approved rows make a weak trend (its cells' lower bound is wide): clean clustered tables
# (2,000 rows, seeds 1-3) with the trend from a random 10 to 800 of their rows flagged 8-388
# clean rows in 35 of 42 probes (each of the 30 up to 200 rows, 5 of 12 at 400-800); from half
# up, 34 rows in 1 of 15 (at 70%); from every row, none (docs/data-defence.md, DATA071).
TREND_MIN_APPROVED = 50
TREND_MIN_SHARE = 0.5


def trend_rows(
    clean: pd.DataFrame,
    data: DataPolicy,
    approval: Approval,
    *,
    batch: BatchScreening | None = None,
) -> npt.NDArray[np.int64] | None:
    """Positions of the rows ``approval``'s row digests approve, on which the whole-table
    association (DATA071) measures its neighbouring-cell trend; None (every row) without an id
    column, row digests or numeric features, with fewer than ``TREND_MIN_APPROVED`` rows or
    ``TREND_MIN_SHARE`` of the table's, or when every row is approved.

    Taken from the lock on its own, whether or not the batch screen runs: with
    ``[data.checks.batch].enabled = false`` (the documented way to replace a snapshot, a policy
    change the verdict lists) the trend fell back to every row, and rows a pull request planted
    beside a trigger hid it again (red team 18). ``batch``: the batch screen's result on the
    same table and approval, whose ``approved_rows`` are these rows (the same matching): the
    digests are not computed twice (100,000 rows x 32 columns: 7.5 s under load).
    """
    import numpy as np  # noqa: PLC0415

    from pipeline.profile import numeric_columns  # noqa: PLC0415

    digests = approval.digests
    if data.id_column is None or not digests or not numeric_columns(data):
        return None
    if batch is not None:
        rows = np.asarray(batch.approved_rows, dtype=np.int64)
    else:
        rows = np.flatnonzero(approved_mask(clean, data, digests, approval.digest_columns))
    if rows.size < TREND_MIN_APPROVED or rows.size < TREND_MIN_SHARE * len(clean):
        return None
    # Every row approved: the trend is every row's, as without (the code path of before).
    return None if rows.size == len(clean) else rows.astype(np.int64)


def approved_standardized(
    frame: pd.DataFrame, names: tuple[str, ...], approved: npt.NDArray[np.bool_]
) -> npt.NDArray[np.float64]:
    """The columns ``names`` as float64, nulls set to the approved rows' median (0 where they
    have none), standardized with the approved rows' mean and deviation (constant: 1).

    ``approved`` is a boolean mask of ``frame``'s rows. The batch screen's matrix; feedback
    quarantine builds the one it gives ``near_duplicates`` the same way.
    """
    import numpy as np  # noqa: PLC0415

    matrix = frame[list(names)].astype("float64").to_numpy(copy=True)
    median = np.nanmedian(matrix[approved], axis=0)
    median = np.where(np.isnan(median), 0.0, median)
    missing = np.isnan(matrix)
    matrix[missing] = np.take(median, np.nonzero(missing)[1])
    mean = matrix[approved].mean(axis=0)
    std = matrix[approved].std(axis=0)
    std[std == 0] = 1.0
    standardized: npt.NDArray[np.float64] = (matrix - mean) / std
    return standardized


def _approved_rows(
    ids: list[str], now: Sequence[str] | Mapping[str, str], digests: Mapping[str, str]
) -> npt.NDArray[np.bool_]:
    """Which rows (by ``ids``, with their digests ``now``: one per row, or by id where ids are
    unique) the approval ``digests`` approved: under their own id, each id approving one row,
    else an approved row's content (features and label) no row keeps under its id, each such
    content approving one row only.

    By id alone, a pull request that renumbered the id column made every approved row new:
    fewer than ``min_approved`` approved, and the batch screen did not run (a note), or, some
    ids kept, its new rows diluted with approved ones (red team 16). A copy of an approved
    row beyond the one is still new (DATA108 judges it). Digests taken by id kept the last
    row of a repeated id for all its rows: with the id column's ``unique`` dropped, a new
    row placed before an approved row under its id was approved (red team 17).
    """
    import collections  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415

    own = [now[i] for i in ids] if isinstance(now, Mapping) else list(now)
    approved = np.zeros(len(ids), dtype=bool)
    kept: set[str] = set()
    for index, (i, digest) in enumerate(zip(ids, own, strict=True)):
        if i not in kept and digests.get(i) == digest:
            approved[index] = True
            kept.add(i)
    spare = collections.Counter(d for i, d in digests.items() if i not in kept)
    for row in np.flatnonzero(~approved):
        if spare[own[row]] > 0:
            spare[own[row]] -= 1
            approved[row] = True
    return approved


def _batch_unavailable(data: DataPolicy, approval: Approval, names: tuple[str, ...]) -> str | None:
    if data.id_column is None:
        return "no id column: approved rows cannot be told from new ones"
    if approval.digests is None:
        return f"{approval.source} records no row digests (no id column, or over 100,000 rows)"
    if not names:
        return "no numeric features to screen"
    return None


def judge_batch(
    batch: BatchScreening, data: DataPolicy, shown: str, *, source: str, trusted: bool
) -> list[Finding]:
    """Findings of the batch screen: rate tests, shares, mean shifts, impact."""
    findings: list[Finding] = []
    if not trusted:
        findings.append(
            Finding(
                "DATA106",
                f"batch screen: {batch.new} new row(s) against {batch.approved} approved in "
                f"{source}; a pull request can edit that lock, so in CI set $GATES_BASE_POLICY to "
                f"the protected branch's policy (or ${APPROVED_LOCK_ENV} to its lock)",
                severity=Severity.NOTE,
                location=Location(path=data.lock),
                policy_key="[data].lock",
            )
        )
    by_check = {f.check: f for f in batch.flags}
    for test in batch.rates:
        rule, what = _RATE_CHECKS[test.check]
        flags = by_check.get(test.check)
        reported = flags is not None and flags.count > 0
        # A failed rate test is a finding even when no single row is reported (DATA101
        # reports only the rows Benjamini-Hochberg selects): never a silent pass.
        if not reported and not test.failed:
            continue
        share = test.flagged / max(test.rows, 1)
        row = int(flags.rows[0]) if flags is not None and reported else test.farthest
        first = (
            f"first row {row}: {flags.reasons[0]}"
            if flags is not None and reported
            else f"no row significant on its own, none reported (farthest: row {row})"
        )
        if test.reporting:
            first += f"; {test.reporting}"
        mass = (
            f", doubt mass of every new row z={test.mass[0]:.1f} (p={test.mass[1]:.2g})"
            if test.mass is not None
            else ""
        )
        findings.append(
            Finding(
                rule,
                f"{test.flagged} of {test.rows} {what} ({share:.2%} vs {test.base_rate:.2%} "
                f"expected from the approved rows, {test.test} p={test.pvalue:.2g}{mass}); "
                f"{first}",
                severity=Severity.ERROR if test.failed else Severity.NOTE,
                location=Location(path=shown, row=row),
                observed=f"{share:.6f}",
                threshold=f"p >= {data.checks.batch.alpha} or excess < {data.checks.batch.min_excess}",
                policy_key="[data.checks.batch].alpha",
            )
        )
    for flags in batch.flags:
        if flags.check in _RATE_CHECKS or flags.count == 0:
            continue
        rule, what, dotted = _ROW_CHECKS[flags.check]
        share = flags.count / max(batch.new, 1)
        limit = _limit(data, dotted)
        over = share > limit
        within = ""
        if flags.baseline is not None and over:
            # DATA108: new rows near others judged against the approved rows' own near copies.
            over = flags.baseline.beyond
            within = f"; {'beyond' if over else 'within'} {flags.baseline.basis}"
        findings.append(
            Finding(
                rule,
                f"{flags.count} {what} ({share:.2%} of {batch.new} new rows "
                f"{'>' if share > limit else '<='} {limit:.2%}{within}); first row {int(flags.rows[0])}: "
                f"{flags.reasons[0]}",
                severity=Severity.ERROR if over else Severity.NOTE,
                location=Location(path=shown, row=int(flags.rows[0])),
                observed=f"{share:.6f}",
                threshold=f"{limit}",
                policy_key=f"[data.checks.{dotted.split('.')[0]}].{dotted.split('.')[1]}",
            )
        )
    for joint in batch.joint_shifts:
        findings.append(
            Finding(
                "DATA107",
                f"class '{joint.label}': the {joint.new} new rows' mean over every feature "
                f"departs from the {joint.approved} approved rows' (two-sample Hotelling T^2 on "
                f"{joint.dims} approved principal axes, Bonferroni p={joint.pvalue:.2g})",
                location=Location(path=shown),
                observed=f"{joint.pvalue:.6g}",
                threshold=f"p >= {data.checks.batch.alpha}",
                policy_key="[data.checks.batch].joint_dims_share",
            )
        )
    for shift in batch.shifts:
        findings.append(
            Finding(
                "DATA104",
                f"class '{shift.label}': mean of '{shift.column}' in the new rows moved "
                f"{shift.shift_sd:+.2f} SD from the approved rows (t on the approved rows' SD, "
                f"Holm p={shift.pvalue:.2g})",
                location=Location(path=shown, column=shift.column),
                observed=f"{shift.shift_sd:.4f}",
                threshold=f"|shift| < {data.checks.batch.min_mean_shift} or p >= {data.checks.batch.alpha}",
                policy_key="[data.checks.batch].min_mean_shift",
            )
        )
    impact = batch.impact
    quarantine = data.checks.quarantine
    if impact is not None and impact.failed(quarantine=quarantine):
        trained = impact.without_flagged if quarantine else impact.with_batch
        findings.append(
            Finding(
                "DATA105",
                f"the new rows lower the accuracy on {impact.holdout_rows} held-out approved rows "
                f"from {impact.approved_only:.4f} (approved rows only) to {impact.with_batch:.4f} "
                f"(without the flagged rows: {impact.without_flagged:.4f}"
                f"{', which quarantine trains on' if quarantine else ''}; McNemar exact "
                f"p={impact.pvalue(quarantine=quarantine):.2g} on the "
                f"{impact.worse[int(quarantine)]} rows turned wrong vs "
                f"{impact.better[int(quarantine)]} turned right)",
                location=Location(path=shown),
                observed=f"{trained - impact.approved_only:.6f}",
                threshold=f"drop <= {data.checks.batch.max_impact} or McNemar p >= {impact.alpha}",
                policy_key="[data.checks.batch].max_impact",
            )
        )
    return findings


def quarantined_rows(context: RunContext) -> tuple[int, ...]:
    """Rows the data gate of this run quarantined (empty when quarantine is off).

    The file must be the one the data gate recorded (its SHA-256 is in ``reports/data.json``),
    so training and CV drop exactly the rows the gate listed; anything else is a GateError.
    """
    if not context.policy.policy.data.checks.quarantine:
        return ()
    report = context.read_report(DataGate.name)
    path = context.reports_dir / QUARANTINE_FILE
    key = _relative(path, context.root)
    expected = report.artifacts.get(key)
    if expected is None:
        msg = f"quarantine is on but the data gate of run {context.run_id} recorded no {path.name}"
        raise GateError(msg)
    if not path.is_file() or sha256_file(path) != expected:
        msg = f"{path}: missing or changed since the data gate wrote it (sha256 {expected[:12]}...)"
        raise GateError(msg)
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))["rows"]
        return tuple(int(r) for r in rows)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        msg = f"{path}: unparsable quarantine list ({type(err).__name__}: {err})"
        raise GateError(msg) from None


def flagged_csv(flagged: pd.DataFrame) -> str:
    """``reports/data.flagged.csv``'s text: the id and reason cells (the data's own text) that a
    spreadsheet would run as a formula, such as ``=HYPERLINK(...)`` as a row's id, get a
    leading ``'``, and every text cell is quoted (an id's bare carriage return started a new
    row there, whose first cell could be the formula; red team 13): a reviewer opens the file
    to look at the flagged rows."""
    inert = flagged.copy()
    for column in ("id", "reason"):
        inert[column] = [
            f"'{value}" if isinstance(value, str) and value.startswith(_FORMULA_START) else value
            for value in inert[column]
        ]
    return str(inert.to_csv(index=False, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC))
