"""Planted attacks on ``python -m gates rollback`` and on the audit log it writes (issue 20).

Each case is one test id. A refused rollback exits 1 naming the version, file or audit-log line,
and leaves the champion as it was; a rollback or champion forged in the registry by hand
(someone who can write the registry's storage but holds no release manager's key) is refused
by every reader, or does not choose the served model.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.rollback_support import ENVELOPE, Promoted, build, resign, run_cli


@pytest.fixture(scope="module")
def managed_registry(
    signed_chain: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory
) -> Promoted:
    return build(signed_chain, tmp_path_factory.mktemp("rollback-attacks"), roles=True)


def _main(
    project: Promoted, monkeypatch: Any, capsys: Any, *args: str, who: str | None
) -> tuple[int, str]:
    if who is None:
        monkeypatch.delenv("GATES_PROMOTER_KEY", raising=False)
    else:
        monkeypatch.setenv("GATES_PROMOTER_KEY", project.pems[who])
    return run_cli(project, monkeypatch, capsys, *args)


# --- a rollback command that must be refused ----------------------------------------------------
# Each returns (argv, who signs, expected message); the champion must stay v3.


def _non_promoter_key(
    p: Promoted, signed: tuple[Path, str], tmp: Path
) -> tuple[list[str], str | None, str]:
    return (
        ["rollback"],
        "mallory",
        "verify under no release manager in [roles].promoters (alice, bob)",
    )


def _no_promoter_key(
    p: Promoted, signed: tuple[Path, str], tmp: Path
) -> tuple[list[str], str | None, str]:
    return ["rollback"], None, "only a release manager may roll back; set $GATES_PROMOTER_KEY"


def _model_changed(
    p: Promoted, signed: tuple[Path, str], tmp: Path
) -> tuple[list[str], str | None, str]:
    model = p.root / "registry/versions" / p.versions[1] / "artifacts/model.skops"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    return ["rollback"], "alice", f"registry version {p.versions[1]} does not verify"


def _data_snapshot_changed(
    p: Promoted, signed: tuple[Path, str], tmp: Path
) -> tuple[list[str], str | None, str]:
    version = p.root / "registry/versions" / p.versions[1]
    data = next(path for path in (version / "data").rglob("*.csv"))
    data.write_text(data.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    return ["rollback", p.versions[1]], "alice", "does not verify"


def _verdict_failed_resigned(
    p: Promoted, signed: tuple[Path, str], tmp: Path
) -> tuple[list[str], str | None, str]:
    # Signed by the real release key, but a verdict is not PASSED: still refused.
    version = p.root / "registry/versions" / p.versions[1]
    statement = json.loads(
        (version / "artifacts/attestation.statement.json").read_text(encoding="utf-8")
    )
    gates = statement["predicate"]["gates"]
    gates["cv"] = {**gates["cv"], "status": "FAILED"}
    copy = resign(version, tmp / "resigned", signed[1], gates=gates)
    for name in ("artifacts/attestation.intoto.json", "artifacts/attestation.statement.json"):
        (version / name).write_bytes((copy / name).read_bytes())
    return ["rollback"], "alice", "gate 'cv' is FAILED in the signed statement, not PASSED"


def _envelope_removed(
    p: Promoted, signed: tuple[Path, str], tmp: Path
) -> tuple[list[str], str | None, str]:
    (p.root / "registry/versions" / p.versions[1] / ENVELOPE).unlink()
    return (
        ["rollback", p.versions[1]],
        "alice",
        "expected one attestation envelope in the version, found 0",
    )


def _revoked_target(
    p: Promoted, signed: tuple[Path, str], tmp: Path
) -> tuple[list[str], str | None, str]:
    from gates import release
    from pipeline.config import load_policy

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GATES_PROMOTER_KEY", p.pems["bob"])
        release.revoke(load_policy(p.root / "policy.toml"), p.versions[1])
    return ["rollback", p.versions[1]], "alice", f"version {p.versions[1]} was revoked ("


def _missing_version(
    p: Promoted, signed: tuple[Path, str], tmp: Path
) -> tuple[list[str], str | None, str]:
    return (
        ["rollback", "run-0-000000000000"],
        "alice",
        "no registry version 'run-0-000000000000' to roll back to",
    )


def _path_as_version(
    p: Promoted, signed: tuple[Path, str], tmp: Path
) -> tuple[list[str], str | None, str]:
    return (
        ["rollback", f"../versions/{p.versions[1]}"],
        "alice",
        "no registry version '../versions/",
    )


def _never_promoted_copy(
    p: Promoted, signed: tuple[Path, str], tmp: Path
) -> tuple[list[str], str | None, str]:
    # A verifying version folder dropped in by hand under a new name was never promoted.
    import shutil

    versions = p.root / "registry/versions"
    shutil.copytree(versions / p.versions[0], versions / "planted-000000000000")
    return (
        ["rollback", "planted-000000000000"],
        "alice",
        "was never promoted, so it cannot be rolled back to",
    )


def _already_champion(
    p: Promoted, signed: tuple[Path, str], tmp: Path
) -> tuple[list[str], str | None, str]:
    return ["rollback", p.versions[2]], "alice", f"{p.versions[2]} is the champion already"


def _all_earlier_revoked(
    p: Promoted, signed: tuple[Path, str], tmp: Path
) -> tuple[list[str], str | None, str]:
    from gates import release
    from pipeline.config import load_policy

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GATES_PROMOTER_KEY", p.pems["alice"])
        for version in p.versions[:2]:
            release.revoke(load_policy(p.root / "policy.toml"), version)
    return ["rollback"], "alice", "refused: nothing to roll back to"


ROLLBACK_REFUSALS: dict[str, Callable[..., tuple[list[str], str | None, str]]] = {
    "rollback signed by a non-promoter key": _non_promoter_key,
    "rollback with no promoter key": _no_promoter_key,
    "rollback to a version whose model bytes changed": _model_changed,
    "rollback to a version whose data snapshot changed": _data_snapshot_changed,
    "rollback to a version re-signed with a FAILED verdict": _verdict_failed_resigned,
    "rollback to a version whose envelope was removed": _envelope_removed,
    "rollback to a revoked version": _revoked_target,
    "rollback to a version that does not exist": _missing_version,
    "rollback to a path instead of a version": _path_as_version,
    "rollback to a version folder never promoted": _never_promoted_copy,
    "rollback to the current champion": _already_champion,
    "nothing left to roll back to (all earlier revoked)": _all_earlier_revoked,
}


@pytest.mark.parametrize("case", list(ROLLBACK_REFUSALS), ids=list(ROLLBACK_REFUSALS))
def test_a_planted_rollback_is_refused_and_the_champion_stays(  # noqa: PLR0917
    case, managed_registry, signed_chain, tmp_path, monkeypatch, capsys
):
    project = managed_registry.copy(tmp_path / "p")
    log_before = (project.root / "registry/promotions.jsonl").read_bytes()
    argv, who, expected = ROLLBACK_REFUSALS[case](project, signed_chain, tmp_path)
    log_planted = (project.root / "registry/promotions.jsonl").read_bytes()
    code, out = _main(project, monkeypatch, capsys, *argv, who=who)
    assert code == 1, out
    assert out.startswith("rollback refused: "), out
    assert expected in out, out
    assert "Traceback" not in out
    # Nothing moved: the log is as planted, the champion (when it still verifies) is v3.
    assert (project.root / "registry/promotions.jsonl").read_bytes() == log_planted
    assert project.pointer()["version"] == project.versions[2]
    if log_planted == log_before:
        assert project.registry().champion().version == project.versions[2]


# --- a rollback forged in the registry by hand --------------------------------------------------
# Each edits the registry after a real state and returns the message every champion reader must
# give, or None when the forged state must simply not choose the served model.


def _point_at(p: Promoted, version: str) -> None:
    """Rewrite the pointer by hand to name ``version`` (as a writer of the storage could)."""
    from pipeline.attestation import ENVELOPE_FILE
    from pipeline.fsio import sha256_bytes

    envelope = p.root / "registry/versions" / version / "artifacts" / ENVELOPE_FILE
    document = {
        "version": version,
        "bundle": "artifacts",
        "envelope_sha256": sha256_bytes(envelope.read_bytes()),
        "run_id": version.rsplit("-", 1)[0],
    }
    (p.root / "registry/champion").write_text(json.dumps(document), encoding="utf-8")


def _append(p: Promoted, event: dict[str, Any], envelope: Any) -> None:
    from pipeline.promotion import append_event

    append_event(p.root / "registry", event, envelope)


def _event(
    p: Promoted, version: str, previous: str, promoter: str | None = "alice"
) -> dict[str, Any]:
    return {"action": "rollback", "version": version, "from": previous, "promoter": promoter}


def _expected(p: Promoted, version: str, previous: str | None) -> Any:
    from pipeline.promotion import Promotion

    registry = p.registry()
    plan_version = json.loads(
        (p.root / "registry/versions" / version / "artifacts/attestation.statement.json").read_text(
            encoding="utf-8"
        )
    )
    model = plan_version["predicate"]["model"]["sha256"]
    run = plan_version["predicate"]["run_id"]
    return Promotion(model, run, registry.stage, version, rolled_back_from=previous)


def _real_rollback(p: Promoted, version: str | None = None, who: str = "alice") -> None:
    from gates import release
    from pipeline.config import load_policy

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GATES_PROMOTER_KEY", p.pems[who])
        release.rollback(load_policy(p.root / "policy.toml"), version)


def _forged_unsigned(p: Promoted) -> str | None:
    _append(p, _event(p, p.versions[1], p.versions[2]), None)
    _point_at(p, p.versions[1])
    return "promotions.jsonl:4: refused: the rollback of version"


def _forged_by_non_promoter(p: Promoted) -> str | None:
    from pipeline.promotion import sign_promotion

    mallory = p.manager("mallory")
    envelope = sign_promotion(_expected(p, p.versions[1], p.versions[2]), key=mallory)
    _append(p, _event(p, p.versions[1], p.versions[2]), envelope)
    _point_at(p, p.versions[1])
    return f"promotions.jsonl:4: refused: the promotion is signed by key id(s) {mallory.public.keyid[:12]}"


def _promotion_replayed_as_rollback(p: Promoted) -> str | None:
    # v2's own (real) promotion envelope, copied into a rollback line.
    envelope = p.log()[1]["envelope"]
    from pipeline.signing import parse_envelope

    _append(
        p, _event(p, p.versions[1], p.versions[2]), parse_envelope(json.dumps(envelope), source="t")
    )
    _point_at(p, p.versions[1])
    return "promotions.jsonl:4: refused: the promotion alice signed is not of this model: expected a rollback from"


def _rollback_line_replayed(p: Promoted) -> str | None:
    # A real rollback v3 -> v2, then v2 -> v1; the first line is appended again (its own
    # signature is valid) to bring v2 back without a manager.
    _real_rollback(p)
    _real_rollback(p)
    line = p.log()[3]
    from pipeline.signing import parse_envelope

    _append(p, line["event"], parse_envelope(json.dumps(line["envelope"]), source="t"))
    _point_at(p, p.versions[1])
    return "promotions.jsonl:6: refused: the rollback says it moved the champion away from"


def _rollback_signed_for_another_version(p: Promoted) -> str | None:
    # alice signed a rollback to v1; the line says v2.
    from pipeline.promotion import sign_promotion

    envelope = sign_promotion(_expected(p, p.versions[0], p.versions[2]), key=p.manager())
    _append(p, _event(p, p.versions[1], p.versions[2]), envelope)
    _point_at(p, p.versions[1])
    return "promotions.jsonl:4: refused: the promotion alice signed is not of this model"


def _promoter_name_edited(p: Promoted) -> str | None:
    _real_rollback(p, who="bob")
    path = p.root / "registry/promotions.jsonl"
    lines = path.read_bytes().split(b"\n")
    lines[3] = lines[3].replace(b'"promoter":"bob"', b'"promoter":"alice"')
    path.write_bytes(b"\n".join(lines))
    return "names promoter 'alice' but the rollback is signed by 'bob'"


def _rollback_line_removed(p: Promoted) -> str | None:
    # Two real rollbacks; the first one's line is cut out: the next line's hash breaks.
    _real_rollback(p)
    _real_rollback(p)
    path = p.root / "registry/promotions.jsonl"
    lines = path.read_bytes().split(b"\n")
    path.write_bytes(b"\n".join(lines[:3] + lines[4:]))
    return "promotions.jsonl:4: refused: the hash chain is broken here"


def _pointer_moved_back_by_hand(p: Promoted) -> str | None:
    # After a real rollback v3 -> v2 the pointer is put back on v3: the log decides, v2 served.
    _real_rollback(p)
    _point_at(p, p.versions[2])
    return None


def _pointer_moved_to_older_version(p: Promoted) -> str | None:
    # No rollback at all: the pointer moved from v3 to v1 by hand; the log still says v3.
    _point_at(p, p.versions[0])
    return None


FORGERIES: dict[str, tuple[Callable[[Promoted], str | None], int]] = {
    # name: (forgery, the version index every reader must serve when it is not refused)
    "unsigned rollback line appended by hand": (_forged_unsigned, -1),
    "rollback line signed by a non-promoter key": (_forged_by_non_promoter, -1),
    "a promotion envelope replayed as a rollback": (_promotion_replayed_as_rollback, -1),
    "an earlier rollback line replayed at the end": (_rollback_line_replayed, -1),
    "rollback line naming another version than signed": (_rollback_signed_for_another_version, -1),
    "rollback line's promoter name edited": (_promoter_name_edited, -1),
    "rollback line removed from the middle": (_rollback_line_removed, -1),
    "pointer moved back to the rolled-away version": (_pointer_moved_back_by_hand, 1),
    "pointer moved to an older version by hand": (_pointer_moved_to_older_version, 2),
}


@pytest.mark.parametrize("case", list(FORGERIES), ids=list(FORGERIES))
def test_a_forged_rollback_in_the_registry_is_refused_everywhere(
    case, managed_registry, tmp_path, monkeypatch, capsys
):
    from gates.service.server import verified_model
    from pipeline.attestation import AttestationError
    from pipeline.champion import RegistryError
    from pipeline.config import load_policy

    project = managed_registry.copy(tmp_path / "p")
    forge, serve_index = FORGERIES[case]
    expected = forge(project)
    code, out = _main(project, monkeypatch, capsys, "verify", "--champion", who=None)
    if expected is None:
        version = project.versions[serve_index]
        assert code == 0, out
        assert f"run {version.rsplit('-', 1)[0]}," in out
        served = verified_model(load_policy(project.root / "policy.toml"), champion=True, key=None)
        assert served.run_id == version.rsplit("-", 1)[0]
        return
    assert code == 1, out
    assert expected in out, out
    assert "Traceback" not in out
    with pytest.raises(RegistryError, match="refused"):
        project.registry().champion()
    with pytest.raises(AttestationError):
        verified_model(load_policy(project.root / "policy.toml"), champion=True, key=None)


def test_a_rollback_planned_before_another_landed_is_refused(managed_registry, tmp_path):
    # Two managers roll back at once: the one whose plan (from v3) is stale when it takes the
    # lock is refused, nothing rolled back twice.
    from pipeline.champion import RegistryError
    from pipeline.promotion import sign_promotion

    project = managed_registry.copy(tmp_path / "p")
    registry = project.registry()
    first, second = registry.rollback_plan(), registry.rollback_plan(project.versions[0])
    registry.rollback(first, signature=sign_promotion(first.expected, key=project.manager()))
    with pytest.raises(RegistryError, match="the champion changed while this rollback ran"):
        registry.rollback(
            second, signature=sign_promotion(second.expected, key=project.manager("bob"))
        )
    assert registry.champion().version == project.versions[1]
    assert len(project.log()) == 4


def test_the_champions_policy_changed_after_verification_is_not_served(
    managed_registry, tmp_path, monkeypatch
):
    # Someone who can write the registry's storage (no manager's key) rewrites the champion's
    # policy.toml, lock and data right after `serve --champion` verified them: the service read
    # them again from the registry and ran under the unsigned limits (a rate limit of 100000, a
    # lock and data nobody signed). The bytes it keeps are checked: refused, naming the file.
    from gates import release
    from gates.service.server import verified_model
    from pipeline.attestation import AttestationError
    from pipeline.config import load_policy

    project = managed_registry.copy(tmp_path / "p")
    version = project.root / "registry/versions" / project.versions[-1]
    signed = (version / "policy.toml").read_text(encoding="utf-8")
    assert "\nrequests = 100 " in signed
    verify_champion = release.verify_champion

    def then_swapped(*args: Any, **kwargs: Any) -> Any:
        verified = verify_champion(*args, **kwargs)
        (version / "policy.toml").write_text(
            signed.replace("\nrequests = 100 ", "\nrequests = 100000 ", 1), encoding="utf-8"
        )
        return verified

    monkeypatch.setattr(release, "verify_champion", then_swapped)
    loaded = load_policy(project.root / "policy.toml")
    with pytest.raises(AttestationError, match=r"policy\.toml: not as the champion signed it"):
        verified_model(loaded, champion=True, key=None)


def test_a_deleted_pointer_does_not_leave_a_managed_registry_without_champion(
    managed_registry, tmp_path, monkeypatch, capsys
):
    # With release managers the audit log names the champion and the pointer only caches it;
    # yet a registry writer who deleted the pointer made every reader see "no champion": the cv
    # and risk gates compared the candidate with nothing, and feedback ingest measured label
    # disagreement (FBQ012) against the file's own prediction column again.
    from gates.feedback.quarantine import champion_model
    from pipeline.config import load_policy

    project = managed_registry.copy(tmp_path / "p")
    (project.root / "registry/champion").unlink()
    assert project.registry().champion().version == project.versions[-1]
    assert champion_model(load_policy(project.root / "policy.toml")) is not None
    code, out = _main(project, monkeypatch, capsys, "verify", "--champion", who=None)
    assert code == 0, out
    assert f"run {project.versions[-1].rsplit('-', 1)[0]}," in out
