"""The proxy's link to the control plane: its certificate (Identity.Certify) and the mesh (Discovery.Watch).

Runs on two daemon threads with *sync* gRPC, so grpc never touches the proxy's event loop; callbacks are
invoked on those threads (the proxy hops them onto its loop). The key is made here and never leaves the
process. The certificate is renewed at 70 % of its lifetime (clamped to 10 s .. 24 h, as Linkerd does);
failures are retried with jittered backoff from 0.5 s to 30 s while the last good certificate and
snapshot stay in use. The control plane must present a certificate for its identity that chains to the
trust anchors.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from os import PathLike
from pathlib import Path
from typing import Protocol, TypeVar

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from meshctl import __version__
from meshctl.api import mesh_pb2, mesh_pb2_grpc
from meshctl.pki.certinfo import verify_leaf
from meshctl.pki.keys import CertificateError, make_csr, new_key, private_key_pem

log = logging.getLogger("meshctl.proxy.control")

RENEW_AT = 0.7
MIN_REFRESH = timedelta(seconds=10)
MAX_REFRESH = timedelta(hours=24)
CERTIFY_TIMEOUT_S = 10.0

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
        self._key = new_key()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._channel: grpc.Channel | None = None
        self._anchors_pem = b""
        self._watch: grpc.CallIterator[mesh_pb2.Snapshot] | None = None
        self._threads: list[threading.Thread] = []
        self.certificate: IssuedCertificate | None = None
        self.snapshot: mesh_pb2.Snapshot | None = None
        self.connected = False  # a Watch stream is delivering

    def start(self) -> None:
        for name, target in (
            ("control-identity", self._identity_loop),
            ("control-discovery", self._watch_loop),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 2.0) -> None:
        """Cancel the calls in flight and wait (bounded) for both threads to end."""
        self._stop.set()
        with self._lock:
            if self._watch is not None:
                self._watch.cancel()  # type: ignore[no-untyped-call]  # untyped in grpc-stubs
            if self._channel is not None:
                self._channel.close()
                self._channel = None
        for thread in self._threads:
            thread.join(timeout)

    # --- channel ----------------------------------------------------------------------------------

    def _get_channel(self) -> grpc.Channel:
        with self._lock:
            if self._stop.is_set():
                raise _Stopped
            if self._channel is None:
                self._anchors_pem = Path(self._config.trust_anchors).read_bytes()
                identity = self._config.control.identity
                options = [
                    ("grpc.ssl_target_name_override", identity),  # verify the server as this identity
                    ("grpc.default_authority", identity),
                    ("grpc.keepalive_time_ms", 10_000),
                    ("grpc.keepalive_timeout_ms", 5_000),
                    ("grpc.keepalive_permit_without_calls", 1),
                    ("grpc.http2.max_pings_without_data", 0),
                    ("grpc.initial_reconnect_backoff_ms", int(self._backoff[0] * 1000)),
                    ("grpc.min_reconnect_backoff_ms", int(self._backoff[0] * 1000)),
                    ("grpc.max_reconnect_backoff_ms", int(self._backoff[1] * 1000)),
                    ("grpc.enable_retries", 0),
                ]
                credentials = grpc.ssl_channel_credentials(root_certificates=self._anchors_pem)
                self._channel = grpc.secure_channel(_target(self._config.control.address), credentials, options)
            return self._channel

    # --- identity ---------------------------------------------------------------------------------

    def _identity_loop(self) -> None:
        backoff = Backoff(*self._backoff)
        while not self._stop.is_set():
            try:
                issued = self._certify()
            except _Stopped:
                return
            except (grpc.RpcError, OSError, CertificateError, ValueError) as exc:
                if self._stop.is_set():
                    return
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
            self._stop.wait(delay)

    def _certify(self) -> IssuedCertificate:
        channel = self._get_channel()
        identity = self._config.identity
        token = Path(self._config.token_file).read_bytes().strip()
        request = mesh_pb2.CertifyRequest(identity=identity, token=token, csr_der=make_csr(identity, self._key))
        response = mesh_pb2_grpc.IdentityStub(channel).Certify(request, timeout=CERTIFY_TIMEOUT_S)
        leaf = x509.load_der_x509_certificate(response.leaf_der)
        intermediates = [x509.load_der_x509_certificate(der) for der in response.intermediates_der]
        if leaf.public_key() != self._key.public_key():
            raise CertificateError("the issued certificate is not for this proxy's key")
        verify_leaf([leaf, *intermediates], x509.load_pem_x509_certificates(self._anchors_pem), identity)
        chain = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (leaf, *intermediates))
        return IssuedCertificate(
            key_pem=private_key_pem(self._key),
            cert_chain_pem=chain,
            trust_anchors_pem=self._anchors_pem,
            identity=identity,
            not_after=leaf.not_valid_after_utc,
        )

    # --- discovery --------------------------------------------------------------------------------

    def _watch_loop(self) -> None:
        backoff = Backoff(*self._backoff)
        while not self._stop.is_set():
            try:
                request = mesh_pb2.WatchRequest(
                    proxy_id=self._config.pod,
                    identity=self._config.identity,
                    namespace=self._config.namespace,
                    proxy_version=__version__,
                    token=Path(self._config.token_file).read_bytes().strip(),  # read again: it may be rotated
                )
                call = self._open_watch(request)
                for snapshot in call:
                    self._received(snapshot)
                    backoff.reset()
                reason = "stream ended by the control plane"
            except _Stopped:
                return
            except (grpc.RpcError, OSError, ValueError) as exc:  # ValueError: the channel was closed
                if self._stop.is_set():
                    return
                reason = _reason(exc)
            finally:
                self.connected = False
            delay = backoff.next()
            state = f"keeping snapshot {self.snapshot.version}" if self.snapshot else "no snapshot yet"
            log.warning("discovery disconnected (%s); %s; reconnecting in %.1fs", reason, state, delay)
            self._stop.wait(delay)

    def _open_watch(self, request: mesh_pb2.WatchRequest) -> grpc.CallIterator[mesh_pb2.Snapshot]:
        channel = self._get_channel()
        with self._lock:  # so that stop() either sees this call to cancel it, or it is never made
            if self._stop.is_set():
                raise _Stopped
            self._watch = mesh_pb2_grpc.DiscoveryStub(channel).Watch(request)
            return self._watch

    def _received(self, snapshot: mesh_pb2.Snapshot) -> None:
        if not self.connected:
            log.info("discovery connected, snapshot %d", snapshot.version)
        self.connected = True
        # After a reconnect the same snapshot comes again: do not make the proxy rebuild for nothing.
        if self.snapshot is not None and self.snapshot == snapshot:
            return
        self.snapshot = snapshot
        _deliver(self._on_snapshot, snapshot, "snapshot")


class _Stopped(Exception):
    """The client was stopped while a call was being prepared."""


def _reason(exc: BaseException) -> str:
    if isinstance(exc, grpc.RpcError) and isinstance(exc, grpc.Call):
        return f"{exc.code().name}: {exc.details()}"
    if isinstance(exc, OSError):
        return f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": ")
    return str(exc)


def _deliver(callback: Callable[[_T], None], value: _T, what: str) -> None:
    try:
        callback(value)
    except Exception:  # the proxy's bug must not end the control link
        log.exception("%s callback failed", what)
