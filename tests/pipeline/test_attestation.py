"""``verify_bundle`` on hand-made statements: what even a correctly signed statement cannot claim."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pipeline.attestation import (
    AttestationError,
    Subject,
    build_statement,
    sign_and_write,
    verify_bundle,
)
from pipeline.signing import SigningKey

PREDICATE = {"bundle": "out", "gates": {"data": {"status": "PASSED"}}, "run_id": "r"}


def _signed(root: Path, subjects: list[Subject], predicate: dict) -> tuple[Path, SigningKey]:
    key = SigningKey(key=Ed25519PrivateKey.generate(), source="test", release=True)
    envelope, _ = sign_and_write(
        build_statement(subjects, predicate), key=key, bundle_dir=root / "out"
    )
    return envelope, key


def _file(root: Path, name: str, data: bytes) -> Subject:
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_bytes(data)
    return Subject(name, hashlib.sha256(data).hexdigest())


def test_a_signed_well_formed_bundle_verifies(tmp_path):
    subject = _file(tmp_path, "out/model.skops", b"model")
    envelope, key = _signed(tmp_path, [subject], PREDICATE)
    verified = verify_bundle(envelope, root=tmp_path, trusted=key.public, required_gates=("data",))
    assert verified.digest("out/model.skops") == subject.sha256
    assert verified.run_id == "r"


@pytest.mark.parametrize("name", ["../escape.txt", "/etc/passwd", "out/./x", "a\\b"])
def test_subject_names_outside_the_root_are_refused_even_when_signed(tmp_path, name):
    envelope, key = _signed(tmp_path, [Subject(name, "0" * 64)], PREDICATE)
    with pytest.raises(AttestationError, match="is not a relative path inside the root"):
        verify_bundle(envelope, root=tmp_path, trusted=key.public)


def test_a_required_gate_missing_from_the_statement_is_refused(tmp_path):
    subject = _file(tmp_path, "out/model.skops", b"model")
    envelope, key = _signed(tmp_path, [subject], PREDICATE)
    with pytest.raises(AttestationError, match="gate 'cv' has no verdict"):
        verify_bundle(envelope, root=tmp_path, trusted=key.public, required_gates=("data", "cv"))


def test_a_statement_of_another_type_is_refused(tmp_path):
    subject = _file(tmp_path, "out/model.skops", b"model")
    key = SigningKey(key=Ed25519PrivateKey.generate(), source="test", release=True)
    payload = build_statement([subject], PREDICATE).replace(
        b"https://in-toto.io/Statement/v1", b"https://in-toto.io/Statement/v0.1"
    )
    envelope, _ = sign_and_write(payload, key=key, bundle_dir=tmp_path / "out")
    with pytest.raises(AttestationError, match="_type"):
        verify_bundle(envelope, root=tmp_path, trusted=key.public)


def test_a_statement_copy_of_gigabytes_is_refused_unread(tmp_path):
    """The readable copy of the statement is the tree's (a pull request can replace it beside a
    genuine envelope): a 1 GiB sparse file was read whole to be compared (jsonsweep)."""
    subject = _file(tmp_path, "out/model.skops", b"model")
    envelope, key = _signed(tmp_path, [subject], PREDICATE)
    copy = tmp_path / "out/attestation.statement.json"
    os.truncate(copy, 1 << 30)
    with pytest.raises(AttestationError, match=r"attestation.statement.json: refused, not read"):
        verify_bundle(envelope, root=tmp_path, trusted=key.public)
