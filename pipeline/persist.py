"""Save models with skops and load them only after their SHA-256 matches the manifest.

This is the one module allowed to deserialize a model. It never unpickles: skops builds objects
from a JSON schema and refuses any type not on the reviewed list for the model's family.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import ModelError
from pipeline.fsio import atomic_write_bytes, atomic_write_json, sha256_bytes

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
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("schema_version") != MANIFEST_SCHEMA_VERSION:
            msg = (
                f"{path}: schema_version: expected {MANIFEST_SCHEMA_VERSION}, "
                f"found {document.get('schema_version')!r}"
            )
            raise ModelError(msg)
        return ModelManifest(**document)
    except FileNotFoundError:
        msg = f"{path}: model manifest not found"
        raise ModelError(msg) from None
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError, AttributeError) as err:
        msg = f"{path}: model manifest is malformed: {err}"
        raise ModelError(msg) from None


def load_model(path: Path, *, expected_sha256: str, estimator: str) -> Any:
    """Load a skops model whose bytes hash to ``expected_sha256``, trusting only reviewed types.

    The file is read once; the digest is checked on those bytes and the same bytes are
    loaded, so nothing can swap the file between check and load.
    """
    import skops.io as sio  # noqa: PLC0415

    try:
        payload = path.read_bytes()
    except FileNotFoundError:
        msg = f"{path}: model file not found"
        raise ModelError(msg) from None
    actual = sha256_bytes(payload)
    if actual != expected_sha256:
        msg = (
            f"{path}: refused: SHA-256 {actual[:12]}... does not match the expected "
            f"{expected_sha256[:12]}...; the file is not the one that was verified"
        )
        raise ModelError(msg)
    if not zipfile.is_zipfile(io.BytesIO(payload)):
        msg = f"{path}: refused: expected a skops file (a zip archive), found other bytes"
        raise ModelError(msg)
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
    try:
        return sio.loads(payload, trusted=list(reviewed))
    except Exception as err:  # a malformed schema fails inside skops in many ways
        msg = f"{path}: refused: skops could not load it ({type(err).__name__}: {err})"
        raise ModelError(msg) from None


def load_verified(path: Path) -> tuple[Any, ModelManifest]:
    """Load the model at ``path`` against the manifest beside it."""
    manifest = read_manifest(manifest_path_for(path))
    if manifest.model_file != path.name:
        msg = (
            f"{manifest_path_for(path)}: names model file '{manifest.model_file}', "
            f"expected '{path.name}'"
        )
        raise ModelError(msg)
    model = load_model(path, expected_sha256=manifest.sha256, estimator=manifest.estimator)
    return model, manifest
