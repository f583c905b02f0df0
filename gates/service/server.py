"""Build the service for a policy and run it on uvicorn.

``verified_model`` is the only way the CLI gets a model: ``gates.release`` verifies the signed
attestation (this run's or the champion's) with the trusted key, requiring every gate
registered before ``artifacts`` to be recorded and PASSED, every subject's digest and the
model file's exact skops layout; ``pipeline.persist.load_attested`` then loads the signed
bytes with the reviewed type list. Anything less raises, and ``python -m gates serve`` exits 2
with the reason before a socket is opened.
"""

from __future__ import annotations

import atexit
import logging
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gates.errors import GatesError
from gates.service.app import PEER, ServedModel, Service, create_app
from gates.service.auth import load_keyring, load_metrics_keyring
from gates.service.monitor import LiveData, Metrics, Spool, fit_forest, log_event, request_logger
from gates.service.proxies import TrustedProxies
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
    inputs = _champions_inputs(policy, attestation) if champion else None
    model, manifest = load_attested(attestation)
    where = "champion" if champion else "this run's attestation"
    return ServedModel(
        model=model,
        sha256=manifest.sha256,
        run_id=attestation.run_id,
        source=f"{where}, signed by {attestation.signer.keyid[:12]}... ({attestation.signer_kind} key)",
        inputs=inputs,
    )


def _champions_inputs(policy: LoadedPolicy, attestation: VerifiedAttestation) -> LoadedPolicy:
    """The champion's signed policy, whose lock and data file resolve to its signed copies.

    The service takes its settings, data contract, drift reference (the lock) and anomaly data
    from these, never from the working tree: an image carries only the registry, and a checkout
    whose ``policy.toml`` differs from the champion's (a rollback to a version signed under
    another policy) must not serve it under unsigned limits, keys and contract. The files (and
    ``[data].checksums``, which the lock's check reads) are read once from the registry, each
    checked against its signed digest on the very bytes kept, and kept in a private folder (0700) removed at exit (an encrypted version decoded):
    read again from the registry after ``verify_champion``, a file rewritten in between was
    served unsigned.
    """
    from pipeline.attestation import AttestationError  # noqa: PLC0415
    from pipeline.config import load_policy  # noqa: PLC0415
    from pipeline.errors import PipelineError  # noqa: PLC0415

    name = str(attestation.predicate.get("policy", {}).get("path", ""))
    signed = {subject.name: subject.sha256 for subject in attestation.subjects}
    if name not in signed:
        msg = f"refused: the champion (run {attestation.run_id}) signed no policy file ({name!r})"
        raise AttestationError(msg)
    try:
        folder = Path(tempfile.mkdtemp(prefix="gates-champion-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        _decode(attestation, name, folder, signed)
        inputs = load_policy(folder / name)
        base = inputs.base_dir.resolve()
        data = inputs.policy.data
        # The checksum file too: the lock's check (and with it the anomaly forest) reads it.
        names = (data.lock, data.path, *((data.checksums,) if data.checksums else ()))
        for path in (inputs.resolve(name) for name in names):
            _decode(attestation, path.resolve().relative_to(base).as_posix(), folder, signed)
    except (PipelineError, OSError, ValueError) as err:
        msg = f"refused: the champion's signed policy, lock or data cannot be read: {err}"
        raise AttestationError(msg) from None
    return inputs


def _decode(
    attestation: VerifiedAttestation, name: str, folder: Path, signed: dict[str, str]
) -> None:
    """Write the signed subject ``name``'s plaintext under ``folder``, checked against its digest."""
    from pipeline.attestation import AttestationError  # noqa: PLC0415
    from pipeline.fsio import sha256_bytes  # noqa: PLC0415

    path = attestation.root / name
    plain = attestation.read(path, path.read_bytes())
    if signed.get(name) != sha256_bytes(plain):
        msg = (
            f"{path}: not as the champion signed it (changed since it was verified?), or not "
            "among its signed files"
        )
        raise AttestationError(msg)
    target = folder / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(plain)


def build_service(
    policy: LoadedPolicy, served: ServedModel, *, logger: logging.Logger | None = None
) -> Service:
    """The service's parts: contract, metrics, drift reference, forest, keys and spool."""
    from pipeline.data import lock_key, read_lock  # noqa: PLC0415

    # Settings, contract, lock and data: the signed ones the model came with (the champion's),
    # else the project's (verified against this run's attestation). Written files (the spool)
    # stay in the project.
    signed = served.inputs or policy
    serve = signed.policy.serve
    data = signed.policy.data
    logger = logger or request_logger()
    keyring = load_keyring(serve.api_keys_env) if serve.require_api_key else None
    metrics_keyring = load_metrics_keyring()  # the operator's, never the policy's
    metrics = Metrics(model_name=serve.name, run_id=served.run_id, sha256=served.sha256)
    lock = read_lock(signed.resolve(data.lock))
    entry = lock.files.get(lock_key(signed, signed.resolve(data.path)))
    reference = None if entry is None else (entry.reference or entry.profile)
    forest = _forest(signed, logger)
    live = LiveData(
        metrics,
        reference=reference,
        forest=forest,
        window=serve.monitor.drift_window,
        clients=serve.monitor.drift_clients,
    )
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
        metrics_keyring=metrics_keyring,
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


class KeepPeer:
    """ASGI middleware: the connection's own address in ``scope[PEER]`` before a trusted
    proxy's ``X-Forwarded-For`` replaces ``scope["client"]``."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        scope[PEER] = scope.get("client")
        await self.app(scope, receive, send)


def uvicorn_config(app: Any, *, host: str, port: int, proxies: TrustedProxies | None = None) -> Any:
    """uvicorn's settings: no access log of its own (the guard logs); proxy headers read only
    from the operator's trusted proxies (none: never), always named here so that uvicorn's
    own default (``FORWARDED_ALLOW_IPS``, else loopback) never applies."""
    import uvicorn  # noqa: PLC0415
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware  # noqa: PLC0415

    allowed = (proxies or TrustedProxies()).allow_ips()
    # uvicorn's own middleware, applied here rather than by uvicorn, inside one that keeps the
    # connection's own address (``PEER``): /metrics' loopback default asks for both (red team 14).
    if allowed:
        app = KeepPeer(ProxyHeadersMiddleware(app, trusted_hosts=allowed))
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        forwarded_allow_ips=allowed,
        server_header=False,
        date_header=True,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=5,
        h11_max_incomplete_event_size=16 * 1024,
        lifespan="off",
    )


def serve_forever(
    policy: LoadedPolicy,
    served: ServedModel,
    *,
    host: str,
    port: int,
    proxies: TrustedProxies | None = None,
) -> None:
    """Run the service until interrupted (the CLI's ``serve``)."""
    import uvicorn  # noqa: PLC0415

    service = build_service(policy, served)
    log_event(
        service.logger,
        event="serving",
        host=host,
        port=port,
        model=(served.inputs or policy).policy.serve.name,
        run_id=served.run_id,
        model_sha256=served.sha256,
        source=served.source,
        auth=service.keyring is not None,
        trusted_proxies=[str(n) for n in proxies.networks] if proxies else [],
        trusted_proxies_from=proxies.source if proxies else "none",
    )
    config = uvicorn_config(create_app(service), host=host, port=port, proxies=proxies)
    uvicorn.Server(config).run()


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
def on_loopback(
    service: Service,
    proxies: TrustedProxies | None = None,
    sock: socket.socket | None = None,
) -> Iterator[Running]:
    """Run ``service`` on 127.0.0.1 on a free port in a thread (or on ``sock``, bound to a
    port that 127.0.0.1 reaches); stop it on exit."""
    import uvicorn  # noqa: PLC0415

    sock = sock or loopback_socket()
    port = int(sock.getsockname()[1])
    config = uvicorn_config(create_app(service), host="127.0.0.1", port=port, proxies=proxies)
    server = uvicorn.Server(config)
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
