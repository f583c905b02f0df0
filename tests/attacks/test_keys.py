"""Planted attacks on hybrid signatures, encryption at rest and promotion roles (issue 20).

Each case is one test id; each must be refused with a message naming the file (or the audit-log
line) and what was wrong.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

PAYLOAD_TYPE = "application/vnd.in-toto+json"


# --- hybrid signatures -------------------------------------------------------------------------


def _keys() -> dict[str, Any]:
    from pipeline.signing import SigningKey, new_private_key

    return {
        name: SigningKey(key=new_private_key(alg), source=name, release=True)
        for name, alg in (
            ("ed", "ed25519"),
            ("ml", "ml-dsa-65"),
            ("other_ed", "ed25519"),
            ("other_ml", "ml-dsa-65"),
        )
    }


def _bundle(root: Path, keys: dict[str, Any]) -> Any:
    """A signed bundle (Ed25519 + ML-DSA-65) of one file under ``root``; returns the envelope."""
    from pipeline.attestation import Subject, build_statement, sign_and_write
    from pipeline.fsio import sha256_file
    from pipeline.signing import parse_envelope

    (root / "artifacts").mkdir(parents=True)
    (root / "artifacts/model.skops").write_bytes(b"model bytes")
    predicate = {
        "bundle": "artifacts",
        "run_id": "r1",
        "gates": {"train": {"status": "PASSED"}},
        "signer": {"kind": "release", "algorithms": ["ed25519", "ml-dsa-65"]},
    }
    subjects = [Subject("artifacts/model.skops", sha256_file(root / "artifacts/model.skops"))]
    path, _ = sign_and_write(
        build_statement(subjects, predicate),
        key=[keys["ed"], keys["ml"]],
        bundle_dir=root / "artifacts",
    )
    return parse_envelope(path.read_bytes(), source="test")


def _rewrite(root: Path, signatures: list[tuple[str, bytes]]) -> None:
    from pipeline.attestation import ENVELOPE_FILE
    from pipeline.signing import Envelope

    path = root / "artifacts" / ENVELOPE_FILE
    from pipeline.signing import parse_envelope

    old = parse_envelope(path.read_bytes(), source="test")
    path.write_text(Envelope(old.payload, old.payload_type, tuple(signatures)).to_json())


def _strip_ml_dsa(root, envelope, keys):
    _rewrite(root, [envelope.signatures[0]])


def _strip_ed25519(root, envelope, keys):
    _rewrite(root, [envelope.signatures[1]])


def _ed25519_under_ml_dsa_key_id(root, envelope, keys):
    # The Ed25519 signature twice, once labelled with the ML-DSA key's id: the algorithm is the
    # trusted key's, never the label's, so no ML-DSA signature is found.
    ed_sig = envelope.signatures[0][1]
    _rewrite(root, [envelope.signatures[0], (keys["ml"].public.keyid, ed_sig)])


def _other_key_with_release_key_id(root, envelope, keys):
    from pipeline.signing import pae

    forged = keys["other_ed"].sign(pae(envelope.payload_type, envelope.payload))
    _rewrite(root, [(keys["ed"].public.keyid, forged), envelope.signatures[1]])


def _other_ml_dsa_key(root, envelope, keys):
    from pipeline.signing import pae

    forged = keys["other_ml"].sign(pae(envelope.payload_type, envelope.payload))
    _rewrite(root, [envelope.signatures[0], (keys["ml"].public.keyid, forged)])


def _signature_duplicated_not_hybrid(root, envelope, keys):
    _rewrite(root, [envelope.signatures[0], envelope.signatures[0]])


# attack -> (how, the algorithm whose trusted key then has no verifying signature)
SIGNATURE_ATTACKS: dict[str, tuple[Callable[..., None], str]] = {
    "ml-dsa signature stripped": (_strip_ml_dsa, "ML-DSA-65"),
    "ed25519 signature stripped": (_strip_ed25519, "Ed25519"),
    "downgrade: ed25519 signature labelled with the ml-dsa key id": (
        _ed25519_under_ml_dsa_key_id,
        "ML-DSA-65",
    ),
    "wrong key: another key's signature under the release key id": (
        _other_key_with_release_key_id,
        "Ed25519",
    ),
    "wrong key: another ml-dsa key": (_other_ml_dsa_key, "ML-DSA-65"),
    "one signature twice instead of two algorithms": (
        _signature_duplicated_not_hybrid,
        "ML-DSA-65",
    ),
}


@pytest.mark.parametrize("attack", list(SIGNATURE_ATTACKS), ids=list(SIGNATURE_ATTACKS))
def test_hybrid_signature_attack_is_refused(tmp_path, attack):
    from pipeline.attestation import ENVELOPE_FILE, AttestationError, verify_bundle
    from pipeline.signing import TrustedKeys

    keys = _keys()
    envelope = _bundle(tmp_path, keys)
    trusted = TrustedKeys((keys["ed"].public, keys["ml"].public))
    verify_bundle(tmp_path / "artifacts" / ENVELOPE_FILE, root=tmp_path, trusted=trusted)
    how, algorithm = SIGNATURE_ATTACKS[attack]
    how(tmp_path, envelope, keys)
    with pytest.raises(AttestationError) as caught:
        verify_bundle(tmp_path / "artifacts" / ENVELOPE_FILE, root=tmp_path, trusted=trusted)
    message = str(caught.value)
    assert message.startswith(f"artifacts/{ENVELOPE_FILE}: refused")
    assert "no signature verifies under the trusted key" in message
    assert f"{algorithm})" in message


def test_downgrade_by_a_policy_that_stops_requiring_ml_dsa_is_refused(tmp_path):
    # policy.toml edited to require Ed25519 only, the ML-DSA signature stripped: the signed
    # statement still says it was signed with both, so the missing check is refused.
    from pipeline.attestation import ENVELOPE_FILE, AttestationError, verify_bundle

    keys = _keys()
    envelope = _bundle(tmp_path, keys)
    _strip_ml_dsa(tmp_path, envelope, keys)
    with pytest.raises(AttestationError, match=r"algorithm downgrade") as caught:
        verify_bundle(
            tmp_path / "artifacts" / ENVELOPE_FILE, root=tmp_path, trusted=keys["ed"].public
        )
    assert f"artifacts/{ENVELOPE_FILE}: refused" in str(caught.value)
    assert "ml-dsa-65" in str(caught.value)


# --- encryption at rest ------------------------------------------------------------------------


@pytest.fixture
def local_provider(monkeypatch: pytest.MonkeyPatch) -> Any:
    from pipeline.keys.local import LocalProvider

    monkeypatch.setenv("GATES_DATA_KEY", base64.b64encode(os.urandom(32)).decode())
    return LocalProvider(
        env="GATES_SIGNING_KEY", key_file=None, kek_env="GATES_DATA_KEY", kek_file=None
    )


def _encrypted_pair(root: Path, provider: Any) -> tuple[Path, Path]:
    from pipeline.atrest import write_encrypted

    a, b = root / "data/approved/a.csv", root / "data/approved/b.csv"
    a.parent.mkdir(parents=True)
    write_encrypted(a, b"x,y\n1,0\n" * 50, root=root, provider=provider)
    write_encrypted(b, b"x,y\n0,1\n" * 50, root=root, provider=provider)
    return a, b


def _flip_ciphertext_byte(a: Path, b: Path, monkeypatch: Any) -> tuple[Path, str]:
    data = bytearray(b.read_bytes())
    data[-20] ^= 0x01
    b.write_bytes(bytes(data))
    return b, "does not decrypt"


def _edit_header_digest(a: Path, b: Path, monkeypatch: Any) -> tuple[Path, str]:
    data = b.read_bytes()
    start = data.index(b'"sha256":"') + len(b'"sha256":"')
    b.write_bytes(
        data[:start] + (b"0" if data[start : start + 1] != b"0" else b"1") + data[start + 1 :]
    )
    return b, "refused"


def _rename_a_over_b(a: Path, b: Path, monkeypatch: Any) -> tuple[Path, str]:
    os.replace(a, b)
    return b, "it names itself 'data/approved/a.csv'"


def _rename_a_over_b_and_fix_header(a: Path, b: Path, monkeypatch: Any) -> tuple[Path, str]:
    # The attacker also rewrites the path in A's header to B: the wrapped data key and the GCM
    # associated data were bound to A's path, so it still fails.
    data = a.read_bytes().replace(b'"path":"data/approved/a.csv"', b'"path":"data/approved/b.csv"')
    b.write_bytes(data)
    a.unlink()
    return b, "refused"


def _wrong_key_encryption_key(a: Path, b: Path, monkeypatch: Any) -> tuple[Path, str]:
    monkeypatch.setenv("GATES_DATA_KEY", base64.b64encode(os.urandom(32)).decode())
    return b, "does not unwrap"


def _plaintext_in_place(a: Path, b: Path, monkeypatch: Any) -> tuple[Path, str]:
    b.write_bytes(b"x,y\n1,1\n")
    return b, "not encrypted"


def _wrapped_key_swapped(a: Path, b: Path, monkeypatch: Any) -> tuple[Path, str]:
    head_a = json.loads(a.read_bytes().split(b"\n")[1])
    data = b.read_bytes()
    lines = data.split(b"\n", 2)
    head_b = json.loads(lines[1])
    head_b["wrapped"] = head_a["wrapped"]
    b.write_bytes(
        lines[0]
        + b"\n"
        + json.dumps(head_b, sort_keys=True, separators=(",", ":")).encode()
        + b"\n"
        + lines[2]
    )
    return b, "does not unwrap"


def _truncated(a: Path, b: Path, monkeypatch: Any) -> tuple[Path, str]:
    b.write_bytes(b.read_bytes()[:-1])
    return b, "does not decrypt"


ENCRYPTION_ATTACKS = {
    "ciphertext byte flipped": _flip_ciphertext_byte,
    "header digest edited": _edit_header_digest,
    "aad swap: ciphertext of a renamed to b": _rename_a_over_b,
    "aad swap: renamed and header path rewritten": _rename_a_over_b_and_fix_header,
    "wrong key-encryption key": _wrong_key_encryption_key,
    "plaintext dropped in place of the ciphertext": _plaintext_in_place,
    "wrapped data key of a spliced into b": _wrapped_key_swapped,
    "last byte (gcm tag) cut": _truncated,
}


@pytest.mark.parametrize("attack", list(ENCRYPTION_ATTACKS), ids=list(ENCRYPTION_ATTACKS))
def test_encryption_attack_is_refused_naming_the_file(
    tmp_path, local_provider, monkeypatch, attack
):
    from pipeline.atrest import EncryptionError, read_encrypted

    a, b = _encrypted_pair(tmp_path, local_provider)
    assert read_encrypted(b, root=tmp_path, provider=local_provider) == b"x,y\n0,1\n" * 50
    target, expected = ENCRYPTION_ATTACKS[attack](a, b, monkeypatch)
    with pytest.raises(EncryptionError) as caught:
        read_encrypted(target, root=tmp_path, provider=local_provider)
    message = str(caught.value)
    assert message.startswith("data/approved/b.csv: refused"), message
    assert expected in message


# --- promotion roles ---------------------------------------------------------------------------


def _promotion_setup(tmp_path: Path) -> tuple[Any, dict[str, Any], Any]:
    from pipeline.promotion import Promotion
    from pipeline.signing import SigningKey, new_private_key

    keys = {
        name: SigningKey(key=new_private_key(alg), source=name, release=True)
        for name, alg in (("alice", "ed25519"), ("bob", "ml-dsa-65"), ("mallory", "ed25519"))
    }
    promoters = {"alice": keys["alice"].public, "bob": keys["bob"].public}
    expected = Promotion("a" * 64, "run-1", "production", "run-1-aaaaaaaaaaaa")
    return expected, keys, promoters


def test_a_release_managers_promotion_is_recorded_and_verified(tmp_path):
    from pipeline.promotion import append_event, recorded_promotion, sign_promotion

    expected, keys, promoters = _promotion_setup(tmp_path)
    for name in ("alice", "bob"):  # Ed25519 and ML-DSA-65 release managers
        envelope = sign_promotion(expected, key=keys[name])
        event = {"action": "promote", "version": expected.version, "promoter": name}
        append_event(tmp_path, event, envelope)
        assert recorded_promotion(tmp_path, expected=expected, promoters=promoters) == name


def _non_manager(tmp_path, expected, keys, promoters):
    from pipeline.promotion import sign_promotion, verify_promotion

    envelope = sign_promotion(expected, key=keys["mallory"])
    verify_promotion(envelope, expected=expected, promoters=promoters, source="promotion")


def _non_manager_with_manager_key_id(tmp_path, expected, keys, promoters):
    from pipeline.promotion import PROMOTION_TYPE, verify_promotion
    from pipeline.signing import Envelope, pae

    forged = keys["mallory"].sign(pae(PROMOTION_TYPE, expected.payload()))
    envelope = Envelope(expected.payload(), PROMOTION_TYPE, ((keys["alice"].public.keyid, forged),))
    verify_promotion(envelope, expected=expected, promoters=promoters, source="promotion")


def _replayed_onto_another_model(tmp_path, expected, keys, promoters):
    from dataclasses import replace

    from pipeline.promotion import sign_promotion, verify_promotion

    envelope = sign_promotion(replace(expected, model_sha256="b" * 64), key=keys["alice"])
    verify_promotion(envelope, expected=expected, promoters=promoters, source="promotion")


def _other_stage(tmp_path, expected, keys, promoters):
    from dataclasses import replace

    from pipeline.promotion import sign_promotion, verify_promotion

    envelope = sign_promotion(replace(expected, stage="staging"), key=keys["alice"])
    verify_promotion(envelope, expected=expected, promoters=promoters, source="promotion")


def _audit_line_edited(tmp_path, expected, keys, promoters):
    from pipeline.promotion import append_event, read_events, sign_promotion

    for _ in range(3):
        append_event(
            tmp_path,
            {"action": "promote", "version": expected.version, "promoter": "alice"},
            sign_promotion(expected, key=keys["alice"]),
        )
    path = tmp_path / "promotions.jsonl"
    lines = path.read_bytes().split(b"\n")
    lines[0] = lines[0].replace(b'"promote"', b'"revoke!"')
    path.write_bytes(b"\n".join(lines))
    read_events(tmp_path)


def _audit_line_removed(tmp_path, expected, keys, promoters):
    from pipeline.promotion import append_event, read_events, sign_promotion

    for _ in range(3):
        append_event(
            tmp_path,
            {"action": "promote", "version": expected.version, "promoter": "alice"},
            sign_promotion(expected, key=keys["alice"]),
        )
    path = tmp_path / "promotions.jsonl"
    lines = path.read_bytes().split(b"\n")
    path.write_bytes(b"\n".join(lines[:1] + lines[2:]))
    read_events(tmp_path)


def _unsigned_promotion_in_the_log(tmp_path, expected, keys, promoters):
    from pipeline.promotion import append_event, recorded_promotion

    append_event(tmp_path, {"action": "promote", "version": expected.version}, None)
    recorded_promotion(tmp_path, expected=expected, promoters=promoters)


def _log_entry_by_non_manager(tmp_path, expected, keys, promoters):
    from pipeline.promotion import append_event, recorded_promotion, sign_promotion

    append_event(
        tmp_path,
        {"action": "promote", "version": expected.version, "promoter": "alice"},
        sign_promotion(expected, key=keys["mallory"]),
    )
    recorded_promotion(tmp_path, expected=expected, promoters=promoters)


def _audit_promoter_name_edited(tmp_path, expected, keys, promoters):
    from pipeline.promotion import append_event, recorded_promotion, sign_promotion

    envelope = sign_promotion(expected, key=keys["alice"])
    append_event(
        tmp_path, {"action": "promote", "version": expected.version, "promoter": "bob"}, envelope
    )
    recorded_promotion(tmp_path, expected=expected, promoters=promoters)


PROMOTION_ATTACKS = {
    "audit log names another promoter than the signer": _audit_promoter_name_edited,
    "promotion signed by a non-manager key": _non_manager,
    "non-manager signature under a manager's key id": _non_manager_with_manager_key_id,
    "manager's promotion replayed onto another model": _replayed_onto_another_model,
    "manager's staging promotion used for production": _other_stage,
    "audit log line edited": _audit_line_edited,
    "audit log line removed": _audit_line_removed,
    "unsigned promotion written into the audit log": _unsigned_promotion_in_the_log,
    "audit log entry signed by a non-manager": _log_entry_by_non_manager,
}


@pytest.mark.parametrize("attack", list(PROMOTION_ATTACKS), ids=list(PROMOTION_ATTACKS))
def test_promotion_attack_is_refused(tmp_path, attack):
    from pipeline.promotion import PromotionError

    expected, keys, promoters = _promotion_setup(tmp_path)
    with pytest.raises(PromotionError) as caught:
        PROMOTION_ATTACKS[attack](tmp_path, expected, keys, promoters)
    assert "refused" in str(caught.value)
    messages = {
        "audit log names another promoter than the signer": "names promoter 'bob' but the promotion is signed by 'alice'",
        "promotion signed by a non-manager key": f"key id(s) {keys['mallory'].public.keyid[:12]}...",
        "non-manager signature under a manager's key id": "verify under no release manager",
        "manager's promotion replayed onto another model": "is not of this model",
        "manager's staging promotion used for production": "is not of this model",
        "audit log line edited": "promotions.jsonl:2: refused: the hash chain is broken",
        "audit log line removed": "promotions.jsonl:2: refused: the hash chain is broken",
        "unsigned promotion written into the audit log": "promotions.jsonl:1: refused",
        "audit log entry signed by a non-manager": "promotions.jsonl:1: refused: the promotion is signed by key id(s)",
    }
    assert messages[attack] in str(caught.value)
