"""MTLS failure modes on the inbound port: every peer that is not a current mesh workload over TLS 1.3
is refused before a byte reaches the app, and a destination that presents the wrong identity is refused
by the calling proxy.

Each case first proves its client works when only the one thing under test is put right (a valid mesh
certificate over TLS 1.3 is served), so a refusal cannot come from a broken test client.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from meshctl.control.ca import generate_issuer, generate_trust_anchor, sign_csr
from meshctl.pki.keys import make_csr, new_key, private_key_pem
from tests.fakes.mesh_pki import MeshPki
from tests.reliability.h1mesh import AUTHORITY, BOOKS_ID, NS, WEB_ID, H1Mesh, read_replies

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

REQUEST = f"GET /v HTTP/1.1\r\nHost: {AUTHORITY}\r\nConnection: close\r\n\r\n".encode()
PAST = datetime.now(UTC) - timedelta(days=2)


@pytest.fixture(scope="module")
def mesh() -> Iterator[H1Mesh]:
    anchor = generate_trust_anchor(now=PAST)  # backdated, so an already expired leaf can be issued
    with H1Mesh(pki=MeshPki(anchor, generate_issuer(anchor, now=PAST))).running() as running:
        yield running


def context(mesh: H1Mesh, *, leaf: tuple[bytes, bytes] | None, tls12: bool = False) -> ssl.SSLContext:
    """A client context trusting the mesh; `leaf` is (chain PEM, key PEM) or None for no certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cadata=mesh.pki.anchors_pem.decode("ascii"))
    ctx.set_alpn_protocols(["http/1.1"])
    if tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if leaf is not None:
        fd, path = tempfile.mkstemp(suffix=".pem")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(leaf[0] + leaf[1])
            ctx.load_cert_chain(path)
        finally:
            os.unlink(path)
    return ctx


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def mesh_leaf(
    pki: MeshPki, identity: str = WEB_ID, *, now: datetime | None = None, hours: float = 24
) -> tuple[bytes, bytes]:
    key = new_key()
    leaf = sign_csr(make_csr(identity, key), identity, pki.issuer, lifetime=timedelta(hours=hours), now=now)
    return pem(leaf) + pem(pki.issuer.cert), private_key_pem(key)


def exchange(mesh: H1Mesh, ctx: ssl.SSLContext) -> list[int]:
    """Statuses answered on the inbound port for one GET; [] when the connection was refused."""
    raw = socket.create_connection(("127.0.0.1", mesh.ports["inbound"]), timeout=5)
    try:
        with ctx.wrap_socket(raw, server_hostname=BOOKS_ID) as tls:
            tls.sendall(REQUEST)
            replies, _ = read_replies(tls)
            return [r.status for r in replies]
    except (ssl.SSLError, OSError):
        return []
    finally:
        with contextlib.suppress(OSError):
            raw.close()


def refused(mesh: H1Mesh, ctx: ssl.SSLContext) -> None:
    mesh.backend.take()
    assert exchange(mesh, ctx) == []
    assert mesh.backend.take() == []


def test_the_valid_client_is_served(mesh: H1Mesh) -> None:
    mesh.backend.take()
    assert exchange(mesh, context(mesh, leaf=mesh_leaf(mesh.pki))) == [200]
    assert [s.target for s in mesh.backend.take()] == ["/v"]


def test_no_client_certificate_is_refused(mesh: H1Mesh) -> None:
    refused(mesh, context(mesh, leaf=None))


def test_a_certificate_from_another_ca_is_refused(mesh: H1Mesh) -> None:
    refused(mesh, context(mesh, leaf=mesh_leaf(MeshPki())))


def test_an_expired_certificate_is_refused(mesh: H1Mesh) -> None:
    expired = mesh_leaf(mesh.pki, now=PAST + timedelta(minutes=1), hours=1)  # expired a day ago
    refused(mesh, context(mesh, leaf=expired))


def test_tls_1_2_is_refused(mesh: H1Mesh) -> None:
    refused(mesh, context(mesh, leaf=mesh_leaf(mesh.pki), tls12=True))


def test_a_destination_presenting_the_wrong_identity_is_refused_by_the_caller(mesh: H1Mesh) -> None:
    """Discovery says authors; the endpoint presents books: the outbound proxy must not send the request."""
    mesh.backend.take()
    with mesh.connect("outbound") as sock:
        authority = f"authors.{NS}.svc.cluster.local:7001"
        sock.sendall(f"GET /v HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n".encode())
        replies, _ = read_replies(sock)
    assert [r.status for r in replies] == [502], replies
    assert "identity" in replies[0].headers.get("mesh-proxy-error", "") + replies[0].body.decode(errors="replace")
    assert mesh.backend.take() == []
