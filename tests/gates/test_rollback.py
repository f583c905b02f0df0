"""``python -m gates rollback [VERSION]`` (issue 20): the previous promoted, non-revoked version
(or the named one) becomes the champion again, signed by a release manager with [roles],
recorded in the hash-chained audit log; every reader of "the current model" follows it.

One registry of three promoted versions is built per module; each test copies it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.rollback_support import Promoted, build

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def managed_registry(
    signed_chain: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory
) -> Promoted:
    return build(signed_chain, tmp_path_factory.mktemp("rollback-roles"), roles=True)


@pytest.fixture(scope="module")
def plain_registry(
    signed_chain: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory
) -> Promoted:
    return build(signed_chain, tmp_path_factory.mktemp("rollback-plain"), roles=False)


@pytest.fixture
def managed(managed_registry: Promoted, tmp_path: Path) -> Promoted:
    return managed_registry.copy(tmp_path / "p")


@pytest.fixture
def plain(plain_registry: Promoted, tmp_path: Path) -> Promoted:
    return plain_registry.copy(tmp_path / "p")


def cli(
    project: Promoted,
    *args: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    manager: str | None = "alice",
) -> tuple[int, str]:
    """``python -m gates ARGS`` in-process in the project (the CLI's own code path)."""
    from gates._cli import main

    monkeypatch.chdir(project.root)
    if manager is None:
        monkeypatch.delenv("GATES_PROMOTER_KEY", raising=False)
    else:
        monkeypatch.setenv("GATES_PROMOTER_KEY", project.pems[manager])
    capsys.readouterr()
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def served(project: Promoted) -> dict[str, str]:
    """The run id each reader of the champion sees: verify, predict's loader and the service."""
    from gates import release
    from gates.service.server import verified_model
    from pipeline.config import load_policy
    from pipeline.verify import verify_champion

    policy = load_policy(project.root / "policy.toml")
    return {
        "verify": release.verify_champion(policy).run_id,
        "predict": verify_champion(policy, required_gates=release.required_gates()).run_id,
        "service": verified_model(policy, champion=True, key=None).run_id,
        "registry": project.registry().champion().attestation.run_id,
    }


def run_of(version: str) -> str:
    return version.rsplit("-", 1)[0]


def test_a_managers_rollback_makes_the_previous_version_the_champion_everywhere(
    managed, capsys, monkeypatch
):
    v1, v2, v3 = managed.versions
    assert set(served(managed).values()) == {run_of(v3)}
    code, out = cli(managed, "rollback", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, out
    assert f"rolled back: {v2} is the champion again by alice; {v3} is no longer served" in out
    assert set(served(managed).values()) == {run_of(v2)}
    assert managed.pointer()["version"] == v2
    last = managed.log()[-1]
    assert last["event"]["action"] == "rollback"
    assert (last["event"]["version"], last["event"]["from"]) == (v2, v3)
    assert last["event"]["promoter"] == "alice"
    assert last["envelope"]["signatures"]  # the manager's signature is recorded
    # Again: back to the first; then there is nothing left to roll back to.
    assert cli(managed, "rollback", capsys=capsys, monkeypatch=monkeypatch)[0] == 0
    assert set(served(managed).values()) == {run_of(v1)}
    code, out = cli(managed, "rollback", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 1
    assert "promotions.jsonl: refused: nothing to roll back to" in out
    assert "Traceback" not in out


def test_rollback_to_a_named_version(managed, capsys, monkeypatch):
    v1, _, v3 = managed.versions
    code, out = cli(managed, "rollback", v1, capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, out
    assert set(served(managed).values()) == {run_of(v1)}
    # The version rolled away from can be rolled back to by name (it was not revoked).
    code, out = cli(managed, "rollback", v3, capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, out
    assert set(served(managed).values()) == {run_of(v3)}


def test_without_roles_rollback_needs_no_key_and_is_recorded(plain, capsys, monkeypatch):
    _, v2, v3 = plain.versions
    code, out = cli(plain, "rollback", capsys=capsys, monkeypatch=monkeypatch, manager=None)
    assert code == 0, out
    assert f"rolled back: {v2} is the champion again; {v3} is no longer served" in out
    assert set(served(plain).values()) == {run_of(v2)}
    assert plain.log()[-1]["event"]["action"] == "rollback"
    assert plain.log()[-1]["event"]["promoter"] is None


def test_the_revoke_then_rollback_flow_and_the_revoked_version_stays_refused(
    managed, capsys, monkeypatch
):
    _, v2, v3 = managed.versions
    assert cli(managed, "revoke", v3, capsys=capsys, monkeypatch=monkeypatch)[0] == 0
    code, out = cli(managed, "verify", "--champion", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 1
    assert f"champion {v3} was revoked" in out
    # Rollback moves away from a revoked champion.
    code, out = cli(managed, "rollback", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, out
    assert set(served(managed).values()) == {run_of(v2)}
    code, out = cli(managed, "rollback", v3, capsys=capsys, monkeypatch=monkeypatch)
    assert code == 1
    assert f"refused: version {v3} was revoked (" in out
    assert "promotions.jsonl:4)" in out


def test_a_version_rolled_away_from_then_revoked_stays_refused(plain, capsys, monkeypatch):
    # Without roles too: the pointer put back on it by hand is refused by every reader.
    v3 = plain.versions[2]
    before = (plain.root / "registry/champion").read_bytes()
    assert cli(plain, "rollback", capsys=capsys, monkeypatch=monkeypatch, manager=None)[0] == 0
    assert cli(plain, "revoke", v3, capsys=capsys, monkeypatch=monkeypatch, manager=None)[0] == 0
    code, out = cli(plain, "rollback", v3, capsys=capsys, monkeypatch=monkeypatch, manager=None)
    assert code == 1
    assert f"version {v3} was revoked" in out
    (plain.root / "registry/champion").write_bytes(before)
    code, out = cli(plain, "verify", "--champion", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 1
    assert f"champion {v3} was revoked" in out
    with pytest.raises(Exception, match="was revoked"):
        served(plain)


def test_the_cv_gate_cache_key_follows_a_rollback(managed, capsys, monkeypatch):
    # The cv and risk gates compare with the champion: their cached outcome must not survive
    # a rollback (they declare the pointer and the audit log as read).
    from gates.base import RunContext
    from gates.cv_threshold import CvGate
    from gates.risk import RiskGate
    from pipeline.config import load_policy

    policy = load_policy(managed.root / "policy.toml")
    context = RunContext(policy=policy, run_id="r", reports_dir=managed.root / "reports")
    for gate in (CvGate(), RiskGate()):
        files = {p.name for p in gate.reads(context).files}
        assert {"champion", "promotions.jsonl"} <= files


# --- a crash mid-rollback leaves the old or the new champion, and the next command works --------

_CRASHER = """
import os, sys, time
from pathlib import Path
sys.path.insert(0, {repo!r})
os.chdir(sys.argv[2])
import pipeline.champion as champion

step, ready = sys.argv[1], Path(sys.argv[3])

def stop(*args, **kwargs):
    ready.write_text("stopped")
    time.sleep(600)

if step == "log":
    champion.append_event = stop
elif step == "pointer":
    champion.atomic_write_json = stop
from gates._cli import main
sys.exit(main(["rollback"]))
"""


@pytest.mark.parametrize(
    ("which", "step", "expected"),
    [
        ("managed", "log", "old"),
        ("managed", "pointer", "new"),  # with roles the signed log line is the commit point
        ("plain", "log", "old"),
        ("plain", "pointer", "old"),  # without roles the pointer is
    ],
)
def test_kill_9_mid_rollback_leaves_old_or_new_and_the_next_command_works(  # noqa: PLR0917
    which, step, expected, request, tmp_path, capsys, monkeypatch
):
    project: Promoted = request.getfixturevalue(which)
    _, v2, v3 = project.versions
    ready = tmp_path / "ready"
    env = {**os.environ, "GATES_PROMOTER_KEY": project.pems["alice"], "PYTHONPATH": str(REPO)}
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
    deadline = time.monotonic() + 120
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            out, err = process.communicate(timeout=10)
            pytest.fail(f"the rollback did not reach step {step}: {out!r} {err!r}")
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=30)
    assert set(served(project).values()) == {run_of(v3 if expected == "old" else v2)}
    # The next command works: verify, then another rollback.
    code, out = cli(project, "verify", "--champion", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, out
    code, out = cli(project, "rollback", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0, out
    assert set(served(project).values()) == {
        run_of(v2 if expected == "old" else project.versions[0])
    }


def test_revoke_refuses_a_version_whose_signed_statement_is_not_strict_json(
    managed, capsys, monkeypatch
):
    # The statement a release manager's revocation is built from is read strictly, as every
    # other signed statement: a name given twice is refused before anything is signed.
    import base64
    import json

    from pipeline.attestation import ENVELOPE_FILE

    v3 = managed.versions[2]
    (envelope_file,) = (managed.root / "registry/versions" / v3).glob(f"*/{ENVELOPE_FILE}")
    envelope = json.loads(envelope_file.read_text(encoding="utf-8"))
    payload = base64.b64decode(envelope["payload"]).decode("utf-8")
    assert '"run_id"' in payload
    twice = payload.replace('"run_id"', '"run_id": "other", "run_id"', 1)
    envelope["payload"] = base64.b64encode(twice.encode("utf-8")).decode("ascii")
    envelope_file.write_text(json.dumps(envelope), encoding="utf-8")
    code, out = cli(managed, "revoke", v3, capsys=capsys, monkeypatch=monkeypatch)
    assert code == 1
    assert f"{ENVELOPE_FILE}: the signed statement is not a strict JSON statement" in out
    assert "Traceback" not in out
