"""Helpers for the serving tests: a signed project's copy, the service on loopback, clients."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
KEYS = {name: f"{name}-key-{'k' * 24}" for name in ("alice", "bob", "flood", "calm", "logged")}
KEYS_ENV = "GATES_SERVE_API_KEYS"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def feature_rows(root: Path, count: int | None = None) -> list[dict[str, Any]]:
    """Rows of the project's data as JSON instances (features only, numbers as numbers)."""
    import pandas as pd

    from pipeline.config import load_policy

    policy = load_policy(root / "policy.toml").policy.data
    frame = pd.read_csv(root / policy.path)[list(policy.feature_columns)]
    rows = frame.to_dict(orient="records")
    return [{str(k): float(v) for k, v in r.items()} for r in rows[:count]]


def offline_predictions(root: Path, rows: list[dict[str, Any]]) -> list[str]:
    """What the project's signed model predicts for ``rows``, loaded as the CLI loads it."""
    import pandas as pd

    from pipeline.config import load_policy
    from pipeline.persist import load_attested
    from pipeline.verify import verify_project

    policy = load_policy(root / "policy.toml")
    verified = verify_project(policy, required_gates=(), key=root / ".keys" / "dev-signing.pub")
    model, _ = load_attested(verified)
    return [str(v) for v in model.predict(pd.DataFrame(rows))]


@dataclass
class CliServer:
    """A running ``python -m gates serve``: its URL, process and the file its stderr goes to."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> str:
        """Stop it (SIGTERM, then SIGKILL) and return its stderr."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.log.read_text(encoding="utf-8", errors="replace")


@contextmanager
def cli_server(root: Path, *args: str, timeout: float = 120) -> Iterator[CliServer]:
    """``python -m gates serve`` in ``root`` on a free port, yielded once ``/readyz`` answers."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("GATES_RUN_ID", None)
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "stderr.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "gates", "serve", "--port", str(port), *args],
                cwd=root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=sink,
            )
        server = CliServer(f"http://127.0.0.1:{port}", process, log)
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    msg = f"the service exited {process.returncode}: {server.stop()[-2000:]}"
                    raise AssertionError(msg)
                try:
                    if httpx.get(f"{server.url}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            else:
                raise AssertionError("the service did not become ready")
            yield server
        finally:
            server.stop()


def run_serve(root: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m gates serve`` expected to refuse to start: its exit code and output."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("GATES_RUN_ID", None)
    return subprocess.run(
        [sys.executable, "-m", "gates", "serve", "--port", str(free_port()), *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def write_keys(folder: Path) -> Path:
    """A key file holding the SHA-256 of every key in ``KEYS``."""
    from gates.service.auth import hash_line

    path = folder / "api-keys.txt"
    path.write_text(
        "# name:sha256\n" + "".join(hash_line(n, k) + "\n" for n, k in KEYS.items()),
        encoding="utf-8",
    )
    return path


def with_serve(loaded: Any, **changes: Any) -> Any:
    """``loaded`` with ``[serve]`` keys changed in memory (``rate_limit.requests`` style keys)."""
    serve = loaded.policy.serve
    nested: dict[str, dict[str, Any]] = {}
    flat: dict[str, Any] = {}
    for key, value in changes.items():
        table, dot, field = key.partition(".")
        if dot:
            nested.setdefault(table, {})[field] = value
        else:
            flat[key] = value
    for table, fields in nested.items():
        flat[table] = getattr(serve, table).model_copy(update=fields)
    policy = loaded.policy.model_copy(update={"serve": serve.model_copy(update=flat)})
    return replace(loaded, policy=policy)


class LogCapture(logging.Handler):
    """Keeps every JSON line the service logs."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]


@contextmanager
def in_process(
    root: Path, *, proxies: Any = None, sock: socket.socket | None = None, **changes: Any
) -> Iterator[tuple[str, Any, LogCapture]]:
    """The real service (uvicorn, loopback, free port) in a thread, with ``[serve]`` changes
    (and the operator's trusted proxies, ``gates.service.proxies.TrustedProxies``; ``sock``:
    a socket of the caller's instead of a new one on 127.0.0.1)."""
    from gates.service.monitor import JsonLines
    from gates.service.server import build_service, on_loopback, verified_model
    from pipeline.config import load_policy

    loaded = load_policy(root / "policy.toml")
    served = verified_model(loaded, champion=False, key=root / ".keys" / "dev-signing.pub")
    capture = LogCapture()
    capture.setFormatter(JsonLines())
    logger = logging.getLogger(f"gates.serve.test.{id(capture)}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(capture)
    service = build_service(with_serve(loaded, **changes), served, logger=logger)
    with on_loopback(service, proxies, sock) as running:
        yield running.url, service, capture
