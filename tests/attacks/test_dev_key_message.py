"""Planted attacks on the development-key wording of verify, predict and deploy.

A statement signed, intact, by the local development key is refused with words that say so
and name ``--key`` (``pipeline/verify.py``); anything else keeps the tamper message. The
wording reads ``<dev_key_dir>/dev-signing.pub`` and the envelope a second time, so a tree that
plants a device, a FIFO or a symlink under either name must neither hang the refusal nor get
the friendlier words. Each case is refused either way; the words are what is checked.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.project_support import REPO

DEV_WORDS = "signed by the local development key"
TAMPER_WORDS = "changed after signing, or it was signed by another key"


def _project(root: Path) -> Path:
    from pipeline.attestation import sign_and_write
    from pipeline.signing import generate_key_pair, read_private_key

    root.mkdir()
    shutil.copy2(REPO / "policy.toml", root / "policy.toml")
    shutil.copytree(REPO / "keys", root / "keys")
    generate_key_pair(
        private_path=root / ".keys/dev-signing.key", public_path=root / ".keys/dev-signing.pub"
    )
    key = read_private_key(root / ".keys/dev-signing.key", release=False)
    (root / "artifacts").mkdir()
    sign_and_write(b'{"_type": "statement"}', key=key, bundle_dir=root / "artifacts")
    return root


def _refusal(root: Path, *, key: Path | None = None) -> str:
    """verify_project's refusal, on a thread: a case that hangs fails instead of blocking."""
    from pipeline.attestation import AttestationError
    from pipeline.config import load_policy
    from pipeline.verify import verify_project

    found: list[str] = []

    def attempt() -> None:
        try:
            verify_project(load_policy(root / "policy.toml"), required_gates=(), key=key)
        except AttestationError as err:
            found.append(str(err))
        else:
            found.append("ACCEPTED")

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive(), "the refusal hung reading a planted file"
    return found[0]


def _edit_payload(root: Path) -> None:
    path = root / "artifacts/attestation.intoto.json"
    envelope = json.loads(path.read_text(encoding="utf-8"))
    envelope["payload"] = base64.b64encode(b'{"_type": "edited"}').decode()
    path.write_text(json.dumps(envelope), encoding="utf-8")


def _other_dev_key(root: Path) -> None:
    from pipeline.signing import generate_key_pair

    (root / ".keys/dev-signing.pub").unlink()
    generate_key_pair(
        private_path=root / "elsewhere.key", public_path=root / ".keys/dev-signing.pub"
    )


def _dev_key_is_fifo(root: Path) -> None:
    (root / ".keys/dev-signing.pub").unlink()
    os.mkfifo(root / ".keys/dev-signing.pub")


def _dev_key_is_dev_zero(root: Path) -> None:
    (root / ".keys/dev-signing.pub").unlink()
    (root / ".keys/dev-signing.pub").symlink_to("/dev/zero")


def _dev_key_through_symlink(root: Path) -> None:
    # The real key, but behind a symlink: the wording reads regular files only.
    (root / ".keys/dev-signing.pub").rename(root / ".keys/real.pub")
    (root / ".keys/dev-signing.pub").symlink_to("real.pub")


def _envelope_symlink(root: Path) -> None:
    envelope = root / "artifacts/attestation.intoto.json"
    envelope.rename(root / "kept.json")
    envelope.symlink_to(root / "kept.json")


def _envelope_is_fifo(root: Path) -> None:
    envelope = root / "artifacts/attestation.intoto.json"
    envelope.unlink()
    os.mkfifo(envelope)


def _dev_key_from_the_tree(root: Path) -> None:
    # Red team (6 December): the pull request commits a key pair and a bundle signed with it
    # (`git add -f`). A checkout holds the public half and, at best, the private one readable
    # by others (git writes no 0600 file): neither was made on this machine.
    (root / ".keys/dev-signing.key").unlink()


def _dev_private_key_checked_out(root: Path) -> None:
    (root / ".keys/dev-signing.key").chmod(0o644)


# case -> (plant, words the refusal has, words it must not have)
CASES: dict[str, tuple[Callable[[Path], None] | None, str, str]] = {
    "intact-dev-signed": (None, DEV_WORDS, TAMPER_WORDS),
    "payload-edited": (_edit_payload, TAMPER_WORDS, "development key"),
    "dev-key-file-replaced": (_other_dev_key, TAMPER_WORDS, "development key"),
    "dev-key-is-a-fifo": (_dev_key_is_fifo, TAMPER_WORDS, "development key"),
    "dev-key-is-dev-zero": (_dev_key_is_dev_zero, TAMPER_WORDS, "development key"),
    "dev-key-behind-a-symlink": (_dev_key_through_symlink, TAMPER_WORDS, "development key"),
    "envelope-symlink": (_envelope_symlink, "symlink", "development key"),
    "envelope-is-a-fifo": (_envelope_is_fifo, "not a regular file", "development key"),
    "dev-key-pub-from-the-tree": (_dev_key_from_the_tree, TAMPER_WORDS, "development key"),
    "dev-key-pair-checked-out": (_dev_private_key_checked_out, TAMPER_WORDS, "development key"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_only_an_intact_dev_signed_statement_gets_the_development_key_words(
    case: str, tmp_path: Path
) -> None:
    root = _project(tmp_path / "project")
    plant, words, absent = CASES[case]
    if plant is not None:
        plant(root)
    refusal = _refusal(root)
    assert refusal != "ACCEPTED"
    assert "artifacts/attestation.intoto.json" in refusal
    assert words in refusal, refusal
    assert absent not in refusal, refusal
    if case == "intact-dev-signed":
        assert "pass --key .keys/dev-signing.pub" in refusal
        assert "keys/release.pub" in refusal


def test_the_development_key_named_by_key_is_accepted(tmp_path: Path) -> None:
    # What the message tells a local user to do; the statement here records no gate, so the
    # refusal (if any) must not be about the signature.
    root = _project(tmp_path / "project")
    refusal: Any = _refusal(root, key=root / ".keys/dev-signing.pub")
    assert "no signature verifies" not in refusal
    assert DEV_WORDS not in refusal
