"""Data approvers by role (issue 20): with ``[roles].approvers`` set, ``python -m gates data
approve`` signs the data lock with an approver's key, and the data gate refuses a lock whose
approval is missing, signed by a non-approver or signed over other bytes, naming the file and
the key id. In CI the approvers come from the base branch's policy ($GATES_BASE_POLICY).

One approved project is built per module (one real ``approve``); each case copies it.
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.keys_support import new_pem_pair

REPO = Path(__file__).resolve().parents[2]
LOCK = "data/breast_cancer.lock.json"
APPROVAL = "data/breast_cancer.lock.approval.json"


def _minimal(root: Path) -> Path:
    """policy.toml, data/ and keys/ of the repository: all the data gate and approve read."""
    root.mkdir(parents=True)
    shutil.copy2(REPO / "policy.toml", root / "policy.toml")
    shutil.copytree(REPO / "data", root / "data")
    shutil.copytree(REPO / "keys", root / "keys")
    return root


def _approve(root: Path, pem: str | None, monkeypatch: Any) -> tuple[int, str]:
    from gates.approve import approve
    from pipeline.config import load_policy

    if pem is None:
        monkeypatch.delenv("GATES_APPROVER_KEY", raising=False)
    else:
        monkeypatch.setenv("GATES_APPROVER_KEY", pem)
    out = io.StringIO()
    code = approve(load_policy(root / "policy.toml"), out=out)
    return code, out.getvalue()


@pytest.fixture(scope="module")
def approved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    base = tmp_path_factory.mktemp("approvers")
    root = _minimal(base / "base")
    secret = base / "secret"
    secret.mkdir()
    pems = {
        "carol": new_pem_pair(root, secret, "carol", "ed25519"),
        "dave": new_pem_pair(root, secret, "dave", "ml-dsa-65"),
        "mallory": new_pem_pair(base, secret, "mallory", "ed25519"),
    }
    with (root / "policy.toml").open("a", encoding="utf-8") as handle:
        handle.write('\n[roles]\napprovers = {carol = "keys/carol.pub", dave = "keys/dave.pub"}\n')
    with pytest.MonkeyPatch.context() as patch:
        code, out = _approve(root, pems["carol"], patch)
    assert code == 0, out
    assert "signed by data approver carol" in out
    return root, pems


@pytest.fixture
def project(approved: tuple[Path, dict[str, str]], tmp_path: Path) -> tuple[Path, dict[str, str]]:
    root, pems = approved
    return Path(shutil.copytree(root, tmp_path / "pr")), pems


def _findings(root: Path) -> list[Any]:
    from gates.data_integrity import _approver_findings
    from pipeline.config import load_policy

    return _approver_findings(load_policy(root / "policy.toml"))


def _keyid(root: Path, name: str) -> str:
    from pipeline.signing import load_public_key

    return load_public_key(root / "keys" / f"{name}.pub", algorithm=None).keyid[:12]


def _public(pem: str) -> bytes:
    from pipeline.signing import private_key_from_pem

    key = private_key_from_pem(pem.encode(), source="t", release=True, algorithm=None)
    return key.public.pem()


def _sign(
    root: Path, pem: str, payload: bytes | None = None, payload_type: str | None = None
) -> None:
    """Write an approval of the lock as it is (or of ``payload``) signed with ``pem``."""
    from pipeline.approval import APPROVAL_TYPE, approval_payload
    from pipeline.signing import private_key_from_pem, sign_envelope

    key = private_key_from_pem(pem.encode(), source="t", release=True, algorithm=None)
    body = payload if payload is not None else approval_payload(LOCK, (root / LOCK).read_bytes())
    envelope = sign_envelope(body, key=key, payload_type=payload_type or APPROVAL_TYPE)
    (root / APPROVAL).write_text(envelope.to_json(), encoding="utf-8")


# --- behaviour ----------------------------------------------------------------------------------


def test_the_approvers_signature_verifies_and_unset_roles_change_nothing(project, monkeypatch):
    from pipeline.approval import check_approval
    from pipeline.config import load_policy

    root, _ = project
    monkeypatch.delenv("GATES_BASE_POLICY", raising=False)
    assert check_approval(load_policy(root / "policy.toml")) == "carol"
    assert _findings(root) == []
    # The committed policy: no approvers, no approval file, no key service: nothing to check.
    assert check_approval(load_policy(REPO / "policy.toml")) is None
    assert not (REPO / APPROVAL).exists()


def test_an_ml_dsa_approver_may_approve_too(project, monkeypatch):
    root, pems = project
    code, out = _approve(root, pems["dave"], monkeypatch)
    assert code == 0, out
    assert f"signed by data approver dave (key id {_keyid(root, 'dave')}" in out
    assert _findings(root) == []


@pytest.mark.parametrize("who", [None, "mallory"], ids=["no approver key", "non-approver key"])
def test_approve_refuses_without_an_approvers_key_and_leaves_the_lock(project, monkeypatch, who):
    root, pems = project
    before = (root / LOCK).read_bytes(), (root / APPROVAL).read_bytes()
    code, out = _approve(root, pems[who] if who else None, monkeypatch)
    assert code == 1
    expected = (
        'only a data approver may approve; set $GATES_APPROVER_KEY to a data approver\'s private key, its PEM text (GATES_APPROVER_KEY="$(cat carol.key)"'
        if who is None
        else "is not an approver in [roles].approvers of"
    )
    assert expected in out, out
    assert "the lock is unchanged" in out
    assert ((root / LOCK).read_bytes(), (root / APPROVAL).read_bytes()) == before


def test_approve_given_the_key_files_path_instead_of_its_text_says_so(
    project, tmp_path, monkeypatch
):
    """A newcomer sets $GATES_APPROVER_KEY to the key file's path: refused, naming the mistake."""
    root, pems = project
    path = tmp_path / "carol.key"
    path.write_text(pems["carol"], encoding="utf-8")
    before = (root / LOCK).read_bytes()
    code, out = _approve(root, str(path), monkeypatch)
    assert code == 1
    assert "$GATES_APPROVER_KEY: expected an unencrypted PEM" in out, out
    assert 'not its path (GATES_APPROVER_KEY="$(cat FILE)")' in out, out
    assert str(path) not in out  # the variable's value is never echoed
    assert (root / LOCK).read_bytes() == before


def test_the_data_gate_fails_on_an_unapproved_lock_and_passes_an_approved_one(project, monkeypatch):
    # The real gate, twice: approved (PASSED), then the approval removed (FAILED, DATA003).
    from gates.base import RunContext, Status
    from gates.data_integrity import DataGate
    from pipeline.config import load_policy

    root, _ = project
    monkeypatch.delenv("GATES_BASE_POLICY", raising=False)
    monkeypatch.delenv("GATES_APPROVED_LOCK", raising=False)

    def run() -> Any:
        context = RunContext(
            policy=load_policy(root / "policy.toml"), run_id="r", reports_dir=root / "reports"
        )
        return DataGate().run(context)

    passed = run()
    assert passed.status is Status.PASSED, [f.message for f in passed.findings]
    (root / APPROVAL).unlink()
    failed = run()
    assert failed.status is Status.FAILED
    finding = next(f for f in failed.findings if f.rule == "DATA003")
    assert finding.location.path == APPROVAL
    assert f"{APPROVAL}: missing: [roles].approvers (carol, dave) is set" in finding.message
    assert "private key, its PEM text, in $GATES_APPROVER_KEY" in finding.message


def test_data_verify_checks_the_approval_too(project, monkeypatch):
    from gates.approve import verify
    from pipeline.config import load_policy

    root, _ = project
    monkeypatch.delenv("GATES_BASE_POLICY", raising=False)
    out = io.StringIO()
    assert verify(load_policy(root / "policy.toml"), out=out) == 0
    assert "approved by carol" in out.getvalue()
    (root / APPROVAL).unlink()
    out = io.StringIO()
    assert verify(load_policy(root / "policy.toml"), out=out) == 1
    assert f"DATA003 {APPROVAL}: missing" in out.getvalue()


# --- planted attacks ----------------------------------------------------------------------------
# Each plants its change in the pull request's copy and returns what the DATA003 message must
# name (the approval file always, and the key id where one signed).


def _missing(root: Path, base: Path, pems: dict[str, str], monkeypatch: Any) -> str:
    (root / APPROVAL).unlink()
    return "missing"


def _lock_edited_after_approval(
    root: Path, base: Path, pems: dict[str, str], monkeypatch: Any
) -> str:
    lock = json.loads((root / LOCK).read_text(encoding="utf-8"))
    entry = lock["files"]["breast_cancer.csv"]
    entry["rows"] += 1
    (root / LOCK).write_text(json.dumps(lock, indent=2), encoding="utf-8")
    return f"carol (key id {_keyid(root, 'carol')}...) approved 'data/breast_cancer.lock.json' with SHA-256"


def _lock_reformatted_after_approval(
    root: Path, base: Path, pems: dict[str, str], monkeypatch: Any
) -> str:
    # Same JSON, other bytes: the approval is over bytes, not over a parse.
    raw = (root / LOCK).read_bytes()
    (root / LOCK).write_bytes(raw + b"\n")
    return "the lock changed after the approval"


def _approval_copied_from_another_lock(
    root: Path, base: Path, pems: dict[str, str], monkeypatch: Any
) -> str:
    # carol really approved another snapshot's lock; that approval is dropped in here.
    from pipeline.approval import approval_payload

    other = (root / LOCK).read_bytes().replace(b'"rows": 569', b'"rows": 570')
    assert other != (root / LOCK).read_bytes()
    _sign(root, pems["carol"], approval_payload(LOCK, other))
    return f"carol (key id {_keyid(root, 'carol')}...) approved"


def _approval_of_a_lock_under_another_name(
    root: Path, base: Path, pems: dict[str, str], monkeypatch: Any
) -> str:
    from pipeline.approval import approval_payload

    _sign(root, pems["carol"], approval_payload("data/other.lock.json", (root / LOCK).read_bytes()))
    return "approved 'data/other.lock.json'"


def _signed_by_non_approver(root: Path, base: Path, pems: dict[str, str], monkeypatch: Any) -> str:
    _sign(root, pems["mallory"])
    keyid = json.loads((root / APPROVAL).read_text(encoding="utf-8"))["signatures"][0]["keyid"]
    return f"signed by key id(s) {keyid[:12]}..., which verify under no data approver"


def _key_id_renamed_to_an_approvers(
    root: Path, base: Path, pems: dict[str, str], monkeypatch: Any
) -> str:
    # mallory's signature relabelled with carol's key id.
    from pipeline.signing import load_public_key

    _sign(root, pems["mallory"])
    document = json.loads((root / APPROVAL).read_text(encoding="utf-8"))
    carol = load_public_key(root / "keys/carol.pub", algorithm=None).keyid
    document["signatures"][0]["keyid"] = carol
    (root / APPROVAL).write_text(json.dumps(document), encoding="utf-8")
    return f"signed by key id(s) {carol[:12]}..., which verify under no data approver"


def _promotion_envelope_as_approval(
    root: Path, base: Path, pems: dict[str, str], monkeypatch: Any
) -> str:
    # carol's signature, but over another payload type (a promotion): not an approval.
    from pipeline.approval import approval_payload
    from pipeline.promotion import PROMOTION_TYPE

    payload = approval_payload(LOCK, (root / LOCK).read_bytes())
    _sign(root, pems["carol"], payload, payload_type=PROMOTION_TYPE)
    return "verify under no data approver"


def _garbage_approval(root: Path, base: Path, pems: dict[str, str], monkeypatch: Any) -> str:
    (root / APPROVAL).write_text("{not json", encoding="utf-8")
    return APPROVAL


def _approver_list_widened_in_the_pr(
    root: Path, base: Path, pems: dict[str, str], monkeypatch: Any
) -> str:
    # The pull request adds mallory as an approver and signs with her key; CI reads the
    # approvers from the base branch.
    (root / "keys/mallory.pub").write_bytes(_public(pems["mallory"]))
    text = (root / "policy.toml").read_text(encoding="utf-8")
    text = text.replace(
        'dave = "keys/dave.pub"}', 'dave = "keys/dave.pub", mallory = "keys/mallory.pub"}'
    )
    (root / "policy.toml").write_text(text, encoding="utf-8")
    _sign(root, pems["mallory"])
    monkeypatch.setenv("GATES_BASE_POLICY", str(base / "policy.toml"))
    return f"verify under no data approver in [roles].approvers of {base / 'policy.toml'} (carol, dave)"


def _approver_key_file_swapped_in_the_pr(
    root: Path, base: Path, pems: dict[str, str], monkeypatch: Any
) -> str:
    # keys/carol.pub replaced with mallory's public key: the base branch's file is used.
    (root / "keys/carol.pub").write_bytes(_public(pems["mallory"]))
    _sign(root, pems["mallory"])
    monkeypatch.setenv("GATES_BASE_POLICY", str(base / "policy.toml"))
    return "verify under no data approver"


def _approvers_removed_in_the_pr(
    root: Path, base: Path, pems: dict[str, str], monkeypatch: Any
) -> str:
    # The pull request drops [roles] and the approval, and changes the lock.
    text = (root / "policy.toml").read_text(encoding="utf-8")
    (root / "policy.toml").write_text(text.split("\n[roles]\n")[0] + "\n", encoding="utf-8")
    (root / APPROVAL).unlink()
    monkeypatch.setenv("GATES_BASE_POLICY", str(base / "policy.toml"))
    return "missing: [roles].approvers (carol, dave) is set"


def _base_policy_unreadable(root: Path, base: Path, pems: dict[str, str], monkeypatch: Any) -> str:
    monkeypatch.setenv("GATES_BASE_POLICY", str(base / "absent.toml"))
    return "$GATES_BASE_POLICY"


ATTACKS: dict[str, Callable[..., str]] = {
    "approval missing": _missing,
    "lock edited after approval": _lock_edited_after_approval,
    "lock re-serialised after approval": _lock_reformatted_after_approval,
    "approval copied from another lock": _approval_copied_from_another_lock,
    "approval of a lock under another name": _approval_of_a_lock_under_another_name,
    "approval signed by a non-approver": _signed_by_non_approver,
    "non-approver signature under an approver's key id": _key_id_renamed_to_an_approvers,
    "approver's promotion envelope used as approval": _promotion_envelope_as_approval,
    "approval file not JSON": _garbage_approval,
    "approver list widened in the pull request": _approver_list_widened_in_the_pr,
    "approver key file swapped in the pull request": _approver_key_file_swapped_in_the_pr,
    "approvers removed in the pull request": _approvers_removed_in_the_pr,
    "base branch policy unreadable": _base_policy_unreadable,
}


@pytest.mark.parametrize("attack", list(ATTACKS), ids=list(ATTACKS))
def test_a_planted_approval_attack_fails_the_data_gate(attack, approved, project, monkeypatch):
    root, pems = project
    monkeypatch.delenv("GATES_BASE_POLICY", raising=False)
    expected = ATTACKS[attack](root, approved[0], pems, monkeypatch)
    findings = _findings(root)
    assert [f.rule for f in findings] == ["DATA003"], findings
    message = findings[0].message
    assert findings[0].location.path == APPROVAL
    assert expected in message, message
    if attack != "base branch policy unreadable":
        assert APPROVAL in message, message


# --- the gate cache -----------------------------------------------------------------------------


def test_a_cached_pass_is_not_reused_after_the_base_branch_revokes_the_approver(
    approved, project, tmp_path, monkeypatch
):
    """The data gate's cache key left out the approvers, the approval file and the base
    branch's policy: ``DataGate.cache_key`` named them, but nothing called it since gates
    declare what they read in ``Gate.reads`` (red team 7, 6 December). A pull request approved
    by carol PASSED and was cached; the base branch then revoked carol (her key leaked), and
    the pull request's re-run reused the PASSED outcome, where a fresh run fails DATA003."""
    from gates import cache as gate_cache
    from gates.base import GateResult, RunContext, Status
    from gates.inputs import input_digests
    from gates.registry import spec
    from gates.runner import run_gate
    from pipeline.config import load_policy

    root, _ = project
    base = Path(shutil.copytree(approved[0], tmp_path / "base"))
    monkeypatch.setenv("GATES_BASE_POLICY", str(base / "policy.toml"))
    monkeypatch.delenv("GATES_APPROVED_LOCK", raising=False)
    monkeypatch.setenv(gate_cache.CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(gate_cache.HMAC_KEY_ENV, raising=False)

    def run() -> Any:
        policy = load_policy(root / "policy.toml")
        context = RunContext(policy=policy, run_id="r", reports_dir=root / "reports")
        inputs = input_digests(policy)
        context.reports_dir.mkdir(exist_ok=True)
        for earlier in ("lint", "sast", "audit"):  # the supply-chain gates' reports, as passed
            passed = GateResult(earlier, Status.PASSED, "ok", "r", inputs=inputs)
            context.report_path(earlier).write_text(passed.to_json(), encoding="utf-8")
        cache = gate_cache.GateCache(context)
        return run_gate(spec("data"), context, inputs, cache=cache, before=())

    first = run()
    assert first.status is Status.PASSED, first.summary
    assert "key" in first.metrics["cache"]
    assert "reused_from" in run().metrics["cache"]  # unchanged: reused
    text = (base / "policy.toml").read_text(encoding="utf-8")
    revoked = text.replace('carol = "keys/carol.pub", ', "")
    assert revoked != text
    (base / "policy.toml").write_text(revoked, encoding="utf-8")
    again = run()
    assert "reused_from" not in again.metrics.get("cache", {}), again.summary
    assert again.status is Status.FAILED, again.summary
    assert [f.rule for f in again.findings if f.rule == "DATA003"] == ["DATA003"]


_CHECK_APPROVAL = """
import sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from gates.base import RunContext
from gates.data_integrity import DataGate, _approver_findings
from pipeline.config import load_policy

policy = load_policy(Path(sys.argv[2]) / "policy.toml")
context = RunContext(policy=policy, run_id="r", reports_dir=Path(sys.argv[2]) / "reports")
DataGate().reads(context)  # the cache key
for finding in _approver_findings(policy):
    print(finding.rule, finding.location.path, finding.message)
"""


@pytest.mark.parametrize("kind", ["symlink to a FIFO", "FIFO"])
def test_an_approval_that_is_a_fifo_or_a_symlink_is_refused_not_read(project, tmp_path, kind):
    """The approval file is named by the lock's path, not by a policy key, so no path rule
    checked it: a pull request that commits ``data/<lock>.approval.json`` as a symlink to
    ``/dev/zero`` or to a FIFO of the CI machine hung the data gate (its cache key hashed the
    file, then ``check_approval`` read it whole; /dev/zero ate memory until the machine killed
    the job). Run in a child with a timeout: on the planted FIFO the check must end, refusing
    the file by name (red team 7, 6 December)."""
    import os
    import subprocess
    import sys

    root, _ = project
    (root / APPROVAL).unlink()
    if kind == "FIFO":
        os.mkfifo(root / APPROVAL)
    else:
        os.mkfifo(tmp_path / "fifo")
        (root / APPROVAL).symlink_to(tmp_path / "fifo")
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CHECK_APPROVAL, str(REPO), str(root)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the data gate hung on an approval that is a {kind}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"DATA003 {APPROVAL} {APPROVAL}: "), done.stdout
    assert "expected a regular file" in done.stdout, done.stdout
