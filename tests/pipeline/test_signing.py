"""DSSE envelopes with Ed25519: the standard encoding, checked by an independent implementation."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pipeline.signing import (
    IN_TOTO_PAYLOAD_TYPE,
    PublicKey,
    SigningError,
    SigningKey,
    pae,
    parse_envelope,
    sign_envelope,
    verify_envelope,
)


def _key() -> SigningKey:
    return SigningKey(key=Ed25519PrivateKey.generate(), source="test", release=True)


def test_pae_matches_the_dsse_spec_example():
    # github.com/secure-systems-lab/dsse protocol.md, "Test vectors".
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_envelope_round_trips_and_verifies():
    key = _key()
    envelope = sign_envelope(b'{"a": 1}', key=key, payload_type=IN_TOTO_PAYLOAD_TYPE)
    parsed = parse_envelope(envelope.to_json(), source="e")
    assert parsed == envelope
    verify_envelope(parsed, trusted=key.public, payload_type=IN_TOTO_PAYLOAD_TYPE, source="e")


def test_another_key_or_type_or_no_signature_is_refused():
    key, other = _key(), _key()
    envelope = sign_envelope(b"x", key=key, payload_type=IN_TOTO_PAYLOAD_TYPE)
    with pytest.raises(SigningError, match="no signature verifies"):
        verify_envelope(
            envelope, trusted=other.public, payload_type=IN_TOTO_PAYLOAD_TYPE, source="e"
        )
    with pytest.raises(SigningError, match="payloadType"):
        verify_envelope(envelope, trusted=key.public, payload_type="text/plain", source="e")
    bare = parse_envelope(
        json.dumps({"payload": "eA==", "payloadType": IN_TOTO_PAYLOAD_TYPE, "signatures": []}),
        source="e",
    )
    with pytest.raises(SigningError, match="carries no signature"):
        verify_envelope(bare, trusted=key.public, payload_type=IN_TOTO_PAYLOAD_TYPE, source="e")


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"payload": 1}',
        '{"payload": "!!", "payloadType": "t", "signatures": []}',
        # Red team (6 December): an approval envelope is a file in the pull request's tree;
        # nesting past the parser's recursion limit escaped as a RecursionError (a traceback).
        '{"payload": "", "x": ' + "[" * 200_000 + "]" * 200_000 + "}",
    ],
)
def test_malformed_envelopes_are_one_clear_error(text):
    with pytest.raises(SigningError, match=r"^e"):
        parse_envelope(text, source="e")


def _sslib_key(public: PublicKey):
    from securesystemslib.signer import SSlibKey

    # Our key id (SHA-256 of the DER public key) is carried over: DSSE leaves key ids opaque.
    return SSlibKey.from_crypto(public.key, keyid=public.keyid)


def test_independent_dsse_implementation_verifies_our_envelope(tmp_path):
    from securesystemslib.dsse import Envelope as SslibEnvelope

    key = _key()
    statement = {"_type": "https://in-toto.io/Statement/v1", "subject": [], "predicate": {}}
    payload = json.dumps(statement).encode()
    ours = sign_envelope(payload, key=key, payload_type=IN_TOTO_PAYLOAD_TYPE)
    theirs = SslibEnvelope.from_dict(json.loads(ours.to_json()))
    accepted = theirs.verify([_sslib_key(key.public)], 1)
    assert list(accepted) == [key.public.keyid]
    assert theirs.payload == payload
    assert theirs.payload_type == IN_TOTO_PAYLOAD_TYPE


def test_independent_implementation_rejects_an_edited_payload():
    from securesystemslib.dsse import Envelope as SslibEnvelope
    from securesystemslib.exceptions import VerificationError

    key = _key()
    document = json.loads(
        sign_envelope(b"{}", key=key, payload_type=IN_TOTO_PAYLOAD_TYPE).to_json()
    )
    document["payload"] = base64.b64encode(b'{"edited": true}').decode()
    with pytest.raises(VerificationError):
        SslibEnvelope.from_dict(document).verify([_sslib_key(key.public)], 1)


def test_we_verify_an_envelope_signed_by_the_independent_implementation():
    from securesystemslib.dsse import Envelope as SslibEnvelope
    from securesystemslib.signer import CryptoSigner

    private = Ed25519PrivateKey.generate()
    public = PublicKey.from_crypto(private.public_key(), source="sslib")
    signer = CryptoSigner(private, _sslib_key(public))
    envelope = SslibEnvelope(payload=b'{"k": 1}', payload_type=IN_TOTO_PAYLOAD_TYPE, signatures={})
    envelope.sign(signer)
    parsed = parse_envelope(json.dumps(envelope.to_dict()), source="sslib")
    verify_envelope(parsed, trusted=public, payload_type=IN_TOTO_PAYLOAD_TYPE, source="sslib")


def test_a_signature_claiming_the_trusted_key_id_is_still_checked():
    key, other = _key(), _key()
    forged = sign_envelope(b"x", key=other, payload_type=IN_TOTO_PAYLOAD_TYPE)
    claimed = type(forged)(
        forged.payload, forged.payload_type, ((key.public.keyid, forged.signatures[0][1]),)
    )
    with pytest.raises(SigningError, match="no signature verifies"):
        verify_envelope(claimed, trusted=key.public, payload_type=IN_TOTO_PAYLOAD_TYPE, source="e")
