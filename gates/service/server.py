"""Build the service for a policy and run it on uvicorn.

``verified_model`` is the only way the CLI gets a model: ``gates.release`` verifies the signed
attestation (this run's or the champion's) with the trusted key, requiring every gate
registered before ``artifacts`` to be recorded and PASSED, every subject's digest and the
model file's exact skops layout; ``pipeline.persist.load_attested`` then loads the signed
bytes with the reviewed type list. Anything less raises, and ``python -m gates serve`` exits 2
with the reason before a socket is opened.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gates.errors import GatesError
from gates.service.app import ServedModel, Service, create_app
from gates.service.auth import load_keyring
from gates.service.monitor import LiveData, Metrics, Spool, fit_forest, log_event, request_logger
from gates.service.validate import served_contract
from pipeline.config import LoadedPolicy

if TYPE_CHECKING:
    from pipeline.attestation import VerifiedAttestation

_START_TIMEOUT = 20.0


def verified_model(policy: LoadedPolicy, *, champion: bool, key: Path | None) -> ServedModel:
    """The signed, all-PASSED model (AttestationError, a PipelineError, when it is not)."""
    from gates import release  # noqa: PLC0415
    from pipeline.persist import load_attested  # noqa: PLC0415

    attestation = (
        release.verify_champion(policy, key=key)
        if champion
        else release.verify_project(policy, key=key)
    )
    if champion:
        _champions_inputs(policy, attestation)
    model, manifest = load_attested(attestation)
    where = "champion" if champion else "this run's attestation"
    return ServedModel(
        model=model,
        sha256=manifest.sha256,
        run_id=attestation.run_id,
        source=f"{where}, signed by {attestation.signer.keyid[:12]}... ({attestation.signer_kind} key)",
    )


def _champions_inputs(policy: LoadedPolicy, attestation: VerifiedAttestation) -> None:
    """The service reads its settings, data contract, drift reference and anomaly data from the
    working tree's policy, data lock and data file: serving the champion, they must be the
    champion's signed bytes (AttestationError naming the first that is not).

    Without this, a checkout whose ``policy.toml`` differs from the champion's (a rollback to a
    version signed under another policy, or the file edited where the service runs) would serve
    the signed model under unsigned limits, keys and contract.
    """
    from pipeline.attestation import AttestationError  # noqa: PLC0415
    from pipeline.fsio import sha256_file  # noqa: PLC0415

    signed = {subject.name: subject.sha256 for subject in attestation.subjects}
    data = policy.policy.data
    commit = str(attestation.predicate.get("git", {}).get("commit") or "unknown")[:12]
    root = policy.base_dir.resolve()
    for path in (policy.path, policy.resolve(data.lock), policy.resolve(data.path)):
        try:
            name = path.resolve().relative_to(root).as_posix()
            here = sha256_file(path)
        except (OSError, ValueError) as err:
            msg = f"refused: {path}: cannot compare it with the champion's signed copy ({err})"
            raise AttestationError(msg) from None
        if signed.get(name) != here:
            was = signed.get(name)
            msg = (
                f"refused: {name} here (SHA-256 {here[:12]}...) is not the champion's signed "
                f"copy ({'not among its subjects' if was is None else f'SHA-256 {was[:12]}...'}, "
                f"run {attestation.run_id}): the service would run under settings, contract or "
                f"reference data that were not signed; serve the champion from a checkout of "
                f"its commit {commit}, or this run's model without --champion"
            )
            raise AttestationError(msg)


def build_service(
    policy: LoadedPolicy, served: ServedModel, *, logger: logging.Logger | None = None
) -> Service:
    """The service's parts: contract, metrics, drift reference, forest, keys and spool."""
    from pipeline.data import lock_key, read_lock  # noqa: PLC0415

    serve = policy.policy.serve
    data = policy.policy.data
    logger = logger or request_logger()
    keyring = load_keyring(serve.api_keys_env) if serve.require_api_key else None
    metrics = Metrics(model_name=serve.name, run_id=served.run_id, sha256=served.sha256)
    lock = read_lock(policy.resolve(data.lock))
    entry = lock.files.get(lock_key(policy, policy.resolve(data.path)))
    reference = None if entry is None else (entry.reference or entry.profile)
    forest = _forest(policy, logger)
    live = LiveData(metrics, reference=reference, forest=forest, window=serve.monitor.drift_window)
    spool = Spool(serve, policy.resolve(serve.spool.dir)) if serve.spool.enabled else None
    return Service(
        served=served,
        policy=serve,
        contract=served_contract(data),
        metrics=metrics,
        live=live,
        logger=logger,
        keyring=keyring,
        spool=spool,
    )


def _forest(policy: LoadedPolicy, logger: logging.Logger) -> Any | None:
    from pipeline.data import load_dataset  # noqa: PLC0415
    from pipeline.errors import DataError  # noqa: PLC0415

    try:
        approved = load_dataset(policy)
    except DataError as err:
        log_event(logger, event="anomaly_disabled", reason=str(err).splitlines()[0])
        return None
    return fit_forest(
        approved.features,
        trees=policy.policy.serve.monitor.isolation_trees,
        seed=policy.policy.run.seed,
    )


def uvicorn_config(app: Any, *, host: str, port: int) -> Any:
    """uvicorn's settings: no access log of its own (the guard logs), no proxy headers."""
    import uvicorn  # noqa: PLC0415

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        date_header=True,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=5,
        h11_max_incomplete_event_size=16 * 1024,
        lifespan="off",
    )


def serve_forever(policy: LoadedPolicy, served: ServedModel, *, host: str, port: int) -> None:
    """Run the service until interrupted (the CLI's ``serve``)."""
    import uvicorn  # noqa: PLC0415

    service = build_service(policy, served)
    log_event(
        service.logger,
        event="serving",
        host=host,
        port=port,
        model=policy.policy.serve.name,
        run_id=served.run_id,
        model_sha256=served.sha256,
        source=served.source,
        auth=service.keyring is not None,
    )
    uvicorn.Server(uvicorn_config(create_app(service), host=host, port=port)).run()


@dataclass
class Running:
    """A service running in a thread on loopback: its base URL and its parts."""

    url: str
    service: Service


def loopback_socket() -> socket.socket:
    """A TCP socket bound to a free port on 127.0.0.1, for uvicorn to listen on.

    Its protocol is named (IPPROTO_TCP, not the default 0): asyncio turns Nagle's algorithm off
    only on connections whose socket says TCP, and with it on every response's body waited
    about 40 ms for the client's delayed ACK of the headers (the serve gate measured that wait
    as latency).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def on_loopback(service: Service) -> Iterator[Running]:
    """Run ``service`` on 127.0.0.1 on a free port in a thread; stop it on exit."""
    import uvicorn  # noqa: PLC0415

    sock = loopback_socket()
    port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn_config(create_app(service), host="127.0.0.1", port=port))
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as err:
            failure.append(err)

    thread = threading.Thread(target=run, name="gates-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + _START_TIMEOUT
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        if not server.started:
            reason = repr(failure[0]) if failure else "it did not start in time"
            msg = f"the service did not start on 127.0.0.1:{port}: {reason}"
            raise GatesError(msg)
        yield Running(f"http://127.0.0.1:{port}", service)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        if service.spool is not None:
            service.spool.close()
