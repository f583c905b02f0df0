"""Key providers over real HTTP on loopback: AWS KMS against moto's server, Vault Transit against
a stand-in of its endpoints driven by the real hvac client, and the local provider.

Each test signs through ``gates.release.signing_key`` (what the artifacts gate calls) and then
verifies with the committed public keys alone: verification never calls a key service.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.keys_support import key_project, new_pem_pair, write_pub
from tests.vault_standin import TransitStandIn

PAYLOAD_TYPE = "application/vnd.in-toto+json"
REPO_KEYS = Path(__file__).resolve().parents[2] / "keys"


@pytest.fixture(scope="module")
def kms() -> Iterator[Any]:
    """A boto3 KMS client on moto's server, on a free loopback port."""
    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client(
        "kms",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto's fake credentials
    )
    client.endpoint = endpoint
    yield client
    server.stop()


@pytest.fixture
def kms_env(kms: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The environment CI would set: boto3 finds the endpoint and credentials there only."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", kms.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("GATES_SIGNING_KEY", raising=False)
    return kms


def _kms_signing_key(kms: Any, spec: str = "ECC_NIST_P256") -> tuple[str, bytes]:
    from cryptography.hazmat.primitives import serialization

    key_id = kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec=spec)["KeyMetadata"]["KeyId"]
    der = kms.get_public_key(KeyId=key_id)["PublicKey"]
    pem = serialization.load_der_public_key(der).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key_id, pem


def _kms_project(tmp_path: Path, kms: Any, *, key_id: str, pem: bytes) -> Any:
    data_key = kms.create_key()["KeyMetadata"]["KeyId"]
    pub = write_pub(tmp_path, "release-kms.pub", pem)
    return key_project(
        tmp_path,
        release=f'signatures = ["ecdsa-p256-sha256"]\npublic_keys = {{"ecdsa-p256-sha256" = "{pub}"}}',
        extra=f'[keys]\nprovider = "aws-kms"\nkms_key_id = "{key_id}"\nkms_data_key_id = "{data_key}"',
    )


def _sign_and_verify_offline(policy: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Sign through the gates' key choice, then verify with every service client disabled."""
    from gates.release import signing_key
    from pipeline.signing import sign_envelope, verify_envelope
    from pipeline.verify import trusted_key

    choice = signing_key(policy)
    envelope = sign_envelope(b"{}", key=choice.signers, payload_type=PAYLOAD_TYPE)

    def no_service(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("verification called a key service")

    monkeypatch.setattr("boto3.client", no_service)
    monkeypatch.setattr("hvac.Client", no_service)
    verify_envelope(
        envelope, trusted=trusted_key(policy), payload_type=PAYLOAD_TYPE, source="envelope"
    )
    return choice


def test_kms_signs_the_release_envelope_and_verify_needs_no_service(tmp_path, kms_env, monkeypatch):
    key_id, pem = _kms_signing_key(kms_env)
    policy = _kms_project(tmp_path, kms_env, key_id=key_id, pem=pem)
    choice = _sign_and_verify_offline(policy, monkeypatch)
    assert choice.release
    assert choice.key.source == f"aws-kms:{key_id}"
    assert choice.key.public.algorithm == "ecdsa-p256-sha256"


def test_a_kms_signature_that_does_not_verify_is_refused_not_written(tmp_path, kms_env):
    # Past 4 KiB the signer sends a SHA-256 digest (MessageType DIGEST); moto's server does not
    # implement DIGEST (it signs the digest's digest), so its answer must be refused, not used.
    from gates.release import signing_key
    from pipeline.keys import KeyProviderError

    key_id, pem = _kms_signing_key(kms_env)
    signer = signing_key(_kms_project(tmp_path, kms_env, key_id=key_id, pem=pem)).key
    assert signer.public.verifies(signer.sign(b"x" * 4096), b"x" * 4096)
    with pytest.raises(
        KeyProviderError,
        match=rf"Sign with key '{key_id}' returned a signature that does not verify",
    ):
        signer.sign(b"x" * 4097)


def test_kms_key_that_is_not_the_committed_one_is_refused(tmp_path, kms_env):
    from gates.base import GateError
    from gates.release import signing_key

    key_id, _ = _kms_signing_key(kms_env)
    _, other = _kms_signing_key(kms_env)
    policy = _kms_project(tmp_path, kms_env, key_id=key_id, pem=other)
    with pytest.raises(
        GateError, match=rf"aws-kms:{key_id}: the configured ecdsa-p256-sha256 signing key"
    ):
        signing_key(policy)


def test_kms_rsa_key_is_refused_naming_it(tmp_path, kms_env):
    from gates.base import GateError
    from gates.release import signing_key

    key_id, _ = _kms_signing_key(kms_env, "RSA_2048")
    policy = _kms_project(tmp_path, kms_env, key_id=key_id, pem=_kms_signing_key(kms_env)[1])
    with pytest.raises(GateError, match=rf"key '{key_id}' is RSA_2048 .*expected a ECC_NIST_P256"):
        signing_key(policy)


def test_kms_unknown_key_is_a_clear_error(tmp_path, kms_env):
    from gates.base import GateError
    from gates.release import signing_key

    _, pem = _kms_signing_key(kms_env)
    policy = _kms_project(tmp_path, kms_env, key_id="alias/no-such-key", pem=pem)
    with pytest.raises(
        GateError,
        match=r"aws-kms: GetPublicKey with key 'alias/no-such-key' refused: NotFoundException",
    ):
        signing_key(policy)


def test_kms_data_key_round_trip_and_context_binding(tmp_path, kms_env):
    from pipeline.keys import KeyProviderError, provider_for

    key_id, pem = _kms_signing_key(kms_env)
    provider = provider_for(_kms_project(tmp_path, kms_env, key_id=key_id, pem=pem))
    made = provider.generate_data_key({"path": "registry/v1/model.skops"})
    assert len(made.plaintext) == 32
    assert made.plaintext not in repr(made).encode()
    assert (
        provider.decrypt_data_key(made.wrapped, {"path": "registry/v1/model.skops"})
        == made.plaintext
    )
    with pytest.raises(KeyProviderError, match=r"Decrypt .* refused: InvalidCiphertextException"):
        provider.decrypt_data_key(made.wrapped, {"path": "registry/v2/model.skops"})


@pytest.fixture
def vault(monkeypatch: pytest.MonkeyPatch) -> Iterator[TransitStandIn]:
    with TransitStandIn(token="s.ci-token") as server:  # noqa: S106 - a test token
        monkeypatch.setenv("VAULT_ADDR", server.url)
        monkeypatch.setenv("VAULT_TOKEN", "s.ci-token")
        monkeypatch.delenv("GATES_SIGNING_KEY", raising=False)
        yield server


def _vault_project(tmp_path: Path, vault: TransitStandIn, release: str = "") -> Any:
    (tmp_path / "keys").mkdir(parents=True, exist_ok=True)
    (tmp_path / "keys/release.pub").write_bytes(vault.add_ed25519("gates-release"))
    vault.add_aes("gates-data")
    return key_project(
        tmp_path,
        release=release,
        extra='[keys]\nprovider = "vault-transit"\nvault_key_name = "gates-release"\nvault_data_key_name = "gates-data"',
    )


def test_vault_transit_signs_with_ed25519_and_verify_needs_no_service(tmp_path, vault, monkeypatch):
    policy = _vault_project(tmp_path, vault)
    choice = _sign_and_verify_offline(policy, monkeypatch)
    assert choice.key.source == "vault-transit:transit/gates-release"
    assert ("POST", "/v1/transit/sign/gates-release") in vault.requests


def test_vault_transit_with_local_ml_dsa_is_a_hybrid(tmp_path, vault, monkeypatch):
    pem = new_pem_pair(tmp_path, tmp_path / "secret", "release-ml-dsa-65", "ml-dsa-65")
    monkeypatch.setenv("GATES_SIGNING_KEY_ML_DSA_65", pem)
    policy = _vault_project(
        tmp_path,
        vault,
        release='signatures = ["ed25519", "ml-dsa-65"]\n'
        'public_keys = {"ml-dsa-65" = "keys/release-ml-dsa-65.pub"}',
    )
    choice = _sign_and_verify_offline(policy, monkeypatch)
    assert [s.public.algorithm for s in choice.signers] == ["ed25519", "ml-dsa-65"]
    assert [s.source for s in choice.signers] == [
        "vault-transit:transit/gates-release",
        "$GATES_SIGNING_KEY_ML_DSA_65",
    ]


def test_vault_wrong_token_is_a_clear_error(tmp_path, vault, monkeypatch):
    from gates.base import GateError
    from gates.release import signing_key

    policy = _vault_project(tmp_path, vault)
    monkeypatch.setenv("VAULT_TOKEN", "s.stolen")
    with pytest.raises(
        GateError, match="vault-transit: read key with key 'gates-release' failed: Forbidden"
    ):
        signing_key(policy)


def test_vault_unset_address_is_a_clear_error(tmp_path, vault, monkeypatch):
    from gates.base import GateError
    from gates.release import signing_key

    policy = _vault_project(tmp_path, vault)
    monkeypatch.delenv("VAULT_ADDR")
    with pytest.raises(GateError, match="set VAULT_ADDR and VAULT_TOKEN"):
        signing_key(policy)


def test_vault_data_key_round_trip_and_tamper(tmp_path, vault):
    from pipeline.keys import KeyProviderError, provider_for

    provider = provider_for(_vault_project(tmp_path, vault))
    made = provider.generate_data_key({"path": "history/runs.jsonl"})
    assert made.wrapped.startswith(b"vault:v1:")
    assert provider.decrypt_data_key(made.wrapped, {}) == made.plaintext
    flipped = (
        made.wrapped[:-3] + (b"A" if made.wrapped[-3:-2] != b"A" else b"B") + made.wrapped[-2:]
    )
    with pytest.raises(
        KeyProviderError, match="decrypt with key 'gates-data' failed: InvalidRequest"
    ):
        provider.decrypt_data_key(flipped, {})


def test_local_hybrid_needs_both_keys_or_none(tmp_path, monkeypatch):
    from gates.base import GateError
    from gates.release import signing_key

    secret = tmp_path / "secret"
    ed = new_pem_pair(tmp_path, secret, "release", "ed25519")
    new_pem_pair(tmp_path, secret, "release-ml-dsa-65", "ml-dsa-65")
    policy = key_project(
        tmp_path,
        release='signatures = ["ed25519", "ml-dsa-65"]\n'
        'public_keys = {"ml-dsa-65" = "keys/release-ml-dsa-65.pub"}',
    )
    monkeypatch.setenv("GATES_SIGNING_KEY", ed)
    monkeypatch.delenv("GATES_SIGNING_KEY_ML_DSA_65", raising=False)
    with pytest.raises(
        GateError, match=r"no release key for \['ml-dsa-65'\] \(set \$GATES_SIGNING_KEY_ML_DSA_65\)"
    ):
        signing_key(policy)
    monkeypatch.setenv(
        "GATES_SIGNING_KEY_ML_DSA_65",
        (secret / "release-ml-dsa-65.key").read_text(encoding="ascii"),
    )
    choice = _sign_and_verify_offline(policy, monkeypatch)
    assert [s.public.algorithm for s in choice.signers] == ["ed25519", "ml-dsa-65"]


def test_local_dev_keys_for_a_hybrid_are_made_per_algorithm(tmp_path, monkeypatch):
    from gates.release import signing_key

    new_pem_pair(tmp_path, tmp_path / "secret", "release", "ed25519")
    new_pem_pair(tmp_path, tmp_path / "secret", "release-ml-dsa-65", "ml-dsa-65")
    policy = key_project(
        tmp_path,
        release='signatures = ["ed25519", "ml-dsa-65"]\n'
        'public_keys = {"ml-dsa-65" = "keys/release-ml-dsa-65.pub"}',
    )
    monkeypatch.delenv("GATES_SIGNING_KEY", raising=False)
    monkeypatch.delenv("GATES_SIGNING_KEY_ML_DSA_65", raising=False)
    choice = signing_key(policy)
    assert not choice.release
    assert (tmp_path / ".keys/dev-signing-ml-dsa-65.key").exists()
    assert "DEVELOPMENT key(s)" in choice.note


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("vault_mount", "transit/../../secret"),
        ("vault_key_name", "gates-release/../../../../sys/policy/ci"),
        ("vault_data_key_name", "gates-data/../../../../../secret/prod"),
    ],
)
def test_vault_names_cannot_leave_the_transit_mount(tmp_path, vault, key, value):
    """Red team (6 December): the policy is the pull request's, VAULT_TOKEN is CI's. hvac puts
    the mount and key names into the URL and requests resolves '..' segments, so a name with
    '/../' sent CI's token to any Vault path (a POST for datakey: a write). Refused at load."""
    from pipeline.config import PolicyError

    names = {"vault_key_name": "gates-release", "vault_data_key_name": "gates-data", key: value}
    table = "\n".join(f'{k} = "{v}"' for k, v in names.items())
    (tmp_path / "keys").mkdir(parents=True, exist_ok=True)
    (tmp_path / "keys/release.pub").write_bytes(vault.add_ed25519("gates-release"))
    with pytest.raises(PolicyError, match=f"keys.{key}"):
        key_project(tmp_path, extra=f'[keys]\nprovider = "vault-transit"\n{table}')


@pytest.mark.parametrize(
    ("release", "extra", "signs"),
    [
        (
            "",
            '[keys]\nprovider = "aws-kms"\nkms_key_id = "alias/gates-release"',
            "ecdsa-p256-sha256",
        ),
        (
            'signatures = ["ecdsa-p256-sha256"]\n'
            'public_keys = {"ecdsa-p256-sha256" = "keys/release.pub"}',
            '[keys]\nprovider = "vault-transit"\nvault_key_name = "gates-release"',
            "ed25519",
        ),
    ],
    ids=["aws-kms-with-ed25519", "vault-transit-with-ecdsa"],
)
def test_a_provider_whose_algorithm_is_not_required_is_a_policy_error(
    tmp_path, release, extra, signs
):
    # [keys].provider set, [release].signatures left at its default: the policy checked valid,
    # `ci render` gave the deploy job the service's identity, and only the deploy job's
    # artifacts gate, after a whole chain, said the provider signs an algorithm nobody requires
    # (found adopting the pipeline, 7 December). Now `policy check`, `ci render` and every
    # other command refuse the policy with one message naming both keys.
    from tests.conftest import run_module

    write_pub(tmp_path, "release.pub", (REPO_KEYS / "release.pub").read_bytes())
    with pytest.raises(Exception, match=r"keys\.provider"):
        key_project(tmp_path, release=release, extra=extra)
    for args in (("policy", "check"), ("ci", "render", "--check")):
        done = run_module("gates", *args, cwd=tmp_path)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        assert "[release].signatures" in done.stderr or "release.signatures" in done.stderr
        assert signs in done.stderr, done.stderr
        assert "found a table" not in done.stderr, done.stderr


def test_the_policys_provider_algorithms_are_the_providers():
    # pipeline/config.py cannot import the providers (boto3, hvac): its table must follow them.
    from pipeline.config import PROVIDER_ALGORITHMS
    from pipeline.keys.aws_kms import AwsKmsProvider
    from pipeline.keys.vault_transit import VaultTransitProvider

    assert {
        "aws-kms": AwsKmsProvider.algorithm,
        "vault-transit": VaultTransitProvider.algorithm,
    } == PROVIDER_ALGORITHMS
