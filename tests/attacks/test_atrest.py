"""Encryption at rest wired into the stores (issue 20): a chain with ``[encryption]`` set, and
planted attacks on the encrypted registry.

One signed chain runs with ``[encryption]`` (local provider, key-encryption key in
``$GATES_DATA_KEY``) and is deployed: every file of the registry version is a ciphertext (no
plaintext substring), and ``verify --champion``, ``predict --champion``, the service's champion
load and the ``cv`` gate's champion comparison all work on it. Then each attack (a flipped byte,
a file swapped between versions or within one, a wrong key, a plaintext dropped in, encryption
switched off) is refused with one message naming the file, exit 1, no traceback.

``verify``, ``predict`` and ``history verify`` on the encrypted chain run as real commands; the
planted attacks call the same CLIs' ``main()`` in this process (``tests.release_support.cli``).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_module
from tests.release_support import (
    REPO,
    cli,
    copy_project,
    make_release_key,
    new_project,
    run_chain,
)

KEK = base64.b64encode(b"k" * 32).decode()
ENCRYPTION = '\n[encryption]\nkey_env = "GATES_DATA_KEY"\n'
MODEL = "artifacts/model.skops"


def _env(pem: str, kek: str = KEK) -> dict[str, str]:
    return {"GATES_SIGNING_KEY": pem, "GATES_DATA_KEY": kek}


@pytest.fixture(scope="module")
def encrypted(
    tmp_path_factory: pytest.TempPathFactory, recorded_chain: tuple[Path, Any]
) -> tuple[Path, str]:
    """A project with ``[encryption]`` whose signed chain PASSED and was deployed; its PEM."""
    from tests.chain_support import replaying

    base = tmp_path_factory.mktemp("atrest")
    root = new_project(base / "project")
    with (root / "policy.toml").open("a", encoding="utf-8") as handle:
        handle.write(ENCRYPTION)
    pem = make_release_key(root, base / "secret")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GATES_DATA_KEY", KEK)
        # The gate cache on, as ``python -m gates run`` has it: ``second_run`` reuses the
        # outcomes of the gates whose inputs the deploy did not change.
        summary = run_chain(root, pem=pem, gates=replaying(recorded_chain[0]), use_cache=True)
    assert summary.exit_code == 0, [r.summary for r in summary.results]
    deployed = cli(root, "gates", "deploy", env=_env(pem))
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    return root, pem


def _version(root: Path) -> Path:
    pointer = json.loads((root / "registry/champion").read_text(encoding="utf-8"))
    return root / "registry/versions" / pointer["version"]


def _refused(result: Any, name: str, expected: str = "refused") -> None:
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "Traceback" not in out, out
    assert name in out, out
    assert expected in out, out


@pytest.mark.slow  # the module's encrypted chain (about a minute, once)
def test_every_file_of_the_registry_version_is_a_ciphertext(encrypted):
    root, _ = encrypted
    version = _version(root)
    files = sorted(p for p in version.rglob("*") if p.is_file())
    names = {p.relative_to(version).as_posix() for p in files}
    assert {MODEL, "artifacts/attestation.intoto.json", "policy.toml"} <= names
    for path in files:
        stored = path.read_bytes()
        assert stored.startswith(b"GATES-AES256GCM-v1\n"), path
        assert path.stat().st_mode & 0o077 == 0, path
        plain = (root / path.relative_to(version)).read_bytes()
        # No plaintext substring: a 32-byte window from the start, the middle and the end.
        for start in (0, len(plain) // 2, max(len(plain) - 32, 0)):
            assert plain[start : start + 32] not in stored, (path, start)
    data = (root / "data/breast_cancer.csv").read_text(encoding="utf-8")
    assert data.splitlines()[0].encode() not in (version / "data/breast_cancer.csv").read_bytes()


@pytest.mark.slow  # the module's encrypted chain (about a minute, once)
def test_the_encrypted_champion_verifies_predicts_and_serves(encrypted):
    root, pem = encrypted
    verified = run_module("gates", "verify", "--champion", cwd=root, env=_env(pem))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    predicted = run_module(
        "pipeline",
        "predict",
        "--champion",
        "--input",
        "data/breast_cancer.csv",
        cwd=root,
        env=_env(pem),
    )
    assert predicted.returncode == 0, predicted.stdout + predicted.stderr
    rows = (root / "data/breast_cancer.csv").read_text(encoding="utf-8").strip().splitlines()
    assert len(predicted.stdout.strip().splitlines()) == len(rows)
    # The service loads its champion through the same call ``serve --champion`` makes.
    from gates.service.server import verified_model
    from pipeline.config import load_policy

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GATES_DATA_KEY", KEK)
        served = verified_model(load_policy(root / "policy.toml"), champion=True, key=None)
    assert served is not None


@pytest.fixture(scope="module")
def second_run(
    encrypted: tuple[Path, str],
    recorded_chain: tuple[Path, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, Any]:
    """The deployed project run again: its cv gate compares with the encrypted champion."""
    from tests.chain_support import replaying

    root, pem = encrypted
    second = copy_project(root, tmp_path_factory.mktemp("atrest-second") / "project")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GATES_DATA_KEY", KEK)
        summary = run_chain(second, pem=pem, gates=replaying(recorded_chain[0]), use_cache=True)
    return second, summary


@pytest.mark.slow
def test_the_cv_gate_compares_with_the_encrypted_champion(second_run):
    second, summary = second_run
    cv = next(r for r in summary.results if r.gate == "cv")
    assert summary.exit_code == 0, [r.summary for r in summary.results]
    report = json.loads((second / "reports/cv.json").read_text(encoding="utf-8"))
    assert "champion" in json.dumps(report.get("metrics", report)), cv.summary
    assert "first run" not in cv.summary


# --- planted attacks on the encrypted registry --------------------------------------------------


def _flip_model_byte(version: Path, env: dict[str, str]) -> str:
    path = version / MODEL
    data = bytearray(path.read_bytes())
    data[-40] ^= 0x01
    path.write_bytes(bytes(data))
    return "artifacts/model.skops: refused: does not decrypt"


def _swap_model_and_manifest(version: Path, env: dict[str, str]) -> str:
    model, manifest = version / MODEL, version / "artifacts/model.manifest.json"
    a, b = model.read_bytes(), manifest.read_bytes()
    model.write_bytes(b)
    manifest.write_bytes(a)
    return "names itself"


def _version_copied_under_another_name(version: Path, env: dict[str, str]) -> str:
    # A whole version folder renamed: every file is bound to its version's name.
    other = version.with_name(version.name[:-1] + ("0" if version.name[-1] != "0" else "1"))
    shutil.copytree(version, other)
    pointer = version.parent.parent / "champion"
    document = json.loads(pointer.read_text(encoding="utf-8"))
    document["version"] = other.name
    pointer.write_text(json.dumps(document), encoding="utf-8")
    return "names itself"


def _wrong_key(version: Path, env: dict[str, str]) -> str:
    env["GATES_DATA_KEY"] = base64.b64encode(b"w" * 32).decode()
    return "does not unwrap"


def _no_key(version: Path, env: dict[str, str]) -> str:
    env["GATES_DATA_KEY"] = ""
    return "GATES_DATA_KEY"


def _plaintext_model_dropped_in(version: Path, env: dict[str, str]) -> str:
    (version / MODEL).write_bytes((version.parent.parent.parent / MODEL).read_bytes())
    return "not encrypted"


def _encryption_switched_off(version: Path, env: dict[str, str]) -> str:
    # The policy is the champion's own subject, but a reader's policy may drop [encryption]:
    # the ciphertext is then refused as encrypted, not misread.
    root = version.parent.parent.parent
    text = (root / "policy.toml").read_text(encoding="utf-8").replace(ENCRYPTION, "")
    (root / "policy.toml").write_text(text, encoding="utf-8")
    return "encrypted at rest"


def _pointer_to_a_plain_envelope_digest(version: Path, env: dict[str, str]) -> str:
    pointer = version.parent.parent / "champion"
    document = json.loads(pointer.read_text(encoding="utf-8"))
    envelope = version / "artifacts/attestation.intoto.json"
    import hashlib

    document["envelope_sha256"] = hashlib.sha256(envelope.read_bytes()).hexdigest()
    pointer.write_text(json.dumps(document), encoding="utf-8")
    return "not the envelope the champion pointer names"


REGISTRY_ATTACKS = {
    "model ciphertext byte flipped": _flip_model_byte,
    "model and manifest ciphertexts swapped": _swap_model_and_manifest,
    "version folder copied under another name": _version_copied_under_another_name,
    "wrong key-encryption key": _wrong_key,
    "no key-encryption key": _no_key,
    "plaintext model dropped in": _plaintext_model_dropped_in,
    "reader without [encryption]": _encryption_switched_off,
    "pointer names the ciphertext's digest": _pointer_to_a_plain_envelope_digest,
}


@pytest.mark.slow  # the module's encrypted chain
@pytest.mark.parametrize("attack", list(REGISTRY_ATTACKS), ids=list(REGISTRY_ATTACKS))
def test_registry_attack_is_refused_naming_the_file(encrypted, tmp_path, attack):
    root, pem = encrypted
    copy = copy_project(root, tmp_path / "copy")
    env = _env(pem)
    expected = REGISTRY_ATTACKS[attack](_version(copy), env)
    result = cli(copy, "gates", "verify", "--champion", env=env)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "Traceback" not in out, out
    assert expected in out, out
    # Which file: the model, its manifest, the envelope or the pointer, by name.
    assert any(
        name in out
        for name in ("model.skops", "model.manifest.json", "attestation.intoto.json", "champion")
    ), out
    predicted = cli(
        copy, "pipeline", "predict", "--champion", "--input", "data/breast_cancer.csv", env=env
    )
    assert predicted.returncode != 0
    assert "Traceback" not in predicted.stdout + predicted.stderr


# The subprocess promotes the second run into the encrypted registry and stops dead at one
# step: it signals the test, then sleeps until the test kills it with SIGKILL.
_CRASHER = """
import os, sys, time
from pathlib import Path
sys.path.insert(0, {repo!r})
import pipeline.champion as champion
from pipeline.config import load_policy
from pipeline.verify import registry_for, trusted_key, verify_project

step, root, ready = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])

def stop():
    ready.write_text("stopped")
    time.sleep(600)

if step == "write":
    real_write, written = champion.write_all, []
    def write_all(fd, data):
        written.append(fd)
        if len(written) == 3:
            os.write(fd, data[: len(data) // 2])
            stop()
        return real_write(fd, data)
    champion.write_all = write_all
elif step == "rename":
    def rename(src, dst):
        stop()
    champion.os.rename = rename
elif step == "pointer":
    real_replace = os.replace
    def replace(src, dst):
        if Path(dst).name == "champion":
            stop()
        return real_replace(src, dst)
    os.replace = replace

policy = load_policy(root / "policy.toml")
source = verify_project(policy, required_gates=policy.policy.release.required_gates)
registry_for(policy, trusted=trusted_key(policy)).promote(source)
print("promoted without stopping")
"""


@pytest.mark.slow
@pytest.mark.parametrize("step", ["write", "rename", "pointer"])
def test_kill_9_during_an_encrypted_promotion_leaves_the_old_champion(
    step, second_run, tmp_path, monkeypatch
):
    from pipeline.config import load_policy
    from pipeline.verify import registry_for, trusted_key, verify_project

    root, _ = second_run
    copy = copy_project(root, tmp_path / "copy")
    monkeypatch.setenv("GATES_DATA_KEY", KEK)
    policy = load_policy(copy / "policy.toml")
    registry = registry_for(policy, trusted=trusted_key(policy))
    old = registry.champion()
    assert old is not None
    pointer_before = registry.pointer.read_bytes()
    ready = tmp_path / "ready"
    process = subprocess.Popen(
        [sys.executable, "-c", _CRASHER.format(repo=str(REPO)), step, str(copy), str(ready)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "GATES_DATA_KEY": KEK},
    )
    deadline = time.monotonic() + 120
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            out, err = process.communicate(timeout=10)
            pytest.fail(f"the promotion did not reach step {step}: {out!r} {err!r}")
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL

    # The old state: the same pointer, the old champion verifies (decrypted) as before.
    assert registry.pointer.read_bytes() == pointer_before
    current = registry.champion()
    assert current is not None
    assert current.version == old.version
    if step in ("write", "rename"):
        assert list((registry.path / "versions").glob(".staging-*"))
    # Recovery: the next promotion sweeps the leftovers and lands the new state.
    source = verify_project(policy, required_gates=policy.policy.release.required_gates)
    new = registry.promote(source)
    assert new.version != old.version
    assert registry.champion().version == new.version
    assert not list((registry.path / "versions").glob(".staging-*"))


def test_plain_stays_the_default(signed_chain, tmp_path):
    """No [encryption]: the registry version holds the plain files, byte for byte."""
    root, pem = signed_chain
    copy = copy_project(root, tmp_path / "copy")
    assert "[encryption]" not in (copy / "policy.toml").read_text(encoding="utf-8")
    assert cli(copy, "gates", "deploy", env={"GATES_SIGNING_KEY": pem}).returncode == 0
    assert (_version(copy) / MODEL).read_bytes() == (copy / MODEL).read_bytes()


# --- the run history, one sealed record per line ------------------------------------------------

HISTORY = "history/runs.jsonl"


@pytest.fixture
def sealed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Any]:
    """Three records appended to an encrypted history under ``tmp_path``; and its cipher."""
    from gates.feedback import history
    from pipeline.keys.local import LocalProvider

    monkeypatch.setenv("GATES_DATA_KEY", KEK)
    provider = LocalProvider(
        env="GATES_SIGNING_KEY", key_file=None, kek_env="GATES_DATA_KEY", kek_file=None
    )
    cipher = history.RecordCipher(name=HISTORY, provider=provider)
    path = tmp_path / HISTORY
    for i in range(3):
        history.append(
            path, {"run_id": f"secret-run-{i}", "metrics": {"acc": 0.9 + i / 100}}, cipher=cipher
        )
    return path, cipher


def test_the_sealed_history_verifies_and_holds_no_plaintext(sealed):
    from gates.feedback import history

    path, cipher = sealed
    raw = path.read_bytes()
    assert b"secret-run" not in raw
    assert b"metrics" not in raw
    assert raw.count(b"\n") == 3
    check = history.verify(path, cipher=cipher)
    assert check, check.problems
    records = history.records(path, cipher=cipher)
    assert [r["run_id"] for r in records] == [f"secret-run-{i}" for i in range(3)]
    assert history.head_hash(path, cipher=cipher) == records[-1]["hash"] == check.head


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")[:-1]


def _write_lines(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def _flip_seal_byte(path: Path, cipher: Any, monkeypatch: Any) -> tuple[int, str]:
    lines = _lines(path)
    outer = json.loads(lines[1])
    blob = bytearray(base64.b64decode(outer["seal"]))
    blob[-5] ^= 0x01
    outer["seal"] = base64.b64encode(bytes(blob)).decode()
    lines[1] = json.dumps(outer, sort_keys=True, separators=(",", ":")).encode()
    _write_lines(path, lines)
    return 2, "does not decrypt"


def _seq_relabelled(path: Path, cipher: Any, monkeypatch: Any) -> tuple[int, str]:
    # Lines 2 and 3 swapped with their clear seq/prev rewritten to fit: the seal is bound to
    # its own position and predecessor, so it does not open at the other's.
    lines = _lines(path)
    two, three = json.loads(lines[1]), json.loads(lines[2])
    two["seq"], three["seq"] = three["seq"], two["seq"]
    two["prev"], three["prev"] = three["prev"], two["prev"]
    lines[1] = json.dumps(three, sort_keys=True, separators=(",", ":")).encode()
    lines[2] = json.dumps(two, sort_keys=True, separators=(",", ":")).encode()
    _write_lines(path, lines)
    return 2, "record 1"


def _clear_hash_edited(path: Path, cipher: Any, monkeypatch: Any) -> tuple[int, str]:
    lines = _lines(path)
    outer = json.loads(lines[2])
    outer["hash"] = "f" * 64
    lines[2] = json.dumps(outer, sort_keys=True, separators=(",", ":")).encode()
    _write_lines(path, lines)
    return 3, "differ from its line's"


def _line_from_another_history(path: Path, cipher: Any, monkeypatch: Any) -> tuple[int, str]:
    # Same key, same name, another chain: its record 1 names another predecessor.
    from gates.feedback import history

    other = path.with_name("other.jsonl")
    for i in range(2):
        history.append(other, {"run_id": f"other-{i}"}, cipher=cipher)
    lines = _lines(path)
    lines[1] = _lines(other)[1]
    _write_lines(path, lines)
    return 2, "prev"


def _line_from_another_named_history(path: Path, cipher: Any, monkeypatch: Any) -> tuple[int, str]:
    # The same position and predecessor, but sealed for another file: the name is bound.
    from gates.feedback import history

    other = path.with_name("other.jsonl")
    theirs = history.RecordCipher(name="history/other.jsonl", provider=cipher.provider)
    history.append(other, {"run_id": "first"}, cipher=theirs)
    lines = _lines(path)
    lines[0] = _lines(other)[0]
    _write_lines(path, lines)
    return 1, "does not unwrap"


def _wrong_key(path: Path, cipher: Any, monkeypatch: Any) -> tuple[int, str]:
    monkeypatch.setenv("GATES_DATA_KEY", base64.b64encode(b"w" * 32).decode())
    return 1, "does not unwrap"


def _plaintext_record_appended(path: Path, cipher: Any, monkeypatch: Any) -> tuple[int, str]:
    from gates.feedback import history

    last = history.records(path, cipher=cipher)[-1]
    record = {"schema_version": 1, "run_id": "forged", "seq": 3, "prev": last["hash"]}
    record["hash"] = history.record_hash(record)
    with path.open("ab") as handle:
        handle.write(history.encode(record))
    return 4, "not encrypted"


def _read_without_encryption(path: Path, cipher: Any, monkeypatch: Any) -> tuple[int, str]:
    return 1, "encrypted at rest"


HISTORY_ATTACKS = {
    "seal byte flipped": _flip_seal_byte,
    "two records swapped, clear seq/prev rewritten": _seq_relabelled,
    "clear hash edited": _clear_hash_edited,
    "line copied from another history": _line_from_another_history,
    "line sealed for another history file": _line_from_another_named_history,
    "wrong key-encryption key": _wrong_key,
    "plaintext record appended": _plaintext_record_appended,
    "read without [encryption]": _read_without_encryption,
}


@pytest.mark.parametrize("attack", list(HISTORY_ATTACKS), ids=list(HISTORY_ATTACKS))
def test_history_attack_is_refused_naming_the_line(sealed, monkeypatch, attack):
    from gates.feedback import history

    path, cipher = sealed
    line, expected = HISTORY_ATTACKS[attack](path, cipher, monkeypatch)
    reader = None if attack == "read without [encryption]" else cipher
    check = history.verify(path, cipher=reader)
    assert not check
    first = check.problems[0]
    assert first.line == line, check.problems
    if attack != "line copied from another history":  # a chain problem: named by its line
        assert f"{path}:{line}" in first.message, first.message
    assert expected in first.message, first.message
    # An append refuses too (the tail no longer opens, or the chain no longer fits), and the
    # file is left as it was.
    if line >= 3 or attack in ("wrong key-encryption key", "read without [encryption]"):
        before = path.read_bytes()
        with pytest.raises(history.HistoryError):
            history.append(path, {"run_id": "next"}, cipher=reader)
        assert path.read_bytes() == before


@pytest.mark.slow  # the module's encrypted chain (about a minute, once)
def test_history_verify_cli_on_the_encrypted_chain(encrypted, tmp_path):
    """The chain's own history is sealed; ``history verify`` passes with the key, and without it
    (or with a flipped byte) exits 1 naming the line, no traceback."""
    root, pem = encrypted
    raw = (root / HISTORY).read_bytes()
    assert raw.startswith(b'{"hash":')
    assert b"run_id" not in raw
    ok = run_module("gates", "history", "verify", cwd=root, env=_env(pem))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    copy = copy_project(root, tmp_path / "copy")
    lines = _lines(copy / HISTORY)
    outer = json.loads(lines[0])
    outer["seal"] = (
        outer["seal"][:-8] + ("A" if outer["seal"][-8] != "A" else "B") + outer["seal"][-7:]
    )
    lines[0] = json.dumps(outer, sort_keys=True, separators=(",", ":")).encode()
    _write_lines(copy / HISTORY, lines)
    for env in (_env(pem), _env(pem, base64.b64encode(b"w" * 32).decode())):
        result = cli(copy, "gates", "history", "verify", env=env)
        out = result.stdout + result.stderr
        assert result.returncode == 1, out
        assert "Traceback" not in out, out
        assert "line 1" in out, out


def test_an_interrupted_sealed_append_is_recovered(sealed):
    """The two states a crash leaves (a torn sealed line; .head one record behind) verify as
    pending and the next append repairs them: the newline is still the commit point."""
    from gates.feedback import history

    path, cipher = sealed
    other = path.with_name("scratch.jsonl")
    shutil.copy(path, other)
    shutil.copy(history.head_path(path), history.head_path(other))
    written = history.append(other, {"run_id": "would-be-next"}, cipher=cipher)
    next_line = _lines(other)[-1] + b"\n"
    assert written["seq"] == 3
    # A torn tail: half the sealed line.
    with path.open("ab") as handle:
        handle.write(next_line[: len(next_line) // 2])
    check = history.verify(path, cipher=cipher)
    assert check, check.problems
    assert any("torn tail" in p for p in check.pending)
    history.append(path, {"run_id": "after-torn"}, cipher=cipher)
    assert history.verify(path, cipher=cipher).pending == ()
    # .head one record behind: the whole line is in, the sidecar is not.
    sidecar = history.head_path(path).read_bytes()
    history.append(path, {"run_id": "interrupted"}, cipher=cipher)
    history.head_path(path).write_bytes(sidecar)
    check = history.verify(path, cipher=cipher)
    assert check, check.problems
    assert any("behind" in p for p in check.pending)
    history.append(path, {"run_id": "after-behind"}, cipher=cipher)
    final = history.verify(path, cipher=cipher)
    assert final, final.problems
    assert final.pending == ()
    ids = [r["run_id"] for r in history.records(path, cipher=cipher)]
    assert ids[-3:] == ["after-torn", "interrupted", "after-behind"]


@pytest.mark.slow
def test_random_kills_of_a_sealed_appender_leave_the_old_or_the_new_history(sealed, tmp_path):
    import random

    from gates.feedback import history
    from tests.crash_support import ForkServer

    path, cipher = sealed
    rng = random.Random(20)  # noqa: S311 - kill timings, reproducible by seed: no secret
    # The children (real processes, each killed by a real SIGKILL) are forked by one server
    # that imported the history module once (tests/crash_support.py).
    server = ForkServer.started(
        "gates.feedback.history",
        "pipeline.keys.local",
        env={**os.environ, "GATES_DATA_KEY": KEK, "PYTHONPATH": str(REPO)},
        cwd=tmp_path,
        stderr=tmp_path / "children.err",
    )
    with server as children:
        for n in range(20):
            raw = path.read_bytes()
            before = raw[: raw.rfind(b"\n") + 1]
            ids_before = [r["run_id"] for r in history.records(path, cipher=cipher)]
            children.kill(
                "sealed-append", str(path), f"k{n}", HISTORY, delay=rng.uniform(0.0, 0.05)
            )
            check = history.verify(path, cipher=cipher)
            assert check, (n, check.problems)
            assert path.read_bytes().startswith(before), n
            ids = [r["run_id"] for r in history.records(path, cipher=cipher)]
            assert ids[: len(ids_before)] == ids_before
            new = ids[len(ids_before) :]
            assert new == [f"k{n}-{i}" for i in range(len(new))], (n, new)
            history.append(path, {"run_id": f"after-{n}"}, cipher=cipher)
            again = history.verify(path, cipher=cipher)
            assert again, (n, again.problems)
            assert again.pending == ()


def test_snapshots_true_is_refused_not_silently_ignored(tmp_path):
    """The working tree's data snapshot stays plain: asking for it encrypted is a policy error
    naming the key, not a switch that does nothing."""
    from pipeline.config import load_policy
    from pipeline.errors import PipelineError

    (tmp_path / "data").mkdir()
    shutil.copytree(REPO / "data", tmp_path / "data", dirs_exist_ok=True)
    text = (REPO / "policy.toml").read_text(encoding="utf-8")
    (tmp_path / "policy.toml").write_text(
        text + ENCRYPTION + "snapshots = true\n", encoding="utf-8"
    )
    with pytest.raises(PipelineError, match=r"encryption\.snapshots = false"):
        load_policy(tmp_path / "policy.toml")
    (tmp_path / "policy.toml").write_text(text + ENCRYPTION, encoding="utf-8")
    encryption = load_policy(tmp_path / "policy.toml").policy.encryption
    assert encryption is not None
    assert (encryption.registry, encryption.history, encryption.snapshots) == (True, True, False)
