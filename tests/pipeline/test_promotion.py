"""The registry with release managers: a promotion needs a listed promoter's signature over this
model, run, stage and version; the champion is served only with that promotion in the audit log."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.attestation import ENVELOPE_FILE, verify_bundle
from pipeline.champion import ModelRegistry, RegistryError
from pipeline.promotion import AUDIT_FILE, read_events, sign_promotion
from pipeline.signing import SigningKey, load_public_key, new_private_key

REQUIRED = ("data", "train", "cv")


def _key(algorithm: str) -> SigningKey:
    return SigningKey(key=new_private_key(algorithm), source=algorithm, release=True)  # type: ignore[arg-type]


@pytest.fixture
def setup(signed_chain: tuple[Path, str], tmp_path: Path):
    root = signed_chain[0]
    trusted = load_public_key(root / "keys/release.pub")
    verified = verify_bundle(
        root / "artifacts" / ENVELOPE_FILE, root=root, trusted=trusted, required_gates=REQUIRED
    )
    manager, outsider = _key("ml-dsa-65"), _key("ed25519")
    registry = ModelRegistry(
        tmp_path / "reg",
        trusted=trusted,
        required_gates=REQUIRED,
        promoters={"alice": manager.public},
    )
    return registry, verified, manager, outsider


def test_a_managers_promotion_is_recorded_and_the_champion_verifies(setup):
    registry, verified, manager, _ = setup
    expected = registry.promotion_for(verified, registry.version_name(verified))
    champion = registry.promote(verified, promotion=sign_promotion(expected, key=manager))
    events = read_events(registry.path)
    assert [e["event"]["promoter"] for e in events] == ["alice"]
    assert events[0]["event"]["model_sha256"] == verified.predicate["model"]["sha256"]
    assert registry.champion().version == champion.version  # type: ignore[union-attr]


def test_no_promotion_signature_is_refused_and_nothing_is_promoted(setup):
    registry, verified, _, _ = setup
    with pytest.raises(RegistryError, match="needs a release manager's signature"):
        registry.promote(verified)
    assert not registry.pointer.exists()


def test_a_non_manager_promotion_is_refused_and_nothing_is_promoted(setup):
    registry, verified, _, outsider = setup
    expected = registry.promotion_for(verified, registry.version_name(verified))
    with pytest.raises(
        RegistryError, match=r"verify under no release manager in \[roles\].promoters \(alice\)"
    ):
        registry.promote(verified, promotion=sign_promotion(expected, key=outsider))
    assert not registry.pointer.exists()
    assert not (registry.path / AUDIT_FILE).exists()


def test_a_champion_whose_promotion_was_removed_from_the_log_is_refused(setup):
    registry, verified, manager, _ = setup
    expected = registry.promotion_for(verified, registry.version_name(verified))
    registry.promote(verified, promotion=sign_promotion(expected, key=manager))
    (registry.path / AUDIT_FILE).write_bytes(b"")
    with pytest.raises(RegistryError, match="no signed promotion of version"):
        registry.champion()


def test_an_audit_entry_whose_promoter_was_edited_is_refused(setup):
    # The last line has no successor whose hash would break: the promoter it names must be the
    # one whose signature verifies.
    registry, verified, manager, _ = setup
    expected = registry.promotion_for(verified, registry.version_name(verified))
    registry.promote(verified, promotion=sign_promotion(expected, key=manager))
    unmanaged = ModelRegistry(registry.path, trusted=registry.trusted, required_gates=REQUIRED)
    assert unmanaged.champion() is not None  # without roles, as before
    lines = (registry.path / AUDIT_FILE).read_bytes().split(b"\n")
    (registry.path / AUDIT_FILE).write_bytes(lines[0].replace(b'"alice"', b'"bob"') + b"\n")
    with pytest.raises(
        RegistryError, match=r"names promoter 'bob' but the promotion is signed by 'alice'"
    ):
        registry.champion()


def test_a_revoked_champion_is_refused_everywhere_it_is_read(setup):
    from pipeline.promotion import REVOKED_STAGE, Promotion

    registry, verified, manager, outsider = setup
    version = registry.version_name(verified)
    expected = registry.promotion_for(verified, version)
    registry.promote(verified, promotion=sign_promotion(expected, key=manager))
    revocation = Promotion(expected.model_sha256, expected.run_id, REVOKED_STAGE, version)
    with pytest.raises(RegistryError, match="verify under no release manager"):
        registry.revoke(version, signature=sign_promotion(revocation, key=outsider))
    assert registry.champion() is not None
    assert registry.revoke(version, signature=sign_promotion(revocation, key=manager)) == "alice"
    with pytest.raises(
        RegistryError, match=rf"champion {version} was revoked \(.*promotions.jsonl:2\)"
    ):
        registry.champion()
    # Without roles too: a revocation in the log is honoured by every reader.
    unmanaged = ModelRegistry(registry.path, trusted=registry.trusted, required_gates=REQUIRED)
    with pytest.raises(RegistryError, match="was revoked"):
        unmanaged.champion()


def test_a_promotion_signature_cannot_be_used_as_a_revocation_or_back(setup):
    registry, verified, manager, _ = setup
    version = registry.version_name(verified)
    promotion = sign_promotion(registry.promotion_for(verified, version), key=manager)
    registry.promote(verified, promotion=promotion)
    with pytest.raises(RegistryError, match="is not of this model"):
        registry.revoke(version, signature=promotion)


@pytest.mark.slow
def test_two_deploys_racing_end_with_exactly_one_promoted(signed_chain, tmp_path):
    # Two long-lived processes, 50 tries: each try both read the pointer (as deploy does when
    # it starts), then both promote at once into a fresh registry. Exactly one wins; the other
    # is refused with a clear message; the registry verifies and its audit log has one entry.
    import subprocess
    import sys

    root = signed_chain[0]
    child = Path(__file__).resolve().parent.parent / "promotion_race_child.py"
    procs = [
        subprocess.Popen(
            [sys.executable, str(child), str(root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for proc in procs:
            assert proc.stdout.readline().strip() == "started"  # type: ignore[union-attr]
        trusted = load_public_key(root / "keys/release.pub")
        for attempt in range(50):
            registry = tmp_path / f"reg{attempt}"
            for proc in procs:
                proc.stdin.write(f"prepare {registry}\n")  # type: ignore[union-attr]
                proc.stdin.flush()  # type: ignore[union-attr]
            for proc in procs:
                assert proc.stdout.readline().strip() == "ready"  # type: ignore[union-attr]
            for proc in procs:
                proc.stdin.write("go\n")  # type: ignore[union-attr]
                proc.stdin.flush()  # type: ignore[union-attr]
            answers = sorted(proc.stdout.readline().strip() for proc in procs)  # type: ignore[union-attr]
            assert answers[0].startswith("ok "), (attempt, answers)
            assert answers[1].startswith("refused "), (attempt, answers)
            assert "another promotion landed while this one ran" in answers[1]
            assert "nothing promoted" in answers[1]
            check = ModelRegistry(registry, trusted=trusted, required_gates=REQUIRED)
            assert check.champion().version == answers[0].split()[1]  # type: ignore[union-attr]
            assert len(read_events(registry)) == 1
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.stdin.write("quit\n")  # type: ignore[union-attr]
                proc.stdin.close()  # type: ignore[union-attr]
                proc.wait(timeout=30)
            proc.stdout.close()  # type: ignore[union-attr]
            if proc.stdin and not proc.stdin.closed:
                proc.stdin.close()
