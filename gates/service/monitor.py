"""What the service tells Prometheus, its request log, and the feedback spool.

Metrics live in the service's own ``CollectorRegistry``: requests by route and status, a
latency histogram, rejections by reason (the contract rule, ``rate_limit``, ``in_flight``,
``client_bytes_in_flight``, ``auth``, the parse problem), predictions per class, requests and
their body bytes in flight, and two views of live
data that are computed when ``/metrics`` is scraped, off the request path: PSI per column over
a sliding window of the last ``[serve.monitor].drift_window`` served rows against the approved
profile in the data lock, all clients together and each client's own (the guard's identity:
the API key's name, else the address; at most ``[serve.monitor].drift_clients`` clients keep
a window of their own, the first ones seen, and every later one shares the ``OVERFLOW``
window, so a flood of keys or addresses adds no window), and the IsolationForest score of
each row served since the last scrape (a forest fitted at start on the approved data; at most
``_PENDING_ROWS`` rows wait, older ones are counted as unscored).
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

if TYPE_CHECKING:
    import pandas as pd

    from pipeline.config import ServePolicy
    from pipeline.profile import DataProfile

_PENDING_ROWS = 10_000
# The drift and anomaly figures are recomputed at most once in this many seconds: a scrape is
# one small GET, and a refresh costs in proportion to [serve.monitor].drift_window (5 ms at
# 1000 rows, 65 ms at 100,000): at the request limit, one client's scrapes held the server's
# CPU (red team 13). Prometheus scrapes every 15 s or more; later scrapes take the figures.
REFRESH_SECONDS = 1.0
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
ANOMALY_BUCKETS = (0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8, 0.9)
# The client label of the window every client past [serve.monitor].drift_clients shares. A
# client's own label is the guard's identity, "key:<name>" or "addr:<address>": never this.
OVERFLOW = "other"


class Metrics:
    """The Prometheus series of one service instance."""

    def __init__(self, *, model_name: str, run_id: str, sha256: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "gates_serve_requests", "Requests by route and status", ["route", "status"], registry=r
        )
        self.latency = Histogram(
            "gates_serve_request_duration_seconds",
            "Request latency by route",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.rejections = Counter(
            "gates_serve_rejections", "Refused requests by reason", ["reason"], registry=r
        )
        self.predictions = Counter(
            "gates_serve_predictions", "Predicted labels by class", ["class"], registry=r
        )
        self.in_flight = Gauge("gates_serve_in_flight", "Requests being handled", registry=r)
        self.body_bytes = Gauge(
            "gates_serve_body_bytes_in_flight",
            "Body bytes claimed by the requests being handled ([serve.rate_limit]."
            "max_body_bytes_in_flight_per_client caps each client's)",
            registry=r,
        )
        self.drift = Gauge(
            "gates_serve_input_drift_psi",
            "PSI of the sliding window of served rows against the approved profile",
            ["column"],
            registry=r,
        )
        self.window_rows = Gauge(
            "gates_serve_drift_window_rows", "Served rows in the drift window", registry=r
        )
        self.client_drift = Gauge(
            "gates_serve_client_input_drift_psi",
            "PSI of one client's sliding window of served rows against the approved profile "
            f"(client: key:<name> or addr:<address>; {OVERFLOW!r}: the clients past "
            "[serve.monitor].drift_clients together)",
            ["client", "column"],
            registry=r,
        )
        self.client_window_rows = Gauge(
            "gates_serve_client_drift_window_rows",
            "Served rows in one client's drift window",
            ["client"],
            registry=r,
        )
        self.anomaly = Histogram(
            "gates_serve_anomaly_score",
            "IsolationForest score of served rows (0.5 typical, near 1 isolated)",
            buckets=ANOMALY_BUCKETS,
            registry=r,
        )
        self.unscored = Counter(
            "gates_serve_anomaly_unscored",
            "Served rows dropped before the anomaly scorer reached them",
            registry=r,
        )
        info = Gauge(
            "gates_serve_model_info",
            "The served model (value 1)",
            ["name", "run_id", "sha256"],
            registry=r,
        )
        info.labels(model_name, run_id, sha256).set(1)


class Window:
    """The last ``size`` served rows (whole tables: at most one table's rows more), and
    whether rows came since the last refresh."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.chunks: deque[pd.DataFrame] = deque()
        self.rows = 0
        self.changed = False

    def add(self, features: pd.DataFrame) -> None:
        """Keep ``features``, dropping the oldest tables no longer needed for ``size`` rows."""
        self.chunks.append(features)
        self.rows += len(features)
        while self.chunks and self.rows - len(self.chunks[0]) >= self.size:
            self.rows -= len(self.chunks.popleft())
        self.changed = True


class LiveData:
    """The sliding windows for drift (all clients, each client) and the rows waiting for an
    anomaly score."""

    def __init__(
        self,
        metrics: Metrics,
        *,
        reference: DataProfile | None,
        forest: Any | None,
        window: int,
        clients: int = 16,
    ) -> None:
        self.metrics = metrics
        self.reference = reference
        self.forest = forest
        self.window = window
        self.max_clients = clients  # windows of their own; later clients share OVERFLOW's
        self._lock = threading.Lock()
        self._all = Window(window)
        self._clients: dict[str, Window] = {}
        self._pending: deque[pd.DataFrame] = deque()
        self._pending_rows = 0
        self._refreshing = threading.Lock()  # one refresh at a time
        self._next_refresh = 0.0  # time.monotonic() from which a scrape refreshes again

    def add(self, features: pd.DataFrame, client: str = OVERFLOW) -> None:
        """Keep a served, contract-clean table of ``client``'s for the next refresh."""
        with self._lock:
            self._all.add(features)
            own = self._clients.get(client)
            if own is None:
                named = len(self._clients) - (OVERFLOW in self._clients)
                key = client if named < self.max_clients else OVERFLOW
                own = self._clients.setdefault(key, Window(self.window))
            own.add(features)
            if self.forest is not None:
                self._pending.append(features)
                self._pending_rows += len(features)
                while self._pending_rows > _PENDING_ROWS:
                    dropped = self._pending.popleft()
                    self._pending_rows -= len(dropped)
                    self.metrics.unscored.inc(len(dropped))

    def refresh(self) -> None:
        """Recompute drift over the window and score the rows waiting (called on a scrape)."""
        import pandas as pd  # noqa: PLC0415

        from pipeline.profile import DriftCounts  # noqa: PLC0415

        with self._lock:
            pending = list(self._pending)
            self._pending.clear()
            self._pending_rows = 0
            # Only the windows rows came to since the last refresh: an idle client costs none.
            windows: list[tuple[str | None, Window]] = [(None, self._all)]
            windows += list(self._clients.items())
            changed = [(name, list(w.chunks)) for name, w in windows if w.changed]
            for _, w in windows:
                w.changed = False
        for name, chunks in changed:
            if not chunks or self.reference is None:
                continue
            window = pd.concat(chunks).tail(self.window)
            counts = DriftCounts(self.reference)
            counts.add(window)
            if name is None:
                self.metrics.window_rows.set(len(window))
                for drift in counts.drift():
                    self.metrics.drift.labels(drift.column).set(drift.psi)
                continue
            self.metrics.client_window_rows.labels(name).set(len(window))
            for drift in counts.drift():
                self.metrics.client_drift.labels(name, drift.column).set(drift.psi)
        if pending and self.forest is not None:
            rows = pd.concat(pending)
            for score in self.forest.scores(rows):
                self.metrics.anomaly.observe(float(score))

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes, after a refresh unless one ran in the last
        ``REFRESH_SECONDS`` (or is running: this scrape waits for it and takes its figures)."""
        with self._refreshing:
            if time.monotonic() >= self._next_refresh:
                self.refresh()
                self._next_refresh = time.monotonic() + REFRESH_SECONDS
        return generate_latest(self.metrics.registry)


@dataclass(frozen=True)
class AnomalyScorer:
    """An IsolationForest over the numeric feature columns of the approved data.

    Text and bool columns are left out (a forest splits numbers); a blank cell is scored as its
    column's approved median, since a forest takes no NaN.
    """

    forest: Any
    columns: tuple[str, ...]
    fill: tuple[float, ...]

    def scores(self, rows: pd.DataFrame) -> list[float]:
        """The anomaly score of each row (higher is more isolated)."""
        x = rows.loc[:, list(self.columns)].astype("float64")
        x = x.fillna(dict(zip(self.columns, self.fill, strict=True)))
        return [float(v) for v in -self.forest.score_samples(x.to_numpy())]


def fit_forest(features: pd.DataFrame, *, trees: int, seed: int) -> AnomalyScorer | None:
    """An IsolationForest on the approved numeric features (the data gate's settings); None
    when the table has no numeric feature."""
    from sklearn.ensemble import IsolationForest  # noqa: PLC0415

    numeric = features.select_dtypes(include="number")
    if numeric.shape[1] == 0:
        return None
    medians = numeric.median(skipna=True).fillna(0.0)
    x = numeric.astype("float64").fillna(medians)
    forest = IsolationForest(n_estimators=trees, random_state=seed, n_jobs=1)
    forest.fit(x.to_numpy())
    return AnomalyScorer(
        forest, tuple(str(c) for c in numeric.columns), tuple(float(v) for v in medians)
    )


class JsonLines(logging.Formatter):
    """One JSON object per record: the record's ``fields`` when it has them."""

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            return json.dumps(fields, sort_keys=True, default=str)
        return json.dumps(
            {"ts": time.time(), "level": record.levelname.lower(), "message": record.getMessage()},
            sort_keys=True,
        )


def request_logger(stream: Any = None) -> logging.Logger:
    """The logger that writes one JSON object per line (requests and service events)."""
    logger = logging.getLogger("gates.serve")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    if not logger.handlers:
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(JsonLines())
        logger.addHandler(handler)
    return logger


def log_event(logger: logging.Logger, **fields: Any) -> None:
    """One JSON line with ``fields`` (and the time)."""
    logger.info("", extra={"fields": {"ts": round(time.time(), 6), **fields}})


class Spool:
    """Validated inputs and their predictions as JSON lines, rotated and bounded in size.

    ``RotatingFileHandler`` keeps ``files`` old files of at most ``max_mb`` each: the spool
    never holds more than ``(files + 1) * max_mb``. ``python -m gates feedback ingest`` takes
    the labelled outcomes back (docs/serving.md says how).
    """

    def __init__(self, policy: ServePolicy, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            folder / "spool.jsonl",
            maxBytes=int(policy.spool.max_mb * 2**20),
            backupCount=policy.spool.files,
            encoding="utf-8",
        )
        handler.setFormatter(logging.Formatter("%(message)s"))
        self.logger = logging.getLogger(f"gates.serve.spool.{id(self)}")
        self.logger.propagate = False
        self.logger.setLevel(logging.INFO)
        self.logger.addHandler(handler)
        self.handler = handler

    def write(self, request_id: str, sha256: str, instances: list[Any], labels: list[Any]) -> None:
        """One line per served instance."""
        for index, (instance, label) in enumerate(zip(instances, labels, strict=True)):
            line = {"request_id": request_id, "index": index, "model_sha256": sha256}
            self.logger.info(json.dumps({**line, "features": instance, "prediction": label}))

    def close(self) -> None:
        """Flush and close the file."""
        self.logger.removeHandler(self.handler)
        self.handler.close()
