"""DirectSSLObject behaves as ssl.SSLObject for everything uvloop (and asyncio) call on it, and the mTLS
checks around it are unchanged: real certificates from the mesh's CA code, real TLS 1.3 handshakes."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from functools import partial
from typing import Any, cast

import pytest
import uvloop

from meshctl.proxy.tls import DirectSSLObject, TlsContexts, build_contexts, peer_identity
from tests.fakes.mesh_pki import MeshPki

CLIENT_ID = "web.ns.serviceaccount.identity.mesh.local"
SERVER_ID = "books.ns.serviceaccount.identity.mesh.local"


@pytest.fixture(scope="module")
def pki() -> MeshPki:
    return MeshPki()


@pytest.fixture(scope="module")
def ends(pki: MeshPki) -> tuple[TlsContexts, TlsContexts]:
    return build_contexts(pki.issue(CLIENT_ID)), build_contexts(pki.issue(SERVER_ID))


def _pump(src: ssl.MemoryBIO, dst: ssl.MemoryBIO) -> None:
    dst.write(src.read())


def _outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return "ok", call()
    except ssl.SSLError as exc:
        return "raised", type(exc)


def _session(client_ctx: ssl.SSLContext, server_ctx: ssl.SSLContext) -> list[tuple[str, Any]]:
    """Drive a handshake, data both ways and a shutdown through memory BIOs, as uvloop does, recording
    every observable result (return values and exception types) of every method it calls."""
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_ctx.wrap_bio(c_in, c_out, server_side=False, server_hostname=SERVER_ID)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    seen: list[tuple[str, Any]] = [_outcome(server.pending)]  # before the handshake
    for _ in range(4):  # TLS 1.3 with a client certificate: a few flights
        for obj in (client, server):
            seen.append(_outcome(obj.do_handshake))
        _pump(c_out, s_in)
        _pump(s_out, c_in)
    for obj in (client, server):
        seen.append(_outcome(obj.do_handshake))  # both done: returns None
        seen.append(_outcome(partial(peer_identity, obj)))
        seen.append(_outcome(obj.selected_alpn_protocol))
        seen.append(_outcome(obj.version))
        seen.append(_outcome(obj.compression))
        seen.append(_outcome(obj.cipher))
        seen.append(_outcome(obj.getpeercert))  # verified: the parsed certificate
        seen.append(_outcome(partial(obj.getpeercert, True)))
    seen.append(_outcome(lambda: client.read(1024)))  # nothing yet (maybe session tickets): want read
    seen.append(_outcome(lambda: client.write(b"a" * 3000)))
    _pump(c_out, s_in)
    seen.append(_outcome(lambda: server.read(1000)))  # part of the record; the rest is pending
    seen.append(_outcome(server.pending))
    buf = bytearray(4096)
    seen.append(_outcome(lambda: server.read(len(buf), buf)))  # into a buffer: the count
    seen.append(("buffer", bytes(buf[:2000])))
    seen.append(_outcome(server.pending))
    seen.append(_outcome(lambda: server.read(1024)))
    seen.append(_outcome(lambda: server.write(memoryview(b"b" * 1024))))
    _pump(s_out, c_in)
    seen.append(_outcome(lambda: client.read(64 * 1024)))
    seen.append(_outcome(client.unwrap))  # close_notify sent; the peer's not yet received
    _pump(c_out, s_in)
    seen.append(_outcome(lambda: server.read(1024)))  # close_notify: the end of the stream
    seen.append(_outcome(server.unwrap))
    _pump(s_out, c_in)
    seen.append(_outcome(client.unwrap))
    seen.append(_outcome(lambda: client.write(b"late")))
    return seen


def test_contexts_build_direct_objects(ends: tuple[TlsContexts, TlsContexts]) -> None:
    client, server = ends
    for ctx in (client.client_h1, client.client_h2, server.server):
        assert ctx.sslobject_class is DirectSSLObject
        side = ctx is server.server
        obj = ctx.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_side=side, server_hostname=SERVER_ID)
        assert isinstance(obj, ssl.SSLObject)
        # The hot methods reach C without a Python frame: they are the C object's own bound methods.
        for name in ("read", "write", "pending"):
            method = getattr(obj, name)
            assert type(method).__name__ == "builtin_function_or_method"
            assert method.__self__ is obj._sslobj  # type: ignore[attr-defined]


def test_same_results_as_stdlib_object_for_every_call_uvloop_makes(ends: tuple[TlsContexts, TlsContexts]) -> None:
    client, server = ends
    direct = _session(client.client_h1, server.server)
    for ctx in (client.client_h1, server.server):
        ctx.sslobject_class = ssl.SSLObject
    try:
        stdlib = _session(client.client_h1, server.server)
    finally:
        for ctx in (client.client_h1, server.server):
            ctx.sslobject_class = DirectSSLObject
    assert direct == stdlib
    # And the session itself is what it should be: both identities verified, ALPN, data intact, clean close.
    assert ("ok", SERVER_ID) in direct and ("ok", CLIENT_ID) in direct
    assert ("ok", "http/1.1") in direct and ("ok", "TLSv1.3") in direct
    assert ("buffer", b"a" * 2000) in direct
    assert ("ok", b"b" * 1024) in direct
    assert direct[-5:] == [
        ("raised", ssl.SSLWantReadError),  # the client's unwrap waits for the server's close_notify
        ("ok", b""),  # the server reads the end of the stream
        ("ok", None),  # and answers close_notify
        ("ok", None),  # which completes the client's unwrap
        ("raised", ssl.SSLError),  # nothing is written after shutdown
    ]


class _Echo(asyncio.Protocol):
    def __init__(self, seen: dict[str, Any]) -> None:
        self.seen = seen
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports have its methods
        obj = transport.get_extra_info("ssl_object")
        self.seen["server_object"] = type(obj)
        self.seen["server_sees"] = peer_identity(obj)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data.upper())

    def eof_received(self) -> bool | None:
        self.seen["server_eof"] = True
        return None


async def _loopback(client_ctx: ssl.SSLContext, server_ctx: ssl.SSLContext, name: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Echo(seen), "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, ssl=client_ctx, server_hostname=name), 10
        )
        obj = writer.get_extra_info("ssl_object")
        seen["client_object"], seen["client_sees"] = type(obj), peer_identity(obj)
        seen["alpn"] = obj.selected_alpn_protocol()
        replies = []
        for size in (1, 1024, 70_000):  # one record, several records
            writer.write(b"x" * size)
            replies.append(await asyncio.wait_for(reader.readexactly(size), 10))
        seen["replies"] = [(len(r), set(r)) for r in replies]
        writer.close()  # close_notify through unwrap
        await asyncio.wait_for(writer.wait_closed(), 10)
        for _ in range(50):
            if "server_eof" in seen:
                break
            await asyncio.sleep(0.02)
    finally:
        server.close()
        await server.wait_closed()
    return seen


def test_mtls_over_loopback_with_uvloop(ends: tuple[TlsContexts, TlsContexts]) -> None:
    client, server = ends
    seen = uvloop.run(_loopback(client.client_h1, server.server, SERVER_ID))
    assert seen["client_object"] is DirectSSLObject and seen["server_object"] is DirectSSLObject
    assert seen["client_sees"] == SERVER_ID and seen["server_sees"] == CLIENT_ID
    assert seen["alpn"] == "http/1.1"
    assert seen["replies"] == [(1, {ord("X")}), (1024, {ord("X")}), (70_000, {ord("X")})]
    assert seen.get("server_eof") is True


def test_verification_unchanged(pki: MeshPki, ends: tuple[TlsContexts, TlsContexts]) -> None:
    client, server = ends
    # A peer presenting another identity than the one dialled fails the handshake.
    with pytest.raises(ssl.SSLCertVerificationError):
        uvloop.run(_loopback(client.client_h1, server.server, "other.ns.serviceaccount.identity.mesh.local"))
    # A client without a certificate is refused: no byte reaches the server's protocol.
    bare = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    bare.load_verify_locations(cadata=pki.anchors_pem.decode("ascii"))
    with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
        uvloop.run(_loopback(bare, server.server, SERVER_ID))
