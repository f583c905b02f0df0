"""policy.toml: the one policy file, parsed strictly into frozen pydantic models."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError, model_validator

from pipeline.errors import PolicyError
from pipeline.fsio import sha256_bytes

SCHEMA_VERSION = 1

Metric = Literal["accuracy", "balanced_accuracy", "f1", "precision", "recall", "roc_auc"]
Estimator = Literal["logistic_regression", "random_forest", "hist_gradient_boosting"]
Dtype = Literal["float64", "int64", "string", "bool"]
Scalar = int | float | str | bool
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
# TOML arrays arrive as lists; a frozen policy keeps them as tuples.
StrList = Annotated[tuple[str, ...], Strict(False)]


class _Strict(BaseModel):
    """Base of every policy table: unknown keys are errors, values keep their TOML types."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class RunPolicy(_Strict):
    """[run]: where a run writes and how it is seeded."""

    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 42
    reports_dir: str = "reports"
    artifacts_dir: str = "artifacts"
    # Reuse an unchanged gate's earlier outcome (gates/cache.py); false runs every gate always.
    cache: bool = True
    # A dask.distributed scheduler ("tcp://host:8786") that runs the joblib work of CV and the
    # label check's out-of-fold fits; GATES_DASK_SCHEDULER overrides it. None runs here.
    dask_scheduler: Annotated[str, Field(min_length=1)] | None = None


class ColumnRule(_Strict):
    """[data.columns.NAME]: the contract of one feature column."""

    dtype: Dtype
    min: float | None = None
    max: float | None = None
    nullable: bool = False
    allowed: StrList | None = None
    unique: bool = False

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
    """[data.checks.duplicates]: exact duplicate rows, and equal features with different labels."""

    enabled: bool = True
    max_exact_share: Fraction = 0.01
    max_conflict_share: Fraction = 0.0


class DriftCheck(_Strict):
    """[data.checks.drift]: PSI per column and class-balance shift against the reference profile."""

    enabled: bool = True
    max_psi: Annotated[float, Field(gt=0.0)] = 0.25
    max_class_shift: Fraction = 0.10


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
    max_features: Annotated[int, Field(ge=1, le=500)] = 100
    max_refits: Annotated[int, Field(ge=1, le=100)] = 12
    max_share: Fraction = 0.0


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
    neighbors: Annotated[int, Field(ge=1, le=200)] = 10
    alpha: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.001
    min_excess: Fraction = 0.02
    min_flagged: Annotated[int, Field(ge=1)] = 5
    density_quantile: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.99
    min_mean_shift: Annotated[float, Field(ge=0.0)] = 0.25
    holdout_fraction: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.3
    max_impact: Fraction = 0.02
    max_rows: Annotated[int, Field(ge=100)] = 50_000


class DataChecksPolicy(_Strict):
    """[data.checks]: the poisoning defences of the data gate, and quarantine mode."""

    max_file_mb: Annotated[float, Field(gt=0.0)] = 2048.0
    quarantine: bool = False
    duplicates: DuplicatesCheck = Field(default_factory=DuplicatesCheck)
    drift: DriftCheck = Field(default_factory=DriftCheck)
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

    path: str
    lock: str
    checksums: str | None = None
    format: Literal["csv", "parquet"] | None = None
    label: str
    classes: Annotated[StrList, Field(min_length=2)]
    positive_class: str | None = None
    id_column: str | None = None
    min_rows: Annotated[int, Field(ge=1)] = 1
    max_rows: Annotated[int, Field(ge=1)] = 10_000_000
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


Level = Literal["low", "medium", "high"]
DEFAULT_CODE_PATHS = ("pipeline", "gates", "tests", "noxfile.py")
# Code that ships: scanned by bandit and the unsafe-deserialization check (tests use assert).
DEFAULT_SAST_PATHS = ("pipeline", "gates", "noxfile.py")


class LintPolicy(_Strict):
    """[lint]: what ruff checks; the rule set itself lives in pyproject.toml [tool.ruff]."""

    paths: Annotated[StrList, Field(min_length=1)] = DEFAULT_CODE_PATHS


class SastPolicy(_Strict):
    """[sast]: bandit's scope and thresholds, its baseline, and the unsafe-load check."""

    paths: Annotated[StrList, Field(min_length=1)] = DEFAULT_SAST_PATHS
    exclude: StrList = ()
    severity: Level = "low"
    confidence: Level = "low"
    baseline: str | None = None
    # The one module allowed to deserialize verified artifacts (it checks digests first).
    loaders: StrList = ("pipeline/persist.py",)


class AuditWaiver(_Strict):
    """[[audit.waivers]]: one accepted vulnerability, with a reason and an expiry date."""

    id: Annotated[str, Field(min_length=1)]
    reason: Annotated[str, Field(min_length=10)]
    expires: date


class AuditPolicy(_Strict):
    """[audit]: pip-audit over the hash-pinned lock, its vulnerability source and waivers."""

    requirements: str = "requirements.lock"
    # A local OSV advisory directory (PyPA advisory-database layout); GATES_ADVISORY_DB wins.
    # Used when it exists; otherwise the online service (or an error when required).
    advisory_db: str | None = None
    require_advisory_db: bool = False
    max_age_days: Annotated[int, Field(ge=1)] | None = None
    timeout_seconds: Annotated[int, Field(ge=1, le=3600)] = 600
    canary: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]+==[A-Za-z0-9.+!_-]+$")] = "joblib==1.1.0"
    canary_id: Annotated[str, Field(min_length=1)] = "PYSEC-2022-288"
    waivers: Annotated[tuple[AuditWaiver, ...], Strict(False)] = ()

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


class ReleasePolicy(_Strict):
    """[release]: the signing keys, the trusted public key, the registry and the champion bar."""

    public_key: str = "keys/release.pub"
    private_key_env: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")] = "GATES_SIGNING_KEY"
    private_key_file: str | None = None
    allow_dev_key: bool = True
    dev_key_dir: str = ".keys"
    registry_dir: str = "registry"
    tolerance: dict[Metric, Tolerance] = Field(default_factory=dict)


class FeedbackPolicy(_Strict):
    """[feedback]: run history, trends, production-feedback quarantine, metrics and MLflow."""

    history: str = "history/runs.jsonl"
    quarantine_dir: str = "data/quarantine"
    champion: str = "registry/champion"
    prediction_column: str = "prediction"
    trend_window: Annotated[int, Field(ge=1, le=1000)] = 5
    max_metric_drop: Fraction = 0.02
    max_flag_rate_rise: Fraction = 0.05
    fail_on_regression: bool = False
    fail_on_flag_rise: bool = False
    max_batch_rows: Annotated[int, Field(ge=1)] = 100_000
    max_label_disagreement: Fraction = 0.5
    outlier_z: Annotated[float, Field(gt=0.0)] = 8.0
    pushgateway_url: str | None = None
    pushgateway_job: str = "secure_ml_pipeline"
    mlflow_tracking_uri: str | None = None
    mlflow_experiment: str = "secure-ml-pipeline"
    mlflow_artifact_location: str | None = None


class Policy(_Strict):
    """The whole of policy.toml."""

    schema_version: Literal[1]
    run: RunPolicy = Field(default_factory=RunPolicy)
    data: DataPolicy
    model: ModelPolicy = Field(default_factory=ModelPolicy)
    cv: CvPolicy
    lint: LintPolicy = Field(default_factory=LintPolicy)
    sast: SastPolicy = Field(default_factory=SastPolicy)
    audit: AuditPolicy = Field(default_factory=AuditPolicy)
    release: ReleasePolicy = Field(default_factory=ReleasePolicy)
    feedback: FeedbackPolicy = Field(default_factory=FeedbackPolicy)

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
    """Read and validate ``path``; any problem is one PolicyError naming the file and key."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        msg = f"{path}: policy file not found (pass --policy PATH or create policy.toml)"
        raise PolicyError(msg) from None
    except OSError as err:
        msg = f"{path}: cannot read the policy file: {err.strerror}"
        raise PolicyError(msg) from None
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        msg = f"{path}: expected UTF-8 TOML, found bytes that are not UTF-8"
        raise PolicyError(msg) from None
    except tomllib.TOMLDecodeError as err:
        msg = f"{path}: not valid TOML: {err}"
        raise PolicyError(msg) from None
    try:
        policy = Policy.model_validate(document)
    except ValidationError as err:
        raise PolicyError(format_validation_error(path, err)) from None
    return LoadedPolicy(path=path, policy=policy, sha256=sha256_bytes(raw))


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
