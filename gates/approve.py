"""Approving a data snapshot: the explicit act that lets changed data reach training."""

from __future__ import annotations

from typing import TextIO

from pipeline.config import LoadedPolicy
from pipeline.data import (
    LockEntry,
    check_contract,
    lock_key,
    read_lock,
    read_table,
    verify_lock,
    write_lock,
)
from pipeline.errors import DataError
from pipeline.profile import DataProfile, build_profile, class_shift, column_drift, describe_changes


def approve(policy: LoadedPolicy, *, out: TextIO, rebaseline: bool = False) -> int:
    """Check the data against the contract; if it holds, profile it, rewrite the lock, say what changed.

    The reference profile (the baseline the data gate measures drift and range against) is
    kept from the earlier approval unless ``rebaseline`` is set or there is none yet.
    Returns 0 when approved, 1 when the contract is broken (the lock is left untouched); bad
    input raises DataError before anything is written.
    """
    data = policy.policy.data
    path = policy.resolve(data.path)
    frame = read_table(path, fmt=data.resolved_format, max_bytes=data.checks.max_file_bytes)
    clean, violations = check_contract(frame, data)
    if violations:
        out.write(f"not approved: {path} breaks its contract; the lock is unchanged\n")
        for violation in violations:
            out.write(f"  {violation.rule} {violation.message} ({violation.policy_key})\n")
        return 1
    lock_path = policy.resolve(data.lock)
    try:
        previous = read_lock(lock_path).files.get(lock_key(policy, path))
    except DataError:
        previous = None
    profile = build_profile(clean, data)
    keep = previous is not None and previous.reference is not None and not rebaseline
    reference = previous.reference if keep and previous is not None else profile
    entry = write_lock(policy, frame, profile=profile, reference=reference)
    out.write(
        f"approved {entry.name}: sha256 {entry.sha256}, {entry.rows} rows, "
        f"{len(entry.columns)} columns -> {lock_path.name}\n"
    )
    _report_changes(previous, entry, profile, out=out)
    if keep and reference is not None:
        drift = column_drift(clean, reference)
        worst = max(drift, key=lambda d: d.psi) if drift else None
        cls, moved = class_shift(clean[data.label], reference)
        text = f"worst column PSI {worst.psi:.3f} ({worst.column})" if worst else "no columns"
        out.write(
            f"  reference profile kept from the earlier approval (replace it with --rebaseline): "
            f"{text}, largest class shift {moved:.3f} ({cls or '-'})\n"
        )
    else:
        out.write("  reference profile: this snapshot is the new baseline\n")
    return 0


def _report_changes(
    previous: LockEntry | None, entry: LockEntry, profile: DataProfile, *, out: TextIO
) -> None:
    if previous is None:
        out.write("  first approval of this file\n")
        return
    if previous.sha256 == entry.sha256 and previous.profile is not None:
        out.write("  unchanged since the last approval\n")
        return
    if previous.sha256 != entry.sha256:
        out.write(f"  sha256 {previous.sha256[:12]}... -> {entry.sha256[:12]}...\n")
    if previous.profile is None:
        # An older lock without a profile: only counts and column names can be compared.
        out.write(f"  rows {previous.rows} -> {entry.rows} ({entry.rows - previous.rows:+d})\n")
        added = [c for c in entry.columns if c not in previous.columns]
        removed = [c for c in previous.columns if c not in entry.columns]
        if added:
            out.write(f"  columns added: {', '.join(added)}\n")
        if removed:
            out.write(f"  columns removed: {', '.join(removed)}\n")
        out.write("  the earlier lock had no profile: this approval records the first one\n")
        return
    for line in describe_changes(previous.profile, profile):
        out.write(f"  {line}\n")


def verify(policy: LoadedPolicy, *, out: TextIO) -> int:
    """Compare the data file with its lock; 0 when it matches, 1 when it does not."""
    problems = verify_lock(policy)
    for problem in problems:
        out.write(f"{problem.rule} {problem.message}\n")
    if not problems:
        out.write(f"{policy.policy.data.path}: matches {policy.policy.data.lock}\n")
    return 1 if problems else 0
