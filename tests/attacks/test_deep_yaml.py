"""Hostile YAML that costs seconds before it is refused (row 62's open item, row 57's reader).

``ci deploy --check`` reads every committed ``deploy/k8s/*.yaml`` with ``yaml.safe_load``
(pure-Python PyYAML here). Its scanner costs each token up to one step per open flow level
within a 1,024-character look-ahead, so 2,500-10,000 nested brackets took 6-8 s each before
the RecursionError that was then reported, and any manifest up to the rendered files' 4 MiB
read bound was parsed whole (256 KiB of flat flow YAML: 7 s). A manifest is now refused before
it is built when it is larger than ``MAX_MANIFEST_BYTES`` or nested past
``MAX_MANIFEST_DEPTH``, read from the parser's events one at a time (so a deep document stops
at the first level past the bound): one finding naming the file.

Red before: each planted manifest below was built and passed (no finding), and the CLI named
10,000 brackets only after parsing them ("nested too deep to parse").
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from gates._cli import main
from gates.ci import deploy
from pipeline.config import load_policy
from tests.conftest import REPO

DEPLOYMENT = "deploy/k8s/deployment.yaml"
DEEP = f"{DEPLOYMENT}:"  # the finding names the file (and the line the bound was passed on)
TOO_DEEP = f"expected YAML nested at most {deploy.MAX_MANIFEST_DEPTH} levels deep, found more"


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    return deploy.render_deploy(load_policy(REPO / "policy.toml"))


def _nest_flow(levels: int) -> str:
    return "[" * levels + "x" + "]" * levels


def _nest_block(levels: int) -> str:
    return "".join(f"{'  ' * i}k{i}:\n" for i in range(levels)) + "  " * levels + "x\n"


# Each appended to the rendered Deployment as a key no finding reads: nothing else differs.
PLANTS = {
    "flow brackets": lambda n: f"zz: {_nest_flow(n)}\n",
    "flow mappings": lambda n: "zz: " + "{a: " * n + "x" + "}" * n + "\n",
    "block mappings": lambda n: "zz:\n" + "\n".join("  " + s for s in _nest_block(n).splitlines()),
    "compact block sequences": lambda n: "zz:\n" + "- " * n + "x\n",
}


@pytest.mark.parametrize("plant", list(PLANTS))
def test_a_manifest_nested_past_the_bound_is_one_finding(
    rendered: dict[str, str], plant: str
) -> None:
    levels = deploy.MAX_MANIFEST_DEPTH + 8  # far under Python's recursion limit: it loads
    text = rendered[DEPLOYMENT] + PLANTS[plant](levels) + "\n"
    assert isinstance(yaml.safe_load(text)["zz"], list | dict)  # the plant is valid YAML
    found = deploy.security_findings(DEPLOYMENT, text)
    assert len(found) == 1, found
    assert found[0].startswith(DEEP), found
    assert found[0].endswith(TOO_DEEP), found


def test_a_manifest_over_the_byte_bound_is_one_finding(rendered: dict[str, str]) -> None:
    """A comment is enough: the parser reads every byte of it."""
    padding = "# " + "x" * 78 + "\n"
    text = rendered[DEPLOYMENT] + padding * (deploy.MAX_MANIFEST_BYTES // len(padding) + 1)
    size = len(text.encode())
    assert deploy.security_findings(DEPLOYMENT, text) == [
        f"{DEPLOYMENT}: expected at most {deploy.MAX_MANIFEST_BYTES} bytes of YAML, found {size}"
    ]


def test_every_rendered_manifest_is_well_within_both_bounds(rendered: dict[str, str]) -> None:
    """The control: what the renderer writes is read, at a quarter of each bound or less."""
    for path, text in rendered.items():
        if not path.endswith(".yaml"):
            continue
        assert len(text.encode()) * 4 <= deploy.MAX_MANIFEST_BYTES, path
        depth = deepest = 0
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            depth += isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent)
            depth -= isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent)
            deepest = max(deepest, depth)
        assert deepest * 3 <= deploy.MAX_MANIFEST_DEPTH, path
        assert deploy.security_findings(path, text, load_policy(REPO / "policy.toml")) == [], path


def test_ten_thousand_brackets_are_refused_by_the_bound_through_the_cli(
    tmp_path: Path, rendered: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(REPO / "policy.toml", tmp_path / "policy.toml")
    for relative, text in rendered.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text, encoding="utf-8")
    (tmp_path / DEPLOYMENT).write_text(_nest_flow(10_000), encoding="utf-8")
    assert main(["ci", "deploy", "--check", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr()
    assert f"{DEPLOYMENT}:1: {TOO_DEEP}" in out.out + out.err
    assert "Traceback" not in out.out + out.err
