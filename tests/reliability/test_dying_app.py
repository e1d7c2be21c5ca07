"""A replica whose app dies between two requests: every later request is answered by the other replica.

Two books replicas (app + inbound proxy each) behind one outbound proxy, on real sockets with mTLS, as in
test_failover.py. When a process is killed, the kernel closes its sockets one by one: its keep-alive
connections may close before its listener does, so the inbound proxy's next connection can be accepted into
the dying listener's queue and then reset, before the app ever read the request. Regression: that fresh
connection's reset was answered `502 upstream closed`, which the outbound proxy may not retry, so one GET
through the mesh failed right after `kill -9` of a books app (its proxy up), in a loaded full test run.
"""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest

from tests.integration.test_proxy_h1 import Client, run
from tests.ports import free_port
from tests.reliability.test_failover import Replicas

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

REQUESTS_AFTER = 20


class DyingApp:
    """An HTTP/1.1 app that answers at once (so the balancer prefers it) until `kill`; from then on it
    resets, unanswered, the next request on a kept-alive connection (when `stale`) and on the next new
    connection, and closes its listener as soon as that one is reset: what a killed process's sockets do
    when its connections close before its listener."""

    def __init__(self, name: str, stale: bool) -> None:
        self.name = name
        self.stale = stale
        self.port = free_port()
        self.server: asyncio.AbstractServer | None = None
        self.conns: set[asyncio.WriteTransport] = set()
        self.dying = False
        self.resets: list[str] = []  # "kept" or "new", for each connection reset with a request unread

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        transport = writer.transport
        new = self.dying  # accepted after the kill: only the dying listener's queue would have held it
        self.conns.add(transport)
        try:
            while line := await reader.readline():
                if self.dying:
                    self._reset(transport, "new" if new else "kept")
                    return
                while await reader.readline() not in (b"\r\n", b""):
                    pass
                answer = self.name.encode() + b" " + line.split(b" ")[1]
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(answer), answer))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.conns.discard(transport)
            transport.abort()

    def _reset(self, transport: asyncio.WriteTransport, kind: str) -> None:
        self.resets.append(kind)
        if kind == "new" and self.server is not None:
            self.server.close()  # the listener is gone: further connects are refused
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close → RST
        transport.abort()

    def kill(self) -> None:
        self.dying = True
        if not self.stale:  # the kept-alive connections close first (FIN), the proxy forgets them
            for transport in list(self.conns):
                transport.close()


@pytest.mark.parametrize("stale", [True, False], ids=["kept-alive-connection-reset-too", "kept-alive-closed-first"])
def test_a_request_reset_unread_by_a_dying_app_is_answered_by_the_other_replica(stale: bool) -> None:
    async def scenario() -> None:
        mesh = Replicas()
        dying = DyingApp("books-1", stale)
        mesh.apps[1] = dying  # type: ignore[call-overload]  # same start/port/name/server as test_failover's App
        async with mesh:
            reader, writer = await asyncio.open_connection("127.0.0.1", mesh.outbound_port)
            client = Client(reader, writer)
            seen = set()
            # Until both replicas answered: books-1's proxy keeps a connection to its app, and books-0 (whose
            # app takes 1.2 s on /slow) costs more than books-1 to the balancer, which sends the next request
            # to books-1.
            for i in range(20):
                status, _, body = await client.get(f"/slow/{i}")
                assert status == 200, body
                seen.add(body.split(b" ")[0])
                if len(seen) == 2:
                    break
            assert seen == {b"books-0", b"books-1"}
            dying.kill()
            await asyncio.sleep(0.2)  # the inbound proxy sees the closed connections (when they closed)
            answers = []
            for i in range(REQUESTS_AFTER):
                status, headers, body = await client.get(f"/after/{i}")
                answers.append((status, headers.get("mesh-proxy-error", ""), body.split(b" ")[0].decode()))
            await client.close()
            assert "new" in dying.resets, f"no request reached the dying listener: {dying.resets} {answers}"
            assert answers == [(200, "", "books-0")] * REQUESTS_AFTER, answers

    run(scenario)
