"""The ordered registry of gates: the one place their order is written.

Everything ordered is derived from ``GATES``: nox's ``requires=``, the runner, the verdict, and
the CI configurations. This module imports only the standard library so that ``noxfile.py`` can
read it before any dependency is installed.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gates.base import Gate


@dataclass(frozen=True)
class GateSpec:
    """A registered gate: its stable name, where its class lives, and a one-line summary.

    ``verdict`` marks the one gate that judges every earlier report. ``always`` marks a stage
    registered after the verdict that runs whether the gates passed or not (feedback); such a
    stage is neither a prerequisite of any gate nor judged by the verdict.
    ``base_branch`` marks a gate that reads, on a pull request, the base branch's policy: the
    data gate (its approvers and approved data lock) and the verdict (it compares the pull
    request's policy with it; a change needs an approver's signature) (docs/ci.md "The base
    branch's policy").
    """

    name: str
    target: str
    summary: str
    verdict: bool = False
    always: bool = False
    # On pull requests the gate reads the base branch's policy ($GATES_BASE_POLICY): the CI
    # files check the base branch out apart for its job.
    base_branch: bool = False

    def load(self) -> Gate:
        """Import and instantiate the gate class named by ``target`` (``gates.module:Class``)."""
        module_name, _, class_name = self.target.partition(":")
        package, dot, module = module_name.partition(".")
        if (package, dot) != ("gates", ".") or not module:
            msg = f"{self.target}: a gate's module lives in the gates package"
            raise ValueError(msg)
        # The literal "gates." prefix keeps the import inside our own (scanned) package: the
        # sast gate's unsafe-load rule refuses any other import by a computed name.
        gate: Gate = getattr(importlib.import_module(f"gates.{module}"), class_name)()
        if gate.name != self.name:
            msg = f"{self.target} is named '{gate.name}', registered as '{self.name}'"
            raise ValueError(msg)
        return gate


GATES: tuple[GateSpec, ...] = (
    GateSpec(
        "lint",
        "gates.lint:LintGate",
        "ruff check and ruff format --check are clean over the code policy names.",
    ),
    GateSpec(
        "sast",
        "gates.sast:SastGate",
        "bandit and the unsafe-deserialization check find nothing at the policy's thresholds.",
    ),
    GateSpec(
        "audit",
        "gates.audit:AuditGate",
        "pip-audit --strict over requirements.lock: no unwaived vulnerability, canary seen.",
    ),
    GateSpec(
        "data",
        "gates.data_integrity:DataGate",
        "Data matches its approved lock and every rule of the contract in policy.toml.",
        base_branch=True,
    ),
    GateSpec(
        "train",
        "gates.train:TrainGate",
        "Fit the policy's estimator on the approved data; save it with skops.",
    ),
    GateSpec(
        "cv",
        "gates.cv_threshold:CvGate",
        "Stratified k-fold CV and held-out scores clear every threshold in [cv].",
    ),
    GateSpec(
        "risk",
        "gates.risk:RiskGate",
        "Robust accuracy under bounded perturbations and membership-inference exposure clear [risk].",
    ),
    GateSpec(
        "serve",
        "gates.serve:ServeGate",
        "The candidate answers over HTTP on loopback as offline; malformed requests refused; p99 bar.",
    ),
    GateSpec(
        "artifacts",
        "gates.artifacts:ArtifactsGate",
        "SHA-256 manifest of model, data, lock and policy, with the git commit.",
    ),
    GateSpec(
        "gate",
        "gates.verdict:VerdictGate",
        "The verdict: every gate of this run PASSED on the inputs and bytes on disk now.",
        verdict=True,
        base_branch=True,
    ),
    GateSpec(
        "feedback",
        "gates.feedback:FeedbackGate",
        "Record the run in the hash-chained history, compare trends, write reports and metrics.",
        always=True,
    ),
)


def _check(specs: tuple[GateSpec, ...]) -> None:
    names = [spec.name for spec in specs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        msg = f"gate names registered twice: {duplicates}"
        raise ValueError(msg)
    verdicts = [spec.name for spec in specs if spec.verdict]
    if len(verdicts) != 1:
        msg = f"exactly one verdict gate must be registered, found {verdicts}"
        raise ValueError(msg)
    after = specs[names.index(verdicts[0]) + 1 :]
    if any(not spec.always for spec in after) or any(
        spec.always for spec in specs[: names.index(verdicts[0])]
    ):
        msg = "stages after the verdict must be marked always=True, and only those"
        raise ValueError(msg)


_check(GATES)

NAMES: tuple[str, ...] = tuple(spec.name for spec in GATES)


def spec(name: str) -> GateSpec:
    """The spec registered under ``name``; KeyError names the known gates."""
    for candidate in GATES:
        if candidate.name == name:
            return candidate
    msg = f"unknown gate '{name}'; expected one of: {', '.join(NAMES)}"
    raise KeyError(msg)


def checked_before(name: str) -> tuple[GateSpec, ...]:
    """The gates that must have PASSED in this run before ``name`` may run (or be judged)."""
    index = NAMES.index(name)
    return tuple(s for s in GATES[:index] if not (s.verdict or s.always))


VERDICT: GateSpec = next(s for s in GATES if s.verdict)
