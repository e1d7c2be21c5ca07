"""The control plane process: gRPC (Identity + Discovery) over TLS, the admin endpoint, the config poller.

The gRPC server presents a certificate for control_plane_identity() issued by its own issuer, so proxies
verify it against the same trust anchors as every other mesh identity. The certificate is renewed at
70 % of its lifetime, without a restart: each new connection gets a TLS context with the current one.
The gRPC server is the control plane's own (grpc_server.py); grpcio is not in this process.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from meshctl.aio import spawn
from meshctl.api import mesh_pb2
from meshctl.control.ca import load_issuer, sign_csr
from meshctl.control.config import ControlConfig
from meshctl.control.discovery_service import WATCH, DiscoveryService
from meshctl.control.grpc_server import GrpcServer, ServerLimits
from meshctl.control.identity_service import CERTIFY, IdentityService
from meshctl.control.logs import get_log_level, set_log_level
from meshctl.control.metrics import ControlMetrics
from meshctl.control.readiness import ReadinessProber
from meshctl.control.rpc import Method
from meshctl.control.store import MeshStore
from meshctl.errors import ConfigError
from meshctl.identity import control_plane_identity
from meshctl.metrics.admin import AdminApp, start_admin_server, stop_admin_server
from meshctl.pki.keys import CertAndKey, CertificateError, make_csr, new_key, private_key_pem

if TYPE_CHECKING:
    from meshctl.control.webhook_server import WebhookServer

log = logging.getLogger("meshctl.control")

RENEW_AT = 0.7  # fraction of a certificate's lifetime after which it is renewed


class ServerIdentity:
    """The control plane's own TLS certificate, re-issued before it expires.

    The server asks for the TLS context at every new connection; past 70 % of the certificate's lifetime
    that call issues a new certificate and builds a new context, so new connections get it and the ones
    already open keep theirs.
    """

    def __init__(self, issuer: CertAndKey, identity: str, lifetime: timedelta) -> None:
        self._issuer = issuer
        self._identity = identity
        self._lifetime = lifetime
        self._key = new_key()
        self._context = self._issue()

    def _issue(self) -> ssl.SSLContext:
        leaf = sign_csr(make_csr(self._identity, self._key), self._identity, self._issuer, lifetime=self._lifetime)
        now = datetime.now(UTC)
        self.not_after = leaf.not_valid_after_utc
        self.renew_at = now + (self.not_after - now) * RENEW_AT
        chain = leaf.public_bytes(serialization.Encoding.PEM) + self._issuer.cert_pem()
        return server_context(private_key_pem(self._key), chain)

    def context(self) -> ssl.SSLContext:
        if datetime.now(UTC) >= self.renew_at:
            try:
                self._context = self._issue()
            except (CertificateError, ssl.SSLError) as exc:
                log.error("cannot renew the control plane certificate: %s", exc)
                self.renew_at = datetime.now(UTC) + timedelta(seconds=30)  # not at every handshake
            else:
                log.info("control plane certificate renewed until %s", self.not_after.isoformat())
        return self._context


def server_context(key_pem: bytes, chain_pem: bytes) -> ssl.SSLContext:
    """A TLS 1.2+ server context offering only h2 (gRPC clients insist on it in ALPN)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["h2"])
    context.options |= ssl.OP_NO_RENEGOTIATION
    context.num_tickets = 0
    # The ssl module loads keys only from files: a private temporary directory holds them for the call.
    with tempfile.TemporaryDirectory(prefix="meshctl-control-") as folder:
        key_file, chain_file = Path(folder, "key.pem"), Path(folder, "chain.pem")
        key_file.touch(0o600)
        key_file.write_bytes(key_pem)
        chain_file.write_bytes(chain_pem)
        context.load_cert_chain(chain_file, key_file)
    return context


class ControlPlane:
    def __init__(
        self, config: ControlConfig, config_path: Path | None = None, limits: ServerLimits | None = None
    ) -> None:
        self.config = config
        self.limits = limits  # keepalive and HTTP/2 limits of the gRPC server (None: the defaults)
        self._config_path = config_path
        self.metrics = ControlMetrics()
        self.store: MeshStore | None = None
        self._server: GrpcServer | None = None
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
        identity_service = IdentityService(
            issuer,
            tokens=lambda: store.config.tokens,
            lifetime=lambda: timedelta(hours=store.config.cert_lifetime_hours),
            metrics=self.metrics,
        )
        discovery = DiscoveryService(store, self.metrics, tokens=lambda: store.config.tokens)
        methods = {
            CERTIFY: Method(mesh_pb2.CertifyRequest.FromString, unary=identity_service.Certify, serialize=_serialize),
            # Watch yields the bytes the store serialised once per change: nothing to encode per proxy.
            WATCH: Method(mesh_pb2.WatchRequest.FromString, stream=discovery.Watch),
        }
        server = GrpcServer(methods, identity.context, self.limits)
        await server.start(config.listen.host, config.listen.port)
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


def _serialize(message: Any) -> bytes:
    return bytes(message.SerializeToString())


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
