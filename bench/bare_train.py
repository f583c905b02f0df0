"""Bare-script baseline: load the CSV, split, fit scaler + logistic regression, save with skops.

The same work as the ``data`` + ``train`` gates without any gate, policy or report; used by
bench/run.py directly and as the ``train`` stage of the equivalent DVC pipeline.
"""

import sys

import pandas as pd
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

data_path, model_path = sys.argv[1], sys.argv[2]
frame = pd.read_csv(data_path)
labels = frame.pop("diagnosis")
features = frame.drop(columns=["id"])
x_train, _, y_train, _ = train_test_split(
    features, labels, test_size=0.2, stratify=labels, random_state=42
)
model = Pipeline(
    [("scale", StandardScaler()), ("classifier", LogisticRegression(C=1.0, max_iter=1000))]
)
model.fit(x_train, y_train)
sio.dump(model, model_path)
