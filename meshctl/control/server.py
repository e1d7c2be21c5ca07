"""The control plane process: gRPC (Identity + Discovery) over TLS, the admin endpoint, the config poller.

The gRPC server presents a certificate for control_plane_identity() issued by its own issuer, so proxies
verify it against the same trust anchors as every other mesh identity. The certificate is renewed at
70 % of its lifetime through gRPC's dynamic credentials, without a restart.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from meshctl.aio import spawn
from meshctl.api import mesh_pb2_grpc
from meshctl.control.ca import load_issuer, sign_csr
from meshctl.control.config import ControlConfig
from meshctl.control.discovery_service import DiscoveryService
from meshctl.control.identity_service import IdentityService
from meshctl.control.logs import get_log_level, set_log_level
from meshctl.control.metrics import ControlMetrics
from meshctl.control.readiness import ReadinessProber
from meshctl.control.store import MeshStore
from meshctl.errors import ConfigError, ConflictError
from meshctl.identity import control_plane_identity
from meshctl.metrics.admin import AdminApp, start_admin_server, stop_admin_server
from meshctl.pki.keys import CertAndKey, CertificateError, make_csr, new_key, private_key_pem

if TYPE_CHECKING:
    from meshctl.control.webhook_server import WebhookServer

log = logging.getLogger("meshctl.control")

RENEW_AT = 0.7  # fraction of a certificate's lifetime after which it is renewed

# Keepalive: the server pings idle connections so a dead proxy's stream is cancelled within ~30 s, and
# accepts the proxies' own pings every 10 s.
SERVER_OPTIONS: list[tuple[str, int]] = [
    ("grpc.so_reuseport", 0),  # a second control plane on the same address must fail, not share it
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    ("grpc.max_receive_message_length", 1024 * 1024),
    # TLS records of at most 4 KiB: grpc's frame protector keeps buffers of this size for every
    # connection, and at 16 KiB (the default) they were a quarter of a connected proxy's cost. Measured
    # with 300-400 proxies: 105 KiB per proxy at 16 KiB, 82 at 4 KiB, 74 at 2 KiB; a whole snapshot
    # cost the same CPU at 4 KiB as at 16, but 8 % more here and 20 % more in the proxies at 2 KiB.
    ("grpc.tsi.max_frame_size", 4096),
]


class ServerIdentity:
    """The control plane's own TLS certificate, re-issued before it expires."""

    def __init__(self, issuer: CertAndKey, identity: str, lifetime: timedelta) -> None:
        self._issuer = issuer
        self._identity = identity
        self._lifetime = lifetime
        self._key = new_key()
        self._lock = threading.Lock()  # the fetcher runs on gRPC's threads
        self._configuration = self._issue()

    def _issue(self) -> grpc.ServerCertificateConfiguration:
        leaf = sign_csr(make_csr(self._identity, self._key), self._identity, self._issuer, lifetime=self._lifetime)
        now = datetime.now(UTC)
        self.not_after = leaf.not_valid_after_utc
        self.renew_at = now + (self.not_after - now) * RENEW_AT
        chain = leaf.public_bytes(serialization.Encoding.PEM) + self._issuer.cert_pem()
        return grpc.ssl_server_certificate_configuration([(private_key_pem(self._key), chain)])

    def _fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """Called by gRPC at each handshake: None keeps the current certificate."""
        with self._lock:
            if datetime.now(UTC) < self.renew_at:
                return None
            try:
                self._configuration = self._issue()
            except CertificateError as exc:
                log.error("cannot renew the control plane certificate: %s", exc)
                return None
            log.info("control plane certificate renewed until %s", self.not_after.isoformat())
            return self._configuration

    def credentials(self) -> grpc.ServerCredentials:
        # The stubs say the fetcher cannot return None; gRPC documents None as "keep the current one".
        fetcher = cast(Callable[[], grpc.ServerCertificateConfiguration], self._fetch)
        return grpc.dynamic_ssl_server_credentials(self._configuration, fetcher, require_client_authentication=False)


class ControlPlane:
    def __init__(self, config: ControlConfig, config_path: Path | None = None) -> None:
        self.config = config
        self._config_path = config_path
        self.metrics = ControlMetrics()
        self.store: MeshStore | None = None
        self._server: grpc.aio.Server | None = None
        self._admin: asyncio.AbstractServer | None = None
        self._identity: ServerIdentity | None = None
        self._poller: asyncio.Task[None] | None = None
        self._prober: asyncio.Task[None] | None = None
        self.webhook: WebhookServer | None = None  # the proxy injector, when the config names one
        self.anchors: list[x509.Certificate] = []
        self.ready = False

    async def start(self) -> None:
        config = self.config
        issuer, self.anchors = load_issuer(config.identity_dir)
        _warn_on_expiry(issuer.cert, "issuer")
        for anchor in self.anchors:
            _warn_on_expiry(anchor, "trust anchor")
        lifetime = timedelta(hours=config.cert_lifetime_hours)
        try:
            self._identity = identity = ServerIdentity(issuer, control_plane_identity(), lifetime)
        except CertificateError as exc:
            raise ConfigError(
                f"the control plane cannot certify itself: {exc}",
                hint="issue a new issuer certificate (or remove the identity directory and run `meshctl up`)",
            ) from None
        prober = ReadinessProber(lambda: store.probes(), lambda: store.readiness_changed())
        self.store = store = MeshStore(self._config_path, config, prober.is_ready)
        server = grpc.aio.server(options=SERVER_OPTIONS)
        mesh_pb2_grpc.add_IdentityServicer_to_server(
            IdentityService(
                issuer,
                tokens=lambda: store.config.tokens,
                lifetime=lambda: timedelta(hours=store.config.cert_lifetime_hours),
                metrics=self.metrics,
            ),
            server,
        )
        discovery = DiscoveryService(store, self.metrics, tokens=lambda: store.config.tokens)
        discovery.add_to_server(server)
        try:
            port = server.add_secure_port(str(config.listen), identity.credentials())
        except RuntimeError:
            port = 0
        if port == 0:
            raise ConflictError(
                f"cannot listen on {config.listen}: address in use or not available",
                hint="is another control plane running? (`meshctl down` stops the local mesh)",
            )
        await server.start()
        self._server = server
        self.metrics.gauges = lambda: (store.version, len(store.invalid_files))
        app = AdminApp(
            metrics=self.metrics,
            ready=lambda: self.ready,
            get_log_level=get_log_level,
            set_log_level=set_log_level,
            config_dump=self._config_dump,
        )
        self._admin = await start_admin_server(config.admin.host, config.admin.port, app)
        if config.webhook is not None:
            from meshctl.control.webhook_server import WebhookServer

            hook = config.webhook
            self.webhook = WebhookServer(hook.listen.host, hook.listen.port, hook.cert, hook.key)
            self.webhook.start()
        self._poller = spawn(store.poll(), name="control-config-poller")
        self._prober = spawn(prober.run(), name="control-readiness-prober")
        self.ready = True
        log.info(
            "control plane serving on %s (identity %s, certificate until %s), admin on %s",
            config.listen,
            control_plane_identity(),
            identity.not_after.isoformat(),
            config.admin,
        )

    async def stop(self, grace: float = 5.0) -> None:
        """End every Watch stream cleanly, let in-flight calls finish, then close the listeners."""
        self.ready = False
        if self.store is not None:
            self.store.close()
        for task in (self._poller, self._prober):
            if task is not None:
                task.cancel()
        if self._server is not None:
            await self._server.stop(grace)
        if self._admin is not None:
            await stop_admin_server(self._admin)
        if self.webhook is not None:
            await asyncio.to_thread(self.webhook.stop)
        log.info("control plane stopped")

    def _config_dump(self) -> dict[str, Any]:
        config = self.store.config if self.store else self.config
        snapshot = self.store.snapshot if self.store else None
        return {
            "listen": str(config.listen),
            "admin": str(config.admin),
            "identity": control_plane_identity(),
            "certificate_not_after": self._identity.not_after.isoformat() if self._identity else None,
            "identity_dir": str(config.identity_dir),
            "config_dir": str(config.config_dir),
            "cert_lifetime_hours": config.cert_lifetime_hours,
            "snapshot_version": snapshot.version if snapshot else None,
            "services": [f"{s.name}.{s.namespace}:{s.port}" for s in snapshot.services] if snapshot else [],
            "endpoints": {
                f"{s.name}.{s.namespace}:{s.port}": [
                    f"{e.address}:{e.port} {e.pod} {'ready' if e.ready else 'not ready'}" for e in s.endpoints
                ]
                for s in (snapshot.services if snapshot else [])
            },
            "resources": [f"{r.kind.lower()}/{r.name}" for r in snapshot.resources] if snapshot else [],
            "invalid_files": {str(k): v for k, v in self.store.invalid_files.items()} if self.store else {},
            "watch_streams": self.metrics.watch_streams,
        }


EXPIRY_WARNING = timedelta(days=60)  # as `linkerd check`: warn when a CA certificate has less left


def _warn_on_expiry(cert: x509.Certificate, what: str) -> None:
    left = cert.not_valid_after_utc - datetime.now(UTC)
    if left < EXPIRY_WARNING:
        log.warning(
            "the %s certificate expires at %s (%d days left)",
            what,
            cert.not_valid_after_utc.isoformat(),
            left.days,
        )
