"""A name given twice in one object, and NaN or Infinity, in JSON a signature or digest vouches for.

Python's ``json`` keeps the last of two equal names in an object; other readers keep the first
(or refuse), so one file holds two documents: ``{"files": {}, "files": {...}}`` is a lock
listing no file to a first-name reader (a reviewer scanning the diff, ``jq``-based tooling keeps
the last too, Go's and several JavaScript readers differ) and every file to the gates, and an
envelope with two ``payload`` names is two signed statements. ``NaN``, ``Infinity`` and
``1e999`` are not JSON (RFC 8259): other readers refuse them or read another value. Python read
all of them, so each was accepted (red before) in the data lock (``data verify``), a data
approval's DSSE envelope (``data verify`` with approvers), the bandit baseline (the sast gate),
a feedback batch record (``feedback list``) and a model manifest. Every one of those files is written by the gates
with one name each and ``allow_nan=False``, so refusing them costs no file the gates write.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.fsio import strict_json
from tests.hostile_support import (
    APPROVAL,
    BASELINE,
    BATCH,
    LOCK,
    approved,
    project_copy,
    run_gates,
)

__all__ = ["approved"]  # the module fixture: the project with carol's real data approval


def _twice(text: str) -> str:
    """The first name again before the document, with an empty value of its kind: Python reads
    the genuine value (the last), a first-name reader the empty one."""
    document = json.loads(text)
    name, value = next(iter(document.items()))
    decoy = type(value)()
    return "{" + json.dumps(name) + ": " + json.dumps(decoy) + ", " + text.lstrip()[1:]


def _nan(text: str) -> str:
    return text.replace("{", '{"zz_note": NaN, ', 1)


def _huge(text: str) -> str:
    return text.replace("{", '{"zz_note": 1e999, ', 1)


FORMS = {"a name twice": _twice, "NaN": _nan, "1e999": _huge}
# (file, with approvers, command, exit code, the words the refusal holds)
CASES = {
    "data lock": (LOCK, False, ("data", "verify"), 2, "data lock"),
    "data approval envelope": (APPROVAL, True, ("data", "verify"), 1, "approval"),
    "bandit baseline": (BASELINE, False, ("run", "sast", "--no-cache"), 2, "bandit baseline"),
    "feedback batch record": (BATCH, False, ("feedback", "list"), 2, "batch record"),
}
# A quarantined batch as the feedback stage records it (gates.feedback.quarantine.Batch).
_BATCH_RECORD = {
    "batch_id": "b1",
    "source": "outcomes.csv",
    "sha256": "ab" * 32,
    "rows": 3,
    "ingested": "2026-12-06T00:00:00Z",
    "status": "quarantined",
    "problems": [],
    "disagreement_rate": 0.0,
    "approved_by": None,
    "approved_at": None,
    "data_sha256_after": None,
}
_SAID = {"a name twice": "twice", "NaN": "found NaN", "1e999": "found 1e999"}


@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("case", list(CASES))
def test_a_name_twice_or_a_non_number_is_refused_naming_the_file(
    approved: Path, tmp_path: Path, case: str, form: str
) -> None:
    planted, _, args, code, words = CASES[case]
    root = project_copy(CASES[case][1], approved, tmp_path)
    target = root / planted
    if planted == BATCH:
        target.parent.mkdir(parents=True)
        target.write_text(json.dumps(_BATCH_RECORD, indent=2), encoding="utf-8")
        assert (
            run_gates(root, *args).returncode == 0
        )  # the control: the record as written is listed
    target.write_text(FORMS[form](target.read_text(encoding="utf-8")), encoding="utf-8")
    done = run_gates(root, *args)
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output[-3000:]
    assert done.returncode == code, output[-3000:]
    named = [line for line in output.splitlines() if planted in line and words in line]
    assert named, output[-3000:]
    assert _SAID[form] in named[0], named[0]


def test_the_model_manifest_refuses_a_name_twice(tmp_path: Path) -> None:
    from pipeline.errors import ModelError
    from pipeline.persist import read_manifest

    document = {
        "model_file": "model.skops",
        "sha256": "ab" * 32,
        "size": 1,
        "estimator": "logistic_regression",
        "sklearn_version": "1",
        "skops_version": "1",
        "schema_version": 1,
    }
    read_manifest_of = tmp_path / "control.skops.json"
    read_manifest_of.write_text(json.dumps(document), encoding="utf-8")
    assert read_manifest(read_manifest_of).sha256 == "ab" * 32  # the control
    path = tmp_path / "model.skops.json"
    path.write_text(_twice(json.dumps(document)), encoding="utf-8")
    with pytest.raises(ModelError, match=r"model\.skops\.json: model manifest is malformed.*twice"):
        read_manifest(path)


@pytest.mark.parametrize(
    "text",
    ['{"a": 1, "a": 1}', '{"a": {"b": [1, {"c": 2, "c": 2}]}}', "[NaN]", "[-Infinity]", "[1e999]"],
)
def test_strict_json_refuses_what_two_readers_read_apart(text: str) -> None:
    json.loads(text)  # the control: Python's reader takes each of them
    with pytest.raises(ValueError, match="expected"):
        strict_json(text)


def test_strict_json_reads_plain_json_as_json_loads() -> None:
    text = '{"a": [1, 2.5, -0.0, 1e308, {"b": null, "c": "NaN"}], "d": {"a": 1}}'
    assert strict_json(text) == json.loads(text)
