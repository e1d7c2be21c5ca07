"""The admin server on a real loopback socket, under the asyncio and the uvloop event loop.

Every exchange is raw bytes, so malformed and hostile requests can be sent as a client would.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvloop

from meshctl import __version__
from meshctl.metrics.admin import (
    AdminApp,
    AdminLimits,
    is_loopback,
    listen_address,
    start_admin_server,
    stop_admin_server,
)
from meshctl.metrics.registry import ProxyMetrics
from tests.unit.metrics.exposition_parser import parse
from tests.unit.metrics.loglevel import LogLevel

pytestmark = pytest.mark.integration

TIMEOUT = 5.0  # per socket operation
FAST = AdminLimits(deadline_s=0.3)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class Proxy:
    """What the admin endpoint is given: real metrics, a readiness flag, a log level, a config."""

    metrics: ProxyMetrics = field(default_factory=ProxyMetrics)
    is_ready: bool = False
    log: LogLevel = field(default_factory=LogLevel)
    config: dict[str, Any] = field(default_factory=lambda: {"pod": "books-0", "snapshot_version": 3})

    def app(self, may_change: Callable[[str | None], bool] = is_loopback) -> AdminApp:
        return AdminApp(metrics=self.metrics, ready=lambda: self.is_ready, get_log_level=self.log.get,
                        set_log_level=self.log.set, config_dump=lambda: self.config,
                        may_change=may_change)  # fmt: skip


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, None]], None]:
    factory = uvloop.new_event_loop if request.param == "uvloop" else None

    def runner(scenario: Coroutine[Any, Any, None]) -> None:
        with asyncio.Runner(loop_factory=factory) as loop_runner:
            loop_runner.run(asyncio.wait_for(scenario, 30))

    return runner


@asynccontextmanager
async def serving(app: AdminApp, limits: AdminLimits | None = None) -> AsyncIterator[int]:
    server = await start_admin_server("127.0.0.1", 0, app, limits=limits)
    try:
        yield listen_address(server)[1]
    finally:
        await stop_admin_server(server, grace_s=0.5)


@asynccontextmanager
async def connect(
    port: int, local_host: str | None = None
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    local = (local_host, 0) if local_host else None
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port, local_addr=local), TIMEOUT)
    try:
        yield reader, writer
    finally:
        writer.close()
        with suppress(ConnectionError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), TIMEOUT)


async def read_reply(reader: asyncio.StreamReader, *, head_only: bool = False) -> Reply:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
    status_line, *lines = head.decode("latin-1").split("\r\n")
    assert status_line.startswith("HTTP/1.1 "), status_line
    headers = {}
    for line in lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.lower()] = value.strip()
    length = 0 if head_only else int(headers.get("content-length", "0"))
    body = await asyncio.wait_for(reader.readexactly(length), TIMEOUT)
    return Reply(int(status_line.split()[1]), headers, body)


async def closed(reader: asyncio.StreamReader) -> bool:
    try:
        return await asyncio.wait_for(reader.read(1), TIMEOUT) == b""
    except ConnectionResetError:
        return True


async def exchange(port: int, raw: bytes, local_host: str | None = None) -> Reply:
    async with connect(port, local_host) as (reader, writer):
        writer.write(raw)
        return await read_reply(reader)


def get(path: str, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: admin\r\n{extra}\r\n".encode()


def put(path: str, body: bytes) -> bytes:
    return f"PUT {path} HTTP/1.1\r\nHost: admin\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body


def scenario(test: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    """Run an async test body on the event loop chosen by the `run` fixture."""

    def wrapper(run: Callable[[Coroutine[Any, Any, None]], None]) -> None:
        run(test())  # type: ignore[arg-type]

    wrapper.__name__ = test.__name__
    return wrapper


# -- routes --------------------------------------------------------------------------------------


@scenario
async def test_metrics_live_ready_and_config() -> None:
    proxy = Proxy()
    stats = proxy.metrics.route("outbound", "books:7000", "GET /books", True, "booksapp", "books")
    stats.on_request()
    stats.on_response(200, None, 4.0, False)
    async with serving(proxy.app()) as port:
        reply = await exchange(port, get("/metrics"))
        assert reply.status == 200
        assert reply.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        assert parse(reply.body.decode()).value("request_total", authority="books:7000") == 1

        assert (await exchange(port, get("/live"))).body == b"live\n"
        reply = await exchange(port, get("/ready"))
        assert (reply.status, reply.body) == (503, b"not ready\n")
        proxy.is_ready = True
        reply = await exchange(port, get("/ready"))
        assert (reply.status, reply.body) == (200, b"ready\n")

        reply = await exchange(port, get("/config.json"))
        assert reply.headers["content-type"] == "application/json"
        assert json.loads(reply.body) == proxy.config | {"log_level": "info", "version": __version__}


@scenario
async def test_log_level_get_put_and_validation() -> None:
    proxy = Proxy()
    async with serving(proxy.app()) as port:
        assert (await exchange(port, get("/proxy-log-level"))).body == b"info\n"
        reply = await exchange(port, put("/proxy-log-level", b"warn,meshctl.proxy=debug"))
        assert (reply.status, reply.body) == (204, b"")
        assert (await exchange(port, get("/proxy-log-level"))).body == b"warn,meshctl.proxy=debug\n"

        reply = await exchange(port, put("/proxy-log-level", b"warn,meshctl.proxy=chatty"))
        assert reply.status == 400
        assert b"chatty" in reply.body
        assert proxy.log.level == "warn,meshctl.proxy=debug"


@scenario
async def test_put_from_a_peer_that_may_not_change_is_403() -> None:
    proxy = Proxy()
    # Only 127.0.0.1 may change the level here; the client connects from 127.0.0.2.
    async with serving(proxy.app(may_change=lambda host: host == "127.0.0.1")) as port:
        reply = await exchange(port, put("/proxy-log-level", b"debug"), local_host="127.0.0.2")
        assert (reply.status, reply.body) == (403, b"Requests are only permitted from localhost.\n")
        assert proxy.log.level == "info"
        assert (await exchange(port, get("/proxy-log-level"), local_host="127.0.0.2")).status == 200
        assert (await exchange(port, put("/proxy-log-level", b"debug"))).status == 204


@scenario
async def test_404_and_405() -> None:
    async with serving(Proxy().app()) as port:
        assert (await exchange(port, get("/nope"))).status == 404
        reply = await exchange(port, b"POST /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")
        assert (reply.status, reply.headers["allow"]) == (405, "GET, HEAD")
        reply = await exchange(port, b"DELETE /proxy-log-level HTTP/1.1\r\nHost: a\r\n\r\n")
        assert (reply.status, reply.headers["allow"]) == (405, "GET, HEAD, PUT")


@scenario
async def test_head_has_the_length_but_no_body() -> None:
    async with serving(Proxy().app()) as port, connect(port) as (reader, writer):
        writer.write(b"HEAD /live HTTP/1.1\r\nHost: a\r\n\r\n" + get("/live"))
        head = await read_reply(reader, head_only=True)
        assert (head.status, head.headers["content-length"]) == (200, "5")
        assert (await read_reply(reader)).body == b"live\n"  # the next reply follows directly


# -- connection handling -------------------------------------------------------------------------


@scenario
async def test_keep_alive_and_pipelining() -> None:
    async with serving(Proxy().app()) as port, connect(port) as (reader, writer):
        writer.write(get("/live"))
        assert (await read_reply(reader)).body == b"live\n"
        writer.write(get("/ready") + get("/nope") + get("/live"))  # three requests in one segment
        replies = [await read_reply(reader) for _ in range(3)]
        assert [r.status for r in replies] == [503, 404, 200]
        assert all("connection" not in r.headers for r in replies)


@scenario
async def test_connection_close_and_http10() -> None:
    async with serving(Proxy().app()) as port:
        async with connect(port) as (reader, writer):
            writer.write(get("/live", "Connection: close\r\n"))
            reply = await read_reply(reader)
            assert reply.headers["connection"] == "close"
            assert await closed(reader)
        async with connect(port) as (reader, writer):
            writer.write(b"GET /live HTTP/1.0\r\n\r\n")
            assert (await read_reply(reader)).status == 200
            assert await closed(reader)
        async with connect(port) as (reader, writer):
            writer.write(b"GET /live HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            assert (await read_reply(reader)).headers["connection"] == "keep-alive"
            writer.write(b"GET /live HTTP/1.0\r\n\r\n")
            assert (await read_reply(reader)).status == 200


@scenario
async def test_upgrade_is_ignored_and_the_connection_closed() -> None:
    upgrade = "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n"
    async with serving(Proxy().app()) as port, connect(port) as (reader, writer):
        writer.write(get("/live", upgrade))
        reply = await read_reply(reader)
        assert (reply.status, reply.headers["connection"]) == (200, "close")
        assert await closed(reader)


@scenario
async def test_expect_continue() -> None:
    proxy = Proxy()
    async with serving(proxy.app()) as port, connect(port) as (reader, writer):
        writer.write(b"PUT /proxy-log-level HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"debug")
        assert (await read_reply(reader)).status == 204
        assert proxy.log.level == "debug"


# -- malformed and oversized requests ------------------------------------------------------------


@pytest.mark.parametrize("raw", [
    b"GARBAGE\r\n\r\n",
    b"GET /live HTTP/1.1\r\nBad Header Line\r\n\r\n",
    b"GET /live HTTP/9.9\r\n\r\n",
    b"GET /li ve HTTP/1.1\r\n\r\n",
    b"GET /live HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    b"GET /live HTTP/1.1\r\nContent-Length: x\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS ClientHello
])  # fmt: skip
def test_malformed_request_is_400_and_closed(run: Callable[[Coroutine[Any, Any, None]], None], raw: bytes) -> None:
    async def body() -> None:
        async with serving(Proxy().app()) as port, connect(port) as (reader, writer):
            writer.write(raw)
            reply = await read_reply(reader)
            assert reply.status == 400
            assert reply.headers["connection"] == "close"
            assert await closed(reader)

    run(body())


@scenario
async def test_head_over_16k_is_431() -> None:
    async with serving(Proxy().app()) as port:
        reply = await exchange(port, get("/live", f"X-Big: {'a' * 17_000}\r\n"))
        assert reply.status == 431
        long_url = await exchange(port, get("/live?" + "q" * 17_000))
        assert long_url.status == 431
        many = "".join(f"X-{i}: {'v' * 60}\r\n" for i in range(400))
        assert (await exchange(port, get("/live", many))).status == 431


@scenario
async def test_endless_head_is_cut_off_before_it_ends() -> None:
    async with serving(Proxy().app()) as port, connect(port) as (reader, writer):
        writer.write(b"GET /live HTTP/1.1\r\nX-Endless: ")
        for _ in range(20):  # 20 KiB of a header that never ends
            writer.write(b"a" * 1024)
        reply = await read_reply(reader)
        assert reply.status == 431
        assert await closed(reader)


@scenario
async def test_body_over_4k_is_413() -> None:
    proxy = Proxy()
    async with serving(proxy.app()) as port:
        # Declared too large: refused before the body is sent.
        async with connect(port) as (reader, writer):
            writer.write(b"PUT /proxy-log-level HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n")
            reply = await read_reply(reader)
            assert reply.status == 413
            assert await closed(reader)
        # Chunked, found too large while reading.
        chunk = b"a" * 1000
        chunked = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(5)) + b"0\r\n\r\n"
        raw = b"PUT /proxy-log-level HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked
        assert (await exchange(port, raw)).status == 413
        assert proxy.log.level == "info"


@scenario
async def test_slow_request_gets_408_at_the_deadline() -> None:
    async with serving(Proxy().app(), FAST) as port, connect(port) as (reader, writer):
        writer.write(b"GET /live HTTP/1.1\r\nHost: a\r\n")  # and never the blank line
        for _ in range(3):  # trickling bytes does not extend the deadline
            await asyncio.sleep(0.1)
            writer.write(b"X-Slow: 1\r\n")
        reply = await read_reply(reader)
        assert reply.status == 408
        assert await closed(reader)


@scenario
async def test_idle_keep_alive_connection_is_closed() -> None:
    async with serving(Proxy().app(), FAST) as port, connect(port) as (reader, writer):
        writer.write(get("/live"))
        assert (await read_reply(reader)).status == 200
        assert await closed(reader)  # nothing more sent: closed after the idle deadline


@scenario
async def test_connection_limit() -> None:
    limits = AdminLimits(max_connections=2)
    async with serving(Proxy().app(), limits) as port, connect(port) as (r1, w1), connect(port) as (r2, w2):
        for reader, writer in ((r1, w1), (r2, w2)):
            writer.write(get("/live"))
            assert (await read_reply(reader)).status == 200
        async with connect(port) as (reader, _):
            reply = await read_reply(reader)
            assert reply.status == 503
            assert await closed(reader)


@scenario
async def test_stop_closes_idle_connections() -> None:
    server = await start_admin_server("127.0.0.1", 0, Proxy().app())
    port = listen_address(server)[1]
    async with connect(port) as (reader, writer):
        writer.write(get("/live"))
        assert (await read_reply(reader)).status == 200
        await asyncio.wait_for(stop_admin_server(server, grace_s=0.5), TIMEOUT)
        assert await closed(reader)
    with pytest.raises(OSError):
        await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), TIMEOUT)


@scenario
async def test_control_plane_metrics_object() -> None:
    class ControlMetrics:
        def render(self) -> bytes:
            return b"# HELP control_up Up.\n# TYPE control_up gauge\ncontrol_up 1\n"

    app = AdminApp(metrics=ControlMetrics(), ready=lambda: True, get_log_level=lambda: "info",
                   set_log_level=lambda level: None, config_dump=dict)  # fmt: skip
    async with serving(app) as port:
        assert (await exchange(port, get("/metrics"))).body.endswith(b"control_up 1\n")


def test_port_in_use_is_a_conflict_error() -> None:
    from meshctl.errors import ConflictError

    async def body() -> None:
        async with serving(Proxy().app()) as port:
            with pytest.raises(ConflictError):
                await start_admin_server("127.0.0.1", port, Proxy().app())

    asyncio.run(body())
