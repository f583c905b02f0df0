"""The committed CI files are exactly what the registry renders, and drift is caught with a diff."""

from __future__ import annotations

import os
import re
import shutil

import pytest

from gates import ci
from gates.ci.interface import GENERATED_BY
from gates.registry import GATES

REPO_FILES = {
    ".github/workflows/pipeline.yml",
    ".gitlab-ci.yml",
    "Jenkinsfile",
    ".github/dependabot.yml",
}
# How each file names a gate's job or stage; positions prove the order.
JOB_PATTERN = {
    ".github/workflows/pipeline.yml": r"^  {name}:$",
    ".gitlab-ci.yml": r"^{name}:$",
    "Jenkinsfile": r"python -m gates run {name}'?$",
}


def _positions(text: str, path: str, names: list[str]) -> list[int]:
    positions = []
    for name in names:
        match = re.search(JOB_PATTERN[path].format(name=re.escape(name)), text, re.MULTILINE)
        assert match is not None, f"{path}: no job or stage for gate '{name}'"
        positions.append(match.start())
    return positions


def test_committed_files_equal_the_rendered_ones():
    from tests.conftest import REPO

    drifts = ci.check(REPO)
    assert drifts == (), "\n".join(d.diff for d in drifts) + "\nrun: python -m gates ci render"


def test_renders_the_three_files_each_starting_with_the_generated_comment():
    rendered = ci.render_all()
    assert set(rendered) == REPO_FILES
    for path, text in rendered.items():
        assert GENERATED_BY in text.splitlines()[0], path
        assert text.endswith("\n")


@pytest.mark.parametrize("specs_name", ["registry", "future"])
def test_each_file_lists_the_gates_in_registry_order(specs_name, future_specs):
    specs = GATES if specs_name == "registry" else future_specs
    names = [spec.name for spec in specs]
    rendered = ci.render_all(specs)
    assert set(rendered) - set(JOB_PATTERN) == {".github/dependabot.yml"}  # no gates in it
    for path in JOB_PATTERN:
        text = rendered[path]
        positions = _positions(text, path, names)
        assert positions == sorted(positions), f"{path}: gates out of registry order"


def test_rendering_is_deterministic(future_specs):
    assert ci.render_all(future_specs) == ci.render_all(future_specs)


def test_check_reports_a_changed_file_with_a_unified_diff(tmp_path):
    for path, text in ci.render_all().items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text, encoding="utf-8")
    assert ci.check(tmp_path) == ()
    jenkinsfile = tmp_path / "Jenkinsfile"
    jenkinsfile.write_text(
        jenkinsfile.read_text(encoding="utf-8").replace("run cv", "run cv || true"),
        encoding="utf-8",
    )
    (tmp_path / ".gitlab-ci.yml").unlink()
    drifts = {d.path: d.diff for d in ci.check(tmp_path)}
    assert set(drifts) == {"Jenkinsfile", ".gitlab-ci.yml"}
    assert "--- Jenkinsfile (committed)" in drifts["Jenkinsfile"]
    assert "+++ Jenkinsfile (rendered)" in drifts["Jenkinsfile"]
    assert (
        "-                            sh '. .venv/bin/activate && python -m gates run cv || true'"
        in (drifts["Jenkinsfile"])
    )
    assert drifts[".gitlab-ci.yml"].startswith("--- /dev/null")


def test_cli_render_writes_then_check_passes_and_catches_an_edit(tmp_path, gates_cli):
    written = gates_cli(tmp_path, "ci", "render", "--root", str(tmp_path))
    assert written.returncode == 0, written.stderr
    assert {line.removeprefix("wrote ") for line in written.stdout.splitlines()} == REPO_FILES

    clean = gates_cli(tmp_path, "ci", "render", "--check")
    assert clean.returncode == 0, clean.stdout
    assert "up to date" in clean.stdout

    workflow = tmp_path / ".github" / "workflows" / "pipeline.yml"
    workflow.write_text(
        workflow.read_text(encoding="utf-8").replace("persist-credentials: false", "", 1),
        encoding="utf-8",
    )
    drifted = gates_cli(tmp_path, "ci", "render", "--check")
    assert drifted.returncode == 1
    assert "+++ .github/workflows/pipeline.yml (rendered)" in drifted.stdout
    assert "+          persist-credentials: false" in drifted.stdout
    assert "python -m gates ci render" in drifted.stdout

    again = gates_cli(tmp_path, "ci", "render")
    assert again.returncode == 0
    assert gates_cli(tmp_path, "ci", "render", "--check").returncode == 0


def test_cli_render_into_an_unwritable_place_is_a_usage_error(tmp_path, gates_cli):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder", encoding="utf-8")
    result = gates_cli(tmp_path, "ci", "render", "--root", str(blocker))
    assert result.returncode == 2
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "Jenkinsfile").exists()


def test_regenerating_after_a_registry_change_is_one_command(tmp_path, gates_cli):
    # What the lead does after merging: change the registry, run one command, commit.
    from tests.conftest import REPO

    shutil.copytree(REPO / "gates", tmp_path / "gates")
    registry = tmp_path / "gates" / "registry.py"
    registry.write_text(
        registry.read_text(encoding="utf-8").replace(
            "\n_check(GATES)\n",
            '\nGATES = (*GATES, GateSpec("probe", "m:C", "Probe.", always=True))\n_check(GATES)\n',
            1,
        ),
        encoding="utf-8",
    )
    result = gates_cli(
        tmp_path, "ci", "render", env={"PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}"}
    )
    assert result.returncode == 0, result.stderr
    workflow = (tmp_path / ".github" / "workflows" / "pipeline.yml").read_text(encoding="utf-8")
    assert "  probe:\n" in workflow
    assert "python -m gates run probe" in (tmp_path / "Jenkinsfile").read_text(encoding="utf-8")


def test_cli_render_into_a_folder_that_does_not_exist_is_a_usage_error(tmp_path, gates_cli):
    # A mistyped --root wrote four CI files into a new folder and said "wrote ..." (exit 0):
    # found adopting the pipeline, 7 December. ROOT is the project: it must exist.
    missing = tmp_path / "projekt"
    for args in ((), ("--check",)):
        result = gates_cli(tmp_path, "ci", "render", "--root", str(missing), *args)
        assert result.returncode == 2, (args, result.stdout)
        assert result.stderr.startswith(f"error: {missing}: not a folder"), result.stderr
        assert "--root" in result.stderr
        assert "Traceback" not in result.stderr
    assert not missing.exists()


def test_cli_render_without_a_policy_says_what_it_assumed(tmp_path, gates_cli):
    # No ROOT/policy.toml: the files are rendered for local keys and no ZAP scan; a note says so
    # (a policy naming a key service, or the scan, would render another deploy job).
    result = gates_cli(tmp_path, "ci", "render")
    assert result.returncode == 0, result.stderr
    assert "no policy.toml" in result.stderr
    assert "[keys].provider" in result.stderr
