"""One client's rows no longer dilute or inflate the drift every client is judged by.

Before, the service kept one drift window for all clients: a client sending shifted rows
moved ``gates_serve_input_drift_psi`` for everyone, and one sending approved rows in bulk
washed another's shift out of it. Now each client (the guard's identity: the API key's name,
else the address) has its own window, reported as ``gates_serve_client_input_drift_psi{client,
column}`` beside the all-clients figure; at most ``[serve.monitor].drift_clients`` clients get
one (the first seen), every later one shares the window labelled ``other``: a flood of keys or
addresses adds no window and no series.

The real service (uvicorn, loopback), scraped from loopback (no metrics token set).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from gates.service.auth import METRICS_ENV, hash_line
from gates.service.proxies import trusted_proxies
from tests.release_support import copy_project
from tests.serve_support import KEYS, KEYS_ENV, feature_rows, in_process, write_keys

PREDICT = "/v1/models/model:predict"
WIDE = {"rate_limit.requests": 10_000}
SERIES = re.compile(
    r'^gates_serve_client_input_drift_psi\{client="(?P<client>[^"]+)",column="(?P<column>[^"]+)"\} '
    r"(?P<value>\S+)$",
    re.MULTILINE,
)
ROWS = re.compile(
    r'^gates_serve_client_drift_window_rows\{client="(?P<client>[^"]+)"\} (?P<value>\S+)$',
    re.MULTILINE,
)


@pytest.fixture(scope="module")
def root(passed_chain: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_project(passed_chain, tmp_path_factory.mktemp("drift-clients") / "project")


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _drift(text: str) -> dict[str, dict[str, float]]:
    """PSI per client, per column, from the exposition."""
    found: dict[str, dict[str, float]] = {}
    for match in SERIES.finditer(text):
        found.setdefault(match["client"], {})[match["column"]] = float(match["value"])
    return found


def _window_rows(text: str) -> dict[str, float]:
    return {m["client"]: float(m["value"]) for m in ROWS.finditer(text)}


def _shifted(rows: list[dict[str, Any]], column: str, count: int) -> list[dict[str, Any]]:
    """Approved rows, each within the contract: the ``count`` with the largest ``column``."""
    return sorted(rows, key=lambda r: r[column], reverse=True)[:count]


def test_a_client_sending_shifted_rows_drifts_under_its_own_label_only(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Alice sends the 60 approved rows with the largest value of one column (a shifted input
    distribution, every row within the contract); Bob sends every approved row. Alice's window
    drifts in that column (PSI over 0.25, the usual "significant shift"), Bob's stays under
    0.1, and the all-clients figure is still reported. Before: no per-client series at all."""
    monkeypatch.setenv(KEYS_ENV, str(write_keys(tmp_path)))
    monkeypatch.delenv(METRICS_ENV, raising=False)
    rows = feature_rows(root)
    column = next(iter(rows[0]))
    with (
        in_process(root, require_api_key=True, **WIDE) as (base, _, _),
        httpx.Client(base_url=base, timeout=60) as client,
    ):
        shifted = {"instances": _shifted(rows, column, 60)}
        clean = {"instances": rows}
        assert client.post(PREDICT, json=shifted, headers=_bearer(KEYS["alice"])).status_code == 200
        assert client.post(PREDICT, json=clean, headers=_bearer(KEYS["bob"])).status_code == 200
        scraped = client.get("/metrics")
    assert scraped.status_code == 200, scraped.text[:300]
    drift = _drift(scraped.text)
    assert set(drift) == {"key:alice", "key:bob"}, sorted(drift)
    assert drift["key:alice"][column] > 0.25, drift["key:alice"]
    assert max(drift["key:bob"].values()) < 0.1, drift["key:bob"]
    assert _window_rows(scraped.text) == {"key:alice": 60.0, "key:bob": float(len(rows))}
    assert f'gates_serve_input_drift_psi{{column="{column}"}}' in scraped.text


def test_a_flood_of_keys_shares_one_window(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``drift_clients = 3``: 40 valid keys send a row each; the first 3 get windows of their
    own, the other 37 rows are counted under ``other``, and the service holds 4 client windows
    (the figures and the memory both bounded). Before: no per-client windows at all."""
    keys = {f"flood{n:02d}": f"flood-key-{n:02d}-{'f' * 24}" for n in range(40)}
    path = tmp_path / "keys.txt"
    path.write_text("".join(hash_line(n, k) + "\n" for n, k in keys.items()), encoding="utf-8")
    monkeypatch.setenv(KEYS_ENV, str(path))
    monkeypatch.delenv(METRICS_ENV, raising=False)
    row = {"instances": feature_rows(root, 1)}
    changes = {**WIDE, "monitor.drift_clients": 3}
    with (
        in_process(root, require_api_key=True, **changes) as (base, service, _),
        httpx.Client(base_url=base, timeout=60) as client,
    ):
        for key in keys.values():
            assert client.post(PREDICT, json=row, headers=_bearer(key)).status_code == 200
        scraped = client.get("/metrics")
        windows = len(service.live._clients)
    assert scraped.status_code == 200
    assert _window_rows(scraped.text) == {
        "key:flood00": 1.0,
        "key:flood01": 1.0,
        "key:flood02": 1.0,
        "other": 37.0,
    }
    assert set(_drift(scraped.text)) == {"key:flood00", "key:flood01", "key:flood02", "other"}
    assert windows == 4


def test_a_flood_of_addresses_shares_one_window(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Auth off, the client is its address (127.0.0.1 plays the trusted proxy naming 30
    addresses): the first 2 get windows, the 28 others share ``other``."""
    monkeypatch.delenv(METRICS_ENV, raising=False)
    row = {"instances": feature_rows(root, 1)}
    changes = {**WIDE, "monitor.drift_clients": 2}
    proxies = trusted_proxies(["127.0.0.1/32"], None)
    with (
        in_process(root, proxies=proxies, **changes) as (base, service, _),
        httpx.Client(base_url=base, timeout=60) as client,
    ):
        for n in range(30):
            sent = client.post(PREDICT, json=row, headers={"X-Forwarded-For": f"198.51.100.{n}"})
            assert sent.status_code == 200
        scraped = client.get("/metrics")
        windows = len(service.live._clients)
    assert _window_rows(scraped.text) == {
        "addr:198.51.100.0": 1.0,
        "addr:198.51.100.1": 1.0,
        "other": 28.0,
    }
    assert windows == 3
