"""A genuinely signed payload that two readers read apart (leftovers2, 7 December).

Row 62 read every DSSE envelope with ``pipeline.fsio.strict_json`` but not the payloads inside
them: a data approval's and a policy approval's signed bytes were read with ``json.loads``
(Python keeps the last of two equal names; another verifier, the first). Both are compared
byte for byte with the payload the gates build, so a second name or ``NaN`` never made an
approval count; but the refusal read the bytes as Python does and blamed the lock or the policy
("changed after the approval") for what is a payload no two readers read alike. The same
reading held where nothing compares bytes: the header of a file encrypted at rest (the AEAD
binds the header as parsed, so a header with ``nonce`` twice decrypted, Python taking the
last), a run-history record (its hash is taken over the record as parsed: a line with a name
twice verified), the registry's audit log lines (they carry the release managers' signed
envelopes), its champion pointer and ``gates.release.revoke``'s read of the signed statement it signs a revocation
from. Each is now read strictly, refused with one message naming the file (and line).

Each payload here is signed by the approver's real key (or sealed under the real data key).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from tests.attacks.test_data_approvers import APPROVAL as DATA_APPROVAL
from tests.attacks.test_data_approvers import _findings, approved, project
from tests.attacks.test_policy_approvers import (
    APPROVAL as POLICY_APPROVAL,
)
from tests.attacks.test_policy_approvers import (
    _approve,
    _errors,
    _judge,
    _lower,
    base,
    pr,
)

__all__ = ["approved", "base", "pr", "project"]  # the fixtures: real approvals by carol


def _twice(text: str) -> str:
    """The first name again before the document with another value: Python reads the genuine
    value (the last), a first-name reader the other."""
    document = json.loads(text)
    name = next(iter(document))
    return "{" + json.dumps(name) + ': "other", ' + text.lstrip()[1:]


def _nan(text: str) -> str:
    return text.replace("{", '{"zz_note": NaN, ', 1)


def _huge(text: str) -> str:
    return text.replace("{", '{"zz_note": 1e999, ', 1)


FORMS = {"a name twice": _twice, "NaN": _nan, "1e999": _huge}
_SAID = {"a name twice": "twice", "NaN": "found NaN", "1e999": "found 1e999"}


def _resign(path: Path, pem: str, form: str) -> None:
    """The envelope at ``path`` with its payload changed by ``form``, signed again with ``pem``."""
    from pipeline.signing import parse_envelope, private_key_from_pem, sign_envelope

    envelope = parse_envelope(path.read_bytes(), source=path.name)
    payload = FORMS[form](envelope.payload.decode("utf-8")).encode("utf-8")
    json.loads(payload)  # Python's reader takes it
    key = private_key_from_pem(pem.encode(), source="t", release=True, algorithm=None)
    again = sign_envelope(payload, key=key, payload_type=envelope.payload_type)
    path.write_text(again.to_json(), encoding="utf-8")


@pytest.mark.parametrize("form", list(FORMS))
def test_a_data_approval_signed_over_a_payload_read_two_ways_is_refused(
    project: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch, form: str
) -> None:
    root, pems = project
    monkeypatch.delenv("GATES_BASE_POLICY", raising=False)
    assert _findings(root) == []  # the control: carol's approval as she signed it
    _resign(root / DATA_APPROVAL, pems["carol"], form)
    (finding,) = _findings(root)
    assert finding.rule == "DATA003", finding
    message = finding.message
    assert message.startswith(f"{DATA_APPROVAL}: refused: the payload carol signed"), message
    assert _SAID[form] in message, message
    assert "changed after the approval" not in message, message


@pytest.mark.parametrize("form", list(FORMS))
def test_a_policy_approval_signed_over_a_payload_read_two_ways_is_refused(
    pr: Path, base: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch, form: str
) -> None:
    _lower(pr)
    code, out = _approve(pr, base[0], base[1]["carol"], monkeypatch)
    assert code == 0, out
    assert _errors(_judge(pr)) == []  # the control: carol's approval as she signed it
    _resign(pr / POLICY_APPROVAL, base[1]["carol"], form)
    errors = _errors(_judge(pr))
    assert errors[0].rule == "GATE016", errors
    message = errors[0].message
    assert message.startswith(f"{POLICY_APPROVAL}: refused: the payload carol"), message
    assert _SAID[form] in message, message
    assert "changed after the approval" not in message, message


@pytest.mark.parametrize("form", list(FORMS))
def test_an_encrypted_file_whose_header_reads_two_ways_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, form: str
) -> None:
    from pipeline.atrest import MAGIC, EncryptionError, decrypt_bytes, encrypt_bytes
    from pipeline.keys.local import LocalProvider

    monkeypatch.setenv("GATES_DATA_KEY", base64.b64encode(b"k" * 32).decode())
    provider = LocalProvider(
        env="GATES_SIGNING_KEY", key_file=None, kek_env="GATES_DATA_KEY", kek_file=None
    )
    blob = encrypt_bytes(b"a,b\n1,2\n", name="data/x.csv", provider=provider)
    assert decrypt_bytes(blob, name="data/x.csv", provider=provider) == b"a,b\n1,2\n"  # control
    end = blob.index(b"\n", len(MAGIC))
    header = FORMS[form](blob[len(MAGIC) : end].decode("ascii")).encode("ascii")
    with pytest.raises(EncryptionError, match=r"^data/x\.csv: refused: encrypted file header"):
        decrypt_bytes(MAGIC + header + blob[end:], name="data/x.csv", provider=provider)


@pytest.mark.parametrize("form", list(FORMS))
def test_an_audit_log_line_read_two_ways_is_refused_naming_it(tmp_path: Path, form: str) -> None:
    from pipeline.promotion import AUDIT_FILE, GENESIS, PromotionError, read_events

    record: dict[str, Any] = {
        "envelope": None,
        "event": {"action": "revoke", "promoter": None, "version": "v1"},
        "prev": GENESIS,
        "time": "2026-12-07T00:00:00+00:00",
    }
    line = json.dumps(record, sort_keys=True, separators=(",", ":"))
    (tmp_path / AUDIT_FILE).write_text(line + "\n", encoding="utf-8")
    assert len(read_events(tmp_path)) == 1  # the control: the line as the registry writes it
    (tmp_path / AUDIT_FILE).write_text(FORMS[form](line) + "\n", encoding="utf-8")
    with pytest.raises(PromotionError, match=rf"{AUDIT_FILE}:1: refused: .*{_SAID[form]}"):
        read_events(tmp_path)


@pytest.mark.parametrize("form", list(FORMS))
def test_a_history_record_read_two_ways_is_refused_naming_its_line(
    tmp_path: Path, form: str
) -> None:
    """A record's hash is taken over the record as parsed: with a name twice it verified."""
    from gates.feedback import history

    path = tmp_path / "runs.jsonl"
    for i in range(2):
        history.append(path, {"run_id": f"run-{i}", "metrics": {"acc": 0.9}})
    assert history.verify(path)  # the control: the history as appended
    first, second = path.read_bytes().decode("utf-8").splitlines()
    path.write_text(FORMS[form](first) + "\n" + second + "\n", encoding="utf-8")
    check = history.verify(path)
    assert not check, "a record read two ways verified"
    assert check.problems[0].line == 1, check.problems
    assert _SAID[form] in check.problems[0].message, check.problems


@pytest.mark.parametrize("form", list(FORMS))
def test_a_champion_pointer_read_two_ways_is_refused_naming_it(tmp_path: Path, form: str) -> None:
    from pipeline.champion import ModelRegistry, RegistryError

    registry = tmp_path / "registry"
    registry.mkdir()
    pointer = {"bundle": "b", "envelope_sha256": "ab" * 32, "version": "v2"}
    (registry / "champion").write_text(json.dumps(pointer, sort_keys=True), encoding="utf-8")
    reader = ModelRegistry(registry, trusted=None)  # type: ignore[arg-type]
    assert reader.current_version() == "v2"  # the control: the pointer as the registry writes it
    text = FORMS[form](json.dumps(pointer, sort_keys=True))
    (registry / "champion").write_text(text, encoding="utf-8")
    with pytest.raises(
        RegistryError, match=rf"champion: champion pointer unreadable.*{_SAID[form]}"
    ):
        reader.current_version()
