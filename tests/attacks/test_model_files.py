"""Planted model files (issue 14, item 4): a signed model must be exactly a skops archive.

Each variant is a model file a contributor could hand the release process: a pickle with a
valid skops zip behind it, bytes after the end record, a payload in a comment, an extra
field, a gap, an entry skops never reads, an array that is really a pickle, a renamed pickle,
a symlink, ... Each is refused by the loader in-process, and, planted into a bundle signed
with the test's release key (so the signature is VALID and only the model check can refuse
it), by ``verify``, ``deploy``, ``verify --champion``, ``predict`` and ``predict --champion``
with the file named, a non-zero exit code and no traceback. The payload is a real pickle
whose unpickling creates a folder; no path may ever create it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest

from pipeline.errors import ModelError
from pipeline.persist import REVIEWED_TYPES, audit_model, load_model
from tests.conftest import run_module
from tests.release_support import copy_project

MODEL = "artifacts/model.skops"
MANIFEST = "artifacts/model.manifest.json"
STATEMENT = "artifacts/attestation.statement.json"
FAMILY = "logistic_regression"


class _Payload:
    """Unpickling this creates a folder: the observable side effect of running code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (str(self.marker),))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- a zip writer that can lie in every way a zip can (stored entries, APPNOTE.TXT 4.3) ---


@dataclass
class Entry:
    name: str
    data: bytes
    local_name: str | None = None  # a local header that names another file
    local_extra: bytes = b""
    central_extra: bytes = b""
    listed: bool = True  # False: a local entry the central directory does not list


def build_zip(
    entries: list[Entry],
    *,
    prefix: bytes = b"",
    gaps: dict[int, bytes] | None = None,
    comment: bytes = b"",
    zip64: bool = False,
) -> bytes:
    """An archive whose offsets count from the first byte of the file (prefix included)."""
    out = bytearray(prefix)
    central = bytearray()
    listed = 0
    for index, entry in enumerate(entries):
        out += (gaps or {}).get(index, b"")
        offset, crc, size = len(out), zlib.crc32(entry.data), len(entry.data)
        local = (entry.local_name or entry.name).encode()
        out += struct.pack(
            "<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 0, 0, 0x21, crc, size, size, len(local),
            len(entry.local_extra),
        )  # fmt: skip
        out += local + entry.local_extra + entry.data
        if entry.listed:
            name = entry.name.encode()
            central += struct.pack(
                "<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, 0, 0, 0x21, crc, size, size,
                len(name), len(entry.central_extra), 0, 0, 0, 0, offset,
            )  # fmt: skip
            central += name + entry.central_extra
            listed += 1
    cd_offset = len(out)
    out += central
    if zip64:
        record_at = len(out)
        out += struct.pack(
            "<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, listed, listed, len(central),
            cd_offset,
        )  # fmt: skip
        out += struct.pack("<4sIQI", b"PK\x06\x07", 0, record_at, 1)
        out += struct.pack(
            "<4sHHHHIIH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0
        )
    else:
        out += struct.pack(
            "<4sHHHHIIH", b"PK\x05\x06", 0, 0, listed, listed, len(central), cd_offset,
            len(comment),
        )  # fmt: skip
        out += comment
    return bytes(out)


def _extra_field(data: bytes) -> bytes:
    # A well-formed extra field (header id, length, data), so zipfile itself parses it.
    return struct.pack("<HH", 0xCAFE, len(data)) + data


def _npy(array: np.ndarray, *, allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


# --- the variants ---


@dataclass(frozen=True)
class Genuine:
    """The signed project's real model, split into its entries, and the payload of one test."""

    archive: bytes
    entries: tuple[Entry, ...]
    other_family: bytes  # a genuine random forest archive
    marker: Path

    def payload(self, protocol: int = 5) -> bytes:
        return pickle.dumps(_Payload(self.marker), protocol=protocol)

    def copied(self) -> list[Entry]:
        return [Entry(e.name, e.data) for e in self.entries]

    def with_first_array(self, data: bytes | None = None, **lies: Any) -> list[Entry]:
        """The entries, the first array replaced by ``data`` or written with ``lies``."""
        first = self.entries[0]
        return [Entry(first.name, first.data if data is None else data, **lies), *self.copied()[1:]]


def _joblib(genuine: Genuine) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(_Payload(genuine.marker), buffer, compress=3)
    return buffer.getvalue()


@dataclass(frozen=True)
class Variant:
    make: Callable[[Genuine], bytes]
    found: str  # what the loader says it found
    signed_found: str = ""  # what verify says, where verify_bundle refuses first
    # What skops did with it before this check: "load" (a model came out), "audit" (its type
    # audit passed, so verify/deploy would have promoted it), "" (skops fails on it anyway).
    skops: str = ""
    estimator: str = FAMILY
    form: str = "file"  # "symlink", "fifo", "unsigned": planted without a new signature


def _hidden_local_entry(g: Genuine) -> bytes:
    return build_zip([Entry("payload.pkl", g.payload(), listed=False), *g.copied()])


VARIANTS: dict[str, Variant] = {
    # The case in the issue: pickle + zip, readable as both.
    "pickle-before-zip": Variant(
        lambda g: g.payload() + g.archive,
        "bytes before the first zip entry); this loader never unpickles",
        skops="load",
    ),
    "protocol-0-pickle-before-zip": Variant(
        lambda g: g.payload(protocol=0) + g.archive,
        "bytes before the first zip entry (a zip must start at offset 0)",
        skops="load",
    ),
    "pickle-before-zip-with-absolute-offsets": Variant(
        lambda g: build_zip(g.copied(), prefix=g.payload()),
        "bytes before the first zip entry",
        skops="load",
    ),
    "local-entry-the-directory-does-not-list": Variant(
        _hidden_local_entry,
        "bytes between the start of the file and the local header of entry",
        skops="load",
    ),
    "pickle-after-the-end-record": Variant(
        lambda g: g.archive + g.payload(),
        "bytes after the end-of-central-directory record",
        skops="load",
    ),
    "pickle-in-the-archive-comment": Variant(
        lambda g: build_zip(g.copied(), comment=g.payload()),
        "an archive comment of",
        skops="load",
    ),
    "zip64-end-records": Variant(
        lambda g: build_zip(g.copied(), zip64=True), "zip64 end records", skops="load"
    ),
    "pickle-between-entries": Variant(
        lambda g: build_zip(g.copied(), gaps={1: g.payload()}),
        "bytes between the previous entry and the local header of entry",
        skops="load",
    ),
    "pickle-in-a-local-extra-field": Variant(
        lambda g: build_zip(g.with_first_array(local_extra=_extra_field(g.payload()))),
        "extra fields in its local header",
        skops="load",
    ),
    "pickle-in-a-central-extra-field": Variant(
        lambda g: build_zip(g.with_first_array(central_extra=_extra_field(g.payload()))),
        "bytes of extra fields",
        skops="load",
    ),
    "local-header-names-another-file": Variant(
        lambda g: build_zip(g.with_first_array(local_name="payload.pkl")),
        "does not match the central directory record of entry",
    ),
    "two-schema-entries": Variant(
        lambda g: build_zip([Entry("schema.json", b"{}"), *g.copied()]),
        "entry 'schema.json' appears 2 times",
        skops="load",
    ),
    "pickle-entry-beside-the-schema": Variant(
        lambda g: build_zip([*g.copied(), Entry("payload.pkl", g.payload())]),
        "entry 'payload.pkl' is outside the skops layout",
        skops="load",
    ),
    "polyglot-zipped-inside-the-zip": Variant(
        lambda g: build_zip([*g.copied(), Entry("model.skops", g.payload() + g.archive)]),
        "entry 'model.skops' is outside the skops layout",
        skops="load",
    ),
    "zip-in-place-of-an-array": Variant(
        lambda g: build_zip(g.with_first_array(g.archive)),
        "is not a numpy array file",
        skops="audit",
    ),
    "pickle-in-place-of-an-array": Variant(
        lambda g: build_zip(g.with_first_array(g.payload())),
        "is not a numpy array file",
        skops="audit",
    ),
    "object-array-holding-a-pickle": Variant(
        lambda g: build_zip(
            g.with_first_array(
                _npy(np.array([_Payload(g.marker)], dtype=object), allow_pickle=True)
            )
        ),
        "holds Python objects",
        skops="audit",
    ),
    "pickle-after-the-array-data": Variant(
        lambda g: build_zip(g.with_first_array(g.entries[0].data + g.payload())),
        "bytes after its array data",
        skops="load",
    ),
    "array-the-schema-never-references": Variant(
        lambda g: build_zip(
            [*g.copied(), Entry("4242.npy", _npy(np.frombuffer(g.payload(), dtype=np.uint8)))]
        ),
        "entry '4242.npy' is never referenced by schema.json",
        skops="load",
    ),
    "plain-pickle-renamed": Variant(
        lambda g: g.payload(), "a pickle/joblib stream; this loader never unpickles"
    ),
    "joblib-dump-renamed": Variant(_joblib, "a pickle/joblib stream; this loader never unpickles"),
    "empty-file": Variant(lambda g: b"", "the file is empty"),
    "truncated-zip": Variant(
        lambda g: g.archive[: len(g.archive) // 2], "no end-of-central-directory record"
    ),
    "another-familys-types": Variant(
        lambda g: g.other_family,
        "types outside the reviewed list for 'logistic_regression': ['sklearn.tree._tree.Tree']",
    ),
    "symlink-to-the-signed-bytes": Variant(
        lambda g: g.archive, "a symlink, not the file itself", "is a symlink", form="symlink"
    ),
    "fifo-in-place-of-the-model": Variant(
        lambda g: b"", "not a regular file", "not a regular file", form="fifo"
    ),
    "polyglot-swapped-in-after-signing": Variant(
        lambda g: g.payload() + g.archive,
        "does not match the expected",
        "does not match the signed",
        form="unsigned",
    ),
}


# --- fixtures: one signed, deployed project; a copy per test ---


@dataclass(frozen=True)
class Signed:
    root: Path
    key_file: Path
    archive: bytes
    entries: tuple[Entry, ...]
    other_family: bytes


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory, signed_chain: tuple[Path, str]) -> Signed:
    """A copy of the session's signed chain (its whole chain PASSED, signed with its own release
    key), deployed: this module's tests plant into copies of it."""
    import skops.io as sio
    from sklearn.datasets import load_breast_cancer

    from gates.release import deploy
    from pipeline.config import ModelPolicy, load_policy
    from pipeline.model import build_estimator

    source, _ = signed_chain
    # Its folder holds the project and, beside it, secret/release.key.
    base = copy_project(source.parent, tmp_path_factory.mktemp("model-files") / "base")
    root = base / source.name
    deploy(load_policy(root / "policy.toml"), reports_dir=root / "reports")
    archive = (root / MODEL).read_bytes()
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        infos = sorted(opened.infolist(), key=lambda i: i.header_offset)
        entries = tuple(Entry(i.filename, opened.read(i)) for i in infos)
    assert entries[0].name.endswith(".npy")
    assert entries[-1].name == "schema.json"
    forest = build_estimator(
        ModelPolicy(estimator="random_forest", params={"n_estimators": 2}), seed=0
    ).fit(*load_breast_cancer(return_X_y=True))
    return Signed(root, base / "secret/release.key", archive, entries, sio.dumps(forest))


@pytest.fixture
def genuine(signed: Signed, tmp_path: Path) -> Genuine:
    return Genuine(signed.archive, signed.entries, signed.other_family, tmp_path / "payload-ran")


def _plant(root: Path, variant: Variant, data: bytes, key_file: Path) -> None:
    """Put ``data`` at the model's path in the bundle under ``root`` and sign it (VALID)."""
    from pipeline.attestation import sign_and_write
    from pipeline.signing import read_private_key

    model = root / MODEL
    model.unlink()
    if variant.form == "symlink":
        target = root / "outside.skops"
        target.write_bytes(data)
        model.symlink_to(target)
        return
    if variant.form == "fifo":
        os.mkfifo(model)
        return
    model.write_bytes(data)
    if variant.form == "unsigned":
        return
    manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    manifest.update(sha256=_sha256(data), size=len(data), estimator=variant.estimator)
    (root / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    statement = json.loads((root / STATEMENT).read_text(encoding="utf-8"))
    digests = {MODEL: _sha256(data), MANIFEST: _sha256((root / MANIFEST).read_bytes())}
    for subject in statement["subject"]:
        if subject["name"] in digests:
            subject["digest"]["sha256"] = digests[subject["name"]]
    statement["predicate"]["model"].update(sha256=_sha256(data), estimator=variant.estimator)
    sign_and_write(
        (json.dumps(statement, indent=2, sort_keys=True) + "\n").encode(),
        key=read_private_key(key_file, release=True),
        bundle_dir=root / "artifacts",
    )


def _plant_everywhere(signed: Signed, variant: Variant, data: bytes, tmp_path: Path) -> Path:
    """A copy of the project with ``data`` signed in as this run's model and as the champion's."""
    root = copy_project(signed.root, tmp_path / "copy")
    _plant(root, variant, data, signed.key_file)
    pointer_path = root / "registry/champion"
    pointer = json.loads(pointer_path.read_text(encoding="utf-8"))
    version = root / "registry/versions" / pointer["version"]
    _plant(version, variant, data, signed.key_file)
    envelope = version / pointer["bundle"] / "attestation.intoto.json"
    pointer["envelope_sha256"] = _sha256(envelope.read_bytes())
    pointer_path.write_text(json.dumps(pointer), encoding="utf-8")
    return root


# (name, argv, the exit code a refusal gives); run through each CLI's main() in-process.
COMMANDS = (
    ("verify", ("gates", "verify"), 1),
    ("deploy", ("gates", "deploy"), 1),
    ("verify --champion", ("gates", "verify", "--champion"), 1),
    ("predict", ("pipeline", "predict", "--input", "data/breast_cancer.csv"), 2),
    (
        "predict --champion",
        ("pipeline", "predict", "--champion", "--input", "data/breast_cancer.csv"),
        2,
    ),
)


def _main(root: Path, argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    from gates._cli import main as gates_main
    from pipeline._cli import main as pipeline_main

    policy = ("--policy", str(root / "policy.toml"))
    capsys.readouterr()
    with contextlib.chdir(root):
        # An exception escaping main() would be a traceback for the user: it fails the test.
        if argv[0] == "gates":  # --policy belongs to the subcommand
            code = gates_main([argv[1], *policy, *argv[2:]])
        else:
            code = pipeline_main([*policy, *argv[1:]])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


# --- the tests ---


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_the_loader_refuses_it_before_skops_opens_it(name, genuine, tmp_path):
    variant = VARIANTS[name]
    data = variant.make(genuine)
    path = tmp_path / "model.skops"
    expected = _sha256(data)
    if variant.form == "symlink":
        (tmp_path / "elsewhere.skops").write_bytes(data)
        path.symlink_to(tmp_path / "elsewhere.skops")
    elif variant.form == "fifo":
        os.mkfifo(path)
    else:
        path.write_bytes(data)
    if variant.form == "unsigned":
        expected = _sha256(genuine.archive)  # the digest that was verified, not these bytes
    for check in (load_model, audit_model):
        with pytest.raises(ModelError) as refused:
            check(path, expected_sha256=expected, estimator=variant.estimator)
        message = str(refused.value)
        assert message.startswith(f"{path}: refused: "), message
        assert variant.found in message, message
    assert not genuine.marker.exists()


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_signed_path_refuses_it(name, signed, genuine, tmp_path, capsys):
    variant = VARIANTS[name]
    root = _plant_everywhere(signed, variant, variant.make(genuine), tmp_path)
    pointer = (root / "registry/champion").read_bytes()
    found = variant.signed_found or variant.found
    for label, argv, exit_code in COMMANDS:
        code, output = _main(root, argv, capsys)
        assert code == exit_code, (label, code, output)
        assert MODEL in output, (label, output)
        assert found in output, (label, output)
        if label == "verify --champion":
            assert "registry version" in output, output
    assert (root / "registry/champion").read_bytes() == pointer  # deploy promoted nothing
    assert not genuine.marker.exists()


def test_the_genuine_model_re_signed_the_same_way_passes_every_path(
    signed, genuine, tmp_path, capsys
):
    # The control: the harness's own signing is VALID, so the refusals above are the model
    # check's alone; and the zip writer above writes archives that load when they are honest.
    honest = build_zip(genuine.copied())
    root = _plant_everywhere(signed, Variant(lambda g: honest, ""), honest, tmp_path)
    for label, argv, _ in COMMANDS:
        code, output = _main(root, argv, capsys)
        assert code == 0, (label, output)
    assert load_model(root / MODEL, expected_sha256=_sha256(honest), estimator=FAMILY) is not None


def test_the_payload_runs_when_unpickled(genuine, tmp_path):
    # Without this, the refusals could be of a payload that never works: the issue's polyglot
    # runs code for pickle.load, while zipfile sees the model.
    path = tmp_path / "polyglot.skops"
    path.write_bytes(VARIANTS["pickle-before-zip"].make(genuine))
    run = "import pickle, sys; pickle.load(open(sys.argv[1], 'rb'))"
    subprocess.run([sys.executable, "-c", run, str(path)], check=True, timeout=60)
    assert genuine.marker.is_dir()
    assert zipfile.is_zipfile(path)


@pytest.mark.parametrize("name", sorted(n for n, v in VARIANTS.items() if v.skops))
def test_skops_alone_takes_it(name, genuine):
    # Why the layout check exists: skops' own audit (and for most, its loader) accepts these
    # files, so verify and deploy promoted them before.
    import skops.io as sio

    variant = VARIANTS[name]
    data = variant.make(genuine)
    untrusted = sio.get_untrusted_types(data=data)
    assert set(untrusted) <= set(REVIEWED_TYPES[variant.estimator])
    if variant.skops == "load":
        assert hasattr(sio.loads(data, trusted=list(REVIEWED_TYPES[variant.estimator])), "predict")
    assert not genuine.marker.exists()


REAL = [c for c in COMMANDS if c[0] in ("verify", "deploy", "predict")]


@pytest.mark.parametrize("command", REAL, ids=[c[0] for c in REAL])
def test_the_real_commands_refuse_the_issues_polyglot(command, signed, genuine, tmp_path):
    _, args, exit_code = command
    variant = VARIANTS["pickle-before-zip"]
    root = _plant_everywhere(signed, variant, variant.make(genuine), tmp_path)
    result = run_module(*args, cwd=root)
    output = result.stdout + result.stderr
    assert result.returncode == exit_code, output
    assert f"{MODEL}: refused: " in output
    assert "bytes before the first zip entry" in output
    assert "Traceback" not in result.stderr
    assert not genuine.marker.exists()


def test_the_cv_gate_will_not_compare_against_a_polyglot_champion(signed, genuine, tmp_path):
    # The champion comparison reads the registry; a signed polyglot there makes cv ERRORED
    # (it cannot judge), naming the file, instead of loading it.
    from gates.base import Status
    from gates.runner import run_chain
    from pipeline.config import load_policy

    variant = VARIANTS["pickle-before-zip"]
    root = _plant_everywhere(signed, variant, variant.make(genuine), tmp_path)
    summary = run_chain(
        ["cv"],
        policy=load_policy(root / "policy.toml"),
        reports_dir=root / "reports",
        out=io.StringIO(),
    )
    (result,) = summary.results
    assert result.status is Status.ERRORED, result.summary
    shown = result.summary + " ".join(f.message for f in result.findings)
    assert f"{MODEL}: refused: " in shown, shown
    assert "bytes before the first zip entry" in shown, shown
    assert not genuine.marker.exists()
