"""The ``artifacts`` gate: a SHA-256 manifest of model, data, lock and policy, with the git commit.

Rules: ART001 the model on disk is not the one the train and cv gates judged; ART002 a file the
manifest must cover is missing.
"""

from __future__ import annotations

from typing import ClassVar

from gates.base import Finding, Gate, Location, Outcome, RunContext
from gates.runner import git_commit, input_digests
from pipeline.fsio import sha256_file
from pipeline.persist import MODEL_FILE, manifest_path_for


class ArtifactsGate(Gate):
    """Hash every artifact and input, and tie them to the commit they came from."""

    name: ClassVar[str] = "artifacts"
    description: ClassVar[str] = __doc__ or ""
    # Never reused from the gate cache: the manifest names the commit checked out now, which
    # is not part of the cache key, and hashing is all this gate does anyway.
    cacheable: ClassVar[bool] = False

    def run(self, context: RunContext) -> Outcome:
        """Hash the model and its manifest, re-hash the inputs, record the commit."""
        root = context.root
        model = context.artifacts_dir / MODEL_FILE
        findings: list[Finding] = []
        digests: dict[str, str] = {}
        for path in (model, manifest_path_for(model)):
            rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
            if not path.is_file():
                findings.append(Finding("ART002", f"{rel} is missing", location=Location(path=rel)))
                continue
            digests[rel] = sha256_file(path)
        trained = context.read_report("train").artifacts
        for rel, digest in trained.items():
            if digests.get(rel) != digest:
                findings.append(
                    Finding(
                        "ART001",
                        f"{rel} on disk ({(digests.get(rel) or 'absent')[:12]}...) is not the "
                        f"model the train gate saved ({digest[:12]}...)",
                        location=Location(path=rel),
                        observed=digests.get(rel),
                        threshold=digest,
                    )
                )
        for rel, digest in input_digests(context.policy).items():
            if digest == "absent":
                findings.append(Finding("ART002", f"{rel} is missing", location=Location(path=rel)))
            else:
                digests[rel] = digest
        commit, dirty = git_commit(root)
        return Outcome.judge(
            findings,
            passed=f"{len(digests)} files hashed at commit {commit[:12]}{' (dirty)' if dirty else ''}",
            failed="{n} artifact problem(s): {first}",
            metrics={"git_commit": commit, "git_dirty": dirty, "files": len(digests)},
            artifacts=digests,
        )
