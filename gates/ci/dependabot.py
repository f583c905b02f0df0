"""Dependabot: ``.github/dependabot.yml``, weekly pull requests that bump the pinned action SHAs.

The workflow is generated, so a Dependabot pull request (which edits
``.github/workflows/pipeline.yml`` directly) fails the ``ci-config`` check until the same bump is
made in ``gates/ci/github.py`` (``PINNED``) and the files are rendered again (docs/ci.md).
"""

from __future__ import annotations

from pathlib import PurePosixPath

from gates.ci.interface import CiPlan, CiRenderer, header

# Days a new release must age before Dependabot proposes it (a hijacked release is usually
# yanked within days); zizmor's dependabot-cooldown audit asks for one.
COOLDOWN_DAYS = 7


class DependabotRenderer(CiRenderer):
    """Renders the Dependabot configuration for the workflow's pinned actions."""

    system = "dependabot"
    path = PurePosixPath(".github/dependabot.yml")

    def render(self, plan: CiPlan) -> str:
        """One ``github-actions`` update entry, grouped into one pull request a week."""
        del plan  # the same actions whatever the gates
        return f"""\
{header("#")}# Dependabot reads the "# vX.Y.Z" comment beside each pinned commit SHA in the workflow and
# proposes the newer release's SHA. Apply the bump in gates/ci/github.py (PINNED), then run
# `python -m gates ci render`: the ci-config check fails on the pull request until then.
version: 2
updates:
  - package-ecosystem: github-actions
    directory: /
    schedule:
      interval: weekly
    cooldown:
      default-days: {COOLDOWN_DAYS}
    groups:
      actions:
        patterns: ["*"]
    commit-message:
      prefix: ci
    labels: [dependencies]
"""
