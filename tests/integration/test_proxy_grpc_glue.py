"""The HTTP/2 glue on real sockets: grpcio client -> our downstream protocol -> pool -> grpcio server.

Routing is a fixed plan here (the runtime is exercised in test_proxy_grpc.py); what is under test is the
asyncio glue, the upstream pool and the gRPC semantics end to end: every call shape, trailers and
status codes, a backend killed mid-stream, deadlines, an endpoint that refuses connections, drain.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
import pytest
import uvloop

from meshctl.proxy.errors import DeadlineExceeded, Failure
from meshctl.proxy.h2.core import Outbox
from meshctl.proxy.h2.dial import UpstreamAddress, plain_dialer
from meshctl.proxy.h2.headers import RequestHead
from meshctl.proxy.h2.pool import H2Pool
from meshctl.proxy.h2.server import DownstreamProtocol, H2Stack
from tests.integration.test_proxy_grpc_support import BACKEND_SCRIPT, SERVICE, Backend, _same

pytestmark = pytest.mark.integration

T = TypeVar("T")


@dataclass
class Plan:
    endpoint: UpstreamAddress
    results: list[tuple[int, int | None]]
    failure: Failure | None = None
    timeout_s: float | None = None

    tap = None  # nobody taps in these tests
    tap_trailers: list[tuple[bytes, bytes]] | None = None

    def tapped(self, request: bool, data: bytes) -> None:
        raise AssertionError("an untapped request must not report body chunks")

    budget = None  # no retryable routes in these tests
    delay_s = 0.0
    set_cookie: bytes | None = None

    def retry(self, status: int, grpc_status: int | None, latency_ms: float) -> bool:
        return False

    def repick(self, exc: BaseException | None = None) -> bool:
        return False

    def finish(self, status: int, grpc_status: int | None, latency_ms: float) -> None:
        self.results.append((status, grpc_status))

    def abandon(self) -> None:
        self.results.append((0, None))

    def rescue(self, exc: BaseException) -> Failure:
        if isinstance(exc, DeadlineExceeded):
            return Failure(504, 4, "deadline exceeded")
        return Failure(503, 14, str(exc))


@dataclass
class Policy:
    endpoint: UpstreamAddress
    results: list[tuple[int, int | None]] = field(default_factory=list)

    def plan(self, head: RequestHead) -> Plan:
        return Plan(self.endpoint, self.results)


class ProxyThread:
    """One downstream listener on its own uvloop thread."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.loop = uvloop.new_event_loop()
        self.ready = threading.Event()
        self.port = 0
        self.upstream_connections = 0
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.stack, self.server = self.run(self._start())

    async def _start(self) -> tuple[H2Stack, asyncio.Server]:
        outbox = Outbox()
        stack = H2Stack(H2Pool(plain_dialer(), outbox, on_tcp=self._tcp), outbox)
        server = await asyncio.get_running_loop().create_server(
            lambda: DownstreamProtocol(stack, self.policy), "127.0.0.1", 0
        )
        self.port = server.sockets[0].getsockname()[1]
        return stack, server

    def _tcp(self, endpoint: object, opened: bool) -> None:
        self.upstream_connections += opened

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        async def close() -> None:
            self.server.close()
            await self.stack.drain(grace_s=2.0)

        self.run(close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def backend() -> Iterator[Backend]:
    server = Backend()
    yield server
    server.stop()


@pytest.fixture
def proxy(backend: Backend) -> Iterator[ProxyThread]:
    running = ProxyThread(Policy(UpstreamAddress("127.0.0.1", backend.port)))
    yield running
    running.stop()


def channel(port: int) -> grpc.Channel:
    return grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.enable_retries", 0)])


def test_every_call_shape_with_trailers(proxy: ProxyThread) -> None:
    with channel(proxy.port) as ch:
        unary = ch.unary_unary(f"/{SERVICE}/Unary", _same, _same)
        reply, call = unary.with_call(b"hello", timeout=5)
        assert reply == b"olleh" and call.code() == grpc.StatusCode.OK
        assert ("x-trailer", "t1") in call.trailing_metadata()
        count = ch.unary_stream(f"/{SERVICE}/Count", _same, _same)
        assert list(count(b"50", timeout=5)) == [b"%d" % n for n in range(50)]
        total = ch.stream_unary(f"/{SERVICE}/Sum", _same, _same)
        assert total(iter([b"%d" % n for n in range(100)]), timeout=5) == b"4950"
        echo = ch.stream_stream(f"/{SERVICE}/Echo", _same, _same)
        assert list(echo(iter([b"a", b"b", b"c"]), timeout=5)) == [b"echo:a", b"echo:b", b"echo:c"]
    assert proxy.policy.results == [(200, 0)] * 4


def test_application_status_and_message_pass_through(proxy: ProxyThread) -> None:
    with channel(proxy.port) as ch, pytest.raises(grpc.RpcError) as raised:
        ch.unary_unary(f"/{SERVICE}/Fail", _same, _same)(b"why", timeout=5)
    error: Any = raised.value
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and error.details() == "nope: why"
    assert proxy.policy.results == [(200, 9)]


def test_large_messages_both_ways(proxy: ProxyThread) -> None:
    big = bytes(range(256)) * 4096  # 1 MiB: many windows' worth through both connections
    with channel(proxy.port) as ch:
        assert ch.unary_unary(f"/{SERVICE}/Unary", _same, _same)(big, timeout=10) == big[::-1]


def test_deadline_is_enforced_and_the_backend_is_cancelled(proxy: ProxyThread, backend: Backend) -> None:
    with channel(proxy.port) as ch, pytest.raises(grpc.RpcError) as raised:
        started = time.monotonic()
        ch.unary_unary(f"/{SERVICE}/Slow", _same, _same)(b"", timeout=0.5)
    error: Any = raised.value
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 3.0
    assert backend.cancelled.wait(5)


def test_refused_connection_is_unavailable_with_the_proxy_error() -> None:
    with socketless_port() as port:
        running = ProxyThread(Policy(UpstreamAddress("127.0.0.1", port)))
    try:
        with channel(running.port) as ch, pytest.raises(grpc.RpcError) as raised:
            ch.unary_unary(f"/{SERVICE}/Unary", _same, _same)(b"x", timeout=5)
        error: Any = raised.value
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        assert dict(error.trailing_metadata())["mesh-proxy-error"].startswith("connect to 127.0.0.1")
        assert running.policy.results == [(200, 14)]
    finally:
        running.stop()


class socketless_port:  # noqa: N801 - used as a context manager
    """A loopback port that nothing listens on (bound, then released)."""

    def __enter__(self) -> int:
        from tests.ports import free_port

        return free_port()

    def __exit__(self, *exc: object) -> None:
        return None




def test_backend_killed_mid_stream_is_unavailable_not_a_hang() -> None:
    proc = subprocess.Popen([sys.executable, "-c", BACKEND_SCRIPT], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        running = ProxyThread(Policy(UpstreamAddress("127.0.0.1", port)))
        try:
            with channel(running.port) as ch:
                stream = ch.unary_stream(f"/{SERVICE}/Forever", _same, _same)(b"", timeout=20)
                received = 0
                with pytest.raises(grpc.RpcError) as raised:
                    for _ in stream:
                        received += 1
                        if received == 20:
                            proc.kill()
                error: Any = raised.value
                assert error.code() == grpc.StatusCode.UNAVAILABLE
                assert "mesh-proxy-error" in dict(error.trailing_metadata())
                assert received >= 20
            assert running.policy.results == [(200, 14)]
        finally:
            running.stop()
    finally:
        proc.kill()
        proc.wait(5)
        assert proc.stdout is not None
        proc.stdout.close()


def test_drain_lets_the_call_in_flight_finish(proxy: ProxyThread) -> None:
    with channel(proxy.port) as ch:
        slow = ch.unary_unary(f"/{SERVICE}/Count", _same, _same)
        assert slow  # warm the connection so the drain has a live connection to GOAWAY
        future = ch.unary_stream(f"/{SERVICE}/Count", _same, _same)(b"2000", timeout=10)
        first = next(iter(future))

        def drain_all() -> None:
            for conn in list(proxy.stack.live):
                conn.drain()

        proxy.loop.call_soon_threadsafe(drain_all)
        rest = list(future)
        assert first == b"0" and len(rest) == 1999


def test_more_streams_than_one_upstream_connection_takes(proxy: ProxyThread) -> None:
    # 4 client connections x 100 calls in flight: the pool spreads them over several upstream
    # connections (100 streams each) and queues the rest, answering every one.
    options = [("grpc.use_local_subchannel_pool", 1), ("grpc.enable_retries", 0)]
    channels = [grpc.insecure_channel(f"127.0.0.1:{proxy.port}", options=options) for _ in range(4)]
    try:
        calls = [
            ch.unary_unary(f"/{SERVICE}/Nap", _same, _same).future(b"%d" % n, timeout=20)
            for ch in channels
            for n in range(100)
        ]
        assert [c.result() for c in calls] == [b"%d" % n for _ in channels for n in range(100)]
    finally:
        for ch in channels:
            ch.close()
    assert proxy.policy.results.count((200, 0)) == 400
    assert 2 <= proxy.upstream_connections <= 4
