"""The serving image by digest, never by a tag that can be re-pointed (trust-model row 123).

Before (docs/serving.md "the image-tag problem", 7 December): the Deployment ran
``[serve.deploy].image`` (``gates-serve:latest``) with ``imagePullPolicy: IfNotPresent``, and
``ci deploy --check`` required exactly that tag. Whoever can push to the image registry (a
compromised CI token, a registry mirror) re-points the tag at an image the deploy job never
built (another entrypoint, no ``--require-pin``), and every node that pulls it afresh runs it;
a node that held the tag kept the old image, so even the deploy's own rollout was not what it
named. Now the Deployment names ``<repository>@sha256:<digest>``: ``ci deploy --image-digest``
renders the digest the deploy job's push printed, the committed files name the all-zero digest
(no image has it: as committed, nothing runs), and ``ci deploy --check`` refuses a manifest that
runs a tag, a tag beside a digest, or another repository's digest. Red before: every case here
(the tag was the expected image; no ``--image-digest`` existed).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gates._cli import main
from gates.ci import deploy
from pipeline.config import LoadedPolicy, load_policy
from tests.conftest import REPO
from tests.deploy_support import edit_deployment_text, render_into

BUILT = "sha256:" + "ab" * 32
ZERO = "sha256:" + "0" * 64
SCHEMA = REPO / "tests/assets/k8s/v1.34.0-standalone-strict/deployment-apps-v1.json"


@pytest.fixture(scope="module")
def loaded() -> LoadedPolicy:
    return load_policy(REPO / "policy.toml")


def _image(text: str) -> str:
    return str(yaml.safe_load(text)["spec"]["template"]["spec"]["containers"][0]["image"])


def test_the_committed_deployment_runs_no_unpinned_image() -> None:
    text = (REPO / "deploy/k8s/deployment.yaml").read_text(encoding="utf-8")
    assert _image(text) == f"gates-serve@{ZERO}"


def test_the_deploy_job_renders_the_built_digest_and_checks_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "project"
    (root / "deploy").mkdir(parents=True)
    (root / "policy.toml").write_bytes((REPO / "policy.toml").read_bytes())
    code = main(["ci", "deploy", "--root", str(root), "--image-digest", BUILT])
    assert code == 0
    text = (root / "deploy/k8s/deployment.yaml").read_text(encoding="utf-8")
    assert _image(text) == f"gates-serve@{BUILT}"
    capsys.readouterr()
    assert main(["ci", "deploy", "--check", "--root", str(root), "--image-digest", BUILT]) == 0
    # The same files are drift for the committed form (another digest), not a finding.
    assert main(["ci", "deploy", "--check", "--root", str(root)]) == 1
    out = capsys.readouterr().out
    assert f"-        image: gates-serve@{BUILT}" in out
    assert "image: expected" not in out
    checked = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--schemafile",
            str(SCHEMA),
            str(root / "deploy/k8s/deployment.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize(
    "digest",
    ["sha256:" + "AB" * 32, "sha256:" + "ab" * 31, "sha512:" + "ab" * 64, "ab" * 32, "latest"],
    ids=["upper-case", "short", "sha512", "no-algorithm", "a-tag"],
)
def test_a_malformed_digest_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], digest: str
) -> None:
    root = tmp_path / "project"
    root.mkdir()
    (root / "policy.toml").write_bytes((REPO / "policy.toml").read_bytes())
    capsys.readouterr()
    assert main(["ci", "deploy", "--root", str(root), "--image-digest", digest]) == 2
    err = capsys.readouterr().err
    assert err == (
        "error: --image-digest: expected sha256:<64 lowercase hex> (the digest the deploy job's "
        f"push printed), found {digest[:100]!r}\n"
    )
    assert not (root / "deploy").exists()


@pytest.mark.parametrize(
    "image",
    [
        "gates-serve:latest",
        f"gates-serve:latest@{BUILT}",
        "gates-serve",
        f"ghcr.io/attacker/gates-serve@{BUILT}",
        f"gates-serve@{BUILT[:-1]}",
    ],
    ids=["a-tag", "a-tag-beside-the-digest", "no-tag-no-digest", "another-repository", "short"],
)
def test_a_manifest_that_runs_an_unpinned_image_is_refused(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    loaded: LoadedPolicy,
    image: str,
) -> None:
    """The renderer edited to write the image (no drift, as a pull request can): refused."""
    line = f"        image: gates-serve@{ZERO}\n"
    edit_deployment_text(monkeypatch, lambda text: text.replace(line, f"        image: {image}\n"))
    root = render_into(tmp_path, loaded)
    capsys.readouterr()
    assert main(["ci", "deploy", "--check", "--root", str(root)]) == 1
    out = capsys.readouterr().out
    assert (
        "deploy/k8s/deployment.yaml: container 'serve': image: expected "
        "gates-serve@sha256:<64 hex> ([serve.deploy].image in policy.toml, the image built "
        "from deploy/Dockerfile, by the digest its push printed: python -m gates ci deploy "
        f"--image-digest; a tag can be re-pointed), found {image!r}"
    ) in out, out


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        ("gates-serve:latest", f"gates-serve@{ZERO}"),
        (
            "registry.example:5000/team/gates-serve:1.2",
            f"registry.example:5000/team/gates-serve@{ZERO}",
        ),
        (f"gates-serve:1.2@{BUILT}", f"gates-serve@{BUILT}"),
    ],
)
def test_the_repository_keeps_a_registry_port_and_drops_the_tag(
    loaded: LoadedPolicy, configured: str, expected: str
) -> None:
    variant = _with_image(loaded, configured)
    repository = expected.split("@", maxsplit=1)[0]
    assert deploy.repository(configured) == repository
    assert deploy.deployed_image(variant) == expected
    assert deploy.deployed_image(variant, BUILT) == f"{repository}@{BUILT}"


def _with_image(loaded: LoadedPolicy, image: str) -> LoadedPolicy:
    import dataclasses

    serve = loaded.policy.serve
    serve = serve.model_copy(update={"deploy": serve.deploy.model_copy(update={"image": image})})
    return dataclasses.replace(loaded, policy=loaded.policy.model_copy(update={"serve": serve}))
