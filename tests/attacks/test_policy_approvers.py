"""A pull request's policy change counts only when an approver of the base branch signed it.

A pull request controls ``policy.toml``. With ``$GATES_BASE_POLICY`` naming the base branch's
policy (CI, on pull requests), the verdict compares the two key by key and refuses any changed,
added or removed key unless ``policy.approval.json`` carries a signature of one of the *base*
policy's ``[roles].approvers`` over the request policy's exact bytes and the change list
(``gates.policy_change``). Here the comparison is called directly on a light project (policy,
data and keys; no chain), and through the real verdict on a project whose whole chain passed.
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_module
from tests.keys_support import new_pem_pair

REPO = Path(__file__).resolve().parents[2]
APPROVAL = "policy.approval.json"
ROLES = '\n[roles]\napprovers = {carol = "keys/carol.pub", dave = "keys/dave.pub"}\n'
ACCURACY = "[cv.thresholds.accuracy]\nmin_mean = 0.93\n"
WAIVER = (
    '\n[[audit.waivers]]\nid = "PYSEC-2022-288"\nreason = "the canary, waived to see it pass"\n'
    "expires = 2099-12-31\n"
)


def _minimal(root: Path) -> Path:
    root.mkdir(parents=True)
    shutil.copy2(REPO / "policy.toml", root / "policy.toml")
    shutil.copytree(REPO / "data", root / "data")
    shutil.copytree(REPO / "keys", root / "keys")
    return root


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The base branch's checkout: the repository's policy with approvers carol and dave."""
    top = tmp_path_factory.mktemp("policy-approvers")
    root = _minimal(top / "base")
    secret = top / "secret"
    secret.mkdir()
    pems = {
        "carol": new_pem_pair(root, secret, "carol", "ed25519"),
        "dave": new_pem_pair(root, secret, "dave", "ml-dsa-65"),
        "mallory": new_pem_pair(top, secret, "mallory", "ed25519"),
    }
    with (root / "policy.toml").open("a", encoding="utf-8") as handle:
        handle.write(ROLES)
    return root, pems


@pytest.fixture
def pr(base: tuple[Path, dict[str, str]], tmp_path: Path, monkeypatch: Any) -> Path:
    """The pull request's checkout (a copy of the base), with $GATES_BASE_POLICY set."""
    monkeypatch.setenv("GATES_BASE_POLICY", str(base[0] / "policy.toml"))
    monkeypatch.delenv("GATES_APPROVER_KEY", raising=False)
    return Path(shutil.copytree(base[0], tmp_path / "pr"))


def _edit(root: Path, old: str, new: str) -> None:
    path = root / "policy.toml"
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _append(root: Path, text: str) -> None:
    with (root / "policy.toml").open("a", encoding="utf-8") as handle:
        handle.write(text)


def _judge(root: Path) -> Any:
    from gates.policy_change import judge
    from pipeline.config import load_policy

    return judge(load_policy(root / "policy.toml"))


def _errors(judgement: Any) -> list[Any]:
    return [f for f in judgement.findings if f.severity.value == "error"]


def _approve(root: Path, base: Path, pem: str | None, monkeypatch: Any) -> tuple[int, str]:
    from gates.policy_change import approve
    from pipeline.config import load_policy

    if pem is not None:
        monkeypatch.setenv("GATES_APPROVER_KEY", pem)
    out = io.StringIO()
    code = approve(load_policy(root / "policy.toml"), base=base / "policy.toml", out=out)
    return code, out.getvalue()


def _keyid(root: Path, name: str) -> str:
    from pipeline.signing import load_public_key

    return load_public_key(root / "keys" / f"{name}.pub", algorithm=None).keyid[:12]


# --- what counts as a change ------------------------------------------------------------------


def test_a_lowered_cv_threshold_fails_naming_the_key_and_both_values(pr):
    _edit(pr, ACCURACY, "[cv.thresholds.accuracy]\nmin_mean = 0.91\n")
    judgement = _judge(pr)
    rules = [f.rule for f in _errors(judgement)]
    assert rules == ["GATE016", "GATE017"], judgement.findings
    gate016, gate017 = _errors(judgement)
    assert gate016.location.path == APPROVAL
    assert f"{APPROVAL}: missing: policy.toml changes the base branch's policy" in gate016.message
    assert "cv.thresholds.accuracy.min_mean" in gate016.message
    assert "(carol, dave)" in gate016.message
    assert gate017.policy_key == "[cv.thresholds.accuracy].min_mean"
    # Reports locate the key's line in the request's policy.toml by it.
    from gates.sarif_log import policy_line

    text = (pr / "policy.toml").read_text(encoding="utf-8")
    line = text.splitlines()[policy_line(text, gate017.policy_key) - 1]
    assert line.startswith("min_mean = 0.91"), line
    assert (gate017.threshold, gate017.observed) == ("0.93", "0.91")
    assert "cv.thresholds.accuracy.min_mean: 0.93 -> 0.91" in gate017.message
    assert judgement.metrics["changes"] == [
        {
            "key": "cv.thresholds.accuracy.min_mean",
            "base": "0.93",
            "request": "0.91",
            "kind": "value",
        }
    ]


def test_an_added_audit_waiver_fails(pr):
    _append(pr, WAIVER)
    judgement = _judge(pr)
    keys = [f.policy_key for f in _errors(judgement) if f.rule == "GATE017"]
    assert keys == ["[[audit.waivers]].expires", "[[audit.waivers]].id", "[[audit.waivers]].reason"]
    assert [c["key"] for c in judgement.metrics["changes"]] == [
        "audit.waivers[0].expires",
        "audit.waivers[0].id",
        "audit.waivers[0].reason",
    ]
    assert _errors(judgement)[0].rule == "GATE016"


# Each relaxation a pull request could write (brief: thresholds, waivers, exclusions, risk, data
# checks, serve limits), and the key it must be named by.
RELAXATIONS = [
    ("exclude = []", 'exclude = ["pipeline/persist.py"]', "sast.exclude", "path"),
    ("max_drop = 0.02 ", "max_drop = 0.5 ", "risk.robustness.max_drop", "value"),
    ("max_auc = 0.6\n", "max_auc = 1.0\n", "risk.privacy.max_auc", "value"),
    (
        "max_conflict_share = 0.0 ",
        "max_conflict_share = 0.5 ",
        "data.checks.duplicates.max_conflict_share",
        "value",
    ),
    (
        "[data.checks.drift]\nenabled = true",
        "[data.checks.drift]\nenabled = false",
        "data.checks.drift.enabled",
        "value",
    ),
    ("requests = 100 ", "requests = 1000000 ", "serve.rate_limit.requests", "value"),
    ("max_body_bytes = 1048576 ", "max_body_bytes = 67108864 ", "serve.max_body_bytes", "value"),
    # A key removed falls back to its default: listed as removed.
    ("max_std = 0.05\n", "", "cv.thresholds.accuracy.max_std", "value"),
    # The lock the data gate checks, pointed at another file: a path, compared as written.
    (
        'lock = "data/breast_cancer.lock.json"',
        'lock = "./data/breast_cancer.lock.json"',
        "data.lock",
        "path",
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "key", "kind"), RELAXATIONS, ids=[r[2] for r in RELAXATIONS]
)
def test_each_relaxation_is_a_change_that_fails_unsigned(pr, old, new, key, kind):
    _edit(pr, old, new)
    judgement = _judge(pr)
    assert [f.rule for f in _errors(judgement)] == ["GATE016", "GATE017"], judgement.findings
    (change,) = judgement.metrics["changes"]
    assert (change["key"], change["kind"]) == (key, kind)
    assert key in _errors(judgement)[0].message


def test_reformatting_reordering_and_comments_are_no_change(pr):
    from gates.policy_change import flatten

    path = pr / "policy.toml"
    text = path.read_text(encoding="utf-8")
    # Comments dropped and added, spacing changed, a table moved to the end, a float written
    # in another notation, a table written inline: the same document.
    lines = [
        line.split("#", 1)[0].rstrip() if not line.startswith("#") else ""
        for line in text.splitlines()
    ]
    text = "\n".join(lines)
    start = text.index("[serve.rate_limit]\n")
    serve_limits = text[start : text.index("\n[", start) + 1]  # the table, up to the next one
    assert serve_limits.startswith("[serve.rate_limit]\nrequests = 100\n")
    text = text.replace(serve_limits, "") + "\n# moved\n" + serve_limits
    text = text.replace("min_mean = 0.93\n", "min_mean   =   9.3e-1  # same number\n", 1)
    text = text.replace("[risk.privacy]\nmax_auc = 0.6\n", "[risk.privacy]\n\n\nmax_auc = 0.6\n", 1)
    path.write_text(text, encoding="utf-8")
    judgement = _judge(pr)
    assert judgement.findings == []
    assert judgement.metrics["changes"] == []
    assert judgement.note == "policy.toml: no change against the base branch's policy"
    # The flattening itself: the same values however written, other types differ.
    assert flatten({"a": {"b": 1}}) == flatten({"a": {"b": 1}})
    assert flatten({"a": {"b": 1}}) != flatten({"a": {"b": 1.0}})
    assert flatten({"a": {"b": 1}}) != flatten({"a": {"b": True}})
    # A quoted key with a dot is not the nested key it reads like.
    assert flatten({"a.b": 1}) == {'"a.b"': "1"}
    assert flatten({"a": {"b": 1}}) == {"a.b": "1"}
    assert flatten({"a": {}}) != flatten({})  # an empty table is not an absent one


def test_an_approved_change_passes_listing_the_keys(pr, base, monkeypatch):
    _edit(pr, ACCURACY, "[cv.thresholds.accuracy]\nmin_mean = 0.91\n")
    _append(pr, WAIVER)
    code, out = _approve(pr, base[0], base[1]["carol"], monkeypatch)
    assert code == 0, out
    assert "4 change(s) against" in out
    assert "cv.thresholds.accuracy.min_mean: 0.93 -> 0.91" in out
    assert f"signed by approver carol (key id {_keyid(base[0], 'carol')}" in out
    judgement = _judge(pr)
    assert _errors(judgement) == []
    assert judgement.metrics["approved_by"] == "carol"
    assert {c["key"] for c in judgement.metrics["changes"]} == {
        "cv.thresholds.accuracy.min_mean",
        "audit.waivers[0].id",
        "audit.waivers[0].reason",
        "audit.waivers[0].expires",
    }
    assert len(judgement.findings) == 4
    assert {f.severity.value for f in judgement.findings} == {"note"}
    assert "approved by carol: audit.waivers[0].expires" in judgement.note


def test_an_ml_dsa_approver_may_approve_too(pr, base, monkeypatch):
    _edit(pr, ACCURACY, "[cv.thresholds.accuracy]\nmin_mean = 0.9\n")
    code, out = _approve(pr, base[0], base[1]["dave"], monkeypatch)
    assert code == 0, out
    assert _judge(pr).metrics["approved_by"] == "dave"


@pytest.mark.parametrize("who", [None, "mallory"], ids=["no key", "non-approver key"])
def test_approve_refuses_without_an_approvers_key_and_writes_nothing(pr, base, monkeypatch, who):
    _edit(pr, ACCURACY, "[cv.thresholds.accuracy]\nmin_mean = 0.91\n")
    code, out = _approve(pr, base[0], base[1][who] if who else None, monkeypatch)
    assert code == 1
    expected = (
        "set $GATES_APPROVER_KEY" if who is None else "is not an approver in [roles].approvers"
    )
    assert expected in out, out
    assert not (pr / APPROVAL).exists()


def test_no_base_policy_means_no_comparison_and_says_so(pr, monkeypatch):
    monkeypatch.delenv("GATES_BASE_POLICY")
    _edit(pr, ACCURACY, "[cv.thresholds.accuracy]\nmin_mean = 0.91\n")
    judgement = _judge(pr)
    assert judgement.findings == []
    assert judgement.metrics["compared_with"] is None
    assert (
        judgement.note == "policy.toml not compared with a base branch ($GATES_BASE_POLICY unset)"
    )


@pytest.mark.parametrize("broken", ["absent", "not toml", "invalid"])
def test_an_unreadable_base_policy_is_an_error_never_no_base(
    pr, base, tmp_path, monkeypatch, broken
):
    from gates.errors import GateError

    other = tmp_path / "broken" / "policy.toml"
    other.parent.mkdir()
    if broken == "not toml":
        other.write_text("[cv\n", encoding="utf-8")
    elif broken == "invalid":
        other.write_text("schema_version = 1\nunknown = 1\n", encoding="utf-8")
    monkeypatch.setenv("GATES_BASE_POLICY", str(other))
    with pytest.raises(GateError, match=r"\$GATES_BASE_POLICY"):
        _judge(pr)


def test_an_unreadable_approver_key_in_the_base_is_an_error(pr, base, tmp_path, monkeypatch):
    from gates.errors import GateError

    broken = Path(shutil.copytree(base[0], tmp_path / "broken-base"))
    (broken / "keys" / "carol.pub").write_text("not a key\n", encoding="utf-8")
    monkeypatch.setenv("GATES_BASE_POLICY", str(broken / "policy.toml"))
    _lower(pr)
    with pytest.raises(GateError, match=r"\[roles\]\.approvers\.carol"):
        _judge(pr)


def test_without_approvers_in_the_base_a_change_is_listed_as_a_warning(pr, tmp_path, monkeypatch):
    # The documented limitation: nobody can sign, so the change is reported, not refused.
    plain = _minimal(tmp_path / "plain")
    monkeypatch.setenv("GATES_BASE_POLICY", str(plain / "policy.toml"))
    _edit(pr, ACCURACY, "[cv.thresholds.accuracy]\nmin_mean = 0.91\n")
    judgement = _judge(pr)
    assert _errors(judgement) == []
    severities = {f.policy_key: f.severity.value for f in judgement.findings}
    assert severities["[cv.thresholds.accuracy].min_mean"] == "warning"
    assert severities["[roles.approvers].carol"] == "warning"  # the pull request's own [roles]
    assert "unsigned: the base policy names no [roles].approvers" in judgement.note
    # Nobody can sign either: approve refuses and writes nothing.
    code, out = _approve(pr, plain, None, monkeypatch)
    assert code == 1
    assert "names no [roles].approvers; nobody can approve a policy change" in out
    assert not (pr / APPROVAL).exists()


def test_the_cli_approves_and_needs_a_base(pr, base):
    _edit(pr, ACCURACY, "[cv.thresholds.accuracy]\nmin_mean = 0.91\n")
    done = run_module("gates", "policy", "approve", cwd=pr, env={"GATES_BASE_POLICY": ""})
    assert done.returncode == 2
    assert "name the base branch's policy.toml with --base" in done.stderr
    assert "Traceback" not in done.stderr
    done = run_module(
        "gates",
        "policy",
        "approve",
        "--base",
        str(base[0] / "policy.toml"),
        cwd=pr,
        env={"GATES_APPROVER_KEY": base[1]["carol"]},
    )
    assert done.returncode == 0, done.stderr
    assert "signed by approver carol" in done.stdout
    assert _errors(_judge(pr)) == []


# --- planted attacks ----------------------------------------------------------------------------
# Each plants a change and an approval trick in the pull request's copy and returns what the
# GATE016 message must name besides the approval file.


def _sign(root: Path, pem: str, payload: bytes, payload_type: str | None = None) -> str:
    from gates.policy_change import POLICY_APPROVAL_TYPE
    from pipeline.signing import private_key_from_pem, sign_envelope

    key = private_key_from_pem(pem.encode(), source="t", release=True, algorithm=None)
    envelope = sign_envelope(payload, key=key, payload_type=payload_type or POLICY_APPROVAL_TYPE)
    (root / APPROVAL).write_text(envelope.to_json(), encoding="utf-8")
    return key.public.keyid[:12]


def _lower(root: Path) -> None:
    _edit(root, ACCURACY, "[cv.thresholds.accuracy]\nmin_mean = 0.91\n")


def _missing(root: Path, base: Path, pems: dict[str, str], mp: Any) -> str:
    _lower(root)
    return "missing"


def _policy_edited_after_approval(root: Path, base: Path, pems: dict[str, str], mp: Any) -> str:
    _lower(root)
    _approve(root, base, pems["carol"], mp)
    _append(root, WAIVER)  # the waiver slipped in after carol signed the threshold
    return f"carol (key id {_keyid(base, 'carol')}...) approved 'policy.toml' with SHA-256"


def _policy_reformatted_after_approval(
    root: Path, base: Path, pems: dict[str, str], mp: Any
) -> str:
    # The same change list, other bytes: the approval is over the exact bytes.
    _lower(root)
    _approve(root, base, pems["carol"], mp)
    _append(root, "# a comment\n")
    return "the policy or the base branch changed after the approval"


def _signed_by_non_approver(root: Path, base: Path, pems: dict[str, str], mp: Any) -> str:
    from gates.policy_change import approval_payload, changes, snapshot
    from pipeline.approval import base_policy
    from pipeline.config import load_policy

    _lower(root)
    request = snapshot(load_policy(root / "policy.toml"))
    found = changes(snapshot(base_policy()), request)
    keyid = _sign(root, pems["mallory"], approval_payload(request, found))
    return f"signed by key id(s) {keyid}..., which verify as a policy approval under no approver"


def _own_approver_added_in_the_pr(root: Path, base: Path, pems: dict[str, str], mp: Any) -> str:
    # The pull request adds mallory (key and role) beside its change and signs as her: the
    # approvers are the base branch's.
    from pipeline.signing import private_key_from_pem

    key = private_key_from_pem(pems["mallory"].encode(), source="t", release=True, algorithm=None)
    (root / "keys/mallory.pub").write_bytes(key.public.pem())
    _edit(root, 'dave = "keys/dave.pub"}', 'dave = "keys/dave.pub", mallory = "keys/mallory.pub"}')
    _lower(root)
    from gates.policy_change import approval_payload, changes, snapshot
    from pipeline.approval import base_policy
    from pipeline.config import load_policy

    request = snapshot(load_policy(root / "policy.toml"))
    found = changes(snapshot(base_policy()), request)
    assert "roles.approvers.mallory" in [c.key for c in found]
    keyid = _sign(root, pems["mallory"], approval_payload(request, found))
    return f"key id(s) {keyid}..., which verify as a policy approval under no approver in [roles].approvers of the base branch's policy"


def _approver_key_file_swapped_in_the_pr(
    root: Path, base: Path, pems: dict[str, str], mp: Any
) -> str:
    # keys/carol.pub replaced by mallory's public key, policy.toml untouched byte for byte: the
    # base branch's carol.pub is the one trusted, and the swapped file is itself a change.
    from pipeline.signing import private_key_from_pem

    key = private_key_from_pem(pems["mallory"].encode(), source="t", release=True, algorithm=None)
    (root / "keys/carol.pub").write_bytes(key.public.pem())
    _lower(root)
    from gates.policy_change import approval_payload, changes, snapshot
    from pipeline.approval import base_policy
    from pipeline.config import load_policy

    request = snapshot(load_policy(root / "policy.toml"))
    found = changes(snapshot(base_policy()), request)
    assert "roles.approvers.carol file" in [c.key for c in found]
    _sign(root, pems["mallory"], approval_payload(request, found))
    return "roles.approvers.carol file"


def _release_key_swapped_policy_untouched(
    root: Path, base: Path, pems: dict[str, str], mp: Any
) -> str:
    # Planted: policy.toml byte for byte the base's, keys/release.pub replaced (the same name in
    # the policy, another key behind it). A comparison of the TOML alone saw no change.
    from pipeline.signing import private_key_from_pem

    key = private_key_from_pem(pems["mallory"].encode(), source="t", release=True, algorithm=None)
    (root / "keys/release.pub").write_bytes(key.public.pem())
    assert (root / "policy.toml").read_bytes() == (base / "policy.toml").read_bytes()
    return "release.public_key file"


def _sast_baseline_widened_policy_untouched(
    root: Path, base: Path, pems: dict[str, str], mp: Any
) -> str:
    # Planted: both branches name bandit-baseline.json; the pull request adds findings to it
    # (a baseline hides what it lists, like a waiver). Base and request get the same key first.
    for folder in (base, root):
        (folder / "bandit-baseline.json").write_text('{"results": []}\n', encoding="utf-8")
        text = (folder / "policy.toml").read_text(encoding="utf-8")
        if "\nbaseline = " not in text:
            text = text.replace(
                '# baseline = "bandit-baseline.json"', 'baseline = "bandit-baseline.json"'
            )
            (folder / "policy.toml").write_text(text, encoding="utf-8")
    hidden = {"results": [{"filename": "pipeline/persist.py", "test_id": "B301", "code": "x"}]}
    (root / "bandit-baseline.json").write_text(json.dumps(hidden), encoding="utf-8")
    assert (root / "policy.toml").read_bytes() == (base / "policy.toml").read_bytes()
    return "sast.baseline file"


def _ruff_rules_relaxed_policy_untouched(
    root: Path, base: Path, pems: dict[str, str], mp: Any
) -> str:
    # Planted: policy.toml byte for byte the base's; pyproject.toml's [tool.ruff] (the lint
    # gate's rule set, passed to ruff with --config) ignores the security rules (S) and bugbear
    # (B). The lint gate only lists the setting; the comparison of policy.toml saw no change.
    for folder in (base, root):
        shutil.copy2(REPO / "pyproject.toml", folder / "pyproject.toml")
    path = root / "pyproject.toml"
    text = path.read_text(encoding="utf-8")
    assert "ignore = [\n" in text
    path.write_text(text.replace("ignore = [\n", 'ignore = ["S", "B",\n', 1), encoding="utf-8")
    assert (root / "policy.toml").read_bytes() == (base / "policy.toml").read_bytes()
    return '"pyproject.toml".tool.ruff.lint.ignore'


def _ruff_toml_planted_policy_untouched(
    root: Path, base: Path, pems: dict[str, str], mp: Any
) -> str:
    # Planted: a root .ruff.toml, which ruff (and the lint gate) prefers to pyproject.toml:
    # its few settings replace the whole [tool.ruff] rule set (ruff's defaults select E and F).
    for folder in (base, root):
        shutil.copy2(REPO / "pyproject.toml", folder / "pyproject.toml")
    (root / ".ruff.toml").write_text("line-length = 100\n", encoding="utf-8")
    assert (root / "policy.toml").read_bytes() == (base / "policy.toml").read_bytes()
    return '"pyproject.toml".tool.ruff.lint.select'


def _approval_replayed_after_the_base_moved(
    root: Path, base: Path, pems: dict[str, str], mp: Any
) -> str:
    # Planted: carol approved lowering min_mean to 0.91 against the base as it was. The base has
    # since raised min_fold to 0.92; the request, byte for byte what she signed, keeps 0.90 and
    # her approval file. Over the request's bytes alone it would verify.
    _lower(root)
    code, out = _approve(root, base, pems["carol"], mp)
    assert code == 0, out
    moved = base.parent / "moved"
    shutil.copytree(base, moved)
    _edit(moved, "min_fold = 0.90\n", "min_fold = 0.92\n")
    mp.setenv("GATES_BASE_POLICY", str(moved / "policy.toml"))
    return f"carol (key id {_keyid(base, 'carol')}...) approved 'policy.toml'"


def _data_approval_copied(root: Path, base: Path, pems: dict[str, str], mp: Any) -> str:
    # carol's signature over a data-approval payload, dropped in as the policy's approval.
    from pipeline.approval import APPROVAL_TYPE

    _lower(root)
    payload = json.dumps({"_type": APPROVAL_TYPE, "lock": "x", "lock_sha256": "0" * 64}).encode()
    keyid = _sign(root, pems["carol"], payload, payload_type=APPROVAL_TYPE)
    return f"signed by key id(s) {keyid}..., which verify as a policy approval under no approver"


def _approval_of_another_file(root: Path, base: Path, pems: dict[str, str], mp: Any) -> str:
    # carol approved the same change in another project's policy file (other bytes).
    _lower(root)
    other = root.parent / "other"
    shutil.copytree(root, other)
    _append(other, "# another project\n")
    code, out = _approve(other, base, pems["carol"], mp)
    assert code == 0, out
    shutil.copy2(other / APPROVAL, root / APPROVAL)
    return "approved 'policy.toml' with SHA-256"


def _garbage_approval(root: Path, base: Path, pems: dict[str, str], mp: Any) -> str:
    _lower(root)
    (root / APPROVAL).write_text("{not json", encoding="utf-8")
    return "cv.thresholds.accuracy.min_mean"


def _approval_a_fifo(root: Path, base: Path, pems: dict[str, str], mp: Any) -> str:
    # A FIFO (behind a symlink, as git could carry one) must not hang the verdict.
    import os

    _lower(root)
    fifo = root.parent / "approval.fifo"
    os.mkfifo(fifo)
    (root / APPROVAL).symlink_to(fifo)
    return "cannot be read: expected a regular file, found a symlink"


ATTACKS: dict[str, Callable[..., str]] = {
    "approval missing": _missing,
    "policy edited after approval": _policy_edited_after_approval,
    "policy re-serialised after approval": _policy_reformatted_after_approval,
    "approval signed by a non-approver": _signed_by_non_approver,
    "own approver added in the pull request": _own_approver_added_in_the_pr,
    "approver key file swapped in the pull request": _approver_key_file_swapped_in_the_pr,
    "release key swapped, policy untouched": _release_key_swapped_policy_untouched,
    "sast baseline widened, policy untouched": _sast_baseline_widened_policy_untouched,
    "ruff rules relaxed in pyproject.toml, policy untouched": _ruff_rules_relaxed_policy_untouched,
    "root .ruff.toml planted, policy untouched": _ruff_toml_planted_policy_untouched,
    "approval replayed after the base moved": _approval_replayed_after_the_base_moved,
    "data approval copied as the policy's": _data_approval_copied,
    "approval of another file copied": _approval_of_another_file,
    "approval file not JSON": _garbage_approval,
    "approval a symlink to a FIFO": _approval_a_fifo,
}


@pytest.mark.parametrize("attack", list(ATTACKS), ids=list(ATTACKS))
def test_a_planted_policy_approval_attack_fails(attack, base, tmp_path, monkeypatch):
    # Each case gets its own base copy (some plant files in the base checkout too).
    root_base = Path(shutil.copytree(base[0], tmp_path / "base"))
    monkeypatch.setenv("GATES_BASE_POLICY", str(root_base / "policy.toml"))
    monkeypatch.delenv("GATES_APPROVER_KEY", raising=False)
    root = Path(shutil.copytree(root_base, tmp_path / "pr"))
    expected = ATTACKS[attack](root, root_base, base[1], monkeypatch)
    judgement = _judge(root)
    errors = _errors(judgement)
    assert errors, judgement.findings
    assert errors[0].rule == "GATE016", judgement.findings
    message = errors[0].message
    assert message.startswith(f"{APPROVAL}: "), message
    assert errors[0].location.path == APPROVAL
    assert expected in message, message
    assert all(f.rule == "GATE017" for f in errors[1:])


def test_a_ruff_configuration_nested_too_deep_is_one_error_naming_it(pr, base, monkeypatch):
    # pyproject.toml is compared too: arrays nested past the parser's limit in it made the
    # verdict (and the lint gate) crash with a RecursionError traceback.
    from gates.errors import GateError

    shutil.copy2(REPO / "pyproject.toml", pr / "pyproject.toml")
    with (pr / "pyproject.toml").open("a", encoding="utf-8") as handle:
        handle.write("\n[tool.ruff.lint.isort]\nknown-first-party = " + "[" * 50_000 + "]" * 50_000)
    with pytest.raises(
        GateError, match=r"pyproject\.toml: cannot read it as TOML \(nested too deep"
    ):
        _judge(pr)


def test_a_ruff_configuration_symlinked_out_of_the_project_is_refused_unread(
    pr, tmp_path, monkeypatch
):
    # The verdict lists every changed setting with its value: a root .ruff.toml that is a
    # symlink to a TOML file of the CI machine's (a registry token) would publish its values
    # in the verdict's report. It is refused, naming the file, and nothing of it is read.
    from gates.errors import GateError

    secret = tmp_path / "credentials.toml"
    secret.write_text('[registry]\ntoken = "s3cr3t-token"\n', encoding="utf-8")
    (pr / ".ruff.toml").symlink_to(secret)
    with pytest.raises(
        GateError, match=r"\.ruff\.toml: expected a regular file, found a symlink"
    ) as err:
        _judge(pr)
    assert "s3cr3t" not in str(err.value)
