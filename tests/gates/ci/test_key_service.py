"""The CI files with a key service in [keys].provider (issue 20): the deploy job signs with the
CI platform's short-lived identity instead of a stored private key; with the default local
provider every file is byte for byte what it was. The real tools' verdicts on these renders are
in test_github.py, test_gitlab.py and test_jenkins.py."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from gates import ci
from gates.ci.github import KEY_SERVICE_ACTIONS, PINNED, GithubRenderer
from gates.ci.gitlab import GitlabRenderer
from gates.ci.interface import CiPlan, KeyService
from gates.ci.jenkins import JenkinsRenderer
from tests.conftest import REPO, run_module

SHA_PIN = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$")
# A ``uses:`` value as YAML reads it (the "# vX.Y.Z" comment is gone).
SHA_USES = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
AWS_HYBRID = """
[keys]
provider = "aws-kms"
kms_key_id = "alias/gates-release"
kms_region = "eu-west-1"
"""
VAULT = """
[keys]
provider = "vault-transit"
vault_key_name = "gates-release"
"""


def _policy_root(tmp_path: Path, extra: str, *, hybrid: bool = False) -> Path:
    root = tmp_path / "project"
    root.mkdir(parents=True)
    text = (REPO / "policy.toml").read_text(encoding="utf-8")
    if hybrid:
        text = text.replace(
            "[release]\n",
            '[release]\nsignatures = ["ecdsa-p256-sha256", "ml-dsa-65"]\n'
            'public_keys = {"ecdsa-p256-sha256" = "keys/release-kms.pub", '
            '"ml-dsa-65" = "keys/release-ml-dsa-65.pub"}\n',
            1,
        )
    (root / "policy.toml").write_text(text + extra, encoding="utf-8")
    shutil.copytree(REPO / "data", root / "data")
    shutil.copytree(REPO / "keys", root / "keys")
    if hybrid:
        from pipeline.signing import generate_key_pair

        for algorithm, name in (
            ("ml-dsa-65", "release-ml-dsa-65"),
            ("ecdsa-p256-sha256", "release-kms"),
        ):
            generate_key_pair(
                private_path=tmp_path / f"{name}.key",
                public_path=root / "keys" / f"{name}.pub",
                algorithm=algorithm,
            )
    return root


def _service(tmp_path: Path, extra: str, *, hybrid: bool = False) -> KeyService | None:
    from pipeline.config import load_policy

    return KeyService.from_policy(
        load_policy(_policy_root(tmp_path, extra, hybrid=hybrid) / "policy.toml")
    )


def _deploy_steps(text: str) -> list[dict]:
    return yaml.safe_load(text)["jobs"]["deploy"]["steps"]


def test_the_default_local_provider_renders_the_committed_files_byte_for_byte():
    from pipeline.config import load_policy

    assert KeyService.from_policy(load_policy(REPO / "policy.toml")) is None
    assert ci.key_service(REPO) is None
    assert ci.check(REPO, keys=ci.key_service(REPO)) == ()


def test_key_service_from_the_policy(tmp_path):
    aws = _service(tmp_path / "a", AWS_HYBRID, hybrid=True)
    # The rotate job's old public keys: one per algorithm the policy signs with.
    old = ("GATES_ROTATE_FROM_ECDSA_P256_SHA256", "GATES_ROTATE_FROM_ML_DSA_65")
    assert aws == KeyService("aws-kms", "eu-west-1", ("GATES_SIGNING_KEY_ML_DSA_65",), old)
    vault = KeyService("vault-transit", "us-east-1", (), ("GATES_ROTATE_FROM",))
    assert _service(tmp_path / "v", VAULT) == vault


def test_github_aws_kms_takes_an_oidc_role_and_stores_no_release_key():
    plan = CiPlan.from_specs(
        keys=KeyService("aws-kms", "eu-west-1", ("GATES_SIGNING_KEY_ML_DSA_65",))
    )
    text = GithubRenderer().render(plan)
    deploy = yaml.safe_load(text)["jobs"]["deploy"]
    assert deploy["permissions"] == {"contents": "read", "id-token": "write"}
    steps = deploy["steps"]
    login, sign, promote, _ = steps[-4:]
    assert login["uses"].startswith("aws-actions/configure-aws-credentials@")
    assert SHA_USES.match(login["uses"]), login["uses"]
    assert login["with"] == {
        "role-to-assume": "${{ secrets.GATES_AWS_ROLE_ARN }}",
        "aws-region": "eu-west-1",
        "audience": "sts.amazonaws.com",
    }
    assert sign["run"] == "python -m gates run artifacts gate"
    # Only the ML-DSA-65 half of the hybrid is still a secret; no GATES_SIGNING_KEY anywhere.
    assert sign["env"] == {
        "GATES_SIGNING_KEY_ML_DSA_65": "${{ secrets.GATES_SIGNING_KEY_ML_DSA_65 }}"
    }
    assert "secrets.GATES_SIGNING_KEY }}" not in text
    assert promote["run"] == "python -m gates deploy"
    # No other job gets the id-token grant (but the rotate job, which signs too).
    for name, job in yaml.safe_load(text)["jobs"].items():
        if name not in ("deploy", "rotate"):
            assert "id-token" not in job["permissions"], name


def test_github_vault_takes_a_jwt_token_and_stores_no_key():
    text = GithubRenderer().render(CiPlan.from_specs(keys=KeyService("vault-transit")))
    deploy = yaml.safe_load(text)["jobs"]["deploy"]
    assert deploy["permissions"]["id-token"] == "write"
    assert deploy["env"]["VAULT_ADDR"] == "${{ secrets.VAULT_ADDR }}"
    login, sign, _, _ = deploy["steps"][-4:]
    assert login["uses"].startswith("hashicorp/vault-action@")
    assert SHA_USES.match(login["uses"]), login["uses"]
    assert login["with"]["method"] == "jwt"
    assert login["with"]["role"] == "${{ secrets.GATES_VAULT_ROLE }}"
    assert login["with"]["exportToken"] is True
    assert login["with"]["jwtGithubAudience"] == "gates-release-signing"
    assert "env" not in sign
    # No key at all: only where Vault is and which role to log in as (environment secrets),
    # and the registry's pinned head (test_registry_pin.py).
    assert set(re.findall(r"secrets\.(\w+)", str(deploy))) == {
        "VAULT_ADDR",
        "GATES_VAULT_ROLE",
        "GATES_REGISTRY_HEAD",
    }


def test_the_key_service_actions_are_pinned_and_not_in_the_default_workflow():
    default = GithubRenderer().render(CiPlan.from_specs())
    for action in KEY_SERVICE_ACTIONS:
        assert SHA_PIN.match(action.uses), action.uses
        assert action.repo not in default
        assert action not in PINNED


def test_gitlab_id_tokens_with_an_audience_and_no_stored_key():
    aws = yaml.safe_load(
        GitlabRenderer().render(CiPlan.from_specs(keys=KeyService("aws-kms", "eu-west-1")))
    )
    deploy = aws["deploy"]
    assert deploy["id_tokens"] == {"GATES_OIDC_TOKEN": {"aud": "sts.amazonaws.com"}}
    assert deploy["variables"]["AWS_REGION"] == "eu-west-1"
    script = deploy["script"]
    assert script[0] == "python -m gates registry head --require-pin"
    assert 'AWS_ROLE_ARN="$GATES_AWS_ROLE_ARN"' in script[1]
    assert 'AWS_WEB_IDENTITY_TOKEN_FILE="$(mktemp)"' in script[1]
    assert script[2] == 'printf \'%s\' "$GATES_OIDC_TOKEN" > "$AWS_WEB_IDENTITY_TOKEN_FILE"'
    assert script[3:5] == ["python -m gates run artifacts gate", "python -m gates deploy"]
    vault = yaml.safe_load(
        GitlabRenderer().render(CiPlan.from_specs(keys=KeyService("vault-transit")))
    )
    deploy = vault["deploy"]
    assert deploy["id_tokens"] == {"GATES_OIDC_TOKEN": {"aud": "gates-release-signing"}}
    assert deploy["script"][1].startswith('export VAULT_TOKEN="$(python -c ')
    assert "auth.jwt.jwt_login(" in deploy["script"][1]
    # Only the deploy job gets an ID token (and the rotate job, which signs too).
    assert [
        name for name, job in vault.items() if isinstance(job, dict) and "id_tokens" in job
    ] == ["deploy", "rotate"]


def test_gitlab_vault_login_line_is_valid_python():
    # The one-liner the job runs, compiled here (hvac's jwt_login exists in the locked hvac).
    import hvac

    line = yaml.safe_load(
        GitlabRenderer().render(CiPlan.from_specs(keys=KeyService("vault-transit")))
    )["deploy"]["script"][1]
    code = re.search(r"python -c '([^']*)'", line).group(1)
    compile(code, "<gitlab vault login>", "exec")
    assert callable(hvac.api.auth_methods.JWT.jwt_login)


def test_jenkins_binds_short_lived_credentials_and_no_release_key():
    aws = JenkinsRenderer().render(
        CiPlan.from_specs(keys=KeyService("aws-kms", "eu-west-1", ("GATES_SIGNING_KEY_ML_DSA_65",)))
    )
    deploy = aws[aws.index("stage('deploy') {") :]
    assert "withCredentials([aws(\n" in deploy
    assert "credentialsId: 'gates-aws-kms'," in deploy
    assert "AWS_REGION = 'eu-west-1'" in deploy
    assert "GATES_SIGNING_KEY_ML_DSA_65 = credentials('gates-signing-key-ml-dsa-65')" in deploy
    assert "credentials('gates-signing-key')" not in aws
    assert deploy.index("withCredentials(") < deploy.index("python -m gates run artifacts gate")
    vault = JenkinsRenderer().render(CiPlan.from_specs(keys=KeyService("vault-transit")))
    binding = "withCredentials([[\n"
    for line in (
        "$class: 'VaultTokenCredentialBinding',",
        "credentialsId: 'gates-vault',",
        "vaultAddr: env.VAULT_ADDR",
    ):
        binding += f"{' ' * 20}{line}\n"
    assert binding + f"{' ' * 16}]]) {{\n" in vault
    # No stored key: the one credential bound is the registry's pinned head (not a key); the
    # rotate stage binds the old public key's PEM besides (not a secret key either).
    deploy = vault[vault.index("stage('deploy') {") :]
    assert deploy.count("credentials(") == deploy.count("credentials('gates-registry-head')") == 1
    assert vault.count("credentials(") == 3
    assert vault.count("credentials('gates-rotate-from')") == 1


@pytest.mark.parametrize("extra", [AWS_HYBRID, VAULT], ids=["aws-kms", "vault-transit"])
def test_ci_render_reads_the_key_service_from_the_policy_and_check_follows_it(tmp_path, extra):
    root = _policy_root(tmp_path, extra, hybrid=extra is AWS_HYBRID)
    written = run_module("gates", "ci", "render", "--root", str(root), cwd=root)
    assert written.returncode == 0, written.stdout + written.stderr
    workflow = (root / ".github/workflows/pipeline.yml").read_text(encoding="utf-8")
    assert "id-token: write" in workflow
    # deploy's and rotate's
    assert (root / ".gitlab-ci.yml").read_text(encoding="utf-8").count("id_tokens:") == 2
    checked = run_module("gates", "ci", "render", "--check", "--root", str(root), cwd=root)
    assert checked.returncode == 0, checked.stdout
    # The committed (local-key) files are drift under a key-service policy, and the reverse.
    shutil.copy2(REPO / ".github/workflows/pipeline.yml", root / ".github/workflows/pipeline.yml")
    drift = run_module("gates", "ci", "render", "--check", "--root", str(root), cwd=root)
    assert drift.returncode == 1
    assert ".github/workflows/pipeline.yml" in drift.stdout
