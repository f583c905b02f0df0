"""CI configurations for GitHub Actions, GitLab CI and Jenkins, rendered from the gate registry."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gates.ci.dependabot import DependabotRenderer
from gates.ci.github import GithubRenderer
from gates.ci.gitlab import GitlabRenderer
from gates.ci.interface import CiError, CiPlan, CiRenderer
from gates.ci.jenkins import JenkinsRenderer
from gates.registry import GATES, GateSpec

RENDERERS: tuple[CiRenderer, ...] = (
    GithubRenderer(),
    GitlabRenderer(),
    JenkinsRenderer(),
    DependabotRenderer(),
)

__all__ = ["RENDERERS", "CiError", "CiPlan", "CiRenderer", "Drift", "check", "render_all"]


def render_all(specs: tuple[GateSpec, ...] = GATES) -> dict[str, str]:
    """Every CI file's text, keyed by its path relative to the project root."""
    plan = CiPlan.from_specs(specs)
    return {str(renderer.path): renderer.render(plan) for renderer in RENDERERS}


@dataclass(frozen=True)
class Drift:
    """A committed file (CI or deployment) that differs from what is rendered (or is missing)."""

    path: str
    diff: str


def check(root: Path, *, specs: tuple[GateSpec, ...] = GATES) -> tuple[Drift, ...]:
    """Compare the files under ``root`` with the rendered ones; a unified diff per drifted file."""
    return drifts(root, render_all(specs))


def drifts(root: Path, rendered: Mapping[str, str]) -> tuple[Drift, ...]:
    """Each file of ``rendered`` (relative path -> text) that differs under ``root`` or is
    missing, with a unified diff (the CI files and the deployment files share this)."""
    found = []
    for relative, expected in rendered.items():
        try:
            current: str | None = (root / relative).read_text(encoding="utf-8")
        except FileNotFoundError:
            current = None
        if current == expected:
            continue
        diff = "".join(
            difflib.unified_diff(
                [] if current is None else current.splitlines(keepends=True),
                expected.splitlines(keepends=True),
                fromfile=f"{relative} (committed)" if current is not None else "/dev/null",
                tofile=f"{relative} (rendered)",
            )
        )
        found.append(Drift(path=relative, diff=diff))
    return tuple(found)
