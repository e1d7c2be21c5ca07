"""The two-HAProxy peer's certificates come from the mesh's CA and hold up in a real mutual-TLS handshake."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from pathlib import Path

import pytest

from bench.configs import haproxy_cfg, haproxy_mtls_options
from bench.peer_tls import CLIENT_IDENTITY, issue_peer_certificates


def _context(pem: Path, anchors: Path, purpose: ssl.Purpose) -> ssl.SSLContext:
    ctx = ssl.create_default_context(purpose, cafile=str(anchors))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(str(pem))  # leaf, issuer and key in one file, as HAProxy's `crt` reads it
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def test_client_and_server_certificates_verify_each_other_against_the_mesh_anchor(tmp_path: Path) -> None:
    certs = issue_peer_certificates(tmp_path / "identity", tmp_path / "peer")
    assert certs.client_pem.stat().st_mode & 0o077 == 0  # private keys inside
    server_ctx = _context(certs.server_pem, certs.anchors, ssl.Purpose.CLIENT_AUTH)
    client_ctx = _context(certs.client_pem, certs.anchors, ssl.Purpose.SERVER_AUTH)
    seen: dict[str, object] = {}
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve() -> None:
            conn, _ = listener.accept()
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                seen["client"] = tls.getpeercert()
                tls.sendall(b"ok")

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            client_ctx.wrap_socket(raw, server_hostname=certs.server_name) as tls,
        ):
            assert tls.recv(2) == b"ok"
            assert tls.version() == "TLSv1.3"
        thread.join(5)
    client_cert = seen["client"]
    assert isinstance(client_cert, dict)
    assert ("DNS", CLIENT_IDENTITY) in client_cert["subjectAltName"]


def test_a_server_name_other_than_the_certificates_is_refused(tmp_path: Path) -> None:
    certs = issue_peer_certificates(tmp_path / "identity", tmp_path / "peer")
    server_ctx = _context(certs.server_pem, certs.anchors, ssl.Purpose.CLIENT_AUTH)
    client_ctx = _context(certs.client_pem, certs.anchors, ssl.Purpose.SERVER_AUTH)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve() -> None:
            conn, _ = listener.accept()
            with conn, contextlib.suppress(ssl.SSLError, OSError):  # the client gives up mid-handshake
                server_ctx.wrap_socket(conn, server_side=True)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            pytest.raises(ssl.SSLCertVerificationError),
        ):
            client_ctx.wrap_socket(raw, server_hostname="someone-else.bench.peer")
        thread.join(5)


def test_haproxy_mtls_lines_require_tls13_and_a_verified_peer(tmp_path: Path) -> None:
    crt, ca = tmp_path / "c.pem", tmp_path / "ca.pem"
    inner = haproxy_cfg(19002, 18080, bind_tls=haproxy_mtls_options(crt, ca))
    assert f"bind 127.0.0.1:19002 ssl crt {crt} ca-file {ca} verify required ssl-min-ver TLSv1.3\n" in inner
    outer = haproxy_cfg(19003, 19002, server_tls=haproxy_mtls_options(crt, ca, verify_host="in.peer"))
    assert f"server nginx 127.0.0.1:19002 ssl crt {crt} ca-file {ca} verify required ssl-min-ver TLSv1.3 " \
           "verifyhost in.peer\n" in outer  # fmt: skip
    assert "ssl" not in haproxy_cfg(19000, 18080)
