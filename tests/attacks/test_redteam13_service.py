"""Red team 13: a client of the running service (docs/serving.md) against its monitoring.

The real service (uvicorn, loopback) with the session's passed chain; bounded requests.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.release_support import copy_project
from tests.serve_support import feature_rows, in_process

PREDICT = "/v1/models/model:predict"


@pytest.fixture(scope="module")
def root(passed_chain: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_project(passed_chain, tmp_path_factory.mktemp("rt13-serve") / "project")


def test_scrapes_do_not_each_recompute_drift_and_anomaly(root: Path) -> None:
    """``GET /metrics`` recomputed PSI over the whole drift window and scored the rows waiting,
    on every scrape: 5 ms at the default window of 1000 rows, 65 ms at 100,000 (against about
    1 ms for any other GET), so one client at its request limit (100 a second) spent 0.5 to 6.5
    CPU-seconds a second of the server's with requests of a few bytes. Now the figures are
    recomputed at most once a second, a scrape that arrives meanwhile takes them: 30 scrapes
    in a row make one refresh, and the first scrape's figures are fresh."""
    rows = feature_rows(root, 100)
    with (
        in_process(root, **{"monitor.drift_window": 1000}) as (base, service, _),
        httpx.Client(base_url=base, timeout=30) as client,
    ):
        for _ in range(10):  # fill the drift window (1000 rows)
            assert client.post(PREDICT, json={"instances": rows}).status_code == 200
        refreshes = []
        original = service.live.refresh

        def counted() -> None:
            refreshes.append(1)
            original()

        service.live.refresh = counted  # counts the real refresh; the server is unchanged
        texts = [client.get("/metrics") for _ in range(30)]
        assert all(r.status_code == 200 for r in texts)
        assert len(refreshes) == 1, f"{len(refreshes)} drift/anomaly refreshes for 30 scrapes"
        assert "gates_serve_drift_window_rows 1000.0" in texts[0].text
        # Request counters are not held back: each scrape counts the one before it.
        assert 'gates_serve_requests_total{route="metrics",status="200"} 29.0' in texts[-1].text
