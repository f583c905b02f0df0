"""The chain end to end with a hybrid signature and release-manager roles (issue 20):
``artifacts`` signs with Ed25519 and ML-DSA-65, ``verify`` requires both, ``deploy`` promotes
only with a listed release manager's signature and records it in the registry's audit log.

The first test runs the real ``python -m gates verify``; the others call the CLI's ``main()`` in
this process (``tests.release_support.cli``), with the same exit codes and output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.chain_support import replaying
from tests.keys_support import new_pem_pair
from tests.release_support import cli, new_project, run_chain

ENVELOPE = "artifacts/attestation.intoto.json"


@pytest.fixture(scope="module")
def hybrid(
    passed_chain: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, str]]:
    """A project whose chain PASSED, signed with an Ed25519 + ML-DSA-65 release key pair."""
    base = tmp_path_factory.mktemp("hybrid")
    root = new_project(base / "p")
    secret = base / "secret"
    (root / "keys/release.pub").unlink(missing_ok=True)
    pems = {
        "ed": new_pem_pair(root, secret, "release", "ed25519"),
        "ml": new_pem_pair(root, secret, "release-ml-dsa-65", "ml-dsa-65"),
        "alice": new_pem_pair(root, secret, "alice", "ml-dsa-65"),
        "mallory": new_pem_pair(base, secret, "mallory", "ed25519"),
    }
    text = (root / "policy.toml").read_text(encoding="utf-8")
    text = text.replace(
        "[release]\n",
        '[release]\nsignatures = ["ed25519", "ml-dsa-65"]\n'
        'public_keys = {"ml-dsa-65" = "keys/release-ml-dsa-65.pub"}\n',
        1,
    )
    text += '\n[roles]\npromoters = {alice = "keys/alice.pub"}\n'
    (root / "policy.toml").write_text(text, encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GATES_SIGNING_KEY_ML_DSA_65", pems["ml"])
        summary = run_chain(root, pem=pems["ed"], gates=replaying(passed_chain))
    assert summary.exit_code == 0, [
        f"{r.gate} {r.status.value}: {r.summary}"
        for r in summary.results
        if r.status.value != "PASSED"
    ]
    return root, pems


@pytest.mark.slow
def test_the_artifacts_gate_signs_with_both_and_verify_requires_both(hybrid, gates_cli):
    root, _ = hybrid
    envelope = json.loads((root / ENVELOPE).read_text(encoding="utf-8"))
    assert len(envelope["signatures"]) == 2
    report = json.loads((root / "reports/artifacts.json").read_text(encoding="utf-8"))
    assert report["metrics"]["signer"]["algorithms"] == ["ed25519", "ml-dsa-65"]
    assert report["metrics"]["signer"]["kind"] == "release"
    ok = gates_cli(root, "verify")
    assert ok.returncode == 0, ok.stdout + ok.stderr


@pytest.mark.slow
def test_verify_refuses_the_envelope_with_the_ml_dsa_signature_stripped(hybrid, tmp_path):
    from tests.release_support import copy_project

    root = copy_project(hybrid[0].parent, tmp_path / "c") / hybrid[0].name
    envelope = json.loads((root / ENVELOPE).read_text(encoding="utf-8"))
    envelope["signatures"] = envelope["signatures"][:1]
    (root / ENVELOPE).write_text(json.dumps(envelope), encoding="utf-8")
    refused = cli(root, "gates", "verify")
    assert refused.returncode == 1
    assert f"{ENVELOPE}: refused: no signature verifies under the trusted key" in refused.stdout
    assert "release-ml-dsa-65.pub, ML-DSA-65" in refused.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    ("who", "expected"),
    [
        (None, "only a release manager may promote; set $GATES_PROMOTER_KEY"),
        ("mallory", "verify under no release manager in [roles].promoters (alice)"),
    ],
    ids=["no promoter key", "non-manager key"],
)
def test_deploy_refuses_without_a_release_managers_signature(hybrid, tmp_path, who, expected):
    from tests.release_support import copy_project

    root = copy_project(hybrid[0].parent, tmp_path / "c") / hybrid[0].name
    env = {"GATES_PROMOTER_KEY": hybrid[1][who] if who else ""}
    result = cli(root, "gates", "deploy", env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert expected in result.stdout
    assert not (root / "registry/champion").exists()


@pytest.mark.slow
def test_deploy_by_a_release_manager_is_recorded_and_the_champion_verifies(hybrid, tmp_path):
    from tests.release_support import copy_project

    root = copy_project(hybrid[0].parent, tmp_path / "c") / hybrid[0].name
    result = cli(root, "gates", "deploy", env={"GATES_PROMOTER_KEY": hybrid[1]["alice"]})
    assert result.returncode == 0, result.stdout + result.stderr
    lines = (root / "registry/promotions.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["event"]["promoter"] for line in lines] == ["alice"]
    champion = cli(root, "gates", "verify", "--champion")
    assert champion.returncode == 0, champion.stdout + champion.stderr


@pytest.mark.slow
def test_revoke_by_a_release_manager_withdraws_the_champion(hybrid, tmp_path):
    from tests.release_support import copy_project

    root = copy_project(hybrid[0].parent, tmp_path / "c") / hybrid[0].name
    manager = {"GATES_PROMOTER_KEY": hybrid[1]["alice"]}
    assert cli(root, "gates", "deploy", env=manager).returncode == 0
    version = json.loads((root / "registry/champion").read_text(encoding="utf-8"))["version"]
    refused = cli(
        root, "gates", "revoke", version, env={"GATES_PROMOTER_KEY": hybrid[1]["mallory"]}
    )
    assert refused.returncode == 1
    assert "verify under no release manager" in refused.stdout
    assert cli(root, "gates", "verify", "--champion").returncode == 0
    revoked = cli(root, "gates", "revoke", version, env=manager)
    assert revoked.returncode == 0, revoked.stdout + revoked.stderr
    assert f"revoked: {version} by alice" in revoked.stdout
    champion = cli(root, "gates", "verify", "--champion")
    assert champion.returncode == 1
    assert f"champion {version} was revoked" in champion.stdout
