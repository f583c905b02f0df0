"""``python -m gates registry rotate``: after a new release public key is committed, the deploy
job re-signs every promoted registry version under it (the old public key from
``$GATES_ROTATE_FROM``, the new private key from the signing secret), records the new envelopes
in the audit log, and every reader of the champion (verify, the service, rollback, the cv and
risk gates' comparison) works again without moving the registry aside.

One registry of three promoted versions is built per module; each test copies it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.rollback_support import Promoted, run_cli
from tests.rotate_support import Rotated, commit_new_key, deploy_env, envelopes

REPO = Path(__file__).resolve().parents[2]


def champion_gate_read(project: Promoted) -> object:
    """What the cv and risk gates compare against (``load_champion``), or its GateError text."""
    from gates.cv_threshold import load_champion
    from gates.errors import GateError
    from pipeline.config import load_policy

    context = SimpleNamespace(policy=load_policy(project.root / "policy.toml"))
    try:
        found = load_champion(context)  # type: ignore[arg-type]
    except GateError as err:
        return str(err)
    assert found is not None
    return found[0].version


def test_a_new_key_strands_the_champion_and_the_cv_message_names_the_rotation(
    plain, capsys, monkeypatch
):
    project = plain.project
    refused = champion_gate_read(project)
    assert isinstance(refused, str)
    assert "no signature verifies under the trusted key" in refused
    # Red before: the message named no way out (the doc said: move the registry aside).
    assert "python -m gates registry rotate" in refused
    assert "docs/keys.md 'Rotating the release key'" in refused
    code, out = run_cli(project, monkeypatch, capsys, "verify", "--champion")
    assert code == 1
    assert "no signature verifies under the trusted key" in out


@pytest.mark.parametrize("kind", ["plain", "managed"])
def test_rotate_resigns_every_version_and_every_reader_follows(kind, request, capsys, monkeypatch):
    rotated: Rotated = request.getfixturevalue(kind)
    project = rotated.project
    _, v2, v3 = project.versions
    before = envelopes(project)
    statements = {
        v: (
            project.root / "registry/versions" / v / "artifacts/attestation.statement.json"
        ).read_bytes()
        for v in project.versions
    }
    lines = len(project.log())
    deploy_env(monkeypatch, rotated)
    code, out = run_cli(project, monkeypatch, capsys, "registry", "rotate")
    assert code == 0, out
    assert "rotated: 3 version(s) re-signed under the release key, 0 already signed by it" in out
    assert "registry head: " in out
    after = envelopes(project)
    assert all(after[v] != before[v] for v in project.versions)
    for version in project.versions:
        old = json.loads(before[version])
        new = json.loads(after[version])
        assert new["payload"] == old["payload"]  # the signed statement byte for byte
        folder = project.root / "registry/versions" / version / "artifacts"
        assert (folder / "attestation.statement.json").read_bytes() == statements[version]
    # One audit line, recording every new envelope, from the old key id to the new one.
    log = project.log()
    assert len(log) == lines + 1
    event = log[-1]["event"]
    assert event["action"] == "rotate"
    from pipeline.signing import load_public_key, public_key_from_pem

    assert event["from_keyid"] == public_key_from_pem(rotated.old_public.encode(), source="t").keyid
    assert event["to_keyid"] == load_public_key(project.root / "keys/release.pub").keyid
    assert sorted(event["envelopes"]) == sorted(project.versions)
    assert project.pointer()["keyid"] == event["to_keyid"]
    # Every reader: verify --champion, the gates' comparison, and a rollback.
    code, out = run_cli(project, monkeypatch, capsys, "verify", "--champion")
    assert code == 0, out
    assert champion_gate_read(project) == v3
    monkeypatch.setenv("GATES_PROMOTER_KEY", project.pems["alice"])
    code, out = run_cli(project, monkeypatch, capsys, "rollback")
    assert code == 0, out
    assert f"rolled back: {v2} is the champion again" in out
    code, out = run_cli(project, monkeypatch, capsys, "verify", "--champion")
    assert code == 0, out
    # The old key verifies nothing any more.
    old_pub = project.root.parent / "old.pub"
    old_pub.write_text(rotated.old_public, encoding="ascii")
    code, out = run_cli(project, monkeypatch, capsys, "verify", "--champion", "--key", str(old_pub))
    assert code == 1
    assert "no signature verifies under the trusted key" in out


def test_rotate_again_changes_nothing(plain, capsys, monkeypatch):
    project = plain.project
    deploy_env(monkeypatch, plain)
    code, out = run_cli(project, monkeypatch, capsys, "registry", "rotate")
    assert code == 0, out
    # The deploy job pins the head the rotation printed, as after any write to the registry.
    monkeypatch.setenv("GATES_REGISTRY_HEAD", out.split("registry head: ")[1].split()[0])
    before, lines = envelopes(project), len(project.log())
    code, out = run_cli(project, monkeypatch, capsys, "registry", "rotate")
    assert code == 0, out
    assert "rotated: 0 version(s) re-signed under the release key, 3 already signed by it" in out
    assert envelopes(project) == before
    assert len(project.log()) == lines


def test_a_managed_champion_without_its_pointer_is_read_from_the_rotation(
    managed, capsys, monkeypatch
):
    # With [roles] the log names the champion when the pointer is gone; the digest it takes is
    # the rotation's, not the promotion's (red before: "not the envelope the pointer names").
    project = managed.project
    deploy_env(monkeypatch, managed)
    assert run_cli(project, monkeypatch, capsys, "registry", "rotate")[0] == 0
    (project.root / "registry/champion").unlink()
    code, out = run_cli(project, monkeypatch, capsys, "verify", "--champion")
    assert code == 0, out
    assert champion_gate_read(project) == project.versions[-1]


def test_rotate_refuses_without_the_old_key_or_the_new_secret(plain, capsys, monkeypatch):
    project = plain.project
    before, log = envelopes(project), project.log()
    monkeypatch.setenv("GATES_SIGNING_KEY", plain.new_pem)
    monkeypatch.delenv("GATES_ROTATE_FROM", raising=False)
    code, out = run_cli(project, monkeypatch, capsys, "registry", "rotate")
    assert code == 1
    assert "rotate refused: $GATES_ROTATE_FROM is unset or empty" in out
    # The old key's private half as the signing secret: not the committed key, refused.
    monkeypatch.setenv("GATES_SIGNING_KEY", plain.old_pem)
    monkeypatch.setenv("GATES_ROTATE_FROM", plain.old_public)
    code, out = run_cli(project, monkeypatch, capsys, "registry", "rotate")
    assert code == 1
    assert "is not the release key" in out
    # No release secret at all: development keys never re-sign.
    monkeypatch.delenv("GATES_SIGNING_KEY")
    code, out = run_cli(project, monkeypatch, capsys, "registry", "rotate")
    assert code == 1
    assert "no release signing key for the new key" in out
    assert "Traceback" not in out
    assert envelopes(project) == before
    assert project.log() == log


def test_rotate_as_a_real_process(plain, tmp_path):
    """``python -m gates registry rotate`` in a subprocess, in the project, then verify."""
    project = plain.project
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYTHONPATH": str(REPO),
        "GATES_SIGNING_KEY": plain.new_pem,
        "GATES_ROTATE_FROM": plain.old_public,
        "GATES_REGISTRY_HEAD": plain.head,
    }
    done = subprocess.run(
        [sys.executable, "-m", "gates", "registry", "rotate"],
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 version(s) re-signed" in done.stdout
    head = done.stdout.split("registry head: ")[1].split()[0]
    verified = subprocess.run(
        [sys.executable, "-m", "gates", "verify", "--champion"],
        cwd=project.root,
        env={**env, "GATES_REGISTRY_HEAD": head},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "verified: run" in verified.stdout


def test_rotate_an_encrypted_registry(signed_chain, tmp_path, capsys, monkeypatch):
    """With ``[encryption]`` the new envelope is stored encrypted under its own name, and the
    champion verifies (decrypted in memory) under the new key."""
    import base64
    import shutil

    from gates.release import registry_for
    from pipeline.attestation import verify_bundle
    from pipeline.config import load_policy
    from pipeline.signing import load_public_key
    from pipeline.verify import trusted_key
    from tests.release_support import copy_project

    source, pem = signed_chain
    monkeypatch.setenv("GATES_DATA_KEY", base64.b64encode(b"k" * 32).decode())
    root = copy_project(source, tmp_path / "project")
    shutil.rmtree(root / "registry", ignore_errors=True)
    with (root / "policy.toml").open("a", encoding="utf-8") as handle:
        handle.write('\n[encryption]\nkey_env = "GATES_DATA_KEY"\n')
    policy = load_policy(root / "policy.toml")
    registry = registry_for(policy, trusted=trusted_key(policy))
    verified = verify_bundle(
        source / "artifacts/attestation.intoto.json",
        root=source,
        trusted=load_public_key(source / "keys/release.pub"),
        required_gates=registry.required_gates,
    )
    version = registry.promote(verified).version
    rotated = commit_new_key(Promoted(root, (version,), {}), pem, tmp_path / "s")
    envelope = root / "registry/versions" / version / "artifacts/attestation.intoto.json"
    assert envelope.read_bytes().startswith(b"GATES-AES256GCM-v1")
    assert run_cli(rotated.project, monkeypatch, capsys, "verify", "--champion")[0] == 1
    deploy_env(monkeypatch, rotated)
    code, out = run_cli(rotated.project, monkeypatch, capsys, "registry", "rotate")
    assert code == 0, out
    assert "1 version(s) re-signed" in out
    assert envelope.read_bytes().startswith(b"GATES-AES256GCM-v1")
    assert envelope.stat().st_mode & 0o777 == 0o600
    code, out = run_cli(rotated.project, monkeypatch, capsys, "verify", "--champion")
    assert code == 0, out
