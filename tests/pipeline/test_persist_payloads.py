"""The model loader never unpickles: a payload is refused before a byte is deserialized."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import joblib
import pytest

from pipeline.errors import ModelError
from pipeline.fsio import sha256_file
from pipeline.persist import load_attested, load_model
from tests.release_support import copy_project


class _Payload:
    """Unpickling this creates a folder: the observable side effect of running code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def _write(kind: str, path: Path, marker: Path) -> None:
    payload = _Payload(marker)
    if kind.startswith("pickle-"):
        path.write_bytes(pickle.dumps(payload, protocol=int(kind.removeprefix("pickle-"))))
    elif kind == "joblib":
        joblib.dump(payload, path)
    else:
        joblib.dump(payload, path, compress=3)


@pytest.fixture(scope="module")
def signed(signed_chain: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project whose chain PASSED, signed with its own release key."""
    return copy_project(signed_chain[0], tmp_path_factory.mktemp("persist") / "signed")


KINDS = ["pickle-0", "pickle-2", "pickle-5", "joblib", "joblib-zlib"]


def test_the_payload_is_real(tmp_path):
    # Without this, the refusal tests below could pass with a payload that never works.
    marker = tmp_path / "control-ran"
    path = tmp_path / "control.pkl"
    _write("pickle-5", path, marker)
    subprocess.run(
        [sys.executable, "-c", f"import pickle; pickle.loads(open({str(path)!r}, 'rb').read())"],
        check=True,
        timeout=60,
    )
    assert marker.is_dir()


@pytest.mark.parametrize("kind", KINDS)
def test_pickle_and_joblib_files_are_refused_before_deserializing(kind, tmp_path):
    marker = tmp_path / "payload-ran"
    path = tmp_path / "model.skops"
    _write(kind, path, marker)
    # Even with a matching digest (an attacker who controls the manifest), the bytes are refused.
    with pytest.raises(ModelError, match="refused"):
        load_model(path, expected_sha256=sha256_file(path), estimator="logistic_regression")
    assert not marker.exists()


def test_a_pickle_swapped_in_for_a_signed_model_never_runs(signed, tmp_path):
    from gates.release import verify_project
    from pipeline.attestation import AttestationError
    from pipeline.config import load_policy

    root = copy_project(signed, tmp_path / "copy")
    marker = tmp_path / "payload-ran"
    _write("joblib", root / "artifacts/model.skops", marker)
    with pytest.raises(AttestationError, match=r"artifacts/model.skops: SHA-256"):
        load_attested(verify_project(load_policy(root / "policy.toml")))
    assert not marker.exists()


def test_a_verified_model_loads_and_predicts(signed):
    from gates.release import verify_project
    from pipeline.config import load_policy
    from pipeline.data import read_table

    root = signed
    policy = load_policy(root / "policy.toml")
    model, manifest = load_attested(verify_project(policy))
    assert manifest.estimator == "logistic_regression"
    frame = read_table(root / "data/breast_cancer.csv", fmt="csv")
    features = frame[list(policy.policy.data.feature_columns)].head(5)
    assert set(model.predict(features)) <= {"benign", "malignant"}
