"""``python -m gates history ...`` and ``python -m gates feedback ...``: returns exit codes, never exits.

history verify: 0 intact, 1 tampered or truncated. feedback ingest: 0 quarantined and clean,
1 quarantined but rejected. feedback approve: 0 approved, 1 refused. Bad input is a
PipelineError or a GatesError (exit 2 in the CLI).
"""

from __future__ import annotations

import argparse
import getpass
import sys

from gates.feedback import history, quarantine
from pipeline.config import LoadedPolicy

OK, FAILED = 0, 1


def history_command(args: argparse.Namespace, policy: LoadedPolicy) -> int:
    """Dispatch ``history verify|head|show``."""
    path = policy.resolve(policy.policy.feedback.history)
    cipher = history.history_cipher(policy)
    out = sys.stdout
    if args.history_command == "head":
        out.write(f"{history.head_hash(path, cipher=cipher)}\n")
        return OK
    if args.history_command == "show":
        for record in history.records(path, cipher=cipher)[-max(1, args.n) :]:
            metrics = record.get("metrics", {})
            acc = metrics.get("cv.accuracy.mean") if isinstance(metrics, dict) else None
            shown = f" accuracy {acc:.4f}" if isinstance(acc, int | float) else ""
            out.write(
                f"{record.get('seq'):>4} {record.get('run_id')} {record.get('verdict', '?'):<8}"
                f" commit {str(record.get('commit', '?'))[:12]}{shown}\n"
            )
        return OK
    result = history.verify(path, expect_head=args.expect_head, cipher=cipher)
    if result:
        out.write(f"{path}: intact, {result.records} records, head {result.head}\n")
        for note in result.pending:
            out.write(f"  recoverable: {note}\n")
        return OK
    out.write(f"{path}: FAILED verification ({len(result.problems)} problem(s))\n")
    for problem in result.problems:
        where = f"line {problem.line}" if problem.line else "file"
        out.write(f"  {where}: {problem.message}\n")
    return FAILED


def feedback_command(args: argparse.Namespace, policy: LoadedPolicy) -> int:
    """Dispatch ``feedback ingest|list|approve``."""
    out = sys.stdout
    if args.feedback_command == "ingest":
        batch = quarantine.ingest(policy, args.file)
        where = quarantine.quarantine_dir(policy) / batch.batch_id
        if batch.status == quarantine.REJECTED:
            out.write(
                f"rejected: batch {batch.batch_id} ({batch.rows} rows) kept in {where} for "
                f"review; it cannot be approved:\n"
            )
            for problem in batch.problems:
                rows = f" rows {list(problem.rows)}" if problem.rows else ""
                key = f" ({problem.policy_key})" if problem.policy_key else ""
                out.write(f"  {problem.rule} {problem.message}{rows}{key}\n")
            return FAILED
        out.write(
            f"quarantined: batch {batch.batch_id}, {batch.rows} rows, "
            f"{batch.disagreement_rate:.1%} labels differ from predictions; nothing reaches "
            f"training until: python -m gates feedback approve {batch.batch_id}\n"
        )
        return OK
    if args.feedback_command == "list":
        batches = quarantine.list_batches(policy)
        if not batches:
            out.write("no feedback batches\n")
        for batch in batches:
            extra = f" by {batch.approved_by}" if batch.approved_by else ""
            out.write(
                f"{batch.batch_id}  {batch.status:<11}{extra} {batch.rows} rows from "
                f"{batch.source}, {len(batch.problems)} problem(s)\n"
            )
        return OK
    who = args.by or getpass.getuser()
    batch, problems = quarantine.approve(policy, args.batch, by=who)
    if problems:
        out.write(f"not approved: batch {batch.batch_id}; the training data is unchanged\n")
        for problem in problems:
            out.write(f"  {problem.rule} {problem.message}\n")
        return FAILED
    out.write(
        f"approved: batch {batch.batch_id} ({batch.rows} rows) appended to "
        f"{policy.policy.data.path} by {who}; data re-locked (sha256 {batch.data_sha256_after}). "
        "Run the gates to retrain on it.\n"
    )
    return OK
