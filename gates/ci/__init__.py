"""CI configurations for GitHub Actions, GitLab CI and Jenkins, rendered from the gate registry."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gates.ci.dependabot import DependabotRenderer
from gates.ci.github import GithubRenderer
from gates.ci.gitlab import GitlabRenderer
from gates.ci.interface import CiError, CiPlan, CiRenderer, KeyService, ZapScan
from gates.ci.jenkins import JenkinsRenderer
from gates.registry import GATES, GateSpec
from pipeline.fsio import read_regular

RENDERERS: tuple[CiRenderer, ...] = (
    GithubRenderer(),
    GitlabRenderer(),
    JenkinsRenderer(),
    DependabotRenderer(),
)

__all__ = [
    "RENDERERS",
    "CiError",
    "CiPlan",
    "CiRenderer",
    "Drift",
    "KeyService",
    "ZapScan",
    "check",
    "key_service",
    "render_all",
    "zap_scan",
]


def render_all(
    specs: tuple[GateSpec, ...] = GATES,
    *,
    keys: KeyService | None = None,
    zap: ZapScan | None = None,
) -> dict[str, str]:
    """Every CI file's text, keyed by its path relative to the project root.

    ``keys``: the policy's key service (``key_service``); None renders the local-key files.
    ``zap``: the policy's ZAP scan (``zap_scan``); None renders no scan.
    """
    plan = CiPlan.from_specs(specs, keys=keys, zap=zap)
    return {str(renderer.path): renderer.render(plan) for renderer in RENDERERS}


def key_service(root: Path) -> KeyService | None:
    """The key service ``root/policy.toml`` configures (None: local keys, or no policy there)."""
    from pipeline.config import load_policy  # noqa: PLC0415

    path = root / "policy.toml"
    if not path.exists():
        return None
    return KeyService.from_policy(load_policy(path))


def zap_scan(root: Path) -> ZapScan | None:
    """The ZAP scan ``root/policy.toml`` asks for (None: ``[serve.dast].zap`` off, or no policy)."""
    from pipeline.config import load_policy  # noqa: PLC0415

    path = root / "policy.toml"
    if not path.exists():
        return None
    return ZapScan.from_policy(load_policy(path))


@dataclass(frozen=True)
class Drift:
    """A committed file (CI or deployment) that differs from what is rendered (or is missing)."""

    path: str
    diff: str


def check(
    root: Path,
    *,
    specs: tuple[GateSpec, ...] = GATES,
    keys: KeyService | None = None,
    zap: ZapScan | None = None,
) -> tuple[Drift, ...]:
    """Compare the files under ``root`` with the rendered ones; a unified diff per drifted file."""
    return drifts(root, render_all(specs, keys=keys, zap=zap))


# A rendered file is a few KiB; a committed one far larger is not it.
MAX_RENDERED_BYTES = 4 << 20


def drifts(root: Path, rendered: Mapping[str, str]) -> tuple[Drift, ...]:
    """Each file of ``rendered`` (relative path -> text) that differs under ``root`` or is
    missing, with a unified diff (the CI files and the deployment files share this)."""
    found = []
    for relative, expected in rendered.items():
        try:
            # Never through a symlink or from a FIFO or device: a committed symlink to
            # /dev/zero made the check read until memory ran out (red team 9).
            raw = read_regular(root / relative, limit=MAX_RENDERED_BYTES)
            current: str | None = raw.decode("utf-8", errors="replace")
        except FileNotFoundError:
            current = None
        except OSError as err:
            why = f"{relative}: not read: {err.strerror or err}; expected the rendered file\n"
            found.append(Drift(path=relative, diff=why))
            continue
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
