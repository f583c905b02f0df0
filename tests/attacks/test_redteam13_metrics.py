"""Red team 13: ``GET /metrics`` showed every client's figures to any caller (row 86).

The label counts, rejections and input drift of all clients together were served to anyone
(auth off) or to any holder of a prediction API key (auth on): figures about other clients'
inputs, and the drift an attacker probing the monitor wants to watch. Now ``/metrics`` takes
no API key: only the operator's metrics token (``$GATES_SERVE_METRICS_KEYS``, a file of
``name:sha256`` lines as the API-key file), else loopback clients only.

The real service (uvicorn, loopback). A client elsewhere is played as in
``test_trusted_proxy``: 127.0.0.1 is the trusted proxy and appends the client's address to
``X-Forwarded-For``, which the service takes as the client's.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from gates.service.auth import METRICS_ENV, KeyFileError, hash_line, load_metrics_keyring
from gates.service.proxies import trusted_proxies
from tests.release_support import copy_project
from tests.serve_support import KEYS, KEYS_ENV, feature_rows, in_process, write_keys

PREDICT = "/v1/models/model:predict"
LOOPBACK = trusted_proxies(["127.0.0.1/32"], None)
ELSEWHERE = {"X-Forwarded-For": "203.0.113.7"}  # a client off the host, as the proxy names it
TOKEN = "scraper-token-" + "m" * 24
FIGURE = "gates_serve_predictions_total"  # a family only the figures hold
WIDE = {"rate_limit.requests": 10_000}


@pytest.fixture(scope="module")
def root(passed_chain: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_project(passed_chain, tmp_path_factory.mktemp("rt13-metrics") / "project")


def _token_file(folder: Path) -> Path:
    path = folder / "metrics-keys.txt"
    path.write_text(hash_line("prometheus", TOKEN) + "\n", encoding="utf-8")
    return path


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_an_api_key_holder_elsewhere_gets_no_figures(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Auth on, no metrics token set: alice's key opens the API from her address, and
    /metrics there is refused (403, no figures). Before: 200 with every client's counts."""
    monkeypatch.setenv(KEYS_ENV, str(write_keys(tmp_path)))
    monkeypatch.delenv(METRICS_ENV, raising=False)
    rows = feature_rows(root, 3)
    alice = {**_bearer(KEYS["alice"]), **ELSEWHERE}
    with (
        in_process(root, proxies=LOOPBACK, require_api_key=True, **WIDE) as (base, _, _),
        httpx.Client(base_url=base, timeout=30) as client,
    ):
        assert client.post(PREDICT, json={"instances": rows}, headers=alice).status_code == 200
        refused = client.get("/metrics", headers=alice)
        local = client.get("/metrics")  # the scraper on the host (sidecar, port-forward)
    assert refused.status_code == 403, refused.text[:300]
    assert FIGURE not in refused.text
    assert METRICS_ENV in refused.json()["detail"]
    assert local.status_code == 200
    assert FIGURE in local.text


def test_with_a_metrics_token_an_api_key_is_not_enough(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Auth on and a metrics token set: a valid API key (even from loopback), no header, a
    wrong token, the token's stored hash: 401 without figures. The token: 200, from anywhere.
    Before: the API key got 200 with the figures."""
    monkeypatch.setenv(KEYS_ENV, str(write_keys(tmp_path)))
    monkeypatch.setenv(METRICS_ENV, str(_token_file(tmp_path)))
    stored = hash_line("x", TOKEN).partition(":")[2]
    with (
        in_process(root, proxies=LOOPBACK, require_api_key=True, **WIDE) as (base, _, _),
        httpx.Client(base_url=base, timeout=30) as client,
    ):
        refused = {
            "api-key": client.get("/metrics", headers=_bearer(KEYS["alice"])),
            "none": client.get("/metrics"),
            "wrong-token": client.get("/metrics", headers=_bearer(TOKEN + "x")),
            "stored-hash": client.get("/metrics", headers=_bearer(stored)),
        }
        scraped = client.get("/metrics", headers=_bearer(TOKEN))
        scraped_elsewhere = client.get("/metrics", headers={**_bearer(TOKEN), **ELSEWHERE})
        # The token is no API key either.
        predict = client.post(
            PREDICT, json={"instances": feature_rows(root, 1)}, headers=_bearer(TOKEN)
        )
    for case, response in refused.items():
        assert response.status_code == 401, (case, response.text[:300])
        assert FIGURE not in response.text, case
        assert response.headers["www-authenticate"].startswith("Bearer"), case
    assert scraped.status_code == 200
    assert FIGURE in scraped.text
    assert scraped_elsewhere.status_code == 200
    assert predict.status_code == 403


def test_without_auth_only_loopback_clients_are_served(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Auth off, no token: a client elsewhere is refused (403), also when it writes a
    loopback address left of its own in the forwarded header; loopback (IPv4, IPv4-mapped
    and IPv6, as a trusted proxy may name them) is served. Before: 200 to everyone."""
    monkeypatch.delenv(METRICS_ENV, raising=False)
    with (
        in_process(root, proxies=LOOPBACK, **WIDE) as (base, _, _),
        httpx.Client(base_url=base, timeout=30) as client,
    ):
        elsewhere = client.get("/metrics", headers=ELSEWHERE)
        forged = client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1, 203.0.113.7"})
        local = [
            client.get("/metrics", headers={"X-Forwarded-For": name})
            for name in ("127.0.0.2", "::ffff:127.0.0.1", "::1")
        ]
    for response in (elsewhere, forged):
        assert response.status_code == 403, response.text[:300]
        assert FIGURE not in response.text
    assert [r.status_code for r in local] == [200, 200, 200]


@pytest.mark.parametrize("content", [None, "", "prometheus:" + "0" * 63 + "\n"])
def test_a_bad_metrics_token_file_stops_the_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str | None
) -> None:
    """Set but missing, empty or malformed: the service does not start (fail closed, not
    loopback-only), naming the variable or the file's line."""
    path = tmp_path / "metrics-keys.txt"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    monkeypatch.setenv(METRICS_ENV, str(path))
    with pytest.raises(KeyFileError, match=r"metrics-keys\.txt"):
        load_metrics_keyring()
    monkeypatch.setenv(METRICS_ENV, "")
    assert load_metrics_keyring() is None
