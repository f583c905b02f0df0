"""Approving a data snapshot: the explicit act that lets changed data reach training."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from gates.console import one_line
from gates.errors import GateError
from pipeline.approval import (
    ApprovalError,
    approver_of,
    approvers,
    check_approval,
    sign_approval,
)
from pipeline.config import LoadedPolicy
from pipeline.data import (
    LockEntry,
    Violation,
    check_contract,
    check_data_file,
    lock_key,
    read_lock,
    read_table,
    verify_lock,
    write_lock,
    write_lock_entry,
)
from pipeline.errors import DataError
from pipeline.keys.local import read_env_pem
from pipeline.lockserial import lock_serial
from pipeline.poison import label_baseline, near_baseline
from pipeline.signing import Signer, SigningError, private_key_from_pem

if TYPE_CHECKING:
    import pandas as pd
from pipeline.profile import (
    ColumnDrift,
    DataProfile,
    build_profile,
    class_shift,
    column_drift,
    describe_changes,
)


def approve(policy: LoadedPolicy, *, out: TextIO, rebaseline: bool = False) -> int:
    """Check the data against the contract; if it holds, profile it, rewrite the lock, say what changed.

    The reference profile (the baseline the data gate measures drift and range against) is
    kept from the earlier approval unless ``rebaseline`` is set or there is none yet.
    A file over ``[data].stream_above_mb`` is checked and profiled in chunks
    (``pipeline.stream``), never loaded whole.
    Returns 0 when approved, 1 when the contract is broken (the lock is left untouched); bad
    input raises DataError before anything is written.
    """
    data = policy.policy.data
    path = policy.resolve(data.path)
    size = check_data_file(path, max_bytes=data.checks.max_file_bytes)
    lock_path = policy.resolve(data.lock)
    try:
        signer = _approver_key(policy)
    except ApprovalError as err:
        out.write(f"not approved: {one_line(str(err))}; the lock is unchanged\n")
        return 1
    # What this approval replaces, read before the lock is rewritten (see _replaced); the new
    # lock's serial goes above the base's and the one on disk: a lock's bytes never come back.
    replaced, above = _replaced(lock_path) if signer is not None else (None, 0)
    previous = _previous(policy, path, lock_path, out=out)
    kept = previous.reference if previous is not None and not rebaseline else None
    if data.streams(size):
        code = _approve_streaming(policy, previous=previous, kept=kept, above=above, out=out)
        return code if code else _sign(policy, signer, replaced, out=out)
    frame = read_table(
        path,
        fmt=data.resolved_format,
        max_bytes=data.checks.max_file_bytes,
        max_pages=data.max_pages,
    )
    clean, violations = check_contract(frame, data)
    if violations:
        return _refuse(path, violations, out=out)
    profile = build_profile(clean, data)
    # The label witnesses' rates on this snapshot: the data gate adds the excess over them.
    profile = replace(profile, label_rates=label_baseline(clean, data, seed=policy.policy.run.seed))
    # Its near copies (coarse measurements repeat): the near-duplicate check's yardstick.
    profile = replace(
        profile,
        near_copies=near_baseline(
            clean, data, reference=kept or profile, seed=policy.policy.run.seed
        ),
    )
    entry = write_lock(policy, frame, profile=profile, reference=kept or profile, above=above)
    drift = shift = None
    if kept is not None:
        drift = column_drift(clean, kept)
        shift = class_shift(clean[data.label], kept)
    _report(previous, entry, profile, lock_path=lock_path, drift=drift, shift=shift, out=out)
    _screen_new(policy, clean, previous, out=out)
    return _sign(policy, signer, replaced, out=out)


def _previous(
    policy: LoadedPolicy, path: Path, lock_path: Path, *, out: TextIO
) -> LockEntry | None:
    """The approved entry this approval builds on (its reference profile is kept): with an
    approved lock named (``$GATES_APPROVED_LOCK``, ``$GATES_BASE_POLICY``'s ``[data].lock``),
    that lock's, never the pull request's lock on disk, whose reference (DATA070's
    ``label_rates``, drift and range) its author could have edited (red team 14); else the lock
    on disk's (None when it is missing or malformed). DataError when the named lock cannot be
    read."""
    from gates.data_integrity import trusted_lock  # noqa: PLC0415

    key = lock_key(policy, path)
    try:
        on_disk = read_lock(lock_path).files.get(key)
    except DataError:
        on_disk = None
    try:
        named = trusted_lock()
    except GateError as err:
        raise DataError(str(err)) from None
    if named is None:
        return on_disk
    trusted_path, shown = named
    try:
        entry = read_lock(trusted_path).files.get(key)
    except DataError as err:
        msg = f"{shown}: the approved lock cannot be read: {err}"
        raise DataError(msg) from None
    theirs = on_disk.reference if on_disk is not None else None
    ours = entry.reference if entry is not None else None
    if theirs is not None and (ours is None or theirs.to_dict() != ours.to_dict()):
        out.write(
            f"note: the reference profile in {lock_path} differs from the approved lock's "
            f"({shown}); the approved lock's is kept\n"
        )
    return entry


def _approver_key(policy: LoadedPolicy) -> tuple[Signer, str] | None:
    """The data approver's key from $[roles].approver_key_env (None: no approvers configured).

    ApprovalError, before anything is written, when approvers are configured and the variable
    is empty or holds a key no approver has.
    """
    allowed = approvers(policy)
    if not allowed.keys:
        return None
    name = policy.policy.roles.approver_key_env
    pem = read_env_pem(name)
    if not pem:
        msg = (
            f"[roles].approvers is set ({', '.join(sorted(allowed.keys))}): only a data approver "
            f"may approve; set ${name} to a data approver's private key, its PEM text "
            f'({name}="$(cat carol.key)"; docs/keys.md, "Data approvers")'
        )
        raise ApprovalError(msg)
    try:
        key = private_key_from_pem(
            pem.encode("utf-8"), source=f"${name}", release=True, algorithm=None
        )
    except SigningError as err:
        raise ApprovalError(str(err)) from None
    return key, approver_of(key, allowed)


def _replaced(lock_path: Path) -> tuple[bytes | None, int]:
    """The approved lock this approval replaces, which it names (the data gate takes a changed
    lock only when approved over the base branch's): the one ``$GATES_APPROVED_LOCK`` or
    ``$GATES_BASE_POLICY`` names when set, else the lock on disk before it is rewritten; and
    the serial the new lock must go above besides the one on disk: the named lock's (DataError
    when it is not a whole number), else 0."""
    from gates.data_integrity import trusted_lock_bytes  # noqa: PLC0415

    trusted = trusted_lock_bytes()
    if trusted is not None:
        return trusted, lock_serial(trusted, where="the base branch's approved lock")
    try:
        return lock_path.read_bytes(), 0
    except FileNotFoundError:
        return None, 0


def _sign(
    policy: LoadedPolicy,
    signer: tuple[Signer, str] | None,
    replaced: bytes | None,
    *,
    out: TextIO,
) -> int:
    """Sign the lock just written (with approvers configured) over the lock it replaces."""
    if signer is None:
        return 0
    key, name = signer
    path = sign_approval(policy, key, base=replaced)
    out.write(
        f"  signed by data approver {name} (key id {key.public.keyid[:12]}...) -> {path.name}\n"
    )
    return 0


def _screen_new(
    policy: LoadedPolicy, clean: pd.DataFrame, previous: LockEntry | None, *, out: TextIO
) -> None:
    """Screen the rows this approval adds or changes against the previously approved rows.

    Approving is a person's decision, so the result is printed, not enforced here: the data
    gate enforces it (in CI against the protected branch's lock, GATES_APPROVED_LOCK).
    """
    from gates.data_integrity import (  # noqa: PLC0415
        Approval,
        BatchRefused,
        judge_batch,
        screen_new_rows,
    )

    if previous is None or previous.profile is None or not previous.profile.row_digests:
        return
    data = policy.policy.data
    approval = Approval(
        reference=previous.reference,
        digests=previous.profile.row_digests,
        source="the previous approval",
        trusted=True,
        digest_columns=previous.profile.digest_columns,
    )
    batch, note = screen_new_rows(clean, data, approval, seed=policy.policy.run.seed)
    if batch is None:
        if isinstance(note, BatchRefused):
            out.write(
                "  new rows not screened (the data gate fails on this against the base "
                f"branch's lock: DATA109): {one_line(note)}\n"
            )
        elif note is not None and not note.startswith("every row"):
            out.write(f"  new rows not screened: {one_line(note)}\n")
        return
    flagged = batch.flagged_rows()
    out.write(
        f"  new or changed rows screened against the {batch.approved} previously approved: "
        f"{flagged.size} of {batch.new} flagged (listed by the data gate in data.flagged.csv)\n"
    )
    for finding in judge_batch(
        batch, data, data.path, source="the previous approval", trusted=True
    ):
        word = "the data gate fails on this" if finding.severity.value == "error" else "note"
        out.write(f"  {word}: {finding.rule} {one_line(finding.message)}\n")


def _approve_streaming(
    policy: LoadedPolicy,
    *,
    previous: LockEntry | None,
    kept: DataProfile | None,
    above: int,
    out: TextIO,
) -> int:
    """``approve`` for a file over ``[data].stream_above_mb``: three passes in chunks."""
    from pipeline.stream import HISTOGRAM_BINS, scan, stream_profile  # noqa: PLC0415

    data = policy.policy.data
    path = policy.resolve(data.path)
    chunk_rows = data.stream_chunk_rows
    first = scan(
        path, data, chunk_rows=chunk_rows, max_bytes=data.checks.max_file_bytes, reference=kept
    )
    if first.violations:
        return _refuse(path, list(first.violations), out=out)
    profile = stream_profile(
        first, data, chunk_rows=chunk_rows, max_bytes=data.checks.max_file_bytes
    )
    entry = write_lock_entry(
        policy,
        rows=first.rows,
        columns=first.columns,
        profile=profile,
        reference=kept or profile,
        above=above,
    )
    drift = list(first.drift) if kept is not None else None
    shift = first.class_shift if kept is not None else None
    _report(
        previous,
        entry,
        profile,
        lock_path=policy.resolve(data.lock),
        drift=drift,
        shift=shift,
        out=out,
        note=(
            f"streamed in chunks of {chunk_rows} rows (the file is over [data].stream_above_mb = "
            f"{data.stream_above_mb:g} MiB): deciles within 1/{HISTOGRAM_BINS} of each "
            "column's range, everything else exact"
        ),
    )
    return 0


def _refuse(path: Path, violations: list[Violation], *, out: TextIO) -> int:
    out.write(f"not approved: {path} breaks its contract; the lock is unchanged\n")
    for violation in violations:
        out.write(
            f"  {violation.rule} {one_line(violation.message)} ({one_line(str(violation.policy_key))})\n"
        )
    return 1


def _report(
    previous: LockEntry | None,
    entry: LockEntry,
    profile: DataProfile,
    *,
    lock_path: Path,
    drift: list[ColumnDrift] | None,
    shift: tuple[str, float] | None,
    out: TextIO,
    note: str | None = None,
) -> None:
    out.write(
        f"approved {entry.name}: sha256 {entry.sha256}, {entry.rows} rows, "
        f"{len(entry.columns)} columns -> {lock_path.name} (serial {read_lock(lock_path).serial})\n"
    )
    if note is not None:
        out.write(f"  {note}\n")
    _report_changes(previous, entry, profile, out=out)
    if drift is not None and shift is not None:
        worst = max(drift, key=lambda d: d.psi) if drift else None
        cls, moved = shift
        text = f"worst column PSI {worst.psi:.3f} ({worst.column})" if worst else "no columns"
        out.write(
            f"  reference profile kept from the earlier approval (replace it with --rebaseline): "
            f"{text}, largest class shift {moved:.3f} ({cls or '-'})\n"
        )
    else:
        out.write("  reference profile: this snapshot is the new baseline\n")


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
            out.write(f"  columns added: {one_line(', '.join(added))}\n")
        if removed:
            out.write(f"  columns removed: {one_line(', '.join(removed))}\n")
        out.write("  the earlier lock had no profile: this approval records the first one\n")
        return
    for line in describe_changes(previous.profile, profile):
        out.write(f"  {one_line(line)}\n")


def verify(policy: LoadedPolicy, *, out: TextIO) -> int:
    """Compare the data file with its lock (and, with [roles].approvers, the lock with its
    approval); 0 when they match, 1 when they do not."""
    from gates.data_integrity import trusted_lock_bytes  # noqa: PLC0415

    problems = [f"{problem.rule} {problem.message}" for problem in verify_lock(policy)]
    try:
        approver = check_approval(policy, trusted=trusted_lock_bytes())
    except (ApprovalError, GateError) as err:  # GateError: the base's lock cannot be read
        problems.append(f"DATA003 {err}")
        approver = None
    for problem in problems:
        out.write(f"{one_line(problem)}\n")
    if not problems:
        by = f", approved by {approver}" if approver else ""
        out.write(f"{policy.policy.data.path}: matches {policy.policy.data.lock}{by}\n")
    return 1 if problems else 0
