"""policy.toml: the one policy file, parsed strictly into frozen pydantic models."""

from __future__ import annotations

import ipaddress
import json
import os
import stat
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from urllib.parse import unquote, urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from pipeline.errors import PolicyError
from pipeline.fsio import sha256_bytes
from pipeline.pathrule import (
    MAX_PATH_CHARS,
    REPORTS_DIR_RULE,
    PathRule,
    file_type,
    path_problem,
    text_problem,
)
from pipeline.signing import Algorithm

SCHEMA_VERSION = 1

Metric = Literal["accuracy", "balanced_accuracy", "f1", "precision", "recall", "roc_auc"]
Estimator = Literal["logistic_regression", "random_forest", "hist_gradient_boosting"]
Dtype = Literal["float64", "int64", "string", "bool"]
Scalar = int | float | str | bool
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
# TOML arrays arrive as lists; a frozen policy keeps them as tuples.
StrList = Annotated[tuple[str, ...], Strict(False)]


def _class_text(value: Any) -> Any:
    """A class as the label column's text: a TOML integer ``0`` is the label ``"0"``.

    Labels are read and compared as text (a CSV cell is text), so an integer class is its
    decimal text. A float (``1.0`` could be the text "1" or "1.0") and a boolean are refused.
    """
    if isinstance(value, bool | float):
        kind = "boolean" if isinstance(value, bool) else "float"
        msg = (
            f"a class written as a string or an integer (labels are compared as the text of the "
            f"label column); found the {kind} {value!r}: write it as that text in quotes"
        )
        raise ValueError(msg)
    return str(value) if isinstance(value, int) else value


def _classes_text(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_class_text(v) for v in value]
    return value


# [data].classes and positive_class: strings, or integers taken as their decimal text.
ClassList = Annotated[
    tuple[str, ...],
    Strict(False),
    BeforeValidator(_classes_text, json_schema_input_type=list[str | int]),
]
ClassName = Annotated[str, BeforeValidator(_class_text, json_schema_input_type=str | int)]

# Bounds on the policy file itself: a policy is a few KiB of flat tables.
MAX_POLICY_BYTES = 1024 * 1024
MAX_DEPTH = 16
# [data].max_pages' default (pipeline/parquet_pages.py): what a caller without a policy bounds.
MAX_PAGES = 250_000


def _path_text(value: str) -> str:
    """Checks of a path value that need no file system (``pipeline.pathrule.text_problem``)."""
    problem = text_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _loopback_endpoint(value: str) -> str:
    """A network endpoint the policy may name: one on this machine (loopback) only.

    The policy is part of a pull request. A scheduler, Pushgateway or tracking server it names
    elsewhere would receive the gates' work and data (and a scheduler sends back results the
    gates trust), so remote endpoints come only from the environment CI controls:
    ``GATES_DASK_SCHEDULER``, ``GATES_PUSHGATEWAY_URL``, ``MLFLOW_TRACKING_URI``.
    """
    parts = urlsplit(value if "://" in value else f"tcp://{value}")
    host = parts.hostname or ""
    try:
        # No user part: clients disagree on which "@" ends it, so "a@evil:1@127.0.0.1" is out.
        loopback = "@" not in parts.netloc and (
            host == "localhost" or ipaddress.ip_address(host).is_loopback
        )
    except ValueError:
        loopback = False
    if not loopback:
        msg = (
            "an endpoint on loopback (127.0.0.1, ::1, localhost); name a remote one in the "
            "environment (GATES_DASK_SCHEDULER, GATES_PUSHGATEWAY_URL, MLFLOW_TRACKING_URI), "
            f"which CI controls, never in the policy; found host {host[:100]!r}"
        )
        raise ValueError(msg)
    return value


Endpoint = Annotated[
    str,
    Field(
        min_length=1, description="an endpoint on loopback; a remote one only from the environment"
    ),
    AfterValidator(_loopback_endpoint),
]


PathText = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_PATH_CHARS), AfterValidator(_path_text)
]


class _Strict(BaseModel):
    """Base of every policy table: unknown keys are errors, values keep their TOML types."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class RunPolicy(_Strict):
    """[run]: where a run writes and how it is seeded."""

    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 42
    reports_dir: Annotated[PathText, REPORTS_DIR_RULE] = "reports"
    artifacts_dir: Annotated[PathText, PathRule("dir", output=True)] = "artifacts"
    # Reuse an unchanged gate's earlier outcome (gates/cache.py); false runs every gate always.
    cache: bool = True
    # A dask.distributed scheduler on loopback ("tcp://127.0.0.1:8786") that runs the joblib
    # work of CV and the label check's out-of-fold fits; a remote one only through
    # GATES_DASK_SCHEDULER, which overrides it. None runs here.
    dask_scheduler: Endpoint | None = None
    # Train and CV over partitions of the data file (pipeline/outofcore.py) on that scheduler,
    # or on a local cluster this run starts: "auto" when the file is above
    # [data].stream_above_mb and the estimator is logistic_regression, "always", or "never".
    out_of_core: Annotated[
        Literal["auto", "always", "never"],
        Field(description="train and cv over partitions of the data file on a Dask cluster"),
    ] = "auto"
    # The local cluster the out-of-core path starts when no scheduler is named: its worker
    # processes (0 runs every task in the gate's own process) and each one's memory limit.
    local_workers: Annotated[int, Field(ge=0, le=64)] = 2
    worker_memory_mb: Annotated[int, Field(ge=256, le=1_048_576)] = 4096


class ColumnRule(_Strict):
    """[data.columns.NAME]: the contract of one feature column."""

    dtype: Dtype
    min: float | None = None
    max: float | None = None
    nullable: bool = False
    allowed: StrList | None = None
    unique: bool = False
    # Whether an attacker can change this feature of an input (the risk gate perturbs only
    # mutable features). Default true: a feature is assumed attacker-controlled unless the
    # contract says otherwise, which only ever makes the robustness figures more pessimistic.
    mutable: bool = True

    @model_validator(mode="after")
    def _bounds_ordered(self) -> Self:
        if self.min is not None and self.max is not None and self.min > self.max:
            msg = f"min ({self.min}) must not be greater than max ({self.max})"
            raise ValueError(msg)
        if self.allowed is not None and self.dtype != "string":
            msg = f"'allowed' applies to dtype 'string' only, found dtype '{self.dtype}'"
            raise ValueError(msg)
        if (self.min is not None or self.max is not None) and self.dtype in ("string", "bool"):
            msg = f"'min'/'max' apply to numeric dtypes only, found dtype '{self.dtype}'"
            raise ValueError(msg)
        return self


class DuplicatesCheck(_Strict):
    """[data.checks.duplicates]: exact and near duplicate rows, equal features with different labels."""

    enabled: bool = True
    max_exact_share: Fraction = 0.01
    max_conflict_share: Fraction = 0.0
    # Rows within [data.checks.bursts].radius x the median distance to the min_copies-th
    # nearest row of another row (a near copy: one ulp, a tiny move), exact copies included;
    # a batch's new rows also against the approved rows. Clean benchmark sets: 0 such rows.
    max_near_share: Fraction = 0.02


class DriftCheck(_Strict):
    """[data.checks.drift]: PSI per column and class-balance shift against the reference profile."""

    enabled: bool = True
    max_psi: Annotated[float, Field(gt=0.0)] = 0.25
    max_class_shift: Fraction = 0.10


class ClassMeansCheck(_Strict):
    """[data.checks.class_means]: each class's mean vector against the approved profile's.

    ``data approve`` records, per class, the rows, the mean and the covariance of the numeric
    features (only with at most ``max_features`` of them: d x d numbers per class). The gate
    tests each class's mean in the table against it: one-sample Hotelling T^2 with the
    approved covariance (F form, degrees of freedom of the approved rows) on at most
    ``dims_share`` x the class's approved rows of its leading principal axes, Bonferroni over
    the classes; it fails when the adjusted p < ``alpha`` (DATA043).
    """

    enabled: bool = True
    alpha: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.01
    max_features: Annotated[int, Field(ge=1, le=1000)] = 100
    dims_share: Annotated[float, Field(gt=0.0, le=1.0)] = 0.2


class RangeCheck(_Strict):
    """[data.checks.range]: values beyond the reference min/max by more than a margin."""

    enabled: bool = True
    margin: Annotated[float, Field(ge=0.0)] = 0.25
    max_share: Fraction = 0.0


class LabelCheck(_Strict):
    """[data.checks.labels]: cleanlab on out-of-fold probabilities, combined with kNN votes."""

    enabled: bool = True
    folds: Annotated[int, Field(ge=2, le=20)] = 5
    neighbors: Annotated[int, Field(ge=1, le=200)] = 10
    model_weight: Fraction = 0.5
    max_fit_rows: Annotated[int, Field(ge=100)] = 50_000
    max_index_rows: Annotated[int, Field(ge=100)] = 5_000
    max_share: Fraction = 0.05
    # Also flag a row when fewer than this share of its k neighbours carry its label and the
    # out-of-fold model gives its label less than ``knn_model_below`` (0 turns this off).
    knn_vote_below: Fraction = 0.5
    knn_model_below: Fraction = 0.5
    # A label witness adds the rows it flags beyond rate x n + witness_slack x sqrt(rate x n),
    # rate being its share on the approved snapshot (profile.label_rates).
    witness_slack: Annotated[float, Field(ge=0.0, le=10.0)] = 1.0
    # ...and when that witness's count is significant (one-sided binomial p < witness_alpha,
    # excess at least witness_min_excess x n) while cleanlab flags fewer than
    # witness_explained x its excess, every row it flags.
    witness_alpha: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.01
    witness_explained: Fraction = 0.5
    witness_min_excess: Fraction = 0.01
    # ...of those, only rows the out-of-fold model also doubts (p(label) below this).
    witness_model_below: Fraction = 0.9


class IsolationCheck(_Strict):
    """[data.checks.isolation]: IsolationForest anomaly score on standardized features."""

    enabled: bool = True
    trees: Annotated[int, Field(ge=10, le=1000)] = 100
    min_score: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.7
    max_share: Fraction = 0.02


class AssociationCheck(_Strict):
    """[data.checks.association]: feature-value combinations whose label share departs from the expected."""

    enabled: bool = True
    bins: Annotated[int, Field(ge=2, le=50)] = 10
    min_rows: Annotated[int, Field(ge=2)] = 5
    alpha: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.001
    min_gap: Fraction = 0.5
    # Or: of the cell's rows carrying the label, the share their other features do not
    # explain ((rows - expected) / rows) is at least this. A trigger relabels rows of other
    # classes, and the clean rows of those classes sharing its cell dilute the share gap, not
    # this share (``targeted._significant``).
    min_unexplained: Fraction = 0.8
    max_features: Annotated[int, Field(ge=1, le=500)] = 100
    max_refits: Annotated[int, Field(ge=1, le=100)] = 12
    # In a significant cell, flag the rows carrying its over-represented label whose other
    # features give that label less than this (the cell's clean rows of that class stay).
    member_below: Fraction = 0.75
    max_share: Fraction = 0.0
    # Raise each cell's expected count by the excess its neighbouring cells show on a line
    # out of it, as far as their rows support it (``targeted._neighbour_excess``): clean
    # classes drawn as clusters pass (docs/data-defence.md, Clean tables beyond the benchmark).
    neighbour_trend: bool = True


class BurstCheck(_Strict):
    """[data.checks.bursts]: one point copied many times with small jitter."""

    enabled: bool = True
    radius: Annotated[float, Field(gt=0.0, le=1.0)] = 0.1
    min_copies: Annotated[int, Field(ge=2)] = 5
    max_rows: Annotated[int, Field(ge=100)] = 20_000
    max_share: Fraction = 0.0


class BatchCheck(_Strict):
    """[data.checks.batch]: new rows screened against the approved (trusted) rows only."""

    enabled: bool = True
    min_approved: Annotated[int, Field(ge=10)] = 50
    # DATA109 too, against a trusted lock, when more than this share of the rows it approved
    # are gone from a table that also holds new rows: a changed approved row (one ulp) is a
    # new row, so changed rows would dilute the new ones the screen judges.
    max_dropped: Fraction = 0.2
    neighbors: Annotated[int, Field(ge=1, le=200)] = 10
    alpha: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.001
    min_excess: Fraction = 0.02
    min_flagged: Annotated[int, Field(ge=1)] = 5
    density_quantile: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.99
    # DATA101 reports (flags) only the rows beyond the quantile that Benjamini-Hochberg selects
    # at this false discovery rate over the new rows' conformal p-values; the verdict is the
    # count beyond the quantile (binomial test at ``alpha``).
    density_fdr: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.1
    # DATA100 reports its rows only when its count among the new rows no other batch check (nor
    # the range check) explains exceeds the approved rows' rate: one-sided Fisher p below this.
    # Otherwise only its rows among those explained rows. When that count is significant here
    # but would not fail the rule by itself, only the excess is reported: the most doubted rows,
    # as many as the new rows exceed the approved share at their doubt level. The verdict
    # counts every row.
    label_report_alpha: Annotated[float, Field(gt=0.0, le=1.0)] = 0.05
    min_mean_shift: Annotated[float, Field(ge=0.0)] = 0.25
    # Joint (Hotelling) test of each class's mean vector, on at most this share x the class's
    # rows of approved principal axes (DATA107); 0 turns it off.
    joint_dims_share: Fraction = 0.2
    holdout_fraction: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.3
    max_impact: Fraction = 0.02
    # DATA105 fails a drop over ``max_impact`` only when McNemar's exact one-sided p on the
    # holdout rows the two models disagree on is below this (the conventional 0.05: the size
    # condition already guards against small drops; ``alpha`` 0.001 let harmful batches pass).
    impact_alpha: Annotated[float, Field(gt=0.0, le=1.0)] = 0.05
    max_rows: Annotated[int, Field(ge=100)] = 50_000


class DataChecksPolicy(_Strict):
    """[data.checks]: the poisoning defences of the data gate, and quarantine mode."""

    max_file_mb: Annotated[float, Field(gt=0.0)] = 2048.0
    quarantine: bool = False
    duplicates: DuplicatesCheck = Field(default_factory=DuplicatesCheck)
    drift: DriftCheck = Field(default_factory=DriftCheck)
    class_means: ClassMeansCheck = Field(default_factory=ClassMeansCheck)
    range: RangeCheck = Field(default_factory=RangeCheck)
    labels: LabelCheck = Field(default_factory=LabelCheck)
    isolation: IsolationCheck = Field(default_factory=IsolationCheck)
    association: AssociationCheck = Field(default_factory=AssociationCheck)
    bursts: BurstCheck = Field(default_factory=BurstCheck)
    batch: BatchCheck = Field(default_factory=BatchCheck)

    @property
    def max_file_bytes(self) -> int:
        """``max_file_mb`` in bytes."""
        return int(self.max_file_mb * 1024 * 1024)


class DataPolicy(_Strict):
    """[data]: the data file, its lock, the label, and the contract of every column."""

    path: Annotated[PathText, PathRule("file")]
    lock: Annotated[PathText, PathRule("file")]
    checksums: Annotated[PathText | None, PathRule("file")] = None
    format: Literal["csv", "parquet"] | None = None
    label: str
    classes: Annotated[ClassList, Field(min_length=2)]
    positive_class: ClassName | None = None
    id_column: str | None = None
    min_rows: Annotated[int, Field(ge=1)] = 1
    max_rows: Annotated[int, Field(ge=1)] = 10_000_000
    # Page headers (and column chunks) a Parquet data file may hold: each is read before Arrow
    # decompresses anything (pipeline/parquet_pages.py), at the same cost whatever its page
    # holds (12-15 us). pyarrow's and pandas' defaults write 52 a column per million rows
    # (20,000 rows a page), 520 at the default max_rows: 250,000 fits 480 such columns, or
    # 100 written in row groups of 10,000 rows (2 pages each). The header bytes stepped
    # through are bounded by it too: max_pages x 128 (pipeline.parquet_pages.HEADER_BYTES_PER_PAGE).
    max_pages: Annotated[
        int,
        Field(
            ge=1,
            description="page headers and column chunks a Parquet data file may hold (and 128 header bytes a page stepped through; a string or run of fixed-width values passed in one step counts 8)",
        ),
    ] = MAX_PAGES
    holdout_fraction: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.2
    columns: Annotated[dict[str, ColumnRule], Field(min_length=1)]
    checks: DataChecksPolicy = Field(default_factory=DataChecksPolicy)
    # A data file larger than this is checked, profiled and screened in chunks of
    # ``stream_chunk_rows`` rows (pipeline/stream.py) instead of being loaded whole.
    stream_above_mb: Annotated[
        float,
        Field(
            gt=0.0,
            description="MiB above which the data file is checked and profiled in chunks",
        ),
    ] = 256.0
    stream_chunk_rows: Annotated[
        int,
        Field(ge=1, le=10_000_000, description="rows per chunk on the streaming path"),
    ] = 100_000
    # What one chunk may decode to in memory on the streaming path: a Parquet row group whose
    # footer says more per chunk (value counts x column widths) is refused before reading, and
    # a decoded batch larger than this (text read as a dictionary, measured before it is
    # expanded) is refused before it reaches pandas, and so is a row group whose pages (each
    # column's dictionary and largest page, read off the page headers) decompress to more:
    # Arrow decompresses a page whole. Rows are bounded by ``max_rows``, read off the footer
    # before the first batch.
    stream_chunk_mb: Annotated[
        float,
        Field(
            gt=0.0,
            description="MiB one chunk may decode to on the streaming path (Parquet)",
        ),
    ] = 256.0
    # Processes that score the chunks on this machine on the streaming path (a configured
    # Dask scheduler takes the chunks instead).
    stream_jobs: Annotated[
        int,
        Field(
            ge=1,
            le=256,
            description="local processes scoring every row's chunks on the streaming path",
        ),
    ] = 2

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if len(set(self.classes)) != len(self.classes):
            msg = f"classes must be distinct, found {list(self.classes)}"
            raise ValueError(msg)
        if self.positive_class is not None and self.positive_class not in self.classes:
            msg = (
                f"positive_class '{self.positive_class}' is not one of classes {list(self.classes)}"
            )
            raise ValueError(msg)
        if self.label in self.columns:
            msg = f"label '{self.label}' must not also be declared under [data.columns]"
            raise ValueError(msg)
        if self.id_column is not None and self.id_column not in self.columns:
            msg = f"id_column '{self.id_column}' is not declared under [data.columns]"
            raise ValueError(msg)
        if self.min_rows > self.max_rows:
            msg = f"min_rows ({self.min_rows}) must not be greater than max_rows ({self.max_rows})"
            raise ValueError(msg)
        return self

    @property
    def stream_chunk_bytes(self) -> int:
        """``stream_chunk_mb`` in bytes."""
        return int(self.stream_chunk_mb * 1024 * 1024)

    def streams(self, size: int) -> bool:
        """Whether a data file of ``size`` bytes takes the streaming path (over ``stream_above_mb``)."""
        return size > self.stream_above_mb * 1024 * 1024

    @property
    def feature_columns(self) -> tuple[str, ...]:
        """Columns the model learns from: every declared column but the id column."""
        return tuple(name for name in self.columns if name != self.id_column)

    @property
    def resolved_format(self) -> Literal["csv", "parquet"]:
        """The declared format, or the one the file's suffix names."""
        if self.format is not None:
            return self.format
        return "parquet" if self.path.lower().endswith((".parquet", ".pq")) else "csv"


class ModelPolicy(_Strict):
    """[model]: which estimator to train, and its parameters."""

    estimator: Estimator = "logistic_regression"
    scale: bool = True
    params: dict[str, Scalar] = Field(default_factory=dict)
    # Adversarial training (logistic regression): refit once on the training rows plus their
    # exact L-infinity worst-case points at this epsilon (standardized units, mutable features,
    # within the contract's ranges). None trains on the data as is.
    adversarial_epsilon: Annotated[float, Field(gt=0.0, le=10.0)] | None = None


class MetricThreshold(_Strict):
    """[cv.thresholds.METRIC]: the bars one metric must clear."""

    min_mean: Fraction | None = None
    min_fold: Fraction | None = None
    max_std: Fraction | None = None
    min_holdout: Fraction | None = None

    @model_validator(mode="after")
    def _something_checked(self) -> Self:
        if all(v is None for v in (self.min_mean, self.min_fold, self.max_std, self.min_holdout)):
            msg = "set at least one of min_mean, min_fold, max_std, min_holdout"
            raise ValueError(msg)
        if (
            self.min_mean is not None
            and self.min_fold is not None
            and self.min_fold > self.min_mean
        ):
            msg = f"min_fold ({self.min_fold}) must not be greater than min_mean ({self.min_mean})"
            raise ValueError(msg)
        return self


class CvPolicy(_Strict):
    """[cv]: stratified k-fold cross-validation and the thresholds per metric."""

    folds: Annotated[int, Field(ge=2, le=50)] = 5
    thresholds: Annotated[dict[Metric, MetricThreshold], Field(min_length=1)]


Epsilons = Annotated[tuple[Annotated[float, Field(gt=0.0, le=100.0)], ...], Strict(False)]
Fractions = Annotated[tuple[Fraction, ...], Strict(False)]


class RobustnessBar(_Strict):
    """[risk.robustness.linf] / [risk.robustness.l2]: epsilons and the accuracy each must keep."""

    # Perturbation budgets in standardized units (training-split standard deviations).
    epsilons: Annotated[Epsilons, Field(min_length=1, max_length=20)]
    # Minimum holdout accuracy under attack, one per epsilon.
    min_accuracy: Annotated[Fractions, Field(min_length=1, max_length=20)]

    @model_validator(mode="after")
    def _paired(self) -> Self:
        if len(self.epsilons) != len(self.min_accuracy):
            msg = (
                f"min_accuracy needs one value per epsilon: {len(self.epsilons)} epsilons, "
                f"found {len(self.min_accuracy)} values"
            )
            raise ValueError(msg)
        if len(set(self.epsilons)) != len(self.epsilons):
            msg = f"epsilons must be distinct, found {list(self.epsilons)}"
            raise ValueError(msg)
        return self


class RobustnessPolicy(_Strict):
    """[risk.robustness]: accuracy under bounded perturbations of the mutable features."""

    linf: RobustnessBar | None = None
    l2: RobustnessBar | None = None
    # Largest fall of robust accuracy below the champion's, at any norm and epsilon.
    max_drop: Fraction = 0.02
    # Budget of ART's HopSkipJump (models that are not linear): iterations, evaluations per
    # gradient estimate, and holdout rows attacked (a seeded sample above it).
    attack_max_iter: Annotated[int, Field(ge=1, le=1000)] = 10
    attack_max_eval: Annotated[int, Field(ge=10, le=100_000)] = 200
    attack_max_rows: Annotated[int, Field(ge=10, le=100_000)] = 200

    @model_validator(mode="after")
    def _some_norm(self) -> Self:
        if self.linf is None and self.l2 is None:
            msg = "set at least one of [risk.robustness.linf], [risk.robustness.l2]"
            raise ValueError(msg)
        return self


class PrivacyPolicy(_Strict):
    """[risk.privacy]: membership-inference exposure on the train/holdout split."""

    # Worst attack's AUC (0.5 = no better than a coin).
    max_auc: Annotated[float, Field(ge=0.5, le=1.0)] = 0.6
    # Worst attack's true-positive rate at 0.1% and at 1% false-positive rate.
    max_tpr_at_0_1pct_fpr: Fraction = 0.05
    max_tpr_at_1pct_fpr: Fraction = 0.1
    # Largest rise above the champion's, for the AUC and for each TPR.
    max_auc_rise: Fraction = 0.02
    max_tpr_rise: Fraction = 0.05


class RiskPolicy(_Strict):
    """[risk]: the model-risk gate: robustness and membership-inference privacy."""

    robustness: RobustnessPolicy
    privacy: PrivacyPolicy = Field(default_factory=PrivacyPolicy)


PathList = Annotated[tuple[PathText, ...], Strict(False)]
Level = Literal["low", "medium", "high"]
DEFAULT_CODE_PATHS = ("pipeline", "gates", "tests", "noxfile.py")
# Code that ships: scanned by bandit and the unsafe-deserialization check (tests use assert).
DEFAULT_SAST_PATHS = ("pipeline", "gates", "noxfile.py")


class LintPolicy(_Strict):
    """[lint]: what ruff checks; the rule set itself lives in pyproject.toml [tool.ruff]."""

    paths: Annotated[PathList, Field(min_length=1), PathRule("any")] = DEFAULT_CODE_PATHS


class SastPolicy(_Strict):
    """[sast]: bandit's scope and thresholds, its baseline, and the unsafe-load check."""

    paths: Annotated[PathList, Field(min_length=1), PathRule("any")] = DEFAULT_SAST_PATHS
    exclude: Annotated[PathList, PathRule("any")] = ()
    severity: Level = "low"
    confidence: Level = "low"
    baseline: Annotated[PathText | None, PathRule("file")] = None
    # The one module allowed to deserialize verified artifacts (it checks digests first).
    loaders: Annotated[PathList, PathRule("file")] = ("pipeline/persist.py",)


class AuditWaiver(_Strict):
    """[[audit.waivers]]: one accepted vulnerability, with a reason and an expiry date."""

    id: Annotated[str, Field(min_length=1)]
    reason: Annotated[str, Field(min_length=10)]
    expires: date


class AuditPolicy(_Strict):
    """[audit]: pip-audit over the hash-pinned lock, its vulnerability source and waivers."""

    requirements: Annotated[PathText, PathRule("file")] = "requirements.lock"
    # Further hash-pinned locks (e.g. requirements-extras.lock), each checked and audited
    # exactly like `requirements`.
    locks: Annotated[PathList, PathRule("file")] = ()
    # A local OSV advisory directory (PyPA advisory-database layout); GATES_ADVISORY_DB wins.
    # Used when it exists; otherwise the online service (or an error when required). It must
    # lie outside the project: a snapshot in the tree is the pull request's to write, and one
    # holding only the canary would call every other pin clean. Read, never written.
    advisory_db: Annotated[PathText | None, PathRule("dir", inside=False)] = None
    require_advisory_db: bool = False
    max_age_days: Annotated[int, Field(ge=1)] | None = None
    timeout_seconds: Annotated[int, Field(ge=1, le=3600)] = 600
    canary: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]+==[A-Za-z0-9.+!_-]+$")] = "joblib==1.1.0"
    canary_id: Annotated[str, Field(min_length=1)] = "PYSEC-2022-288"
    waivers: Annotated[tuple[AuditWaiver, ...], Strict(False)] = ()

    @model_validator(mode="after")
    def _unique_locks(self) -> Self:
        names = [self.requirements, *self.locks]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            msg = f"each lock may be named once (requirements and locks), found duplicates {duplicates}"
            raise ValueError(msg)
        return self

    @model_validator(mode="after")
    def _unique_waivers(self) -> Self:
        ids = [w.id for w in self.waivers]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            msg = f"each vulnerability may be waived once, found duplicates {duplicates}"
            raise ValueError(msg)
        return self


class Tolerance(_Strict):
    """[release.tolerance.METRIC]: how far below the champion a candidate may score.

    The allowed drop is ``max(absolute, relative * champion_score)``.
    """

    absolute: Fraction = 0.0
    relative: Fraction = 0.0


# The gates whose PASSED verdict a signed statement must record before ``python -m pipeline
# predict`` uses its model ([release].required_gates, by default): every gate the registry
# checks before the attesting gate. The pipeline imports no gate, so the list is written here;
# tests/gates/test_release.py fails when it differs from ``gates.release.required_gates()``.
RELEASED_GATES: tuple[str, ...] = ("lint", "sast", "audit", "data", "train", "cv", "risk", "serve")
GateName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,63}$")]


class ReleasePolicy(_Strict):
    """[release]: the signing keys, the trusted public key, the registry and the champion bar."""

    public_key: Annotated[PathText, PathRule("file")] = "keys/release.pub"
    private_key_env: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")] = "GATES_SIGNING_KEY"
    # A secret never lives in the tree (whatever is there is the pull request's): outside only.
    private_key_file: Annotated[PathText | None, PathRule("file", inside=False)] = None
    allow_dev_key: bool = True
    dev_key_dir: Annotated[PathText, PathRule("dir", output=True)] = ".keys"
    registry_dir: Annotated[PathText, PathRule("dir", output=True)] = "registry"
    tolerance: dict[Metric, Tolerance] = Field(default_factory=dict)
    # The gates ``python -m pipeline predict`` requires PASSED in the model's signed statement
    # (``python -m gates verify`` and ``deploy`` require every gate registered today).
    required_gates: Annotated[tuple[GateName, ...], Strict(False), Field(min_length=1)] = (
        RELEASED_GATES
    )

    @field_validator("required_gates")
    @classmethod
    def _distinct_gates(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        repeated = sorted({name for name in value if value.count(name) > 1})
        if repeated:
            msg = f"each gate once; {', '.join(repeated)} is listed more than once"
            raise ValueError(msg)
        return value

    # The signatures every envelope must carry, each verified (a hybrid: all of them). The
    # trusted key of ed25519 is public_key; of every other algorithm, public_keys[algorithm].
    signatures: Annotated[tuple[Algorithm, ...], Strict(False), Field(min_length=1)] = ("ed25519",)
    public_keys: Annotated[dict[Algorithm, PathText], PathRule("file")] = Field(
        default_factory=dict
    )

    @model_validator(mode="after")
    def _every_signature_has_a_key(self) -> Self:
        if len(set(self.signatures)) != len(self.signatures):
            msg = f"release.signatures names an algorithm twice: {list(self.signatures)}"
            raise ValueError(msg)
        missing = [a for a in self.signatures if a != "ed25519" and a not in self.public_keys]
        if missing:
            msg = (
                f"release.signatures requires {missing} but release.public_keys names no trusted "
                'key for it; expected e.g. public_keys = {"ml-dsa-65" = "keys/release-ml-dsa-65.pub"}'
            )
            raise ValueError(msg)
        return self

    def public_key_for(self, algorithm: Algorithm) -> str:
        """The policy path of the trusted key of ``algorithm``."""
        return self.public_key if algorithm == "ed25519" else self.public_keys[algorithm]


KeyName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_./:@-]{0,255}$")]
# Vault names go into the request path (/v1/<mount>/sign/<name>), where '..' segments resolve:
# a mount is slash-separated segments that each start with a letter or digit (never '.' or
# '..'), and a Transit key name has no slash at all (as Vault's own name rule).
VaultMount = Annotated[
    str,
    StringConstraints(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}(/[A-Za-z0-9][A-Za-z0-9_.-]{0,63}){0,7}$"
    ),
]
VaultKeyName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")]


# The algorithm each key service signs with (pipeline/keys/aws_kms.py, vault_transit.py; a test
# keeps the two in step): a provider must sign one [release].signatures requires.
PROVIDER_ALGORITHMS: dict[str, Algorithm] = {
    "aws-kms": "ecdsa-p256-sha256",
    "vault-transit": "ed25519",
}


class KeysPolicy(_Strict):
    """[keys]: where the release key and the data keys live (a key service, or local)."""

    # local: the PEM in $[release].private_key_env or [release].private_key_file, as before.
    # aws-kms: Sign with kms_key_id (ECDSA P-256; the release signature is ecdsa-p256-sha256).
    # vault-transit: sign with the Transit key vault_key_name (type ed25519), never leaving Vault.
    # Endpoints and credentials come from the environment only (AWS_* / VAULT_ADDR, VAULT_TOKEN).
    provider: Literal["local", "aws-kms", "vault-transit"] = "local"
    kms_key_id: KeyName | None = None
    kms_data_key_id: KeyName | None = None
    kms_region: KeyName = "us-east-1"
    vault_mount: VaultMount = "transit"
    vault_key_name: VaultKeyName | None = None
    vault_data_key_name: VaultKeyName | None = None

    @model_validator(mode="after")
    def _named_key(self) -> Self:
        if self.provider == "aws-kms" and not self.kms_key_id:
            msg = "keys.provider is 'aws-kms' but keys.kms_key_id is not set (expected a key id, ARN or alias/...)"
            raise ValueError(msg)
        if self.provider == "vault-transit" and not self.vault_key_name:
            msg = "keys.provider is 'vault-transit' but keys.vault_key_name is not set (expected a Transit key name)"
            raise ValueError(msg)
        return self


class EncryptionPolicy(_Strict):
    """[encryption]: envelope encryption at rest (AES-256-GCM) with data keys from [keys].

    With provider 'local' the key-encryption key is 32 random bytes, base64, in $key_env (a CI
    secret) or key_file (outside the project, mode 0600).
    """

    key_env: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")] = "GATES_DATA_KEY"
    key_file: Annotated[PathText | None, PathRule("file", inside=False)] = None
    # Every file of a registry version (model, manifest, envelope, data and policy copies).
    registry: bool = True
    # Every record of [feedback].history, one seal per line.
    history: bool = True
    # The working tree's [data].path stays plain (docs/keys.md says why); its registry copy is
    # encrypted with registry = true. true is refused rather than silently ignored.
    snapshots: bool = False

    @model_validator(mode="after")
    def _snapshots_stay_plain(self) -> Self:
        if self.snapshots:
            msg = (
                "encryption.snapshots = false (or no such key): encrypting the [data].path "
                "snapshot in the working tree is not supported; it stays plain, and its copy in "
                "every registry version is encrypted with encryption.registry = true (docs/keys.md)"
            )
            raise ValueError(msg)
        return self


class FeedbackPolicy(_Strict):
    """[feedback]: run history, trends, production-feedback quarantine, metrics and MLflow."""

    history: Annotated[PathText, PathRule("file")] = "history/runs.jsonl"
    quarantine_dir: Annotated[PathText, PathRule("dir", output=True)] = "data/quarantine"
    champion: Annotated[PathText, PathRule("file")] = "registry/champion"
    prediction_column: str = "prediction"
    trend_window: Annotated[int, Field(ge=1, le=1000)] = 5
    max_metric_drop: Fraction = 0.02
    max_flag_rate_rise: Fraction = 0.05
    fail_on_regression: bool = False
    fail_on_flag_rise: bool = False
    max_batch_rows: Annotated[int, Field(ge=1)] = 100_000
    max_label_disagreement: Fraction = 0.5
    outlier_z: Annotated[float, Field(gt=0.0)] = 8.0
    pushgateway_url: Endpoint | None = None  # remote: GATES_PUSHGATEWAY_URL
    pushgateway_job: str = "secure_ml_pipeline"
    # A local store (a path, file: or sqlite: URI) must lie in the project; MLFLOW_TRACKING_URI wins.
    mlflow_tracking_uri: Annotated[
        Annotated[str, StringConstraints(min_length=1, max_length=MAX_PATH_CHARS)] | None,
        PathRule("any", uri=True),
    ] = None
    mlflow_experiment: str = "secure-ml-pipeline"
    mlflow_artifact_location: Annotated[PathText | None, PathRule("dir", output=True)] = None


RoleName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")]


class RolesPolicy(_Strict):
    """[roles]: who may promote a model (release managers) and approve data, by name and
    committed public key.

    Empty (the default): deploy needs no promoter signature, as before. Set: deploy signs the
    promotion with the key in $promoter_key_env, the registry refuses one no listed promoter
    signed, and the champion is served only with a verified promotion in the audit log.
    """

    promoters: Annotated[dict[RoleName, PathText], PathRule("file")] = Field(default_factory=dict)
    promoter_key_env: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")] = "GATES_PROMOTER_KEY"
    stage: RoleName = "production"
    # Data approvers (name -> committed public key): when set, the data lock needs one's
    # signature (``python -m gates data approve`` signs with the key in $approver_key_env) and
    # the data gate refuses a lock without it. In CI, $GATES_BASE_POLICY names the base
    # branch's policy, whose approvers replace these (pipeline.approval).
    approvers: Annotated[dict[RoleName, PathText], PathRule("file")] = Field(default_factory=dict)
    approver_key_env: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")] = "GATES_APPROVER_KEY"


class ServeRateLimit(_Strict):
    """[serve.rate_limit]: requests and rows each client may send per window, and the in-flight
    caps."""

    # Per client (the API key's name when auth is on, else the peer address: an IPv6 address
    # by its /64, as one host gets a whole /64), a moving window.
    requests: Annotated[int, Field(ge=1, le=1_000_000)] = 100
    window_seconds: Annotated[int, Field(ge=1, le=86_400)] = 1
    # Instances (rows) per client per the same window, charged once a request's rows are
    # counted (after the parse, before the contract check and the model): a row, not a request,
    # is what holds the event loop. A body is refused unread when what the client has left is
    # below the rows its bytes could hold (at most max_instances). 10 000: the request limit at 100-row batches, or ten
    # batches of max_instances a second (docs/serving.md, "Abuse limits and auth").
    rows: Annotated[int, Field(ge=1, le=100_000_000)] = 10_000
    # Requests being handled at once, all clients together; more are refused with 503.
    max_in_flight: Annotated[int, Field(ge=1, le=100_000)] = 64
    # Requests one client may have in flight at once (429 above): bodies that never finish,
    # one per slot, would otherwise let one address hold the whole cap above.
    max_in_flight_per_client: Annotated[int, Field(ge=1, le=100_000)] = 8
    # Body bytes one client may have in flight at once (429 above), counted from Content-Length
    # before the body is read, else as it arrives: a batch's parse, checks and model hold the
    # event loop in proportion to its bytes, so eight max-size batches in flight queued ahead
    # of every other client's single row. A request alone is always admitted (up to
    # [serve].max_body_bytes); beside the client's others the total stays within this.
    max_body_bytes_in_flight_per_client: Annotated[int, Field(ge=1024, le=2**30)] = 2**20
    # Body bytes all clients together may have in flight (503 above, Retry-After: 1): the cap
    # above is per client, so many keys or addresses with one max-size batch each still queued
    # that many parses ahead of every single row. A request alone (nothing else holding bytes)
    # is always admitted. 4 MiB: four max_body_bytes batches, about 45 ms of parsing.
    max_body_bytes_in_flight: Annotated[int, Field(ge=1024, le=2**40)] = 4 * 2**20


# Rows the per-client drift windows may hold together ([serve.monitor]): one full window's.
CLIENT_WINDOW_ROWS = 1_000_000


class ServeMonitor(_Strict):
    """[serve.monitor]: input drift over a sliding window and the anomaly score of live rows."""

    drift_window: Annotated[int, Field(ge=10, le=1_000_000)] = 1000
    # Clients (API key names, else addresses) with a drift window of their own, the first seen;
    # later ones share one (label "other"): memory and a scrape's work stay bounded.
    drift_clients: Annotated[int, Field(ge=1, le=256)] = 16
    isolation_trees: Annotated[int, Field(ge=10, le=1000)] = 100

    @model_validator(mode="after")
    def _client_windows_bounded(self) -> ServeMonitor:
        # Each client window holds up to drift_window rows: together at most what one window
        # may hold (red team 15: 1,000,000 rows x 16 clients, about 3.8 GB of 30 float
        # columns, which any 16 addresses could fill with auth off).
        if self.drift_window * self.drift_clients > CLIENT_WINDOW_ROWS:
            msg = (
                f"drift_window x drift_clients = {self.drift_window} x {self.drift_clients} = "
                f"{self.drift_window * self.drift_clients} rows in the clients' own windows, "
                f"expected at most {CLIENT_WINDOW_ROWS:,} (lower drift_clients or drift_window)"
            )
            raise ValueError(msg)
        return self


class ServeSpool(_Strict):
    """[serve.spool]: validated inputs and predictions kept for labelling (bounded, rotated)."""

    enabled: bool = False
    dir: Annotated[PathText, PathRule("dir", output=True)] = "serve-spool"
    max_mb: Annotated[float, Field(gt=0.0, le=1024.0)] = 16.0
    files: Annotated[int, Field(ge=1, le=100)] = 5


K8sName = Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]


class ServeDeploy(_Strict):
    """[serve.deploy]: the container image and Kubernetes manifests `python -m gates ci deploy` writes."""

    # Pinned by digest: a tag can be moved under us. Seen pinned to this digest in two unrelated
    # public projects; no registry can be asked from here, so Dependabot's docker updates or a
    # release manager refresh it (a pull request that changes it changes the signed policy).
    base_image: Annotated[
        str, Field(pattern=r"^[a-z0-9][a-z0-9./_-]*(:[A-Za-z0-9._-]{1,128})?@sha256:[0-9a-f]{64}$")
    ] = "python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7"
    # The image the Deployment runs (what CI pushes the built Dockerfile as).
    image: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9./_:@-]{0,254}$")] = "gates-serve:latest"
    namespace: K8sName = "gates"
    uid: Annotated[int, Field(ge=1000, le=2_147_483_647)] = 10001
    min_replicas: Annotated[int, Field(ge=2, le=1000)] = 2
    max_replicas: Annotated[int, Field(ge=2, le=1000)] = 6
    target_cpu_percent: Annotated[int, Field(ge=10, le=100)] = 70
    cpu_request: Annotated[str, Field(pattern=r"^[0-9]+(\.[0-9]+)?m?$")] = "250m"
    cpu_limit: Annotated[str, Field(pattern=r"^[0-9]+(\.[0-9]+)?m?$")] = "1"
    memory_request: Annotated[str, Field(pattern=r"^[0-9]+(Ki|Mi|Gi)$")] = "512Mi"
    memory_limit: Annotated[str, Field(pattern=r"^[0-9]+(Ki|Mi|Gi)$")] = "1Gi"
    # Namespaces (by their kubernetes.io/metadata.name) whose pods may call the service.
    allowed_namespaces: Annotated[tuple[K8sName, ...], Strict(False), Field(min_length=1)] = (
        "ingress",
    )
    # The Deployment mounts the operator's Secret <name>-metrics-keys read-only and points
    # $GATES_SERVE_METRICS_KEYS at its file: /metrics then answers that token from any
    # address (a scraper off the pod). False: /metrics answers only the pod's loopback.
    metrics_token: bool = False

    @model_validator(mode="after")
    def _replica_range(self) -> Self:
        if self.max_replicas < self.min_replicas:
            msg = (
                f"serve.deploy.max_replicas ({self.max_replicas}) is below "
                f"serve.deploy.min_replicas ({self.min_replicas})"
            )
            raise ValueError(msg)
        return self


class ServeDast(_Strict):
    """[serve.dast]: dynamic scans of the running service in the generated CI files."""

    # An OWASP ZAP API scan of the verified service on loopback in each CI file's deploy job,
    # after the release signature and before the promotion; any WARN or FAIL alert stops it.
    zap: bool = False
    # Pinned by digest (a tag can be moved). Seen pinned to this digest in several unrelated
    # public projects; no registry can be asked from here, so a release manager refreshes it.
    zap_image: Annotated[
        str, Field(pattern=r"^[a-z0-9][a-z0-9./_-]*(:[A-Za-z0-9._-]{1,128})?@sha256:[0-9a-f]{64}$")
    ] = (
        "ghcr.io/zaproxy/zaproxy:stable"
        "@sha256:8d387b1a63e3425beef4846e39719f5af2a787753af2d8b6558c6257d7a577a2"
    )


class ServePolicy(_Strict):
    """[serve]: the inference service (python -m gates serve) and the serve gate's bars."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")] = "model"
    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    max_body_bytes: Annotated[int, Field(ge=1024, le=64 * 2**20)] = 2**20
    max_instances: Annotated[int, Field(ge=1, le=100_000)] = 1000
    max_json_depth: Annotated[int, Field(ge=3, le=64)] = 8
    # A request body not complete within this many seconds is refused (408): slow clients
    # cannot hold the in-flight slots.
    read_timeout_seconds: Annotated[float, Field(gt=0.0, le=600.0)] = 10.0
    # Labels only by default: probabilities help membership inference.
    return_probabilities: bool = False
    # Feature values in the request log lines (never by default).
    log_features: bool = False
    # Clients present an API key whose SHA-256 is listed in the file this env var names.
    require_api_key: bool = False
    # Never another of the gates' own variables (``GATES_*``): ``GATES_SERVE_METRICS_KEYS``
    # made the API-key file the metrics-token file, so every API-key holder read /metrics
    # (red team 15, reversing row 86); ``GATES_REGISTRY_HEAD`` and the rest mean something else.
    api_keys_env: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")] = "GATES_SERVE_API_KEYS"

    @field_validator("api_keys_env")
    @classmethod
    def _not_the_gates_own(cls, value: str) -> str:
        if value.startswith("GATES_") and value != "GATES_SERVE_API_KEYS":
            msg = (
                f"{value!r} is one of the gates' own variables (GATES_*; e.g. "
                "GATES_SERVE_METRICS_KEYS names the metrics-token file): expected "
                "GATES_SERVE_API_KEYS or a name outside GATES_"
            )
            raise ValueError(msg)
        return value

    # The serve gate: nearest-rank p99 latency of up to 200 single-row requests on loopback
    # (gates/serve.py; at most 2 of 200 over it).
    max_p99_ms: Annotated[float, Field(gt=0.0, le=60_000.0)] = 2000.0
    rate_limit: ServeRateLimit = Field(default_factory=ServeRateLimit)
    monitor: ServeMonitor = Field(default_factory=ServeMonitor)
    spool: ServeSpool = Field(default_factory=ServeSpool)
    deploy: ServeDeploy = Field(default_factory=ServeDeploy)
    dast: ServeDast = Field(default_factory=ServeDast)

    @model_validator(mode="after")
    def _a_full_batch_fits_the_row_budget(self) -> Self:
        if self.rate_limit.rows < self.max_instances:
            msg = (
                f"serve.rate_limit.rows ({self.rate_limit.rows}) is below serve.max_instances "
                f"({self.max_instances}): a request of max_instances rows could never be served"
            )
            raise ValueError(msg)
        return self


class Policy(_Strict):
    """The whole of policy.toml."""

    schema_version: Literal[1]
    run: RunPolicy = Field(default_factory=RunPolicy)
    data: DataPolicy
    model: ModelPolicy = Field(default_factory=ModelPolicy)
    cv: CvPolicy
    risk: RiskPolicy | None = None
    lint: LintPolicy = Field(default_factory=LintPolicy)
    sast: SastPolicy = Field(default_factory=SastPolicy)
    audit: AuditPolicy = Field(default_factory=AuditPolicy)
    release: ReleasePolicy = Field(default_factory=ReleasePolicy)
    feedback: FeedbackPolicy = Field(default_factory=FeedbackPolicy)
    keys: KeysPolicy = Field(default_factory=KeysPolicy)
    roles: RolesPolicy = Field(default_factory=RolesPolicy)
    encryption: EncryptionPolicy | None = None
    serve: ServePolicy = Field(default_factory=ServePolicy)

    @model_validator(mode="after")
    def _adversarial_training_supported(self) -> Self:
        if self.model.adversarial_epsilon is not None and (
            self.model.estimator != "logistic_regression" or len(self.data.classes) != 2
        ):
            msg = (
                "model.adversarial_epsilon: exact worst-case augmentation needs a binary "
                f"logistic_regression; found estimator '{self.model.estimator}' with "
                f"{len(self.data.classes)} classes"
            )
            raise ValueError(msg)
        return self

    @model_validator(mode="after")
    def _provider_signs_a_required_algorithm(self) -> Self:
        signs = PROVIDER_ALGORITHMS.get(self.keys.provider)
        if signs is not None and signs not in self.release.signatures:
            where = "[release].public_key" if signs == "ed25519" else "[release].public_keys"
            msg = (
                f"keys.provider '{self.keys.provider}' signs {signs}, which "
                f"[release].signatures {list(self.release.signatures)} does not list: expected "
                f'signatures = ["{signs}"] (or a hybrid naming it) and its committed public key '
                f'in {where} (docs/keys.md "Adopting a key service")'
            )
            raise ValueError(msg)
        return self

    @model_validator(mode="after")
    def _champion_metrics_scored(self) -> Self:
        unscored = sorted(set(self.release.tolerance) - set(self.cv.thresholds))
        if unscored:
            msg = (
                f"release.tolerance names {unscored}, which [cv.thresholds] does not score; "
                f"expected a subset of {sorted(self.cv.thresholds)}"
            )
            raise ValueError(msg)
        return self


@dataclass(frozen=True)
class LoadedPolicy:
    """A parsed policy together with the file it came from and that file's digest."""

    path: Path
    policy: Policy
    sha256: str

    @property
    def base_dir(self) -> Path:
        """The folder relative paths in the policy are resolved against."""
        return self.path.parent

    def resolve(self, relative: str) -> Path:
        """Resolve a path named in the policy against the policy file's folder."""
        candidate = Path(relative)
        return candidate if candidate.is_absolute() else self.base_dir / candidate


def load_policy(path: Path) -> LoadedPolicy:
    """Read and validate ``path``; any problem is one PolicyError naming the file and key.

    Beyond the schema, every path the policy names is checked against the file system
    (``check_policy_paths``): a policy is input a pull request controls, so it must not be able
    to point a gate's reads or writes outside the project, nor hang or crash the loader.
    """
    raw = _read_policy(path)
    document = _parse(path, raw)
    try:
        policy = Policy.model_validate(document)
    except ValidationError as err:
        raise PolicyError(format_validation_error(path, err)) from None
    loaded = LoadedPolicy(path=path, policy=policy, sha256=sha256_bytes(raw))
    problems = check_policy_paths(loaded)
    if problems:
        raise PolicyError("\n".join(problems))
    return loaded


def _read_policy(path: Path) -> bytes:
    """The policy's bytes: a regular file of at most MAX_POLICY_BYTES in its own folder."""
    try:
        real, folder = path.resolve(), path.absolute().parent.resolve()
    except (OSError, RuntimeError) as err:
        msg = f"{path}: cannot resolve the policy file: {err}"
        raise PolicyError(msg) from None
    if not real.is_relative_to(folder):
        msg = (
            f"{path}: expected the policy file in its project folder {folder}; "
            f"found a symlink to {real}"
        )
        raise PolicyError(msg)
    try:
        # O_NONBLOCK: a FIFO planted as policy.toml must not hang the loader; it is refused below.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        msg = f"{path}: policy file not found (pass --policy PATH or create policy.toml)"
        raise PolicyError(msg) from None
    except OSError as err:
        msg = f"{path}: cannot read the policy file: {err.strerror}"
        raise PolicyError(msg) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            msg = f"{path}: expected the policy to be a regular file; found {file_type(info)}"
            raise PolicyError(msg)
        if info.st_size > MAX_POLICY_BYTES:
            msg = f"{path}: expected at most {MAX_POLICY_BYTES} bytes; found {info.st_size}"
            raise PolicyError(msg)
        chunks, size = [], 0
        while size <= MAX_POLICY_BYTES and (chunk := os.read(fd, 65536)):
            chunks.append(chunk)
            size += len(chunk)
    except OSError as err:
        msg = f"{path}: cannot read the policy file: {err.strerror}"
        raise PolicyError(msg) from None
    finally:
        os.close(fd)
    if size > MAX_POLICY_BYTES:
        msg = f"{path}: expected at most {MAX_POLICY_BYTES} bytes; found more (it grew while read)"
        raise PolicyError(msg)
    return b"".join(chunks)


def _parse(path: Path, raw: bytes) -> dict[str, Any]:
    """TOML to a document no deeper than MAX_DEPTH; every failure is one PolicyError."""
    if raw.startswith(b"\xef\xbb\xbf"):
        msg = f"{path}: expected UTF-8 TOML without a byte-order mark; found one at byte 0"
        raise PolicyError(msg)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        msg = f"{path}: expected UTF-8 TOML, found bytes that are not UTF-8 at line {line}"
        raise PolicyError(msg) from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        hint = _duplicate_hint(text) if "overwrite" in str(err) else ""
        msg = f"{path}: not valid TOML: {err}{hint}"
        raise PolicyError(msg) from None
    except RecursionError:
        msg = (
            f"{path}: {_deep_line(text)}expected at most {MAX_DEPTH} levels of nested arrays "
            "and tables; found nesting too deep to parse"
        )
        raise PolicyError(msg) from None
    except ValueError as err:  # e.g. an integer of more digits than Python converts
        msg = f"{path}: not valid TOML: {err}"
        raise PolicyError(msg) from None
    if not document:
        msg = f"{path}: the policy is empty; expected a TOML document with schema_version = 1"
        raise PolicyError(msg)
    deep = _too_deep(document)
    if deep is not None:
        msg = (
            f"{path}: {deep}: expected at most {MAX_DEPTH} levels of nested arrays and tables; "
            "found deeper nesting"
        )
        raise PolicyError(msg)
    return document


def _too_deep(document: dict[str, Any]) -> str | None:
    """The key of the first value nested deeper than MAX_DEPTH, or None (walked without recursion)."""
    stack: list[tuple[Any, str, int]] = [(document, "", 0)]
    while stack:
        node, key, depth = stack.pop()
        if depth > MAX_DEPTH:
            return key or "(top level)"
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for name, value in items:
            if isinstance(value, dict | list):
                stack.append((value, f"{key}.{name}" if key else str(name), depth + 1))
    return None


def _deep_line(text: str) -> str:
    """``line N (key K): `` where the nesting first gets too deep, by a crude bracket count."""
    for number, line in enumerate(text.splitlines(), start=1):
        if line.count("[") + line.count("{") > MAX_DEPTH:
            key = line.split("=", 1)[0].strip() if "=" in line else ""
            return f"line {number}" + (f" (key {key[:80]!r})" if key else "") + ": "
    return ""


def _duplicate_hint(text: str) -> str:
    """Name a key set twice in one table (tomllib only says 'Cannot overwrite a value')."""
    table, seen = "", dict[str, int]()
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("["):
            table = stripped.strip("[] \t").split("]", 1)[0].strip()
            # Each [[array]] element is a new table; a [table] may be declared only once.
            seen = {k: v for k, v in seen.items() if not k.startswith(f"{table}.")}
            continue
        if "=" not in stripped or stripped.startswith("#"):
            continue
        name = stripped.split("=", 1)[0].strip().strip("\"'")
        dotted = f"{table}.{name}" if table else name
        if dotted in seen:
            return f"; key '{dotted}' is set twice (lines {seen[dotted]} and {number})"
        seen[dotted] = number
    return ""


def check_policy_paths(loaded: LoadedPolicy) -> list[str]:
    """One line per path key that breaks its PathRule, naming the file, the key and the path.

    Every path is resolved against the project folder with every symlink followed. A key that
    must lie inside (all but ``[audit].advisory_db`` and ``[release].private_key_file``) may
    not resolve outside it; those two may not resolve inside it, not even through another
    name of the same folder (a bind mount: compared by device and inode). A path that exists
    must be what its key names (a file, a folder), never a FIFO, socket or device.
    """
    try:
        root = loaded.base_dir.resolve()
        st = os.stat(root)
    except (OSError, RuntimeError) as err:
        return [f"{loaded.path}: cannot resolve the project folder {loaded.base_dir}: {err}"]
    root_id = (st.st_dev, st.st_ino)
    problems = []
    for key, rule, value in _path_values(loaded.policy):
        text = _local_path(value) if rule.uri else value
        if text is None:  # a URI of a server: like every endpoint in the policy, loopback only
            try:
                _loopback_endpoint(value)
            except ValueError as err:
                problems.append(f"{loaded.path}: {key}: expected {err}")
            continue
        problem = path_problem(root, root_id, text, rule)
        if problem is not None:
            problems.append(
                f"{loaded.path}: {key}: expected {rule.describe()}; found {value[:200]!r}, {problem}"
            )
    return problems


def _path_values(model: BaseModel, prefix: str = "") -> Iterator[tuple[str, PathRule, str]]:
    """``(dotted key, rule, value)`` of every path value set in ``model`` and its tables."""
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        key = f"{prefix}{name}"
        rule = next((m for m in field.metadata if isinstance(m, PathRule)), None)
        if rule is not None:
            if isinstance(value, str):
                yield key, rule, value
            elif isinstance(value, tuple):
                yield from ((f"{key}.{i}", rule, str(v)) for i, v in enumerate(value))
            elif isinstance(value, dict):
                yield from ((f"{key}.{k}", rule, str(v)) for k, v in value.items())
        elif isinstance(value, BaseModel):
            yield from _path_values(value, f"{key}.")


def _local_path(uri: str) -> str | None:
    """The local path a tracking URI writes to (no scheme, ``file:``, ``sqlite:``), else None.

    A database scheme may name its driver (``sqlite+pysqlite:``), as SQLAlchemy and MLflow allow.
    """
    parts = urlsplit(uri)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme == "" or (len(scheme) == 1 and uri[1:2] == ":"):
        return uri
    if scheme == "file":
        return unquote(parts.path) or "/"
    if scheme == "sqlite":
        # sqlite:///relative.db, sqlite:////absolute.db; sqlite:// alone is in memory.
        rest = uri.split("://", 1)[1] if "://" in uri else ""
        path = rest[1:] if rest.startswith("/") else rest
        return unquote(path.split("?", 1)[0]) or None
    return None


def format_validation_error(path: Path, err: ValidationError) -> str:
    """Turn pydantic's errors into lines of 'file: key: expected ..., found ...'."""
    lines = []
    for item in err.errors(include_url=False):
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        found = _describe(item.get("input"))
        if item["type"] == "extra_forbidden":
            allowed = _allowed_keys(item["loc"][:-1])
            hint = f"; expected one of: {', '.join(allowed)}" if allowed else ""
            lines.append(f"{path}: {key}: unknown key{hint}")
        elif item["type"] == "missing":
            lines.append(f"{path}: {key}: required key is missing")
        elif item["type"] == "string_too_long" and isinstance(item.get("input"), str):
            limit = (item.get("ctx") or {}).get("max_length")
            lines.append(
                f"{path}: {key}: expected at most {limit} characters; "
                f"found a string of {len(item['input'])} characters"
            )
        elif not item["loc"] and item["type"] == "value_error":
            # A check across tables: its message names the keys; "found a table" says nothing.
            lines.append(f"{path}: {item['msg'].removeprefix('Value error, ')}")
        else:
            message = item["msg"].removeprefix("Value error, ")
            lines.append(f"{path}: {key}: expected {_lower_first(message)}; found {found}")
    return "\n".join(lines)


def policy_json_schema() -> dict[str, Any]:
    """The JSON Schema of policy.toml, as committed in policy.schema.json."""
    schema = Policy.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "policy.toml"
    return schema


def render_policy_schema() -> str:
    """The exact text of policy.schema.json."""
    return json.dumps(policy_json_schema(), indent=2, sort_keys=True) + "\n"


def _allowed_keys(loc: tuple[int | str, ...]) -> list[str]:
    """The keys allowed in the table at ``loc``, read from the JSON Schema of the models."""
    schema = Policy.model_json_schema()
    node: dict[str, Any] = schema
    for part in loc:
        node = _deref(node, schema)
        properties = node.get("properties", {})
        if str(part) in properties:
            node = properties[str(part)]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            return []
    return sorted(_deref(node, schema).get("properties", {}))


def _deref(node: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Follow ``$ref`` and pick the table branch of an optional (``anyOf``) node."""
    for option in node.get("anyOf", []):
        if "$ref" in option or "properties" in option:
            node = option
            break
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return dict(schema["$defs"][ref.removeprefix("#/$defs/")])
    return node


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list | tuple):
        return f"a list {json.dumps(list(value), default=str)[:80]}"
    return f"{type(value).__name__} {value!r}"[:120]


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]
