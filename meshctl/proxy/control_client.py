"""The proxy's link to the control plane: its certificate (Identity.Certify) and the mesh (Discovery.Watch).

Two tasks on the proxy's own event loop share one HTTP/2 connection (grpc_client.py): no grpcio and no
`cryptography` in the long-running proxy (issuance.py makes each key and CSR in a child process and
checks the issued certificate with an in-memory TLS handshake). Callbacks run on the loop. A fresh key
is made for every certificate; the certificate is renewed at 70 % of its lifetime (clamped to
10 s .. 24 h, as Linkerd does); failures are retried with jittered backoff from 0.5 s to 30 s while the
last good certificate and snapshot stay in use. The control plane must present a certificate for its
identity that chains to the trust anchors; a connection whose PINGs go unanswered is replaced.

Discovery asks for deltas: after the first snapshot the control plane sends only what changed, and
the client merges it into the snapshot it holds, so the proxy is still handed complete snapshots. A
delta that does not follow the held version ends the stream (the next one starts with a complete
snapshot); the held snapshot stays in use meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from os import PathLike
from pathlib import Path
from typing import Any, Protocol, TypeVar

from google.protobuf.message import DecodeError

from meshctl import __version__
from meshctl.aio import spawn
from meshctl.api import mesh_pb2
from meshctl.discovery_delta import apply_delta
from meshctl.proxy.grpc_client import GrpcConnection, GrpcError
from meshctl.proxy.issuance import IssuanceError, der_to_pem, request_csr, verify_issued

log = logging.getLogger("meshctl.proxy.control")

RENEW_AT = 0.7
MIN_REFRESH = timedelta(seconds=10)
MAX_REFRESH = timedelta(hours=24)
CERTIFY_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 5.0
KEEPALIVE_S = 10.0  # a PING this often on an open connection ...
KEEPALIVE_TIMEOUT_S = 5.0  # ... answered within this, or the connection is replaced
CERTIFY = "/meshctl.control.v1.Identity/Certify"
WATCH = "/meshctl.control.v1.Discovery/Watch"

_T = TypeVar("_T")


class _ControlTarget(Protocol):
    @property
    def address(self) -> object: ...  # "host:port" (or an object with host and port)

    @property
    def identity(self) -> str: ...


class ClientConfig(Protocol):
    """The part of ProxyConfig the client reads."""

    @property
    def pod(self) -> str: ...

    @property
    def namespace(self) -> str: ...

    @property
    def identity(self) -> str: ...

    @property
    def trust_anchors(self) -> str | PathLike[str]: ...

    @property
    def token_file(self) -> str | PathLike[str]: ...

    @property
    def control(self) -> _ControlTarget: ...


@dataclass(frozen=True)
class IssuedCertificate:
    key_pem: bytes
    cert_chain_pem: bytes  # leaf first, then intermediates
    trust_anchors_pem: bytes
    identity: str
    not_after: datetime


class Backoff:
    """Exponential delays with ±20 % jitter, so restarted proxies do not reconnect in lockstep."""

    def __init__(self, initial: float = 0.5, maximum: float = 30.0) -> None:
        self.initial, self.maximum = initial, maximum
        self._attempt = 0

    def next(self) -> float:
        delay = min(self.maximum, self.initial * 2.0**self._attempt)
        self._attempt = min(self._attempt + 1, 32)
        return min(self.maximum, delay * random.uniform(0.8, 1.2))  # jitter needs no cryptographic randomness

    def reset(self) -> None:
        self._attempt = 0


def refresh_delay(not_after: datetime, now: datetime | None = None) -> float:
    remaining = not_after - (now or datetime.now(UTC))
    return min(max(remaining * RENEW_AT, MIN_REFRESH), MAX_REFRESH).total_seconds()


def _target(address: object) -> str:
    if isinstance(address, str):
        return address
    if isinstance(address, tuple) and len(address) == 2:
        return f"{address[0]}:{address[1]}"
    host, port = getattr(address, "host", None), getattr(address, "port", None)
    if host is not None and port is not None:
        return f"{host}:{port}"
    return str(address)


class ControlClient:
    def __init__(
        self,
        config: ClientConfig,
        on_certificate: Callable[[IssuedCertificate], None],
        on_snapshot: Callable[[mesh_pb2.Snapshot], None],
        *,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        self._config = config
        self._on_certificate = on_certificate
        self._on_snapshot = on_snapshot
        self._backoff = (backoff_initial, backoff_max)
        self._conn: GrpcConnection | None = None
        self._connecting: asyncio.Future[GrpcConnection] | None = None
        self._anchors_pem = b""
        self._tasks: list[asyncio.Future[None]] = []
        self._stopped = False
        self.certificate: IssuedCertificate | None = None
        self.snapshot: mesh_pb2.Snapshot | None = None
        self.connected = False  # a Watch stream is delivering

    def start(self) -> None:
        """Start both loops on the running event loop."""
        self._tasks = [spawn(self._identity_loop(), name="control identity"),
                       spawn(self._watch_loop(), name="control discovery")]  # fmt: skip

    async def stop(self) -> None:
        """Cancel both loops and close the connection."""
        self._stopped = True
        # A connection attempt runs in its own task (both loops share it): cancel it too, or it opens a
        # connection after the stop that nobody closes.
        tasks: list[asyncio.Future[Any]] = list(self._tasks)
        if self._connecting is not None:
            tasks.append(self._connecting)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close("proxy stopping")
            try:
                await asyncio.wait_for(asyncio.shield(conn.lost), 0.5)  # GOAWAY and close_notify, briefly
            except TimeoutError:
                conn.abort()  # a server that does not answer close_notify must not hold the proxy's exit

    # --- connection ---------------------------------------------------------------------------------

    async def _connection(self) -> GrpcConnection:
        """The shared connection, opened when there is none (one attempt at a time for both loops)."""
        conn = self._conn
        if conn is not None and not conn.closed.done():
            return conn
        if self._connecting is None:
            self._connecting = spawn(self._connect(), name="control connect")
        try:
            return await asyncio.shield(self._connecting)
        finally:
            if self._connecting is not None and self._connecting.done():
                self._connecting = None

    async def _connect(self) -> GrpcConnection:
        self._anchors_pem = Path(self._config.trust_anchors).read_bytes()
        identity = self._config.control.identity
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(cadata=self._anchors_pem.decode("ascii"))
        ctx.set_alpn_protocols(["h2"])
        host, _, port = _target(self._config.control.address).rpartition(":")
        loop = asyncio.get_running_loop()
        _, conn = await asyncio.wait_for(
            loop.create_connection(lambda: GrpcConnection(identity), host, int(port), ssl=ctx,
                                   server_hostname=identity, ssl_handshake_timeout=CONNECT_TIMEOUT_S),
            CONNECT_TIMEOUT_S,
        )  # fmt: skip
        if self._stopped:  # stopped during the handshake
            conn.abort()
            raise asyncio.CancelledError
        self._conn = conn
        spawn(self._keepalive(conn), name="control keepalive")
        return conn

    async def _keepalive(self, conn: GrpcConnection) -> None:
        while not conn.closed.done():
            await asyncio.wait({conn.closed}, timeout=KEEPALIVE_S)
            if not conn.closed.done() and not await conn.ping(KEEPALIVE_TIMEOUT_S):
                conn.close("the control plane stopped answering PINGs")

    # --- identity ---------------------------------------------------------------------------------

    async def _identity_loop(self) -> None:
        backoff = Backoff(*self._backoff)
        while not self._stopped:
            try:
                issued = await self._certify()
            except (GrpcError, OSError, IssuanceError, ValueError, TimeoutError, DecodeError) as exc:
                delay = backoff.next()
                held = self.certificate
                kept = (
                    f"keeping the certificate valid until {held.not_after.isoformat()}"
                    if held
                    else "no certificate yet"
                )
                log.warning("certify failed (%s); %s; retrying in %.1fs", _reason(exc), kept, delay)
            else:
                backoff.reset()
                self.certificate = issued
                delay = refresh_delay(issued.not_after)
                log.info(
                    "certificate for %s valid until %s, renewing in %.0fs",
                    issued.identity,
                    issued.not_after.isoformat(),
                    delay,
                )
                _deliver(self._on_certificate, issued, "certificate")
            await asyncio.sleep(delay)

    async def _certify(self) -> IssuedCertificate:
        identity = self._config.identity
        token = Path(self._config.token_file).read_bytes().strip()
        key_pem, csr_der = await request_csr(identity)
        conn = await self._connection()
        request = mesh_pb2.CertifyRequest(identity=identity, token=token, csr_der=csr_der)
        reply = await conn.call(CERTIFY, request.SerializeToString(), CERTIFY_TIMEOUT_S).unary()
        response = mesh_pb2.CertifyResponse.FromString(reply)
        chain = b"".join(der_to_pem(der) for der in (response.leaf_der, *response.intermediates_der))
        not_after = verify_issued(chain, key_pem, self._anchors_pem, identity)
        return IssuedCertificate(
            key_pem=key_pem, cert_chain_pem=chain, trust_anchors_pem=self._anchors_pem, identity=identity,
            not_after=not_after,
        )  # fmt: skip

    # --- discovery --------------------------------------------------------------------------------

    async def _watch_loop(self) -> None:
        backoff = Backoff(*self._backoff)
        while not self._stopped:
            try:
                request = mesh_pb2.WatchRequest(
                    proxy_id=self._config.pod,
                    identity=self._config.identity,
                    namespace=self._config.namespace,
                    proxy_version=__version__,
                    token=Path(self._config.token_file).read_bytes().strip(),  # read again: it may be rotated
                    accept_delta=True,
                )
                conn = await self._connection()
                call = conn.call(WATCH, request.SerializeToString())
                while (message := await call.next()) is not None:
                    self._received(mesh_pb2.Snapshot.FromString(message))
                    backoff.reset()
                reason = "stream ended by the control plane"
            except (GrpcError, OSError, ValueError, TimeoutError, DecodeError) as exc:
                reason = _reason(exc)
            finally:
                self.connected = False
            delay = backoff.next()
            state = f"keeping snapshot {self.snapshot.version}" if self.snapshot else "no snapshot yet"
            log.warning("discovery disconnected (%s); %s; reconnecting in %.1fs", reason, state, delay)
            await asyncio.sleep(delay)

    def _received(self, snapshot: mesh_pb2.Snapshot) -> None:
        if snapshot.delta:
            snapshot = apply_delta(self.snapshot, snapshot)  # DeltaError (a ValueError) ends the stream
        if not self.connected:
            log.info("discovery connected, snapshot %d", snapshot.version)
        self.connected = True
        # After a reconnect the same snapshot comes again: do not make the proxy rebuild for nothing.
        if self.snapshot is not None and self.snapshot == snapshot:
            return
        self.snapshot = snapshot
        _deliver(self._on_snapshot, snapshot, "snapshot")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"the control plane's certificate: {exc.verify_message}"
    if isinstance(exc, OSError):
        return f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": ")
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc)


def _deliver(callback: Callable[[_T], None], value: _T, what: str) -> None:
    try:
        callback(value)
    except Exception:  # the proxy's bug must not end the control link
        log.exception("%s callback failed", what)
