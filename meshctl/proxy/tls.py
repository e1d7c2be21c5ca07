"""TLS contexts from the certificate the control plane issued; swapped whole on every renewal.

Inbound: TLS 1.3 only, a client certificate is required and verified against the trust anchors,
ALPN h2 / http/1.1. Outbound: the same key and chain, the anchors, and hostname checking with
server_hostname = the peer's identity (every leaf carries its identity as its DNS SAN), so a peer
with another identity fails the handshake.

Every context's SSL objects are DirectSSLObject: uvloop calls read/write/pending on the SSL object for
every record both ways, and ssl.SSLObject's versions are Python frames that only forward to the C object.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from meshctl.proxy.issuance import load_chain

if TYPE_CHECKING:
    from meshctl.proxy.control_client import IssuedCertificate

ALPN_SERVER = ["h2", "http/1.1"]


class DirectSSLObject(ssl.SSLObject):
    """ssl.SSLObject whose read, write and pending are the C object's own bound methods.

    The stdlib's are one Python frame each around `self._sslobj.<method>`; uvloop (and asyncio) look
    them up once per connection and call them per record, so binding the C methods on the instance
    removes those frames and changes nothing else: same return values, same exceptions (SSLWantReadError,
    SSLZeroReturnError, ...), same objects underneath. The one difference is the calling form: read
    takes its size (and optional buffer) positionally, as both event loops call it, not read() or
    read(len=..., buffer=None); write takes its data positionally. Handshake, certificate checks and
    every other method are the stdlib's, untouched.
    """

    @classmethod
    def _create(cls, *args: Any, **kwargs: Any) -> DirectSSLObject:
        self: DirectSSLObject = super()._create(*args, **kwargs)  # type: ignore[misc]
        c = self._sslobj  # type: ignore[attr-defined]
        vars(self).update(read=c.read, write=c.write, pending=c.pending)
        return self


@dataclass(frozen=True)
class TlsContexts:
    identity: str
    not_after: datetime
    server: ssl.SSLContext  # inbound listener
    client_h1: ssl.SSLContext  # HTTP/1.1 to another proxy's inbound
    client_h2: ssl.SSLContext  # HTTP/2 to another proxy's inbound


def _base(purpose: int, cert: IssuedCertificate) -> ssl.SSLContext:
    ctx = ssl.SSLContext(purpose)
    ctx.sslobject_class = DirectSSLObject
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=cert.trust_anchors_pem.decode("ascii"))
    load_chain(ctx, cert.cert_chain_pem, cert.key_pem)
    return ctx


def server_context(cert: IssuedCertificate) -> ssl.SSLContext:
    ctx = _base(ssl.PROTOCOL_TLS_SERVER, cert)
    ctx.set_alpn_protocols(ALPN_SERVER)
    return ctx


def client_context(cert: IssuedCertificate, alpn: list[str]) -> ssl.SSLContext:
    ctx = _base(ssl.PROTOCOL_TLS_CLIENT, cert)
    ctx.check_hostname = True
    ctx.set_alpn_protocols(alpn)
    return ctx


def build_contexts(cert: IssuedCertificate) -> TlsContexts:
    """Raises ssl.SSLError / ValueError when the material does not fit together."""
    return TlsContexts(
        identity=cert.identity,
        not_after=cert.not_after,
        server=server_context(cert),
        client_h1=client_context(cert, ["http/1.1"]),
        client_h2=client_context(cert, ["h2"]),
    )


def peer_identity(ssl_object: Any) -> str | None:
    """The identity a verified peer certificate names (its first DNS SAN), None without one."""
    if ssl_object is None:
        return None
    try:
        cert = ssl_object.getpeercert()
    except (ValueError, ssl.SSLError):
        return None
    for kind, value in (cert or {}).get("subjectAltName", ()):
        if kind == "DNS":
            return str(value)
    return None


def rotating_server_context(current: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """A listener's context that hands each handshake to the newest server context.

    A listening socket keeps the context it was created with; the SNI callback (run for every
    ClientHello) switches the connection to `current()`, so a renewed certificate serves new
    connections without re-binding.
    """
    front = current()

    def switch(ssl_object: ssl.SSLObject, server_name: str | None, ctx: ssl.SSLContext) -> None:
        newest = current()
        if newest is not ctx:
            ssl_object.context = newest

    front.sni_callback = switch
    return front
