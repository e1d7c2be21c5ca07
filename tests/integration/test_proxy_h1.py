"""HTTP/1.1 through two proxies on real sockets: client → outbound → mTLS → inbound → app.

The control plane is bypassed: each runtime gets its certificate and a discovery snapshot through the
callbacks the control client calls. Everything runs on one uvloop loop; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import uvloop

from meshctl.api import mesh_pb2
from meshctl.errors import MeshError
from meshctl.identity import workload_identity
from meshctl.proxy.config import parse_proxy_config
from meshctl.proxy.h1 import downstream as server
from meshctl.proxy.main import Proxy
from meshctl.proxy.runtime import build_runtime
from tests.fakes.mesh_pki import MeshPki
from tests.ports import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

NS = "booksapp"
BOOKS_ID = workload_identity("books", NS)
WEB_ID = workload_identity("webapp", NS)
AUTHORITY = f"books.{NS}.svc.cluster.local:7000"
WAIT_S = 5.0
PROFILE = {
    "routes": [
        {"name": "GET /books/{id}", "condition": {"method": "GET", "pathRegex": "/books/[^/]+"}},
        {"name": "slow", "condition": {"pathRegex": "/slow"}, "timeout": "200ms"},
    ]
}


async def app_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A tiny HTTP/1.1 app: echoes method, path and body; /die hangs up mid-request, /overlong sends more
    than its Content-Length."""
    try:
        while True:
            line = await reader.readline()
            if not line:
                return
            headers: dict[str, str] = {}
            while (h := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = h.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            method, path, _ = line.decode().split(" ", 2)
            size = int(headers.get("content-length", "0"))
            body = await reader.readexactly(size) if size else b""
            if headers.get("transfer-encoding") == "chunked":
                while (n := int((await reader.readline()).split(b";")[0], 16)) > 0:
                    body += await reader.readexactly(n)
                    await reader.readline()
                while await reader.readline() not in (b"\r\n", b""):
                    pass  # trailers
            if path in ("/slow", "/drain"):
                await asyncio.sleep(1.0 if path == "/slow" else 0.3)
            if path == "/die":
                writer.transport.abort()
                return
            if path == "/overlong":  # five bytes more than its Content-Length, in the same write
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhelloEXTRA")
                await writer.drain()
                continue
            if path == "/half":
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly ten b")
                await writer.drain()
                writer.transport.abort()
                return
            answer = f"{method} {path} {headers.get('host')} ".encode() + body
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(answer), answer))
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


class Mesh:
    """An app, its inbound proxy (books-0) and a client-side outbound proxy (webapp-0)."""

    def __init__(self, endpoint_identity: str = BOOKS_ID) -> None:
        self.endpoint_identity = endpoint_identity
        self.pki = MeshPki()
        self.proxies: list[Proxy] = []
        self.app: asyncio.AbstractServer | None = None
        self.outbound_port = free_port()

    async def __aenter__(self) -> Mesh:
        try:
            await self._start()
        except BaseException:
            # What started before the failure (say, a port taken between free_port() and the bind) would
            # stay open, and uvloop's loop.close() waits for open servers forever: the test would hang
            # instead of failing.
            await self.__aexit__()
            raise
        return self

    async def _start(self) -> None:
        app_port, inbound_port = free_port(), free_port()
        self.app = await asyncio.start_server(app_connection, "127.0.0.1", app_port)
        endpoint = mesh_pb2.Endpoint(
            address="127.0.0.1", port=inbound_port, identity=self.endpoint_identity, pod="books-0", ready=True
        )
        snapshot = mesh_pb2.Snapshot(
            version=1, services=[mesh_pb2.Service(name="books", namespace=NS, port=7000, protocol="http",
                                                  endpoints=[endpoint])],
            resources=[mesh_pb2.Resource(kind="ServiceProfile", name=f"books.{NS}.svc.cluster.local", namespace=NS,
                                         spec_json=json.dumps(PROFILE))],
        )  # fmt: skip
        common: dict[str, Any] = {
            "namespace": NS, "control": {"address": "127.0.0.1:1", "identity": "unused"},
            "trust_anchors": "unused", "token_file": "unused",
        }  # fmt: skip
        docs = [
            {**common, "pod": "books-0", "identity": BOOKS_ID, "admin": {"listen": f"127.0.0.1:{free_port()}"},
             "inbound": {"listen": f"127.0.0.1:{inbound_port}", "app": f"127.0.0.1:{app_port}"}},
            {**common, "pod": "webapp-0", "identity": WEB_ID, "admin": {"listen": f"127.0.0.1:{free_port()}"},
             "outbound": {"listen": f"127.0.0.1:{self.outbound_port}"}},
        ]  # fmt: skip
        loop = asyncio.get_running_loop()
        for doc in docs:
            config = parse_proxy_config(doc)
            runtime = build_runtime(config, clock=loop.time)
            runtime.on_certificate(self.pki.issue(config.identity))
            runtime.on_snapshot(snapshot)
            proxy = Proxy(config, runtime)
            self.proxies.append(proxy)  # before it binds: stop() closes whatever it bound
            await proxy.start_listeners()

    async def __aexit__(self, *_: object) -> None:
        for proxy in self.proxies:
            await proxy.stop()
        if self.app is not None:
            self.app.close()
            await self.app.wait_closed()

    @property
    def inbound(self) -> Proxy:
        return self.proxies[0]

    @property
    def outbound(self) -> Proxy:
        return self.proxies[1]

    async def connect(self) -> Client:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", self.outbound_port), WAIT_S)
        return Client(reader, writer)


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def response(self) -> tuple[int, dict[str, str], bytes]:
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), WAIT_S)
        lines = head.decode().split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {n.strip().lower(): v.strip() for n, _, v in (x.partition(":") for x in lines[1:] if x)}
        body = await asyncio.wait_for(self.reader.readexactly(int(headers.get("content-length", "0"))), WAIT_S)
        return status, headers, body

    async def get(self, path: str, host: str = "books", body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
        method = b"POST" if body else b"GET"
        await self.send(b"%s %s HTTP/1.1\r\nHost: %s\r\ncontent-length: %d\r\n\r\n%s"
                        % (method, path.encode(), host.encode(), len(body), body))  # fmt: skip
        return await self.response()

    async def closed(self) -> bool:
        """True when the proxy closes the connection (EOF) within the wait."""
        rest = await asyncio.wait_for(self.reader.read(), WAIT_S)
        return rest == b"" or self.reader.at_eof()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


def run(test: Callable[[], Awaitable[None]]) -> None:
    uvloop.run(asyncio.wait_for(test(), 45))


def counter(text: str, metric: str, **labels: str) -> float:
    """Sum of a metric's samples whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(metric + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_requests_flow_through_both_proxies_and_are_counted() -> None:
    async def scenario() -> None:
        async with Mesh() as mesh:
            client = await mesh.connect()
            hosts = ["books", "books:7000", "books.booksapp", "books.booksapp.svc.cluster.local:7000"]
            for i in range(20):
                status, headers, body = await client.get(f"/books/{i}", host=hosts[i % len(hosts)],
                                                         body=b"x" * i)  # fmt: skip
                assert status == 200, (status, headers, body)
                assert body.startswith(f"{'POST' if i else 'GET'} /books/{i} {hosts[i % len(hosts)]} ".encode())
            # pipelined, chunked request body, on the same keep-alive connection
            await client.send(
                b"GET /p1 HTTP/1.1\r\nHost: books\r\n\r\n"
                b"POST /p2 HTTP/1.1\r\nHost: books\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
            )
            assert (await client.response())[2] == b"GET /p1 books "
            assert (await client.response())[2] == b"POST /p2 books abc"
            await client.close()
            out = mesh.outbound.runtime.metrics.render().decode()
            inbound = mesh.inbound.runtime.metrics.render().decode()
            assert counter(out, "request_total", direction="outbound", authority=AUTHORITY) == 22
            assert counter(out, "response_total", direction="outbound", status_code="200") == 22
            assert counter(inbound, "request_total", direction="inbound", authority=AUTHORITY) == 22
            assert counter(inbound, "response_total", direction="inbound", classification="success") == 22
            assert counter(out, "tcp_open_total", direction="outbound", peer="dst", tls="true") >= 1

    run(scenario)


def test_absolute_form_and_unknown_service() -> None:
    async def scenario() -> None:
        async with Mesh() as mesh:
            client = await mesh.connect()
            await client.send(b"GET http://books:7000/abs?q=1 HTTP/1.1\r\nHost: ignored\r\n\r\n")
            status, _, body = await client.response()
            assert status == 200 and body == b"GET /abs?q=1 books:7000 "
            status, headers, _ = await client.get("/x", host="nowhere")
            assert status == 503 and headers["mesh-proxy-error"] == "unknown service"
            status, _, _ = await client.get("/after")  # the connection is still usable
            assert status == 200
            await client.close()

    run(scenario)


def test_wrong_peer_identity_is_refused() -> None:
    async def scenario() -> None:
        # Discovery says the endpoint is "ratings", but the inbound proxy there proves "books".
        async with Mesh(endpoint_identity=workload_identity("ratings", NS)) as mesh:
            client = await mesh.connect()
            status, headers, _ = await client.get("/books/1")
            assert status == 502
            assert headers["mesh-proxy-error"] == "peer identity mismatch"
            assert counter(mesh.inbound.runtime.metrics.render().decode(), "request_total") == 0
            await client.close()

    run(scenario)


def test_malformed_request_is_400_and_the_next_client_is_served() -> None:
    async def scenario() -> None:
        async with Mesh() as mesh:
            bad = await mesh.connect()
            await bad.send(b"POST / HTTP/1.1\r\nHost: books\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: books\r\n\r\n")  # fmt: skip
            status, headers, _ = await bad.response()
            assert status == 400 and headers["connection"] == "close" and "mesh-proxy-error" in headers
            assert await bad.closed()
            await bad.close()
            good = await mesh.connect()
            assert (await good.get("/fine"))[0] == 200
            await good.close()
            inbound = mesh.inbound.runtime.metrics.render().decode()
            assert counter(inbound, "request_total") == 1  # nothing smuggled through

    run(scenario)


def test_app_dying_mid_request_is_502_not_a_hang() -> None:
    async def scenario() -> None:
        async with Mesh() as mesh:
            client = await mesh.connect()
            assert (await client.get("/warm"))[0] == 200
            status, headers, _ = await client.get("/die", body=b"payload")
            assert status == 502 and "mesh-proxy-error" in headers
            other = await mesh.connect()
            assert (await other.get("/ok"))[0] == 200
            # a response cut off after its head: the client connection is closed, never left hanging
            await other.send(b"GET /half HTTP/1.1\r\nHost: books\r\n\r\n")
            head = await asyncio.wait_for(other.reader.readuntil(b"\r\n\r\n"), WAIT_S)
            assert head.startswith(b"HTTP/1.1 200")
            rest = await asyncio.wait_for(other.reader.read(), WAIT_S)
            assert len(rest) < 100
            await client.close()
            await other.close()

    run(scenario)


def test_route_timeout_is_504_and_routes_are_labelled() -> None:
    async def scenario() -> None:
        async with Mesh() as mesh:
            client = await mesh.connect()
            started = asyncio.get_running_loop().time()
            status, headers, _ = await client.get("/slow")
            assert status == 504 and headers["mesh-proxy-error"] == "response timeout"
            assert asyncio.get_running_loop().time() - started < 0.9  # the route timeout, not the app, ended it
            assert (await client.get("/books/7"))[0] == 200
            await client.close()
            out = mesh.outbound.runtime.metrics.render().decode()
            inbound = mesh.inbound.runtime.metrics.render().decode()
            assert counter(out, "route_request_total", rt_route="GET /books/{id}") == 1
            assert counter(inbound, "route_request_total", direction="inbound", rt_route="GET /books/{id}") == 1
            assert counter(out, "route_response_total", rt_route="slow", status_code="504") == 1

    run(scenario)


def test_a_mesh_that_fails_to_start_closes_what_it_had_started() -> None:
    async def scenario() -> None:
        mesh = Mesh()
        with socket.socket() as taken:  # the outbound proxy, started last, finds its port taken
            taken.bind(("127.0.0.1", mesh.outbound_port))
            taken.listen()
            with pytest.raises(MeshError, match="outbound listener cannot bind"):
                await mesh.__aenter__()
        servers = [s for p in mesh.proxies for s in p.servers] + ([mesh.app] if mesh.app is not None else [])
        open_ = [s for s in servers if s.is_serving()]
        for left in open_:
            left.close()  # even when the assertion fails, so that the loop can close
        assert servers and not open_

    run(scenario)


def test_shutdown_lets_the_request_in_flight_finish() -> None:
    async def scenario() -> None:
        async with Mesh() as mesh:
            client = await mesh.connect()
            assert (await client.get("/warm"))[0] == 200
            await client.send(b"GET /drain HTTP/1.1\r\nHost: books\r\n\r\n")
            await asyncio.sleep(0.05)
            idle = await mesh.connect()
            stopping = [asyncio.ensure_future(p.stop()) for p in mesh.proxies]
            assert await idle.closed()  # idle connections are closed at once
            status, headers, body = await client.response()  # the one in flight finishes
            assert status == 200 and body.startswith(b"GET /drain") and headers["connection"] == "close"
            await asyncio.wait_for(asyncio.gather(*stopping), 12)
            await client.close()
            await idle.close()

    run(scenario)


async def sent_away(client: Client) -> bytes:
    """What the proxy said before it closed the connection (it must close it within the wait)."""
    try:
        return await asyncio.wait_for(client.reader.read(), WAIT_S)
    except ConnectionError:  # a reset sends the client away too, without a word
        return b""
    finally:
        await client.close()


def test_slow_and_idle_clients_are_sent_away_and_others_served(monkeypatch: pytest.MonkeyPatch) -> None:
    """A client that never finishes its head (or drips it) is closed at the head deadline, which
    dripping does not extend; an idle keep-alive connection is closed too; the proxy keeps serving."""
    monkeypatch.setattr(server, "HEADER_S", 0.4)
    monkeypatch.setattr(server, "IDLE_S", 0.4)

    async def scenario() -> None:
        async with Mesh() as mesh:
            stalled = await mesh.connect()
            await stalled.send(b"GET /books/1 HTTP/1.1\r\nHost: bo")
            dripping = await mesh.connect()
            await dripping.send(b"GET /books/2 HTTP/1.1\r\nX-Drip: ")
            loop = asyncio.get_running_loop()
            started = loop.time()
            for _ in range(40):  # one byte every 50 ms: 2 s of head if each byte extended the deadline
                if dripping.reader.at_eof() or dripping.writer.is_closing():
                    break
                with contextlib.suppress(ConnectionError):
                    await dripping.send(b"x")
                await asyncio.sleep(0.05)
            assert await sent_away(dripping) == b""
            assert loop.time() - started < 1.5, "dripping bytes must not extend the head deadline"
            assert await sent_away(stalled) == b""

            idle = await mesh.connect()
            assert (await idle.get("/books/7"))[0] == 200
            assert await sent_away(idle) == b""  # nothing more asked: closed after IDLE_S

            fresh = await mesh.connect()
            assert (await fresh.get("/books/8"))[0] == 200
            await fresh.close()

    run(scenario)
