"""Bare-script baseline: 5-fold stratified CV and holdout scores on the four policy metrics.

The same work as the ``cv`` gate without any gate; the ``evaluate`` stage of the DVC pipeline.
"""

import json
import sys

import pandas as pd
import skops.io as sio
from sklearn.base import clone
from sklearn.metrics import f1_score, get_scorer, make_scorer
from sklearn.model_selection import StratifiedKFold, cross_validate, train_test_split

data_path, model_path, scores_path = sys.argv[1], sys.argv[2], sys.argv[3]
frame = pd.read_csv(data_path)
labels = frame.pop("diagnosis")
features = frame.drop(columns=["id"])
x_train, x_hold, y_train, y_hold = train_test_split(
    features, labels, test_size=0.2, stratify=labels, random_state=42
)
model = sio.load(model_path, trusted=[])
scorers = {
    "accuracy": get_scorer("accuracy"),
    "balanced_accuracy": get_scorer("balanced_accuracy"),
    "f1": make_scorer(f1_score, pos_label="malignant", zero_division=0.0),
    "roc_auc": get_scorer("roc_auc"),
}
folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=42)
result = cross_validate(clone(model), x_train, y_train, cv=folds, scoring=scorers)
scores = {
    name: {
        "mean": float(result[f"test_{name}"].mean()),
        "holdout": float(scorer(model, x_hold, y_hold)),
    }
    for name, scorer in scorers.items()
}
with open(scores_path, "w", encoding="utf-8") as handle:
    json.dump(scores, handle, indent=2)
