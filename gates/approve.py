"""Approving a data snapshot: the explicit act that lets changed data reach training."""

from __future__ import annotations

from typing import TextIO

from pipeline.config import LoadedPolicy
from pipeline.data import check_contract, lock_key, read_lock, read_table, verify_lock, write_lock
from pipeline.errors import DataError


def approve(policy: LoadedPolicy, *, out: TextIO) -> int:
    """Check the data against the contract; if it holds, rewrite the lock and say what changed.

    Returns 0 when approved, 1 when the contract is broken (the lock is left untouched).
    """
    data = policy.policy.data
    path = policy.resolve(data.path)
    frame = read_table(path, fmt=data.resolved_format)
    _, violations = check_contract(frame, data)
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
    entry = write_lock(policy, frame)
    out.write(
        f"approved {entry.name}: sha256 {entry.sha256}, {entry.rows} rows, "
        f"{len(entry.columns)} columns -> {lock_path.name}\n"
    )
    if previous is None:
        out.write("  first approval of this file\n")
    elif previous.sha256 == entry.sha256:
        out.write("  unchanged since the last approval\n")
    else:
        out.write(f"  sha256 {previous.sha256[:12]}... -> {entry.sha256[:12]}...\n")
        out.write(f"  rows {previous.rows} -> {entry.rows} ({entry.rows - previous.rows:+d})\n")
        added = [c for c in entry.columns if c not in previous.columns]
        removed = [c for c in previous.columns if c not in entry.columns]
        if added:
            out.write(f"  columns added: {', '.join(added)}\n")
        if removed:
            out.write(f"  columns removed: {', '.join(removed)}\n")
    return 0


def verify(policy: LoadedPolicy, *, out: TextIO) -> int:
    """Compare the data file with its lock; 0 when it matches, 1 when it does not."""
    problems = verify_lock(policy)
    for problem in problems:
        out.write(f"{problem.rule} {problem.message}\n")
    if not problems:
        out.write(f"{policy.policy.data.path}: matches {policy.policy.data.lock}\n")
    return 1 if problems else 0
