"""Save models with skops; load them only after their SHA-256 matches a signed or recorded digest.

This is the one module allowed to deserialize a model. It never unpickles: before skops opens a
file, ``pipeline.modelfile`` refuses any byte outside the exact zip layout skops writes (so a
pickle, or a pickle with a zip behind it, never gets through), and skops builds objects from a
JSON schema, refusing any type not on the reviewed list for the model's family. ``audit_model``
and ``audit_attested`` make every one of those checks without building an object, for the
consumers that vouch for a model without using it (``verify``, ``deploy``, the registry). ``load_attested`` is the loader for
anything outside a run (deploy, the champion); ``load_verified`` checks only the manifest beside
the model and is meant for the candidate inside the run that trained it.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import ModelError, PipelineError
from pipeline.fsio import (
    Decoder,
    atomic_write_bytes,
    atomic_write_json,
    sha256_bytes,
    strict_json,
)
from pipeline.modelfile import check_model_file

if TYPE_CHECKING:
    from pipeline.attestation import VerifiedAttestation

MANIFEST_SCHEMA_VERSION = 1
# The trained model's file name inside [run].artifacts_dir.
MODEL_FILE = "model.skops"

# Types skops does not trust by default that each family needs, reviewed by hand: both are
# scikit-learn's own compiled tree structures, rebuilt from arrays without executing code.
# Never computed from the file being loaded (that would trust whatever the file asks for).
REVIEWED_TYPES: dict[str, tuple[str, ...]] = {
    "logistic_regression": (),
    "random_forest": ("sklearn.tree._tree.Tree",),
    "hist_gradient_boosting": ("sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",),
}


@dataclass(frozen=True)
class ModelManifest:
    """What was saved: file name, digest, size, family, and the versions that wrote it."""

    model_file: str
    sha256: str
    size: int
    estimator: str
    sklearn_version: str
    skops_version: str
    schema_version: int = MANIFEST_SCHEMA_VERSION


def manifest_path_for(model_path: Path) -> Path:
    """``artifacts/model.skops`` -> ``artifacts/model.manifest.json``."""
    return model_path.with_name(f"{model_path.stem}.manifest.json")


def save_model(model: Any, path: Path, *, estimator: str) -> ModelManifest:
    """Write the model with skops, then its manifest; each write is atomic."""
    import sklearn  # noqa: PLC0415
    import skops  # noqa: PLC0415
    import skops.io as sio  # noqa: PLC0415

    if estimator not in REVIEWED_TYPES:
        msg = f"no reviewed skops types for estimator '{estimator}'"
        raise ModelError(msg)
    payload = sio.dumps(model)
    # What this writes must pass the loader's layout check (a skops upgrade could change it).
    check_model_file(payload, path)
    manifest = ModelManifest(
        model_file=path.name,
        sha256=sha256_bytes(payload),
        size=len(payload),
        estimator=estimator,
        sklearn_version=sklearn.__version__,
        skops_version=skops.__version__,
    )
    atomic_write_bytes(path, payload)
    atomic_write_json(manifest_path_for(path), asdict(manifest))
    return manifest


def read_manifest(path: Path) -> ModelManifest:
    """Parse a model manifest; a missing or malformed one is a ModelError naming it."""
    return _parse_manifest(_read_regular(path, missing=f"{path}: model manifest not found"), path)


def _parse_manifest(raw: bytes, path: Path) -> ModelManifest:
    try:
        document = strict_json(raw.decode("utf-8"))  # it names the model's digest
        if not isinstance(document, dict):
            msg = f"{path}: model manifest is malformed: expected a JSON object"
            raise ModelError(msg)
        if document.get("schema_version") != MANIFEST_SCHEMA_VERSION:
            msg = (
                f"{path}: schema_version: expected {MANIFEST_SCHEMA_VERSION}, "
                f"found {document.get('schema_version')!r}"
            )
            raise ModelError(msg)
        return ModelManifest(**document)
    except (ValueError, RecursionError, TypeError, AttributeError) as err:
        msg = f"{path}: model manifest is malformed: {err}"
        raise ModelError(msg) from None


def load_model(
    path: Path, *, expected_sha256: str, estimator: str, decoder: Decoder | None = None
) -> Any:
    """Load a skops model whose bytes hash to ``expected_sha256``, trusting only reviewed types.

    The file is read once; the digest, the archive layout and the types are checked on those
    bytes and the same bytes are loaded, so nothing can swap the file between check and load.
    """
    import skops.io as sio  # noqa: PLC0415

    payload, reviewed = _audited_payload(
        path, expected_sha256=expected_sha256, estimator=estimator, decoder=decoder
    )
    try:
        return sio.loads(payload, trusted=list(reviewed))
    except Exception as err:  # a malformed schema fails inside skops in many ways
        msg = f"{path}: refused: skops could not load it ({type(err).__name__}: {err})"
        raise ModelError(msg) from None


def audit_model(
    path: Path, *, expected_sha256: str, estimator: str, decoder: Decoder | None = None
) -> None:
    """Everything ``load_model`` checks, without building a single object from the file.

    For consumers that vouch for a model without using it (``verify``, ``deploy``, the
    registry): the digest, the exact skops archive layout, and the types the schema names
    against the family's reviewed list (skops' ``get_untrusted_types`` reads the schema only).
    """
    _audited_payload(path, expected_sha256=expected_sha256, estimator=estimator, decoder=decoder)


def _audited_payload(
    path: Path, *, expected_sha256: str, estimator: str, decoder: Decoder | None = None
) -> tuple[bytes, tuple[str, ...]]:
    import skops.io as sio  # noqa: PLC0415

    payload = _read_regular(path, missing=f"{path}: model file not found", decoder=decoder)
    actual = sha256_bytes(payload)
    if actual != expected_sha256:
        msg = (
            f"{path}: refused: SHA-256 {actual[:12]}... does not match the expected "
            f"{expected_sha256[:12]}...; the file is not the one that was verified"
        )
        raise ModelError(msg)
    # Before skops (or anything else) parses it: every byte must belong to a skops archive,
    # so the file cannot also be a pickle to the next reader.
    check_model_file(payload, path)
    reviewed = REVIEWED_TYPES.get(estimator)
    if reviewed is None:
        msg = f"{path}: refused: no reviewed skops types for estimator '{estimator}'"
        raise ModelError(msg)
    try:
        untrusted = sio.get_untrusted_types(data=payload)
    except Exception as err:  # skops raises several types on malformed archives
        msg = f"{path}: refused: not a readable skops file ({type(err).__name__}: {err})"
        raise ModelError(msg) from None
    unexpected = sorted(set(untrusted) - set(reviewed))
    if unexpected:
        msg = f"{path}: refused: types outside the reviewed list for '{estimator}': {unexpected}"
        raise ModelError(msg)
    return payload, reviewed


def load_verified(path: Path) -> tuple[Any, ModelManifest]:
    """Load the model at ``path`` against the manifest beside it (unsigned: in-run use only).

    The caller must tie the manifest's digest to something it trusts, as the ``cv`` gate does
    with the digest the ``train`` gate recorded; outside a run, use ``load_attested``.
    """
    manifest = read_manifest(manifest_path_for(path))
    if manifest.model_file != path.name:
        msg = (
            f"{manifest_path_for(path)}: names model file '{manifest.model_file}', "
            f"expected '{path.name}'"
        )
        raise ModelError(msg)
    model = load_model(path, expected_sha256=manifest.sha256, estimator=manifest.estimator)
    return model, manifest


def load_attested(attestation: VerifiedAttestation) -> tuple[Any, ModelManifest]:
    """Load the model of a verified attestation: digest and family come from signed bytes only.

    The manifest is parsed only after its bytes match its signed digest, and the model's bytes
    are checked against the signed digest on the very bytes that are then loaded.
    """
    model_path, model_digest, manifest = _attested_model(attestation)
    model = load_model(
        model_path,
        expected_sha256=model_digest,
        estimator=manifest.estimator,
        decoder=attestation.decoder,
    )
    return model, manifest


def audit_attested(attestation: VerifiedAttestation) -> ModelManifest:
    """``audit_model`` for the model of a verified attestation; builds no object from it."""
    model_path, model_digest, manifest = _attested_model(attestation)
    audit_model(
        model_path,
        expected_sha256=model_digest,
        estimator=manifest.estimator,
        decoder=attestation.decoder,
    )
    return manifest


def _attested_model(attestation: VerifiedAttestation) -> tuple[Path, str, ModelManifest]:
    """The signed model's path and digest, and its manifest parsed from its signed bytes."""
    model_record = attestation.predicate.get("model")
    if not isinstance(model_record, dict):
        msg = f"{attestation.envelope_path}: the statement names no model"
        raise ModelError(msg)
    model_name, manifest_name = str(model_record.get("file")), str(model_record.get("manifest"))
    model_digest = attestation.digest(model_name)
    manifest_path = attestation.root / manifest_name
    raw = _read_exact(
        manifest_path,
        expected_sha256=attestation.digest(manifest_name),
        decoder=attestation.decoder,
    )
    manifest = _parse_manifest(raw, manifest_path)
    if manifest.sha256 != model_digest or manifest.model_file != Path(model_name).name:
        msg = f"{manifest_path}: names {manifest.model_file} {manifest.sha256[:12]}..., not the signed model"
        raise ModelError(msg)
    return attestation.root / model_name, model_digest, manifest


def _read_exact(path: Path, *, expected_sha256: str, decoder: Decoder | None = None) -> bytes:
    raw = _read_regular(path, missing=f"{path}: not found", decoder=decoder)
    if sha256_bytes(raw) != expected_sha256:
        msg = f"{path}: refused: its bytes are not the signed ones"
        raise ModelError(msg)
    return raw


def _read_regular(path: Path, *, missing: str, decoder: Decoder | None = None) -> bytes:
    """The bytes of the regular file at ``path``: never through a symlink, never a FIFO.

    With ``decoder`` (a file encrypted at rest), the contents decrypted in memory.
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise ModelError(missing) from None
    except OSError as err:
        if err.errno == errno.ELOOP:
            msg = f"{path}: refused: a symlink, not the file itself"
        else:
            msg = f"{path}: refused: cannot be read ({err.strerror})"
        raise ModelError(msg) from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            msg = f"{path}: refused: not a regular file"
            raise ModelError(msg)
        raw = handle.read()
    if decoder is None:
        return raw
    try:
        return decoder(path, raw)
    except PipelineError as err:
        raise ModelError(str(err)) from None
