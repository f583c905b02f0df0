"""Models are saved with skops and loaded only after their digest and types check out."""

from __future__ import annotations

import io
import json
import pickle
import zipfile

import pytest
from sklearn.datasets import load_breast_cancer

from pipeline.config import ModelPolicy
from pipeline.errors import ModelError
from pipeline.model import ESTIMATORS, build_estimator
from pipeline.persist import load_model, load_verified, manifest_path_for, read_manifest, save_model


@pytest.fixture(scope="module")
def data():
    return load_breast_cancer(return_X_y=True)


def _fit(estimator, data):
    params = {"n_estimators": 5} if estimator == "random_forest" else {}
    if estimator == "hist_gradient_boosting":
        params = {"max_iter": 5}
    return build_estimator(ModelPolicy(estimator=estimator, params=params), seed=0).fit(*data)


@pytest.mark.parametrize("estimator", sorted(ESTIMATORS))
def test_round_trip_per_family(tmp_path, data, estimator):
    model = _fit(estimator, data)
    path = tmp_path / "model.skops"
    manifest = save_model(model, path, estimator=estimator)
    loaded, read = load_verified(path)
    assert read == manifest
    assert (loaded.predict(data[0]) == model.predict(data[0])).all()


def test_one_flipped_byte_is_refused(tmp_path, data):
    path = tmp_path / "model.skops"
    save_model(_fit("logistic_regression", data), path, estimator="logistic_regression")
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(ModelError, match="does not match the expected"):
        load_verified(path)


def test_types_outside_the_reviewed_list_are_refused(tmp_path, data):
    # A random forest file presented as a logistic regression needs sklearn.tree._tree.Tree,
    # which is not reviewed for that family.
    path = tmp_path / "model.skops"
    manifest = save_model(_fit("random_forest", data), path, estimator="random_forest")
    with pytest.raises(ModelError, match="types outside the reviewed list"):
        load_model(path, expected_sha256=manifest.sha256, estimator="logistic_regression")


def test_pickle_payload_is_refused_before_deserialising(tmp_path):
    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "model.skops"
    path.write_bytes(pickle.dumps(Payload()))
    manifest = {
        "model_file": "model.skops",
        "sha256": __import__("hashlib").sha256(path.read_bytes()).hexdigest(),
        "size": path.stat().st_size,
        "estimator": "logistic_regression",
        "sklearn_version": "x",
        "skops_version": "x",
        "schema_version": 1,
    }
    manifest_path_for(path).write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="this loader never unpickles"):
        load_verified(path)
    assert not marker.exists()


def test_zip_that_is_not_skops_is_refused(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("schema.json", "{not json")
    path = tmp_path / "model.skops"
    path.write_bytes(buffer.getvalue())
    digest = __import__("hashlib").sha256(buffer.getvalue()).hexdigest()
    with pytest.raises(ModelError, match="refused"):
        load_model(path, expected_sha256=digest, estimator="logistic_regression")


def test_manifest_problems(tmp_path, data):
    path = tmp_path / "model.skops"
    save_model(_fit("logistic_regression", data), path, estimator="logistic_regression")
    manifest = manifest_path_for(path)
    document = json.loads(manifest.read_text())
    document["model_file"] = "other.skops"
    manifest.write_text(json.dumps(document))
    with pytest.raises(ModelError, match=r"names model file 'other\.skops'"):
        load_verified(path)
    manifest.write_text("{")
    with pytest.raises(ModelError, match="malformed"):
        read_manifest(manifest)
    manifest.unlink()
    with pytest.raises(ModelError, match="manifest not found"):
        load_verified(path)


def test_unknown_family_cannot_be_saved(tmp_path, data):
    with pytest.raises(ModelError, match="no reviewed skops types"):
        save_model(_fit("logistic_regression", data), tmp_path / "m.skops", estimator="svm")
