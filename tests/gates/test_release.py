"""``python -m gates verify|deploy|keygen``: the tamper matrix, deploy refusals, key handling."""

from __future__ import annotations

import base64
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.chain_support import replaying
from tests.release_support import cli, copy_project, new_project, run_chain

MODEL = "artifacts/model.skops"
ENVELOPE = "artifacts/attestation.intoto.json"
STATEMENT = "artifacts/attestation.statement.json"


@pytest.fixture(scope="module")
def signed(
    signed_chain: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str]:
    """One project signed with its own release key, shared read-only by this module (the key
    file is at ``<root>/../secret/release.key``)."""
    root, pem = signed_chain
    base = copy_project(root.parent, tmp_path_factory.mktemp("release") / "base")
    return base / root.name, pem


@pytest.fixture
def copy(signed: tuple[Path, str], tmp_path: Path) -> Path:
    """A throw-away copy of the signed project a test may tamper with."""
    return copy_project(signed[0], tmp_path / "copy")


def _flip(root: Path) -> None:
    data = bytearray((root / MODEL).read_bytes())
    data[len(data) // 2] ^= 0x01
    (root / MODEL).write_bytes(bytes(data))


def _truncate(root: Path) -> None:
    data = (root / MODEL).read_bytes()
    (root / MODEL).write_bytes(data[:-1])


def _append(root: Path) -> None:
    with (root / "data/breast_cancer.csv").open("ab") as handle:
        handle.write(b"\n")


def _extra(root: Path) -> None:
    (root / "artifacts/model.pkl").write_bytes(b"\x80\x04N.")


def _missing(root: Path) -> None:
    (root / "data/breast_cancer.lock.json").unlink()


def _swap(root: Path) -> None:
    a, b = root / "data/breast_cancer.lock.json", root / "data/SHA256SUMS"
    first, second = a.read_bytes(), b.read_bytes()
    a.write_bytes(second)
    b.write_bytes(first)


def _edit_statement(root: Path) -> None:
    # Rewrite the signed payload (a verdict flipped and a digest replaced) but keep the signature.
    path = root / ENVELOPE
    envelope = json.loads(path.read_text(encoding="utf-8"))
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["subject"][0]["digest"]["sha256"] = "0" * 64
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    path.write_text(json.dumps(envelope), encoding="utf-8")


def _edit_statement_copy(root: Path) -> None:
    path = root / STATEMENT
    path.write_text(path.read_text(encoding="utf-8").replace("PASSED", "FAILED"), encoding="utf-8")


def _no_signature(root: Path) -> None:
    path = root / ENVELOPE
    envelope = json.loads(path.read_text(encoding="utf-8"))
    envelope["signatures"] = []
    path.write_text(json.dumps(envelope), encoding="utf-8")


def _no_envelope(root: Path) -> None:
    (root / ENVELOPE).unlink()


def _symlink(root: Path) -> None:
    # Same bytes, reached through a link: still refused (a link can be re-pointed later).
    policy = root / "policy.toml"
    twin = root / "policy.copy.toml"
    twin.write_bytes(policy.read_bytes())
    policy.unlink()
    policy.symlink_to(twin.name)


def _envelope_symlink(root: Path) -> None:
    envelope = root / ENVELOPE
    kept = root / "kept.intoto.json"
    envelope.rename(kept)
    envelope.symlink_to(kept)


def _wrong_key(root: Path) -> None:
    from pipeline.signing import generate_key_pair

    (root / "keys/release.pub").unlink()
    generate_key_pair(private_path=root / "other.key", public_path=root / "keys/release.pub")


TAMPERS: dict[str, tuple[Callable[[Path], None], tuple[str, ...]]] = {
    "one byte flipped": (_flip, (MODEL, "SHA-256")),
    "truncated": (_truncate, (MODEL, "SHA-256")),
    "one byte appended": (_append, ("data/breast_cancer.csv", "SHA-256")),
    "extra file": (_extra, ("artifacts/model.pkl", "extra file")),
    "missing file": (_missing, ("data/breast_cancer.lock.json", "missing")),
    "two files swapped": (_swap, ("data/breast_cancer.lock.json", "data/SHA256SUMS")),
    "statement edited": (_edit_statement, (ENVELOPE, "no signature verifies")),
    "statement copy edited": (_edit_statement_copy, (STATEMENT, "edited")),
    "wrong key": (_wrong_key, (ENVELOPE, "no signature verifies")),
    "no signature": (_no_signature, (ENVELOPE, "carries no signature")),
    "no envelope": (_no_envelope, (ENVELOPE, "no attestation")),
    "symlink in place of a file": (_symlink, ("policy.toml", "symlink")),
    "symlink in place of the envelope": (_envelope_symlink, (ENVELOPE, "symlink")),
}


def test_untouched_project_verifies(copy, gates_cli):
    result = gates_cli(copy, "verify")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verified" in result.stdout
    assert "a release key" in result.stdout


@pytest.mark.parametrize("case", sorted(TAMPERS))
def test_tamper_matrix_is_refused_naming_the_file(case, copy):
    tamper, expected = TAMPERS[case]
    tamper(copy)
    result = cli(copy, "gates", "verify")
    assert result.returncode == 1, result.stdout + result.stderr
    for text in expected:
        assert text in result.stdout, (case, result.stdout)
    assert "Traceback" not in result.stderr


def test_signed_statement_with_a_failed_gate_is_refused(copy, signed, tmp_path):
    # Signed with the right key, so only the verdict check can catch it.
    from gates.release import verify_project
    from pipeline.attestation import AttestationError, sign_and_write
    from pipeline.config import load_policy
    from pipeline.signing import read_private_key

    payload = json.loads((copy / STATEMENT).read_text(encoding="utf-8"))
    payload["predicate"]["gates"]["cv"]["status"] = "FAILED"
    key_file = signed[0].parent / "secret" / "release.key"
    sign_and_write(
        (json.dumps(payload) + "\n").encode(),
        key=read_private_key(key_file, release=True),
        bundle_dir=copy / "artifacts",
    )
    with pytest.raises(AttestationError, match="gate 'cv' is FAILED in the signed statement"):
        verify_project(load_policy(copy / "policy.toml"))


def test_verify_with_an_unreadable_key_is_a_usage_error(copy):
    result = cli(copy, "gates", "verify", "--key", "nowhere.pub")
    assert result.returncode == 2
    assert "nowhere.pub: public key not found" in result.stderr


def test_development_signed_model_verifies_with_its_key_but_never_deploys(
    passed_project, tmp_path, gates_cli
):
    # A clone the chain ran on once (its gate cache kept), with a committed release key and
    # no private key configured anywhere.
    root = passed_project.root
    from pipeline.signing import generate_key_pair

    (root / "keys/release.pub").unlink()
    generate_key_pair(private_path=tmp_path / "far.key", public_path=root / "keys/release.pub")
    # An empty variable counts as unset, even where the test process itself holds the secret.
    result = gates_cli(root, "run", env={"GATES_SIGNING_KEY": ""})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "DEVELOPMENT key" in result.stdout
    dev_key = root / ".keys/dev-signing.key"
    assert stat.S_IMODE(dev_key.stat().st_mode) == 0o600
    report = json.loads((root / "reports/artifacts.json").read_text(encoding="utf-8"))
    assert report["metrics"]["signer"]["kind"] == "development"
    assert [f["rule"] for f in report["findings"]] == ["ART010"]

    refused = cli(root, "gates", "verify")
    assert refused.returncode == 1
    # Named as what it is, with the flag that accepts it; not worded as tampering.
    assert "signed by the local development key" in refused.stdout
    assert "pass --key .keys/dev-signing.pub" in refused.stdout
    assert "changed after signing" not in refused.stdout
    local = cli(root, "gates", "verify", "--key", ".keys/dev-signing.pub")
    assert local.returncode == 0
    assert "NOT deployable" in local.stdout
    deploy = cli(root, "gates", "deploy")
    assert deploy.returncode == 1
    assert "deploy refused" in deploy.stdout
    assert not (root / "registry/champion").exists()


def test_deploy_promotes_a_release_signed_run(copy, gates_cli):
    result = gates_cli(copy, "deploy")
    assert result.returncode == 0, result.stdout + result.stderr
    pointer = json.loads((copy / "registry/champion").read_text(encoding="utf-8"))
    version = copy / "registry/versions" / pointer["version"]
    assert (version / MODEL).read_bytes() == (copy / MODEL).read_bytes()
    assert (version / ENVELOPE).is_file()
    assert (version / STATEMENT).is_file()
    assert (version / "data/breast_cancer.csv").is_file()


def test_verify_champion_checks_the_promoted_copy(copy):
    none = cli(copy, "gates", "verify", "--champion")
    assert none.returncode == 1
    assert "no champion" in none.stdout
    assert cli(copy, "gates", "deploy").returncode == 0
    assert cli(copy, "gates", "verify", "--champion").returncode == 0
    pointer = json.loads((copy / "registry/champion").read_text(encoding="utf-8"))
    version = copy / "registry/versions" / pointer["version"]
    (version / "policy.toml").write_text("schema_version = 1\n", encoding="utf-8")
    tampered = cli(copy, "gates", "verify", "--champion")
    assert tampered.returncode == 1
    assert "policy.toml: SHA-256" in tampered.stdout


def test_deploy_refuses_a_model_built_from_a_dirty_tree(copy, signed):
    from pipeline.attestation import sign_and_write
    from pipeline.signing import read_private_key

    statement = json.loads((copy / STATEMENT).read_text(encoding="utf-8"))
    statement["predicate"]["git"]["dirty"] = True
    sign_and_write(
        (json.dumps(statement) + "\n").encode(),
        key=read_private_key(signed[0].parent / "secret" / "release.key", release=True),
        bundle_dir=copy / "artifacts",
    )
    assert cli(copy, "gates", "verify").returncode == 0
    result = cli(copy, "gates", "deploy")
    assert result.returncode == 1
    assert "uncommitted changes" in result.stdout


def test_deploy_refuses_a_run_whose_verdict_did_not_pass(copy):
    verdict = copy / "reports/gate.json"
    document = json.loads(verdict.read_text(encoding="utf-8"))
    document["status"] = "FAILED"
    verdict.write_text(json.dumps(document), encoding="utf-8")
    result = cli(copy, "gates", "deploy")
    assert result.returncode == 1
    assert "the verdict is FAILED" in result.stdout
    assert not (copy / "registry").exists()


def test_deploy_refuses_without_a_verdict(copy):
    (copy / "reports/gate.json").unlink()
    result = cli(copy, "gates", "deploy")
    assert result.returncode == 1
    assert "no verdict" in result.stdout


def test_deploy_refuses_a_verdict_nested_past_the_parser(copy):
    (copy / "reports/gate.json").write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    result = cli(copy, "gates", "deploy")
    assert result.returncode == 1
    assert "unparsable verdict (RecursionError)" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_deploy_refuses_a_tampered_model(copy):
    _flip(copy)
    result = cli(copy, "gates", "deploy")
    assert result.returncode == 1
    assert MODEL in result.stdout
    assert not (copy / "registry/champion").exists()


def test_keygen_writes_a_private_key_0600_and_refuses_to_overwrite(tmp_path, gates_cli):
    root = new_project(tmp_path / "p")
    first = gates_cli(root, "keygen", "--private", str(tmp_path / "k" / "release.key"))
    assert first.returncode == 0, first.stderr
    private = tmp_path / "k" / "release.key"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert (root / "keys/release.pub").read_text(encoding="ascii").startswith("-----BEGIN PUBLIC")
    body = private.read_text(encoding="ascii").splitlines()[1]
    assert body not in first.stdout + first.stderr
    before = private.read_bytes()
    again = gates_cli(root, "keygen", "--private", str(private))
    assert again.returncode == 2
    assert "refusing to overwrite" in again.stderr
    assert private.read_bytes() == before
    # The committed public key exists (as in every clone of this project): the message says
    # what replacing it means and where the steps are, not only "move it away".
    other = gates_cli(root, "keygen", "--private", str(tmp_path / "k" / "new.key"))
    assert other.returncode == 2
    assert "keys/release.pub: already exists" in other.stderr, other.stderr
    assert "stop verifying" in other.stderr
    assert "docs/keys.md" in other.stderr
    assert "Traceback" not in other.stderr
    assert not (tmp_path / "k" / "new.key").exists()


def test_a_configured_key_that_is_not_the_release_key_errors_without_leaking(
    tmp_path, passed_chain, passed_project
):
    # A copy of the session's passed chain with its gate cache: the gates before artifacts
    # reuse their outcomes (nothing they read changed), artifacts meets the key.
    root = passed_project.root
    from pipeline.signing import generate_key_pair

    (root / "keys/release.pub").unlink(missing_ok=True)  # this test's own release key
    generate_key_pair(private_path=tmp_path / "a.key", public_path=root / "keys/release.pub")
    generate_key_pair(private_path=tmp_path / "b.key", public_path=tmp_path / "b.pub")
    other = (tmp_path / "b.key").read_text(encoding="ascii")
    summary = run_chain(root, pem=other, gates=replaying(passed_chain), use_cache=True)
    assert summary.exit_code == 2
    artifacts = next(r for r in summary.results if r.gate == "artifacts")
    assert artifacts.status.value == "ERRORED"
    assert "is not the release key" in artifacts.summary
    secret = other.splitlines()[1]
    for report in (root / "reports").iterdir():
        assert secret not in report.read_text(encoding="utf-8")


def test_a_malformed_key_in_the_environment_is_never_echoed(tmp_path, passed_chain, passed_project):
    root = passed_project.root  # as above: the gates before artifacts reuse their outcomes
    from pipeline.signing import generate_key_pair

    (root / "keys/release.pub").unlink(missing_ok=True)
    generate_key_pair(private_path=tmp_path / "a.key", public_path=root / "keys/release.pub")
    secret = "-----BEGIN PRIVATE KEY-----\nTOPSECRETMATERIAL42\n-----END PRIVATE KEY-----"  # noqa: S105 - a fake key
    summary = run_chain(root, pem=secret, gates=replaying(passed_chain), use_cache=True)
    assert summary.exit_code == 2
    text = "".join(p.read_text(encoding="utf-8") for p in (root / "reports").iterdir())
    assert "$GATES_SIGNING_KEY: expected an unencrypted PEM Ed25519 private key" in text
    assert "TOPSECRETMATERIAL42" not in text


def test_a_private_key_file_readable_by_others_is_refused(tmp_path):
    from pipeline.signing import SigningError, generate_key_pair, read_private_key

    generate_key_pair(private_path=tmp_path / "a.key", public_path=tmp_path / "a.pub")
    os.chmod(tmp_path / "a.key", 0o644)
    with pytest.raises(SigningError, match="readable by others"):
        read_private_key(tmp_path / "a.key", release=True)


def test_a_one_line_pem_with_literal_newlines_is_the_release_key(project, monkeypatch, tmp_path):
    from gates.release import signing_key
    from pipeline.signing import generate_key_pair

    (project.root / "keys/release.pub").unlink(missing_ok=True)  # this test's own release key
    generate_key_pair(
        private_path=tmp_path / "r.key", public_path=project.root / "keys/release.pub"
    )
    one_line = (tmp_path / "r.key").read_text(encoding="ascii").strip().replace("\n", "\\n")
    monkeypatch.setenv("GATES_SIGNING_KEY", one_line)
    choice = signing_key(project.load())
    assert choice.key.release
    assert "$GATES_SIGNING_KEY" in choice.note


def test_deploy_without_the_committed_public_key_is_a_usage_error(copy):
    (copy / "keys/release.pub").unlink()
    result = cli(copy, "gates", "deploy")
    assert result.returncode == 2
    assert "keys/release.pub: public key not found" in result.stderr
    assert not (copy / "registry").exists()


@pytest.mark.parametrize("tampered", [False, True], ids=["intact", "statement-edited"])
def test_a_development_signature_is_named_and_tampering_still_reads_as_tampering(
    passed_project, tampered
):
    # The session's chain signed with the local development key (.keys/dev-signing.*), and
    # keys/release.pub is another key. verify, predict and deploy all refuse it; only the
    # words differ: an intact statement is "signed by the development key, pass --key ...",
    # an edited one keeps the tamper message (the development key does not verify it either).
    root = passed_project.root
    if tampered:
        _edit_statement(root)
    verify = cli(root, "gates", "verify")
    predict = cli(root, "pipeline", "predict", "--input", "data/breast_cancer.csv")
    deploy = cli(root, "gates", "deploy")
    for done, text in ((verify, verify.stdout), (predict, predict.stderr), (deploy, deploy.stdout)):
        assert done.returncode != 0, text
        assert "Traceback" not in done.stderr
        assert ENVELOPE in text, text
        if tampered:
            assert "changed after signing, or it was signed by another key" in text, text
            assert "development key" not in text, text
        else:
            assert "signed by the local development key" in text, text
            assert "--key .keys/dev-signing.pub" in text, text
            assert "changed after signing" not in text, text
    if not tampered:
        accepted = cli(root, "gates", "verify", "--key", ".keys/dev-signing.pub")
        assert accepted.returncode == 0, accepted.stdout
        assert "NOT deployable" in accepted.stdout


def test_the_pipelines_default_required_gates_are_the_registrys():
    """``python -m pipeline predict`` imports no gate: its default list is written in
    pipeline/config.py and must name exactly the gates the registry checks before signing."""
    from gates.release import required_gates
    from pipeline.config import RELEASED_GATES

    assert required_gates() == RELEASED_GATES, (
        "update pipeline.config.RELEASED_GATES to the gates registered before 'artifacts'"
    )


def test_the_champion_is_served_under_its_signed_policy_lock_and_data(copy):
    # `serve --champion` (the image's entrypoint) builds the service (limits, keys, contract,
    # drift reference, anomaly data) from the champion's signed copies, never from the working
    # tree: here the checkout lifts the rate limit and has no data/ (as in the image).
    import shutil

    from gates.service.server import build_service, verified_model
    from pipeline.config import load_policy

    assert cli(copy, "gates", "deploy").returncode == 0
    policy = copy / "policy.toml"
    text = policy.read_text(encoding="utf-8")
    assert "\nrequests = 100 " in text
    policy.write_text(text.replace("\nrequests = 100 ", "\nrequests = 100000 ", 1))
    shutil.rmtree(copy / "data")
    loaded = load_policy(policy)
    served = verified_model(loaded, champion=True, key=None)
    assert served.inputs is not None
    # The signed copies, checked on the bytes kept (not read again from the registry).
    assert not served.inputs.base_dir.resolve().is_relative_to(copy.resolve())
    service = build_service(loaded, served)
    assert service.policy.rate_limit.requests == 100  # the signed limit, not the checkout's
    assert service.live.reference is not None  # the signed lock's profile


def test_the_champion_is_served_with_its_anomaly_forest(copy, caplog):
    # The data lock's check reads `[data].checksums` (data/SHA256SUMS), a signed subject like the
    # data and the lock: `serve --champion` copied only the policy, lock and data, so the lock's
    # check failed on the missing checksum file and every pod served with the IsolationForest
    # anomaly score off (one `anomaly_disabled` log line; found adopting the pipeline, 7 December).
    import logging
    import shutil

    from gates.service.server import build_service, verified_model
    from pipeline.config import load_policy

    assert cli(copy, "gates", "deploy").returncode == 0
    shutil.rmtree(copy / "data")  # as in the image
    loaded = load_policy(copy / "policy.toml")
    served = verified_model(loaded, champion=True, key=None)
    logger = logging.getLogger("test-champion-forest")
    with caplog.at_level(logging.INFO, logger=logger.name):
        service = build_service(loaded, served, logger=logger)
    assert "anomaly_disabled" not in caplog.text, caplog.text
    assert service.live.forest is not None


def test_feedback_disagreement_is_measured_against_the_champions_predictions(copy, tmp_path):
    # A feedback file whose author flips the labels and writes predictions to match them: the
    # file's own column says 0% disagreement. With a champion promoted, FBQ012 compares the
    # labels with what the verified champion predicts for the same features.
    from types import SimpleNamespace

    from gates.feedback import quarantine
    from pipeline.config import load_policy
    from tests.gates.feedback.test_quarantine import _rows, _write

    table = SimpleNamespace(data_path=copy / "data" / "breast_cancer.csv")

    def outcomes(name: str, start_id: int) -> Path:
        rows = _rows(table, start_id=start_id)
        for row in rows:
            flipped = "benign" if row["diagnosis"] == "malignant" else "malignant"
            row["diagnosis"] = row["prediction"] = flipped
        _write(tmp_path / name, rows)
        return tmp_path / name

    policy = load_policy(copy / "policy.toml")
    unchecked = quarantine.ingest(policy, outcomes("before.csv", 10_000_000))
    assert unchecked.disagreement_rate == 0.0  # no champion: the file's own predictions
    assert cli(copy, "gates", "deploy").returncode == 0
    checked = quarantine.ingest(policy, outcomes("after.csv", 10_000_100))
    assert checked.disagreement_rate >= 0.8
    (problem,) = [p for p in checked.problems if p.rule == "FBQ012"]
    assert "the champion's predictions for these features" in problem.message
