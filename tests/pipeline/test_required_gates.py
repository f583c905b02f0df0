"""``python -m pipeline predict`` requires every gate of ``[release].required_gates``.

The pipeline imports no gate, so the default list is written in ``pipeline.config``; a statement
that records every gate PASSED but lacks one of the required gates (signed before that gate
existed, or by a chain that left it out) is refused, naming the gate.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest

from pipeline.config import RELEASED_GATES

STATEMENT = "artifacts/attestation.statement.json"
ARGS = ("predict", "--input", "data/breast_cancer.csv", "--key", ".keys/dev-signing.pub")


def _predict(root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    from pipeline._cli import main

    capsys.readouterr()
    with contextlib.chdir(root):
        # An exception escaping main() would be a traceback for the user: it fails the test.
        code = main(["--policy", str(root / "policy.toml"), *ARGS])
    captured = capsys.readouterr()
    return code, captured.err


def _re_sign(root: Path, *, without: tuple[str, ...] = ()) -> None:
    """Sign the statement again with the run's own (development) key, its subjects' digests
    taken from the files as they are now (an edited policy.toml too), the gates ``without``
    dropped: a valid signature, every recorded gate PASSED."""
    from pipeline.attestation import sign_and_write
    from pipeline.fsio import sha256_file
    from pipeline.signing import read_private_key

    statement = json.loads((root / STATEMENT).read_text(encoding="utf-8"))
    for gate in without:
        del statement["predicate"]["gates"][gate]
    for subject in statement["subject"]:
        subject["digest"]["sha256"] = sha256_file(root / subject["name"])
    sign_and_write(
        (json.dumps(statement, indent=2, sort_keys=True) + "\n").encode(),
        key=read_private_key(root / ".keys" / "dev-signing.key", release=False),
        bundle_dir=root / "artifacts",
    )


def test_the_default_is_every_gate_the_statement_records(passed_chain):
    recorded = json.loads((passed_chain / STATEMENT).read_text(encoding="utf-8"))
    assert sorted(recorded["predicate"]["gates"]) == sorted(RELEASED_GATES)


def test_predict_passes_when_every_required_gate_is_recorded(passed_project, capsys):
    code, err = _predict(passed_project.root, capsys)
    assert code == 0, err
    _re_sign(passed_project.root)  # what the refusals below change, and nothing else
    code, err = _predict(passed_project.root, capsys)
    assert code == 0, err


@pytest.mark.parametrize("gate", ["audit", "cv"])
def test_a_statement_missing_a_required_gate_is_refused_naming_it(gate, passed_project, capsys):
    _re_sign(passed_project.root, without=(gate,))
    code, err = _predict(passed_project.root, capsys)
    assert code == 2
    assert f"gate '{gate}' has no verdict in the statement" in err
    assert "attestation.intoto.json: refused (1 problem(s))" in err
    assert "Traceback" not in err


def test_a_gate_the_policy_adds_is_required_too(passed_project, capsys):
    passed_project.edit_policy(**{"release.required_gates": [*RELEASED_GATES, "fairness"]})
    _re_sign(passed_project.root)  # the signed policy.toml is the edited one
    code, err = _predict(passed_project.root, capsys)
    assert code == 2
    assert "gate 'fairness' has no verdict in the statement" in err
    assert "1 problem(s)" in err


def test_the_policy_list_is_what_predict_requires(passed_project, capsys):
    # The same re-signed statement (no audit verdict) is accepted once the policy no longer
    # requires audit: the refusal above comes from [release].required_gates.
    passed_project.edit_policy(
        **{"release.required_gates": [g for g in RELEASED_GATES if g != "audit"]}
    )
    _re_sign(passed_project.root, without=("audit",))
    code, err = _predict(passed_project.root, capsys)
    assert code == 0, err


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ([], "at least 1 item"),
        (["lint", "sast", "lint"], "lint is listed more than once"),
        (["Lint"], "should match pattern"),
        ("lint", "valid tuple"),
    ],
)
def test_a_bad_required_gates_list_is_refused_naming_the_key(value, fragment, project):
    from pipeline.errors import PolicyError

    project.edit_policy(**{"release.required_gates": value})
    with pytest.raises(PolicyError) as raised:
        project.load()
    assert "release.required_gates" in str(raised.value)
    assert fragment in str(raised.value)
