"""The tap server over a real socket, spoken to by a real grpcio client, with the hub driven by direct
calls on the server's event loop as the request pipeline drives it."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import grpc
import pytest
import uvloop

from meshctl.api import tap_pb2, tap_pb2_grpc
from meshctl.proxy.observe.tap import TapHub, TapStream
from meshctl.proxy.observe.tap_server import TapServer

T = TypeVar("T")
ID_WEB = "webapp.booksapp.serviceaccount.identity.meshctl.cluster.local"


class Running:
    """A tap server on its own uvloop thread; `call` runs a function there and returns its result."""

    def __init__(self, **options: Any) -> None:
        self.loop = uvloop.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.hub = TapHub(pod="books-0", deployment="books", namespace="booksapp",
                          identity="books.booksapp.serviceaccount.identity.meshctl.cluster.local")  # fmt: skip
        self.server = TapServer(self.hub, **options)
        host, port = self.run(self.server.start("127.0.0.1", 0))
        self.address = f"{host}:{port}"
        self.channel = grpc.insecure_channel(self.address, options=[("grpc.enable_http_proxy", 0)])
        self.stub = tap_pb2_grpc.TapStub(self.channel)

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def call(self, fn: Callable[[], T]) -> T:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def go() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed to the test thread
                future.set_exception(exc)

        self.loop.call_soon_threadsafe(go)
        return future.result(timeout=10)

    def wait_for(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.call(condition):
            assert time.monotonic() < deadline, "condition not reached"
            time.sleep(0.01)

    def request(self, method: str = "GET", status: int | None = 200, path: str = "/books") -> TapStream | None:
        """One request through the hub, start to end, on the loop thread."""

        def go() -> TapStream | None:
            stream = self.hub.begin("inbound", "127.77.1.1:40000", "127.77.3.1:7002", ID_WEB, None, True, method,
                                    "books:7002", path, "[DEFAULT]", [(b"authorization", b"Bearer x")])  # fmt: skip
            if stream is not None:
                if status is not None:
                    stream.response(status, [])
                stream.end(None, None, 1, 2, None)
            return stream

        return self.call(go)

    def close(self) -> None:
        self.channel.close()
        self.run(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


@pytest.fixture
def tap() -> Iterator[Running]:
    running = Running(notice_s=0.1)
    yield running
    running.close()


def observe(running: Running, request: tap_pb2.ObserveRequest, timeout: float) -> Any:
    """The streaming call (an iterator of TapEvent that can be cancelled)."""
    return running.stub.Observe(request, timeout=timeout)


def failure(error: grpc.RpcError) -> tuple[grpc.StatusCode, str]:
    call: Any = error  # a failed call is both the exception and the call
    return call.code(), call.details() or ""


def kinds(events: list[tap_pb2.TapEvent]) -> list[str]:
    return [e.WhichOneof("event") or "" for e in events]


def take(call: Any, n: int) -> list[tap_pb2.TapEvent]:
    return [next(call) for _ in range(n)]


def test_a_filtered_stream_carries_exactly_the_matching_requests(tap: Running) -> None:
    call = observe(tap, tap_pb2.ObserveRequest(match=tap_pb2.Match(method="GET")), timeout=10)
    tap.wait_for(lambda: tap.hub.active)
    for method in ("GET", "POST", "GET", "DELETE", "GET"):
        tap.request(method)
    events = take(call, 9)
    call.cancel()
    assert kinds(events) == ["request_init", "response_init", "response_end"] * 3
    assert [e.request_init.id for e in events[::3]] == [1, 2, 3]
    assert all(e.request_init.method == "GET" for e in events[::3])
    assert events[0].request_init.headers[0].value == b"[redacted]"
    assert tap.call(lambda: (tap.hub.seen, tap.hub.tapped)) == (5, 3)  # filtered in the proxy


def test_leaving_unsubscribes_so_the_pipeline_stops_tapping(tap: Running) -> None:
    call = observe(tap, tap_pb2.ObserveRequest(), timeout=10)
    tap.wait_for(lambda: tap.hub.active)
    tap.request()
    assert kinds(take(call, 3)) == ["request_init", "response_init", "response_end"]
    call.cancel()
    tap.wait_for(lambda: not tap.hub.active)
    assert tap.request() is None


def test_the_rate_limit_is_reported_in_drop_notices(tap: Running) -> None:
    call = observe(tap, tap_pb2.ObserveRequest(limit=2), timeout=10)
    tap.wait_for(lambda: tap.hub.active)
    for _ in range(10):
        tap.request()
    events = take(call, 7)
    call.cancel()
    assert kinds(events) == ["request_init", "response_init", "response_end"] * 2 + ["dropped"]
    assert events[-1].dropped == tap_pb2.Dropped(rate_limited=8)


def test_many_events_reach_a_client_that_keeps_up(tap: Running) -> None:
    call = observe(tap, tap_pb2.ObserveRequest(), timeout=30)
    tap.wait_for(lambda: tap.hub.active)
    turns, per_turn = 10, 1_000  # 30,000 events, ~4 MB: far more than one flow-control window

    def burst() -> None:
        for _ in range(per_turn):
            stream = tap.hub.begin("outbound", "a:1", "b:2", None, None, False, "GET", "x", "/" + "p" * 100, "", [])
            assert stream is not None
            stream.response(200, [])
            stream.end(None, None, 0, 0, None)

    for _ in range(turns):  # the writer runs between loop turns, as it would between real requests
        tap.call(burst)
    got = kinds(take(call, turns * per_turn * 3))
    call.cancel()
    assert got.count("response_end") == turns * per_turn and "dropped" not in got


def test_bodies_when_asked(tap: Running) -> None:
    extract = tap_pb2.Extract(bodies=True, max_body_bytes=3)
    call = observe(tap, tap_pb2.ObserveRequest(extract=extract), timeout=10)
    tap.wait_for(lambda: tap.hub.active)

    def go() -> None:
        stream = tap.hub.begin("inbound", "a:1", "b:2", None, None, False, "POST", "x", "/", "", [])
        assert stream is not None
        stream.body(True, b"abcdef")
        stream.response(201, [])
        stream.end(None, None, 6, 0, None)

    tap.call(go)
    events = take(call, 4)
    call.cancel()
    assert kinds(events) == ["request_init", "response_init", "body", "response_end"]
    assert (events[2].body.data, events[2].body.truncated) == (b"abc", True)


def test_a_bad_regex_is_refused_with_the_reason(tap: Running) -> None:
    bad = tap_pb2.Match(path=tap_pb2.StringMatch(regex="("))
    with pytest.raises(grpc.RpcError) as caught:
        next(observe(tap, tap_pb2.ObserveRequest(match=bad), timeout=5))
    assert failure(caught.value)[0] is grpc.StatusCode.INVALID_ARGUMENT
    assert "bad regex" in failure(caught.value)[1]
    assert not tap.call(lambda: tap.hub.active)


def test_only_the_instances_loopback_may_tap() -> None:
    refused = Running(may_connect=lambda host: False)
    try:
        with pytest.raises(grpc.RpcError) as caught:
            next(observe(refused, tap_pb2.ObserveRequest(), timeout=5))
        assert failure(caught.value)[0] is grpc.StatusCode.PERMISSION_DENIED
        assert "port-forward" in failure(caught.value)[1]
    finally:
        refused.close()


def test_too_many_subscribers_are_refused() -> None:
    small = Running(max_subscribers=1)
    try:
        first = observe(small, tap_pb2.ObserveRequest(), timeout=10)
        small.wait_for(lambda: small.hub.active)
        with pytest.raises(grpc.RpcError) as caught:
            next(observe(small, tap_pb2.ObserveRequest(), timeout=5))
        assert failure(caught.value)[0] is grpc.StatusCode.RESOURCE_EXHAUSTED
        first.cancel()
    finally:
        small.close()


def test_stopping_the_server_ends_streams_with_a_reason() -> None:
    running = Running()
    call = observe(running, tap_pb2.ObserveRequest(), timeout=10)
    running.wait_for(lambda: running.hub.active)
    running.run(running.server.stop())
    with pytest.raises(grpc.RpcError) as caught:
        next(call)
    assert failure(caught.value)[0] is grpc.StatusCode.UNAVAILABLE
    assert "shutting down" in failure(caught.value)[1]
    running.close()


def test_the_proxy_config_opens_the_tap_listener_and_hands_the_hub_to_the_pipeline() -> None:
    from meshctl.proxy.config import parse_proxy_config
    from meshctl.proxy.main import start_tap
    from meshctl.proxy.runtime import build_runtime
    from tests.ports import free_port
    from tests.unit.proxy.test_config import EXAMPLE

    port = free_port()
    config = parse_proxy_config({**EXAMPLE, "tap": {"listen": f"127.0.0.1:{port}"}})
    assert config.tap is not None and parse_proxy_config(config.to_json()) == config
    assert parse_proxy_config(EXAMPLE).tap is None
    runtime = build_runtime(config)

    async def scenario() -> None:
        server = await start_tap(config, runtime)
        try:
            assert runtime.tap is not None and runtime.tap.active is False
            loop = asyncio.get_running_loop()

            def subscribe() -> tap_pb2.TapEvent:
                with grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.enable_http_proxy", 0)]) as channel:
                    call: Any = tap_pb2_grpc.TapStub(channel).Observe(tap_pb2.ObserveRequest(), timeout=10)
                    event: tap_pb2.TapEvent = next(call)
                    call.cancel()
                    return event

            pending = loop.run_in_executor(None, subscribe)
            while not runtime.tap.active:
                await asyncio.sleep(0.01)
            stream = runtime.tap.begin("inbound", "127.0.0.1:1", "127.0.0.1:2", None, None, False, "GET", "a", "/",
                                       "", [])  # fmt: skip
            assert stream is not None
            event = await asyncio.wait_for(pending, 10)
            assert event.request_init.destination.pod == "books-0"
        finally:
            await server.stop()

    asyncio.run(scenario())
