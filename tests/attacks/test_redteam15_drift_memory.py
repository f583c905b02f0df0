"""Red team 15: the per-client drift windows multiplied the window's memory (row 109).

Row 101 gave each of the first ``[serve.monitor].drift_clients`` clients (16 by default, up to
256) a drift window of its own, each holding up to ``drift_window`` rows (up to 1,000,000): a
policy sized for one window (1,000,000 rows of 30 float columns, about 240 MB) now allowed 17,
about 4 GB, filled by any 16 addresses with auth off (at the row budget, 10,000 rows a second
each, in 100 s). Now the clients' windows together hold at most one full window's rows.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError


@pytest.mark.parametrize(
    ("window", "clients"), [(1_000_000, 16), (1_000_000, 2), (100_000, 16), (10_000, 256)]
)
def test_client_windows_beyond_one_full_window_are_refused(window: int, clients: int) -> None:
    from pipeline.config import ServeMonitor

    with pytest.raises(ValidationError, match=r"drift_window x drift_clients"):
        ServeMonitor(drift_window=window, drift_clients=clients)


@pytest.mark.parametrize(
    ("window", "clients"), [(1000, 16), (62_500, 16), (1_000_000, 1), (3906, 256)]
)
def test_control_bounded_client_windows_stay_allowed(window: int, clients: int) -> None:
    from pipeline.config import ServeMonitor

    monitor = ServeMonitor(drift_window=window, drift_clients=clients)
    assert monitor.drift_window * monitor.drift_clients <= 1_000_000
