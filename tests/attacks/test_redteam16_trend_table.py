"""Red team 16: the feedback trends' ``table`` identity reset by a change of no meaning.

Trends compare a run only with runs of the same table (``gates.feedback.collect.table_identity``:
label, classes, positive class, feature names); a champion recorded on another table is skipped
with the note FB104, and the recent mean restarts. The identity hashed the classes in the
policy's order and the positive class as written: a pull request that regresses the model and
writes ``classes = ["malignant", "benign"]`` (the positive class named, so nothing is scored
differently), or names ``positive_class`` where it was the default (the last class), made the
same task "another table": FB101/FB102 (an error under ``fail_on_regression = true``) became one
note, and the trend history restarted from the pull request's run.

The identity is the task as scored: the classes as a set (sorted), the positive class the binary
metrics score (the named one, else the last class; none for a multiclass table, whose metrics
are macro-averaged).
"""

from __future__ import annotations

import dataclasses

import pytest

from gates.base import Severity
from gates.feedback.collect import table_identity
from gates.feedback.stage import _trends
from gates.feedback.trends import Champion
from pipeline.config import load_policy
from tests.conftest import REPO


def _policy(**update: object):  # type: ignore[no-untyped-def]
    loaded = load_policy(REPO / "policy.toml")
    data = loaded.policy.data.model_copy(update=update)
    feedback = loaded.policy.feedback.model_copy(update={"fail_on_regression": True})
    policy = loaded.policy.model_copy(update={"data": data, "feedback": feedback})
    return dataclasses.replace(loaded, policy=policy)


BASE = _policy()
CLASSES = list(BASE.policy.data.classes)  # ["benign", "malignant"], positive "malignant"


@pytest.mark.parametrize(
    "update",
    [
        {"classes": list(reversed(CLASSES))},  # positive_class still named: same scoring
        {"positive_class": None},  # the default is the last class, the one named
    ],
    ids=["classes-reordered", "positive-class-left-to-its-default"],
)
def test_the_same_task_written_otherwise_keeps_its_trends(update: dict[str, object]) -> None:
    pr = _policy(**update)
    ours = table_identity(BASE.policy.data)
    theirs = table_identity(pr.policy.data)
    champion = Champion(
        source="registry/champion",
        metrics={"cv.accuracy.mean": 0.99},
        run_id="r1",
        table=ours["sha256"],
    )
    previous = [{"run_id": "r1", "metrics": {"cv.accuracy.mean": 0.99}, "table": ours}]
    notes: list = []
    kept, _, findings = _trends(
        pr,
        {"cv.accuracy.mean": 0.80},  # the pull request's regression
        champion=champion,
        previous=previous,
        table=theirs,
        notes=notes,
    )
    assert [n.rule for n in notes] == [], "the same task was taken for another table"
    assert kept is champion
    rules = {(f.rule, f.severity) for f in findings}
    assert ("FB101", Severity.ERROR) in rules
    assert ("FB102", Severity.ERROR) in rules


def test_a_real_change_of_task_is_still_another_table() -> None:
    """Controls: the positive class moved, a class renamed, a third class, the label."""
    ours = table_identity(BASE.policy.data)["sha256"]
    different = [
        {"positive_class": CLASSES[0]},
        {"classes": list(reversed(CLASSES)), "positive_class": None},  # now scores benign
        {"classes": [CLASSES[0], "Malignant"], "positive_class": "Malignant"},
        {"classes": [*CLASSES, "third"], "positive_class": None},
        {"label": "other"},
    ]
    for update in different:
        assert table_identity(_policy(**update).policy.data)["sha256"] != ours, update


def test_a_multiclass_table_is_scored_macro_whatever_its_positive_class() -> None:
    three = [*CLASSES, "third"]
    plain = table_identity(_policy(classes=three, positive_class=None).policy.data)
    named = table_identity(_policy(classes=three, positive_class="benign").policy.data)
    assert plain == named
