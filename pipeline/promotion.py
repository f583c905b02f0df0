"""Who may promote: promotions signed by a release manager's key, and the registry's audit trail.

A promotion is a DSSE envelope (payload type ``PROMOTION_TYPE``) over the model's SHA-256, the
run id, the stage and the registry version, signed by a key that ``[roles].promoters`` lists by
name and committed public key. The registry refuses a promotion whose signature verifies under
no listed promoter, or whose payload names another model, run, stage or version (a promotion of
one model replayed onto another).

Every promotion is appended to ``<registry>/promotions.jsonl``: one JSON object a line, each
holding the SHA-256 of the line before it (the first: 64 zeros), the event, and the promotion
envelope. A line edited, removed or reordered breaks the chain at that line and reading the log
refuses it, naming the line. The log is written under the registry's lock, appended and fsynced.

Nothing inside the log tells a cut at its end (a trailing ``revoke`` removed) from a log that
ended there. ``$GATES_REGISTRY_HEAD`` (``N:SHA256``, printed by every move and by
``python -m gates registry head``) pins it from outside: set in the deploy's environment, every
read refuses a log with fewer than N lines or whose line N hashes to anything else.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError
from pipeline.fsio import read_regular, sha256_bytes, strict_json
from pipeline.gittree import committed_in
from pipeline.signing import (
    Envelope,
    PublicKey,
    Signer,
    SigningError,
    parse_envelope,
    sign_envelope,
    verify_envelope,
)

PROMOTION_TYPE = "application/vnd.secure-ml-pipeline.promotion+json"
# The stage a revocation is signed for: a release manager's signature over (model, run, version)
# with this stage withdraws the version everywhere the registry is read.
REVOKED_STAGE = "revoked"
AUDIT_FILE = "promotions.jsonl"
# The audit log, read whole: a line per move (a few KiB), so this is millions of moves.
MAX_LOG_BYTES = 256 << 20
GENESIS = "0" * 64
# The audit log's head pinned outside the registry (the deploy's environment, CI's variables).
HEAD_ENV = "GATES_REGISTRY_HEAD"


class PromotionError(PipelineError):
    """A promotion is not signed by a release manager, names another model, or the audit log is broken."""


@dataclass(frozen=True)
class Promotion:
    """What a release manager signs: this model, from this run, to this stage, as this version."""

    model_sha256: str
    run_id: str
    stage: str
    version: str
    # A rollback: the version it moves the champion away from. Signed as its own field, so a
    # promotion signature is never a rollback signature, and a rollback from one version is
    # never replayed as a rollback from another.
    rolled_back_from: str | None = None

    def payload(self) -> bytes:
        """The exact signed bytes (sorted-key JSON)."""
        document = {
            "_type": PROMOTION_TYPE,
            "model_sha256": self.model_sha256,
            "run_id": self.run_id,
            "stage": self.stage,
            "version": self.version,
        }
        if self.rolled_back_from is not None:
            document["rolled_back_from"] = self.rolled_back_from
        return json.dumps(document, sort_keys=True).encode()


def sign_promotion(promotion: Promotion, *, key: Signer) -> Envelope:
    """A release manager's signature over ``promotion``."""
    return sign_envelope(promotion.payload(), key=key, payload_type=PROMOTION_TYPE)


def verify_promotion(
    envelope: Envelope, *, expected: Promotion, promoters: Mapping[str, PublicKey], source: str
) -> str:
    """The name of the promoter whose key signed ``expected``; PromotionError otherwise."""
    if not promoters:
        msg = f"{source}: refused: [roles].promoters lists no release manager"
        raise PromotionError(msg)
    signer = None
    for name, key in promoters.items():
        try:
            verify_envelope(envelope, trusted=key, payload_type=PROMOTION_TYPE, source=source)
        except SigningError:
            continue
        signer = name
        break
    if signer is None:
        named = ", ".join(f"{keyid[:12]}..." for keyid, _ in envelope.signatures) or "none"
        msg = (
            f"{source}: refused: the promotion is signed by key id(s) {named}, which verify under "
            f"no release manager in [roles].promoters ({', '.join(sorted(promoters))})"
        )
        raise PromotionError(msg)
    if envelope.payload != expected.payload():
        what = (
            f"a rollback from {expected.rolled_back_from} to"
            if expected.rolled_back_from is not None
            else "a promotion of"
        )
        msg = (
            f"{source}: refused: the promotion {signer} signed is not of this model: expected "
            f"{what} model {expected.model_sha256[:12]}..., run {expected.run_id}, stage "
            f"{expected.stage}, version {expected.version}"
        )
        raise PromotionError(msg)
    return signer


def append_event(registry: Path, event: Mapping[str, Any], envelope: Envelope | None) -> None:
    """Append one event to the hash-chained audit log (call under the registry's lock)."""
    path = registry / AUDIT_FILE
    lines = read_events(registry)
    prev = lines[-1]["_sha256"] if lines else GENESIS
    record = {
        "prev": prev,
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "event": dict(event),
        "envelope": json.loads(envelope.to_json()) if envelope else None,
    }
    line = json.dumps(record, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def refuse_committed(registry: Path, root: Path) -> None:
    """PromotionError when any of the registry folder comes from the commit checked out at ``root``.

    The registry is CI's own (written by the deploy job, its head pinned by ``$GATES_REGISTRY_HEAD``);
    a pull request controls every committed byte and commits into the gitignored folder with
    ``git add -f``: an older signed champion and a log that stops before its revocation, read by
    the cv and risk gates as the champion to beat and copied into the serving image. Every
    reader calls this first. Outside a git work tree nothing can be told; a ``.git`` with no git
    that runs is refused (``pipeline.gittree.from_the_tree``).
    """
    found = committed_in(registry, root)
    if found is None:
        return
    msg = (
        f"{registry}: refused: {found}, in the registry folder [release].registry_dir names; "
        "the registry is CI's own, never taken from the checkout: remove it from the "
        "repository (git rm -r --cached) and set [release].registry_dir to a folder git does "
        "not track"
    )
    raise PromotionError(msg)


def read_events(registry: Path) -> list[dict[str, Any]]:
    """Every event of the audit log, the chain checked; PromotionError names the first bad line.

    A last line without its newline (a crash mid-append) is ignored, not an error: it was never
    acknowledged.
    """
    path = registry / AUDIT_FILE
    try:
        # Never through a symlink, FIFO or device: a registry folder the checkout brings
        # (``git add -f``) held a symlink to a FIFO that hung the cv gate.
        data = read_regular(path, limit=MAX_LOG_BYTES)
    except FileNotFoundError:
        data = b""  # no log yet: still checked against a pinned head below
    except OSError as err:
        raise PromotionError(f"{path}: refused, not read: {err.strerror or err}") from None
    events: list[dict[str, Any]] = []
    prev = GENESIS
    for number, raw in enumerate(data.split(b"\n")[:-1], start=1):
        try:
            record = strict_json(raw)  # it carries signed envelopes: one reading only
        except ValueError as err:  # not JSON or UTF-8, a name twice, NaN, a 4,300-digit number
            raise PromotionError(f"{path}:{number}: refused: not a JSON object ({err})") from None
        except RecursionError:
            raise PromotionError(f"{path}:{number}: refused: not a JSON object") from None
        if not isinstance(record, dict) or record.get("prev") != prev:
            msg = (
                f"{path}:{number}: refused: the hash chain is broken here (a line before it was "
                "edited, removed or reordered)"
            )
            raise PromotionError(msg)
        prev = sha256_bytes(raw + b"\n")
        record["_sha256"] = prev
        events.append(record)
    _check_pinned_head(path, events)
    return events


def head(events: list[dict[str, Any]]) -> str:
    """``N:SHA256``: the number of lines of the audit log and the hash of its last one."""
    return f"{len(events)}:{events[-1]['_sha256'] if events else GENESIS}"


def pinned_head() -> str | None:
    """``$GATES_REGISTRY_HEAD`` as set, or None when it is unset, empty or only whitespace.

    One definition for every reader: a CI system that passes an undefined variable as an empty
    string (GitHub's ``${{ vars.NAME }}``) pins nothing, as an unset variable does.
    """
    return os.environ.get(HEAD_ENV, "").strip() or None


def _check_pinned_head(path: Path, events: list[dict[str, Any]]) -> None:
    """Refuse a log cut below, or rewritten before, the head ``$GATES_REGISTRY_HEAD`` pins."""
    pinned = pinned_head()
    if pinned is None:
        return
    count, _, digest = pinned.partition(":")
    if not (count.isdigit() and count.isascii() and len(digest) == 64):
        msg = (
            f"${HEAD_ENV}: expected N:SHA256 (the audit log's line count and its last line's "
            f"hash, from 'python -m gates registry head'), found {pinned[:80]!r}"
        )
        raise PromotionError(msg)
    number = int(count)
    if number > len(events):
        msg = (
            f"{path}: refused: the audit log has {len(events)} line(s) but ${HEAD_ENV} pins "
            f"line {number}: the log was cut or an older registry put back"
        )
        raise PromotionError(msg)
    found = events[number - 1]["_sha256"] if number else GENESIS
    if found != digest.lower():
        msg = (
            f"{path}:{number}: refused: the line hashes to {found[:12]}..., ${HEAD_ENV} pins "
            f"{digest[:12]}...: the log was replaced by another"
        )
        raise PromotionError(msg)


def recorded_promotion(
    registry: Path, *, expected: Promotion, promoters: Mapping[str, PublicKey]
) -> str:
    """The promoter of the audit log's last promotion of ``expected.version``, verified now."""
    path = registry / AUDIT_FILE
    for number, record in reversed(list(enumerate(read_events(registry), start=1))):
        event = record.get("event")
        if isinstance(event, dict) and event.get("version") == expected.version:
            source = f"{path}:{number}"
            if event.get("action") != "promote" or not record.get("envelope"):
                msg = f"{source}: refused: version {expected.version} was last {event.get('action')!r}, not promoted"
                raise PromotionError(msg)
            try:
                envelope = parse_envelope(json.dumps(record["envelope"]), source=source)
            except SigningError as err:
                raise PromotionError(str(err)) from None
            signer = verify_promotion(
                envelope, expected=expected, promoters=promoters, source=source
            )
            if event.get("promoter") != signer:
                msg = (
                    f"{source}: refused: the entry names promoter {event.get('promoter')!r} but "
                    f"the promotion is signed by {signer!r} (the log was edited)"
                )
                raise PromotionError(msg)
            return signer
    msg = f"{path}: refused: no signed promotion of version {expected.version} in the audit log"
    raise PromotionError(msg)


def revocation(registry: Path, version: str) -> str | None:
    """``promotions.jsonl:<line>`` of the first revocation of ``version``, or None.

    Any revocation entry in an intact chain withdraws the version, signed or not: refusing to
    load is the safe direction, and the chain check still refuses a log that was edited.
    """
    path = registry / AUDIT_FILE
    for number, record in enumerate(read_events(registry), start=1):
        event = record.get("event")
        if (
            isinstance(event, dict)
            and event.get("action") == "revoke"
            and event.get("version") == version
        ):
            return f"{path}:{number}"
    return None


# A re-signing of every registry version under a new release key (``python -m gates registry
# rotate``): it names no single version (``event["envelopes"]`` maps each version to its new
# envelope's SHA-256), so no reader takes it for a move, a promotion or a revocation.
ROTATE = "rotate"


def envelope_digests(registry: Path, *, pinned_only: bool = False) -> dict[str, str]:
    """Each version's envelope SHA-256 as the audit log last recorded it (the chain checked).

    A promote or rollback records the envelope it made champion; a rotation records the
    envelope each version was re-signed into. The last record wins. A digest only says which
    envelope is meant: the envelope must still verify under the trusted key. ``pinned_only``:
    only the lines up to the head ``$GATES_REGISTRY_HEAD`` pins (all of them without a pin).
    """
    found: dict[str, str] = {}
    events = read_events(registry)
    pinned = pinned_head()
    if pinned_only and pinned is not None:
        events = events[: int(pinned.partition(":")[0])]  # its form checked by read_events
    for record in events:
        event = record.get("event")
        if not isinstance(event, dict):
            continue
        if event.get("action") in MOVES:
            digest = event.get("envelope_sha256")
            if isinstance(digest, str):
                found[str(event.get("version", ""))] = digest
        elif event.get("action") == ROTATE and isinstance(event.get("envelopes"), dict):
            for version, digest in event["envelopes"].items():
                if isinstance(digest, str):
                    found[str(version)] = digest
    return found


# The events that make a version the champion: the audit log's last one names the current
# champion when release managers are configured.
MOVES = ("promote", "rollback")


@dataclass(frozen=True)
class Move:
    """A promote or rollback entry of the audit log, and the champion before it."""

    source: str  # promotions.jsonl:<line>
    event: dict[str, Any]
    envelope: dict[str, Any] | None
    previous: str | None  # the version the move before this one made champion (None: first)

    @property
    def version(self) -> str:
        """The version this move made the champion."""
        return str(self.event.get("version", ""))

    @property
    def action(self) -> str:
        """``promote`` or ``rollback``."""
        return str(self.event.get("action", ""))


def moves(registry: Path) -> list[Move]:
    """Every promote and rollback of the audit log, in order, the chain checked."""
    path = registry / AUDIT_FILE
    found: list[Move] = []
    previous: str | None = None
    for number, record in enumerate(read_events(registry), start=1):
        event = record.get("event")
        if isinstance(event, dict) and event.get("action") in MOVES:
            envelope = record.get("envelope")
            move = Move(
                f"{path}:{number}",
                event,
                envelope if isinstance(envelope, dict) else None,
                previous,
            )
            found.append(move)
            previous = move.version
    return found


def verify_move(move: Move, *, expected: Promotion, promoters: Mapping[str, PublicKey]) -> str:
    """The promoter who signed ``move``: a promotion of, or a rollback to, ``expected``.

    ``expected`` is the promotion of the version as the registry reads it (stage ``production``);
    a rollback is checked as a rollback from the champion the move before it made, so a
    rollback line copied to the end of the log (from an older champion) is refused.
    """
    if move.action == "rollback":
        claimed = move.event.get("from")
        if claimed != move.previous:
            msg = (
                f"{move.source}: refused: the rollback says it moved the champion away from "
                f"{claimed!r}, but the champion before it was {move.previous!r} (a rollback line "
                "replayed or written by hand)"
            )
            raise PromotionError(msg)
        expected = Promotion(
            expected.model_sha256,
            expected.run_id,
            expected.stage,
            expected.version,
            rolled_back_from=move.previous,
        )
    if not move.envelope:
        msg = f"{move.source}: refused: the {move.action} of version {move.version} is not signed by a release manager"
        raise PromotionError(msg)
    try:
        envelope = parse_envelope(json.dumps(move.envelope), source=move.source)
    except SigningError as err:
        raise PromotionError(str(err)) from None
    signer = verify_promotion(envelope, expected=expected, promoters=promoters, source=move.source)
    if move.event.get("promoter") != signer:
        msg = (
            f"{move.source}: refused: the entry names promoter {move.event.get('promoter')!r} but "
            f"the {'rollback' if move.action == 'rollback' else 'promotion'} is signed by "
            f"{signer!r} (the log was edited)"
        )
        raise PromotionError(msg)
    return signer
