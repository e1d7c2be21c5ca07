"""How an upstream connection passes from one HTTP/1.1 exchange to the next: real client and upstream
connections on transports that only keep what is written, the real dialer, pool, stack and balancer."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from typing import Any

from meshctl.proxy.h1.downstream import Downstream, Listener
from meshctl.proxy.h1.exchange import Exchange
from meshctl.proxy.h1.request import RequestHead
from meshctl.proxy.h1.upstream import MAX_CONNECTING, Upstream
from tests.unit.proxy.test_stack import AUTH, make_runtime

REQUEST = b"GET /books HTTP/1.1\r\nHost: " + AUTH.encode() + b"\r\n\r\n"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789"


class Transport:
    def __init__(self) -> None:
        self.written = b""
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += data

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


class Mesh:
    """One outbound listener whose two endpoints (round robin) each have pooled connections."""

    def __init__(self) -> None:
        self.listener = Listener(make_runtime(), "outbound")
        self.dialer = self.listener.dialer
        dest = self.listener.runtime.router.resolve(AUTH)
        assert dest is not None and len(dest.endpoints) == 2
        self.endpoints: tuple[Hashable, ...] = dest.endpoints

    def client(self) -> tuple[Downstream, Transport]:
        down, transport = Downstream(self.listener), Transport()
        down.connection_made(transport)  # type: ignore[arg-type]
        return down, transport

    def pooled(self, key: Hashable) -> tuple[Upstream, Transport]:
        up, transport = Upstream(self.listener.runtime.metrics, "outbound", False, self.dialer.pool, key), Transport()
        up.connection_made(transport)  # type: ignore[arg-type]
        self.dialer.pool.put(key, up)
        return up, transport

    def idle(self, key: Hashable) -> list[Upstream]:
        return list(self.dialer.pool.idle.get(key, []))


def _run(test: Any) -> None:
    asyncio.run(test())


def test_the_balancer_picks_every_request_and_each_endpoint_reuses_its_own_connection() -> None:
    async def test() -> None:
        mesh = Mesh()
        a, b = mesh.endpoints
        (up_a, wire_a), (up_b, wire_b) = mesh.pooled(a), mesh.pooled(b)
        down, client = mesh.client()
        for n in range(4):  # one client connection: round robin still alternates per request
            down.data_received(REQUEST)
            up = up_a if n % 2 == 0 else up_b
            assert up.owner is down.current and up.owner is not None and up.owner.endpoint == up.key
            up.data_received(RESPONSE)
            assert down.current is None and up.owner is None
        assert wire_a.written == wire_b.written == REQUEST * 2
        assert client.written == RESPONSE * 4
        assert mesh.idle(a) == [up_a] and mesh.idle(b) == [up_b]

    _run(test)


def test_a_closed_pooled_connection_is_never_taken() -> None:
    async def test() -> None:
        mesh = Mesh()
        a, _ = mesh.endpoints
        (fresh, fresh_wire), (stale, stale_wire) = mesh.pooled(a), mesh.pooled(a)  # `stale` on top
        stale.close()  # closing (connection_lost not yet delivered): still in the pool's list
        down, client = mesh.client()
        down.data_received(REQUEST)
        assert fresh.owner is down.current and stale_wire.written == b"" and fresh_wire.written == REQUEST
        fresh.data_received(RESPONSE)
        assert client.written == RESPONSE and mesh.idle(a) == [fresh]

    _run(test)


def test_bytes_after_a_response_end_the_connection_and_the_client_still_gets_the_response_whole() -> None:
    async def test() -> None:
        mesh = Mesh()
        a, b = mesh.endpoints
        (spare, spare_wire), (up, wire), (up_b, _) = mesh.pooled(a), mesh.pooled(a), mesh.pooled(b)
        down, client = mesh.client()
        down.data_received(REQUEST)
        assert up.owner is down.current
        # A second response nobody asked for, in the same read: it must never reach another request.
        up.data_received(RESPONSE + b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL")
        assert client.written == RESPONSE and not client.closed
        assert wire.closed and up.closed and mesh.idle(a) == [spare]
        down.data_received(REQUEST)  # (round robin: endpoint b)
        up_b.data_received(RESPONSE)
        down.data_received(REQUEST)  # endpoint a again: the other connection
        assert spare.owner is down.current and spare_wire.written == REQUEST and wire.written == REQUEST
        spare.data_received(RESPONSE)
        assert client.written == RESPONSE * 3 and mesh.idle(a) == [spare]

    _run(test)


def test_stray_line_ends_after_a_response_are_skipped_as_llhttp_skips_them() -> None:
    async def test() -> None:
        mesh = Mesh()
        a, _ = mesh.endpoints
        up, _ = mesh.pooled(a)
        down, client = mesh.client()
        down.data_received(REQUEST)
        up.data_received(RESPONSE + b"\r\n")
        assert client.written == RESPONSE and not up.closed and mesh.idle(a) == [up]

    _run(test)


def test_a_request_waiting_for_a_connection_gets_the_next_one_released_before_the_pool_does() -> None:
    async def test() -> None:
        mesh = Mesh()
        a, b = mesh.endpoints
        (up_a, wire_a), (up_b, _) = mesh.pooled(a), mesh.pooled(b)
        first, first_wire = mesh.client()
        first.data_received(REQUEST)  # endpoint a: its pooled connection
        other, _ = mesh.client()
        other.data_received(REQUEST)  # endpoint b
        mesh.dialer.connecting[a] = MAX_CONNECTING  # every connect slot of `a` is busy: the next one waits
        waiting, waiting_wire = mesh.client()
        waiting.data_received(REQUEST)  # endpoint a again: no idle connection, so it waits
        assert waiting.current is not None and waiting.current.up is None and len(mesh.dialer.waiting[a]) == 1
        up_a.data_received(RESPONSE)  # the first exchange ends: its connection goes to the waiter
        assert first_wire.written == RESPONSE and up_a.owner is waiting.current and mesh.idle(a) == []
        assert wire_a.written == REQUEST * 2
        up_a.data_received(RESPONSE)
        assert waiting_wire.written == RESPONSE and mesh.idle(a) == [up_a]
        up_b.data_received(RESPONSE)
        assert mesh.idle(b) == [up_b]

    _run(test)


def test_a_connection_whose_exchange_ends_while_the_listener_drains_is_closed() -> None:
    async def test() -> None:
        mesh = Mesh()
        a, _ = mesh.endpoints
        up, wire = mesh.pooled(a)
        down, client = mesh.client()
        down.data_received(REQUEST)
        mesh.listener.drain()
        up.data_received(RESPONSE)
        assert client.written.startswith(b"HTTP/1.1 200 OK\r\n") and b"connection: close\r\n" in client.written
        assert client.closed and wire.closed and mesh.idle(a) == []

    _run(test)


def test_a_whole_request_leaves_as_its_pooled_connection_is_handed_over_and_one_with_a_body_after_the_read() -> None:
    async def test() -> None:
        mesh = Mesh()
        pooled = [mesh.pooled(key) for key in mesh.endpoints]
        wires = [wire for _, wire in pooled]
        down, _ = mesh.client()
        head = RequestHead([(b"Host", AUTH.encode())], REQUEST, None, "GET", b"/books", "/books", AUTH)
        down.current = ex = Exchange(down, head)
        ex.req_done = True  # read whole, as Downstream.on_request starts it
        ex.start()  # no read's flush after it here: the connect wrote it
        assert ex.up is not None and ex.up.wbuf == [] and sorted(w.written for w in wires) == [b"", REQUEST]
        next(up for up, _ in pooled if up is ex.up).data_received(RESPONSE)
        post = b"POST /books HTTP/1.1\r\nHost: " + AUTH.encode() + b"\r\nContent-Length: 3\r\n\r\nabc"
        down.data_received(post)  # its body comes after its head is handed over: both leave once read
        assert sorted(w.written for w in wires) == [REQUEST, post]

    _run(test)
