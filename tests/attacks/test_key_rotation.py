"""Attacks on the release key's rotation (``python -m gates registry rotate``, docs/keys.md
"Rotating the release key").

A contributor controls every byte of a pull request, ``keys/*.pub`` included, but not CI's
environment nor the release keys; the usual reason to rotate is a leaked old key, whose holder
may also write the registry's storage. Planted here: a pull request's own key committed as the
"old" or "retired" key, a version signed with the leaked old key that was never promoted, a
promoted version's envelope swapped for another the old key signed, a forged rotation record
over an envelope signed by another key, a temp file a killed rotation left, and ``kill -9`` at
each step of a rotation.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.keys_support import new_pem_pair
from tests.rollback_support import Promoted, run_cli
from tests.rotate_support import Rotated, deploy_env, envelopes

REPO = Path(__file__).resolve().parents[2]
ENVELOPE = "artifacts/attestation.intoto.json"


def _signer(pem: str) -> object:
    from pipeline.signing import private_key_from_pem

    return private_key_from_pem(pem.encode(), source="attacker", release=True, algorithm=None)


def _resign(envelope: Path, pem: str, **predicate: object) -> None:
    """Replace ``envelope`` by one signed with ``pem`` over its statement (fields replaced), and
    the statement copy beside it: a bundle that verifies under ``pem``'s key."""
    from pipeline.attestation import IN_TOTO_PAYLOAD_TYPE
    from pipeline.signing import parse_envelope, sign_envelope

    payload = parse_envelope(envelope.read_bytes(), source="t").payload
    if predicate:
        statement = json.loads(payload)
        statement["predicate"].update(predicate)
        payload = json.dumps(statement, sort_keys=True).encode()
        (envelope.parent / "attestation.statement.json").write_bytes(payload)
    signed = sign_envelope(payload, key=[_signer(pem)], payload_type=IN_TOTO_PAYLOAD_TYPE)  # type: ignore[list-item]
    envelope.write_text(signed.to_json(), encoding="utf-8")


def _append(project: Promoted, event: dict[str, object]) -> None:
    """Append a line to the audit log as anyone who can write the storage can: chained."""
    from pipeline.promotion import append_event

    append_event(project.root / "registry", event, None)


def plant_promoted(rotated: Rotated) -> tuple[str, Path, bytes]:
    """As whoever writes the registry's storage and holds the leaked old key: a copy of the
    last version re-signed by that key, and a promote line for it appended to the audit log
    (without [roles] it needs no signature). Its name, folder and envelope bytes."""
    from pipeline.fsio import sha256_bytes

    project = rotated.project
    v3 = project.versions[-1]
    planted = f"{v3.rsplit('-', 1)[0]}-p-{v3.rsplit('-', 1)[1]}"
    folder = project.root / "registry/versions" / planted
    shutil.copytree(project.root / "registry/versions" / v3, folder)
    _resign(folder / ENVELOPE, rotated.old_pem, run_id=f"{v3.rsplit('-', 1)[0]}-p")
    planted_bytes = (folder / ENVELOPE).read_bytes()
    event = {
        "action": "promote",
        "version": planted,
        "bundle": "artifacts",
        "envelope_sha256": sha256_bytes(planted_bytes),
    }
    _append(project, event)
    return planted, folder, planted_bytes


def _rotate(rotated: Rotated, monkeypatch, capsys) -> tuple[int, str]:
    deploy_env(monkeypatch, rotated)
    return run_cli(rotated.project, monkeypatch, capsys, "registry", "rotate")


def _verify_champion(project: Promoted, monkeypatch, capsys) -> tuple[int, str]:
    return run_cli(project, monkeypatch, capsys, "verify", "--champion")


def test_a_pull_requests_own_key_committed_as_old_or_retired_trusts_nothing(
    plain, tmp_path, capsys, monkeypatch
):
    # The attacker's version (a promoted one re-signed by their key, recorded in the log) and
    # their key committed under every name a "retired keys" list might read.
    project = plain.project
    secret = tmp_path / "mallory"
    secret.mkdir()
    mallory = new_pem_pair(project.root, secret, "release-old", "ed25519")
    for name in ("release.old.pub", "retired/release.pub", "release-retired.pub"):
        target = project.root / "keys" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(project.root / "keys/release-old.pub", target)
    v3 = project.versions[-1]
    planted = f"{v3.rsplit('-', 1)[0]}-x-{v3.rsplit('-', 1)[1]}"
    shutil.copytree(
        project.root / "registry/versions" / v3, project.root / "registry/versions" / planted
    )
    _resign(project.root / "registry/versions" / planted / ENVELOPE, mallory)
    before, log = envelopes(project), project.log()
    # Without the old key from the deploy job's environment: refused, whatever the tree holds.
    monkeypatch.setenv("GATES_SIGNING_KEY", plain.new_pem)
    monkeypatch.delenv("GATES_ROTATE_FROM", raising=False)
    code, out = run_cli(project, monkeypatch, capsys, "registry", "rotate")
    assert code == 1, out
    assert "$GATES_ROTATE_FROM is unset or empty" in out
    # With the genuine old key: the planted version verifies under neither key; nothing written.
    code, out = _rotate(plain, monkeypatch, capsys)
    assert code == 1, out
    assert f"refused: registry version {planted} verifies under neither the trusted key" in out
    assert "nothing re-signed" in out
    assert envelopes(project) == before
    assert project.log() == log


def test_a_leaked_old_key_cannot_launder_a_version_it_planted(plain, capsys, monkeypatch):
    # The old key leaked (why one rotates): its holder plants a version it signed, never
    # promoted. Re-signing it would make it a version signed by the new key. Red before the
    # "never recorded" rule: it was re-signed with the rest.
    project = plain.project
    v3 = project.versions[-1]
    planted = f"{v3.rsplit('-', 1)[0]}-z-{v3.rsplit('-', 1)[1]}"
    folder = project.root / "registry/versions" / planted
    shutil.copytree(project.root / "registry/versions" / v3, folder)
    _resign(folder / ENVELOPE, plain.old_pem, run_id=f"{v3.rsplit('-', 1)[0]}-z", note="planted")
    planted_bytes = (folder / ENVELOPE).read_bytes()
    code, out = _rotate(plain, monkeypatch, capsys)
    assert code == 0, out
    assert "rotated: 3 version(s) re-signed under the release key" in out
    assert f"not re-signed: {planted}: signed by the old key but never recorded" in out
    assert (folder / ENVELOPE).read_bytes() == planted_bytes
    assert planted not in project.log()[-1]["event"]["envelopes"]
    code, out = run_cli(project, monkeypatch, capsys, "rollback", planted)
    assert code == 1, out


def test_a_leaked_old_key_cannot_swap_a_promoted_versions_envelope(plain, capsys, monkeypatch):
    # The promoted champion's envelope replaced by another statement over the same files,
    # signed by the leaked old key: not the envelope the log recorded. Refused whole, nothing
    # written (red without the recorded-digest check: re-signed, and the champion read then
    # trusts it under the new key).
    project = plain.project
    v3 = project.versions[-1]
    _resign(project.root / "registry/versions" / v3 / ENVELOPE, plain.old_pem, note="swapped")
    before, log = envelopes(project), project.log()
    code, out = _rotate(plain, monkeypatch, capsys)
    assert code == 1, out
    assert "signed by the old key, but not the envelope the audit log" in out
    assert f"recorded for {v3}" in out
    assert envelopes(project) == before
    assert project.log() == log


@pytest.mark.parametrize("kind", ["plain", "managed"])
def test_a_forged_rotation_record_does_not_trust_another_keys_envelope(
    kind, request, tmp_path, capsys, monkeypatch
):
    # After a genuine rotation, whoever writes the storage swaps the champion's envelope for
    # one signed by their key, appends a rotation line recording its digest (chained as any
    # append is) and points the pointer at it: every reader still refuses it. With [roles] the
    # pointer is removed too, so the log (the rotation's digest) names the envelope.
    rotated: Rotated = request.getfixturevalue(kind)
    project = rotated.project
    assert _rotate(rotated, monkeypatch, capsys)[0] == 0
    secret = tmp_path / "mallory"
    secret.mkdir()
    mallory = new_pem_pair(tmp_path, secret, "mallory", "ed25519")
    v3 = project.versions[-1]
    envelope = project.root / "registry/versions" / v3 / ENVELOPE
    _resign(envelope, mallory)
    from pipeline.fsio import sha256_bytes

    digest = sha256_bytes(envelope.read_bytes())
    _append(
        project, {"action": "rotate", "from_keyid": "x", "to_keyid": "y", "envelopes": {v3: digest}}
    )
    pointer = project.pointer()
    pointer["envelope_sha256"] = digest
    (project.root / "registry/champion").write_text(json.dumps(pointer), encoding="utf-8")
    if kind == "managed":
        (project.root / "registry/champion").unlink()
    code, out = _verify_champion(project, monkeypatch, capsys)
    assert code == 1, out
    assert "no signature verifies under the trusted key" in out


def test_a_temp_file_a_killed_rotation_left_is_swept(plain, capsys, monkeypatch):
    # What atomic_write_bytes leaves when killed mid-write, beside a version's envelope: an
    # extra file every reader refuses. The next rotation removes it under the lock (red
    # without: "verifies under neither", nothing re-signed).
    project = plain.project
    v1 = project.versions[0]
    temp = (
        project.root / "registry/versions" / v1 / "artifacts/.attestation.intoto.json.abcd1234.tmp"
    )
    temp.write_text('{"payload": "half', encoding="utf-8")
    code, out = _rotate(plain, monkeypatch, capsys)
    assert code == 0, out
    assert not temp.exists()
    assert _verify_champion(project, monkeypatch, capsys)[0] == 0


_CRASHER = """
import os, sys, time
from pathlib import Path
sys.path.insert(0, {repo!r})
os.chdir(sys.argv[2])
import pipeline.champion as champion

step, ready = sys.argv[1], Path(sys.argv[3])

def stop():
    ready.write_text("stopped")
    time.sleep(600)

if step == "first-envelope":
    real = champion.atomic_write_bytes
    def after_one(*args, **kwargs):
        real(*args, **kwargs)
        stop()
    champion.atomic_write_bytes = after_one
elif step == "log":
    champion.append_event = lambda *args, **kwargs: stop()
elif step == "pointer":
    champion.atomic_write_json = lambda *args, **kwargs: stop()
from gates._cli import main
sys.exit(main(["registry", "rotate"]))
"""


@pytest.mark.parametrize("kind", ["plain", "managed"])
@pytest.mark.parametrize("step", ["first-envelope", "log", "pointer"])
def test_kill_9_mid_rotation_fails_closed_and_the_next_rotation_completes(  # noqa: PLR0917
    kind, step, request, tmp_path, capsys, monkeypatch
):
    rotated: Rotated = request.getfixturevalue(kind)
    project = rotated.project
    ready = tmp_path / "ready"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "GATES_SIGNING_KEY": rotated.new_pem,
        "GATES_ROTATE_FROM": rotated.old_public,
        "GATES_REGISTRY_HEAD": rotated.head,
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _CRASHER.format(repo=str(REPO)),
            step,
            str(project.root),
            str(ready),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    deadline = time.monotonic() + 240
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            out, err = process.communicate(timeout=10)
            pytest.fail(f"the rotation did not reach step {step}: {out!r} {err!r}")
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=30)
    rotations = [r for r in project.log() if r["event"]["action"] == "rotate"]
    assert len(rotations) == (1 if step == "pointer" else 0)
    # Killed with the champion pointer not yet rewritten: the champion is refused (never a
    # model read as if nothing happened, never one signed by a third key).
    code, out = _verify_champion(project, monkeypatch, capsys)
    assert code == 1, out
    assert "Traceback" not in out
    # The next rotation completes, run as the killed one was, under the same pin (the killed
    # job printed no new head). A rotation line past the pin is not trusted, so after the kill
    # at "pointer" the next rotation records its own: the last one records every version.
    code, out = _rotate(rotated, monkeypatch, capsys)
    assert code == 0, out
    rotations = [r for r in project.log() if r["event"]["action"] == "rotate"]
    assert len(rotations) == (2 if step == "pointer" else 1)
    assert sorted(rotations[-1]["event"]["envelopes"]) == sorted(project.versions)
    assert _verify_champion(project, monkeypatch, capsys)[0] == 0


def test_a_promote_line_appended_behind_the_pinned_head_names_nothing_to_resign(
    plain, capsys, monkeypatch
):
    # Without [roles] a promote line needs no signature: whoever writes the storage and holds
    # the leaked old key plants a version and appends its promote line. The deploy job's pin
    # (what it vouches for) is the head before that line: the version is not re-signed (red
    # when the rotation reads the whole log: re-signed under the new key).
    # (``deploy_env`` pins the head recorded when the new key was committed, before the plant.)
    planted, folder, planted_bytes = plant_promoted(plain)
    code, out = _rotate(plain, monkeypatch, capsys)
    assert code == 0, out
    assert f"not re-signed: {planted}" in out
    assert (folder / ENVELOPE).read_bytes() == planted_bytes
