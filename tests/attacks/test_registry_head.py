"""A registry cut back or put back to an earlier state, refused by a head pinned outside it.

The audit log's hash chain refuses a line edited, removed or reordered, but nothing inside the
registry tells a log cut at its end (a trailing ``revoke`` removed) from a log that ended there.
``$GATES_REGISTRY_HEAD`` (``N:SHA256``, printed by every move and by ``python -m gates registry
head``) is set in the deploy's environment, which a registry writer does not control; every
reader then refuses a log shorter than N lines or whose line N hashes to anything else.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.rollback_support import Promoted, build, run_cli

HEAD_ENV = "GATES_REGISTRY_HEAD"


@pytest.fixture(scope="module")
def managed_registry(
    signed_chain: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory
) -> Promoted:
    return build(signed_chain, tmp_path_factory.mktemp("registry-head"), roles=True)


def _revoke_champion(project: Promoted, monkeypatch: Any, capsys: Any) -> str:
    """Revoke v3 (the champion) as release manager alice; the head the command printed."""
    monkeypatch.setenv("GATES_PROMOTER_KEY", project.pems["alice"])
    code, out = run_cli(project, monkeypatch, capsys, "revoke", project.versions[-1])
    monkeypatch.delenv("GATES_PROMOTER_KEY")
    assert code == 0, out
    printed = [line for line in out.splitlines() if line.startswith("registry head: ")]
    assert len(printed) == 1, out
    return printed[0].split()[2]


def _log(project: Promoted) -> Path:
    return project.root / "registry" / "promotions.jsonl"


def _cut_last_line(project: Promoted) -> None:
    lines = _log(project).read_bytes().splitlines(keepends=True)
    _log(project).write_bytes(b"".join(lines[:-1]))


def _rechain(records: list[dict[str, Any]]) -> bytes:
    """Lines whose ``prev`` hashes are recomputed: a chain anyone can write without a key."""
    from pipeline.fsio import sha256_bytes
    from pipeline.promotion import GENESIS

    out, prev = [], GENESIS
    for record in records:
        chained = {**record, "prev": prev}
        line = json.dumps(chained, sort_keys=True, separators=(",", ":")).encode() + b"\n"
        prev = sha256_bytes(line)
        out.append(line)
    return b"".join(out)


def _replaced_same_length(project: Promoted) -> None:
    # The revoke of the champion removed from the middle of a re-chained log, and an unsigned
    # revoke of the oldest version appended so the log keeps its length.
    records = [json.loads(line) for line in _log(project).read_bytes().splitlines()]
    revoke = records[-1]
    kept = records[:-1]
    filler = {**revoke, "event": {**revoke["event"], "version": project.versions[0]}}
    filler["envelope"] = None
    _log(project).write_bytes(_rechain([*kept, filler]))


def _older_registry_put_back(project: Promoted) -> None:
    # The whole log and pointer deleted: the registry's first state, no champion at all.
    _log(project).unlink()
    (project.root / "registry/champion").unlink()


ATTACKS = {
    "trailing revoke cut": (_cut_last_line, "the log was cut or an older registry put back"),
    "log re-chained to the same length": (_replaced_same_length, "replaced by another"),
    "log and pointer deleted": (_older_registry_put_back, "has 0 line(s)"),
}


@pytest.mark.parametrize("case", list(ATTACKS), ids=list(ATTACKS))
def test_a_registry_rolled_back_behind_the_pinned_head_is_refused_everywhere(
    case, managed_registry, tmp_path, monkeypatch, capsys
):
    from gates.service.server import verified_model
    from pipeline.attestation import AttestationError
    from pipeline.champion import RegistryError
    from pipeline.config import load_policy

    project = managed_registry.copy(tmp_path / "p")
    head = _revoke_champion(project, monkeypatch, capsys)
    code, out = run_cli(project, monkeypatch, capsys, "registry", "head")
    assert (code, out.strip()) == (0, head)
    attack, expected = ATTACKS[case]
    attack(project)

    # Without the pin the attack works: nothing inside the registry tells (the limit the pin
    # closes). A cut or re-chained log serves the revoked champion again.
    monkeypatch.delenv(HEAD_ENV, raising=False)
    if case != "log and pointer deleted":
        assert project.registry().champion().version == project.versions[-1]
    else:
        assert project.registry().champion() is None

    monkeypatch.setenv(HEAD_ENV, head)
    code, out = run_cli(project, monkeypatch, capsys, "verify", "--champion")
    assert code == 1, out
    assert expected in out, out
    assert "Traceback" not in out
    with pytest.raises(RegistryError, match=re.escape(expected)):
        project.registry().champion()
    with pytest.raises(AttestationError, match=re.escape(expected)):
        verified_model(load_policy(project.root / "policy.toml"), champion=True, key=None)
    code, out = run_cli(project, monkeypatch, capsys, "registry", "head")
    assert code == 1, out
    assert expected in out, out


def test_moves_after_the_pin_are_accepted_and_print_the_new_head(
    managed_registry, tmp_path, monkeypatch, capsys
):
    # The pin is a lower bound: the log grows past it with every move, and each move prints
    # the head to pin next.
    project = managed_registry.copy(tmp_path / "p")
    code, head = run_cli(project, monkeypatch, capsys, "registry", "head")
    assert code == 0, head
    assert head.strip().startswith("3:"), head
    monkeypatch.setenv(HEAD_ENV, head.strip())
    revoked = _revoke_champion(project, monkeypatch, capsys)
    assert revoked.startswith("4:"), revoked
    monkeypatch.setenv("GATES_PROMOTER_KEY", project.pems["bob"])
    code, out = run_cli(project, monkeypatch, capsys, "rollback")
    assert code == 0, out
    assert "registry head: 5:" in out, out
    assert project.registry().champion().version == project.versions[1]


@pytest.mark.parametrize(
    "pinned",
    ["4", "four:" + "0" * 64, "4:abc", "-1:" + "0" * 64, "٤:" + "0" * 64],
    ids=["no hash", "count not a number", "short hash", "negative", "non-ascii digit"],
)
def test_a_malformed_pin_is_one_clear_error(
    pinned, managed_registry, tmp_path, monkeypatch, capsys
):
    project = managed_registry.copy(tmp_path / "p")
    monkeypatch.setenv(HEAD_ENV, pinned)
    code, out = run_cli(project, monkeypatch, capsys, "verify", "--champion")
    assert code == 1, out
    assert f"${HEAD_ENV}: expected N:SHA256" in out, out
    assert "Traceback" not in out


def test_a_pin_ahead_of_the_log_is_refused_not_waited_for(
    managed_registry, tmp_path, monkeypatch, capsys
):
    # A pin from a later state (the registry restored from a backup older than the pin).
    project = managed_registry.copy(tmp_path / "p")
    code, head = run_cli(project, monkeypatch, capsys, "registry", "head")
    count, _, digest = head.strip().partition(":")
    monkeypatch.setenv(HEAD_ENV, f"{int(count) + 1}:{digest}")
    code, out = run_cli(project, monkeypatch, capsys, "verify", "--champion")
    assert code == 1, out
    assert "has 3 line(s) but $GATES_REGISTRY_HEAD pins line 4" in out, out


def test_a_cached_champion_comparison_is_not_reused_under_another_pin(
    project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cv and risk gates read the champion, so the gate cache keyed their outcome on the
    pointer and the audit log, but not on the pin: a registry cut back to a state a run had
    cached (unpinned, or under an older pin) had its outcome reused, PASSED against the revoked
    champion, where the pin now refuses the log (red team, 6 December). The pin is key
    material: another pin, or none, runs the gate again."""
    from gates import cache as gate_cache
    from gates.base import RunContext
    from gates.registry import spec

    context = RunContext(policy=project.load(), run_id="r", reports_dir=project.root / "reports")
    for name in ("cv", "risk"):
        gate = spec(name).load()
        monkeypatch.delenv(HEAD_ENV, raising=False)
        unpinned = gate.reads(context).external
        monkeypatch.setenv(HEAD_ENV, "3:" + "a" * 64)
        older = gate.reads(context).external
        monkeypatch.setenv(HEAD_ENV, " 4:" + "b" * 64 + "\n")
        pinned = gate.reads(context).external
        assert len({repr(unpinned), repr(older), repr(pinned)}) == 3, name
        assert gate_cache.reusable(spec(name), context), name


def test_the_feedback_screen_does_not_take_a_deleted_registry_for_no_champion(
    project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The feedback screen recomputes a batch's predictions with the champion, and when there
    is none compares the labels with the file's own predictions (the sender's). It took a
    registry with neither pointer nor log for "no champion" before reading the log, so a
    registry writer who deleted both, under a pin, turned the label-poisoning check (FBQ012)
    into a comparison with the sender's column (red team, 6 December). The log is read first:
    the pin refuses it, naming the file."""
    from gates.feedback.quarantine import champion_model
    from pipeline.errors import DataError

    policy = project.load()
    registry = policy.resolve(policy.policy.release.registry_dir)
    assert not (registry / "promotions.jsonl").exists()
    assert champion_model(policy) is None  # nothing pinned: nothing promoted yet
    monkeypatch.setenv(HEAD_ENV, "2:" + "a" * 64)
    with pytest.raises(
        DataError,
        match=r"promotions\.jsonl: refused: the audit log has 0 line\(s\) but "
        r"\$GATES_REGISTRY_HEAD pins line 2: the log was cut or an older registry put back",
    ):
        champion_model(policy)


def test_an_unreadable_trusted_key_does_not_turn_a_managed_registry_into_no_champion(
    managed_registry, tmp_path, monkeypatch
):
    # The cv and risk gates compare a candidate with the champion. When the trusted key could
    # not be read they answered "no champion" as soon as the pointer was missing, without
    # reading the audit log, which with release managers names the champion (and which a pin
    # may refuse): the candidate was then compared with nothing.
    from gates.base import GateError, RunContext
    from gates.cv_threshold import load_champion
    from pipeline.config import load_policy

    project = managed_registry.copy(tmp_path / "p")
    (project.root / "registry/champion").unlink()
    (project.root / "keys/release.pub").unlink()
    context = RunContext(
        policy=load_policy(project.root / "policy.toml"),
        run_id="r",
        reports_dir=project.root / "reports",
    )
    monkeypatch.delenv(HEAD_ENV, raising=False)
    with pytest.raises(GateError, match="a champion exists but the trusted key cannot be read"):
        load_champion(context)
    _cut_last_line(project)
    _cut_last_line(project)
    monkeypatch.setenv(HEAD_ENV, "3:" + "0" * 64)
    with pytest.raises(GateError, match="the log was cut or an older registry put back"):
        load_champion(context)


def test_the_feedback_trends_compare_with_the_verified_champion_only(
    managed_registry, tmp_path, monkeypatch, capsys
):
    """The feedback stage's trends (FB101) fall back to ``[feedback].champion``, the registry's
    pointer by default, when the cv gate did not compare with a champion. They read the pointer
    as plain JSON: a revoked champion, or one a cut log brought back behind the pin, was still
    the champion the run was compared with (from registry's open list, 6 December). Now the
    pointer is verified as every reader verifies it, and a failure is said in a FB110 warning."""
    from gates.feedback.trends import champion_record
    from pipeline.config import load_policy

    project = managed_registry.copy(tmp_path / "p")
    policy = load_policy(project.root / "policy.toml")
    monkeypatch.delenv(HEAD_ENV, raising=False)
    run_id = project.registry().champion().attestation.run_id
    history = [{"run_id": run_id, "metrics": {"cv.accuracy.mean": 0.97}}]
    champion, findings = champion_record(policy, history=history)
    assert findings == []
    assert champion.metrics == {"cv.accuracy.mean": 0.97}
    assert champion.source == f"champion {project.versions[-1]} (verified)"

    head = _revoke_champion(project, monkeypatch, capsys)
    assert project.pointer()["version"] == project.versions[-1]  # the pointer still names it
    champion, findings = champion_record(policy, history=history)
    assert champion is None
    assert [f.rule for f in findings] == ["FB110"], findings
    assert "champion failed verification" in findings[0].message
    assert "was revoked" in findings[0].message, findings[0].message

    _cut_last_line(project)  # the revoke line cut: the pin refuses the log
    monkeypatch.setenv(HEAD_ENV, head)
    champion, findings = champion_record(policy, history=history)
    assert champion is None
    assert "the log was cut or an older registry put back" in findings[0].message, findings


_LOAD_CHAMPION = """
import sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from gates.base import GateError, RunContext
from gates.cv_threshold import load_champion
from pipeline.config import load_policy

root = Path(sys.argv[2])
context = RunContext(policy=load_policy(root / "policy.toml"), run_id="r", reports_dir=root)
try:
    load_champion(context)
except GateError as err:
    print(err)
"""


def test_an_audit_log_that_is_a_symlink_to_a_fifo_is_refused_not_read(tmp_path: Path) -> None:
    """The cv and risk gates read the champion from ``[release].registry_dir``, a folder in the
    checkout whose files no path rule checks: a pull request that force-adds
    ``registry/promotions.jsonl`` as a symlink to a FIFO (or to ``/dev/zero``, read until the
    machine runs out of memory) hung the cv gate in ``read_events`` (red team 7, 6 December:
    no answer within 60 s). Run in a child with a timeout; the log must be refused, unread."""
    import os
    import shutil
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    root = tmp_path / "pr"
    root.mkdir()
    shutil.copy2(repo / "policy.toml", root / "policy.toml")
    shutil.copytree(repo / "data", root / "data")
    shutil.copytree(repo / "keys", root / "keys")
    (root / "registry").mkdir()
    os.mkfifo(tmp_path / "fifo")
    (root / "registry" / "promotions.jsonl").symlink_to(tmp_path / "fifo")
    try:
        done = subprocess.run(
            [sys.executable, "-c", _LOAD_CHAMPION, str(repo), str(root)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the cv gate's champion read hung on a planted audit log")
    assert done.returncode == 0, done.stderr
    assert "registry/promotions.jsonl: refused, not read: expected a regular file" in done.stdout, (
        done.stdout
    )
