"""asyncio glue for downstream HTTP/2 connections, and the HTTP/2 path's entry points.

Protocol detection hands a connection over with `make_h2_protocol(...)` once it has seen the HTTP/2
preface (or ALPN h2). Every read goes through the sans-IO session and ends with one Outbox flush, so the
frames a read causes — downstream and upstream — leave in one write per socket. Each runtime gets one
stack per direction: inbound forwards to the app (HTTP/2 prior knowledge for "grpc", HTTP/1.1 for
"http"), outbound and ingress to peer proxies over mTLS. `drain_h2` is the graceful shutdown: GOAWAY
everywhere, in-flight streams get `grace_s` to finish, then connections close.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import weakref
from collections.abc import Callable
from typing import Protocol, cast

from meshctl.proxy.h2.core import H2Limits, Outbox
from meshctl.proxy.h2.dial import UpstreamAddress, plain_dialer, tls_dialer
from meshctl.proxy.h2.ends import DownstreamH2
from meshctl.proxy.h2.exchange import Exchange
from meshctl.proxy.h2.headers import RequestHead
from meshctl.proxy.h2.http1 import Http1Pool
from meshctl.proxy.h2.pool import WRITE_BUFFER_LIMIT, H2Pool
from meshctl.proxy.h2.relay import DownstreamSession, Policy
from meshctl.proxy.plan import RequestPlan
from meshctl.proxy.runtime import ProxyRuntime
from meshctl.proxy.stack import Stack
from meshctl.proxy.tls import peer_identity as presented_identity

log = logging.getLogger("meshctl.proxy.h2")


def _tracing() -> bool:
    """Tracebacks of internal errors only at debug level: users see one line."""
    return log.isEnabledFor(logging.DEBUG)


IDLE_S = 600.0  # a downstream connection without requests for this long is sent away (GOAWAY)
DRAIN_PING_S = 1.0  # how long the first GOAWAY waits for the PING answer before the final one


class Pool(Protocol):
    """An upstream pool: H2Pool (HTTP/2 to a peer or a gRPC app) or Http1Pool (HTTP/1.1 app)."""

    def connect(self, exchange: Exchange) -> None: ...

    def close(self) -> None: ...

    @property
    def busy(self) -> bool: ...


class FlushingTimers:
    """The loop's clock and timers for exchanges: what a timer's callback queues is flushed at once."""

    __slots__ = ("loop", "outbox", "time")

    def __init__(self, loop: asyncio.AbstractEventLoop, outbox: Outbox) -> None:
        self.loop = loop
        self.outbox = outbox
        self.time: Callable[[], float] = loop.time  # the loop's own: no Python call between (twice a request)

    def call_at(self, when: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        return self.loop.call_at(when, self._fire, callback)

    def _fire(self, callback: Callable[[], None]) -> None:
        try:
            callback()
        except Exception as exc:  # never a traceback from a deadline; the request state is logged
            log.error("h2 timer failed: %r", exc, exc_info=_tracing())
        self.outbox.flush()


class FlushSoon:
    """The Outbox flushed once the loop has run every read that is ready now, not after each one.

    An HTTP/1.1 app answers the streams of one downstream read on as many connections, each its own
    read: flushing after each would cost the downstream connection one TLS record and one write per
    response. Deferred to the loop's next turn, the answers that arrived together leave in one write.
    """

    __slots__ = ("outbox", "pending")

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self.pending = False

    def __call__(self) -> None:
        if not self.pending:
            self.pending = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self.pending = False
        self.outbox.flush()


class ConnectionPolicy:
    """The listener's request stack as one downstream HTTP/2 connection asks it (heads are bytes here)."""

    __slots__ = ("stack", "peer_identity", "conn")

    def __init__(self, stack: Stack, peer_identity: str | None) -> None:
        self.stack = stack
        self.peer_identity = peer_identity
        self.conn: DownstreamProtocol | None = None

    def plan(self, head: RequestHead) -> RequestPlan:
        path = head.path
        query = path.find(b"?")
        return self.stack.plan(
            head.method.decode("latin-1"), head.authority.decode("latin-1"),
            (path if query < 0 else path[:query]).decode("latin-1"), head.headers, self,
        )  # fmt: skip

    def peer_address(self) -> str:
        transport = self.conn.transport if self.conn is not None else None
        peer = transport.get_extra_info("peername") if transport is not None else None
        return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "-"


class H2Stack:
    """What every HTTP/2 connection of one proxy shares: the outbox, the upstream pool, live connections."""

    def __init__(self, pool: Pool, outbox: Outbox, limits: H2Limits | None = None,
                 requests: Stack | None = None) -> None:  # fmt: skip
        self.pool = pool
        self.outbox = outbox
        self.limits = limits or H2Limits()
        self.requests = requests  # the listener's request pipeline (stack.py)
        self.flush_soon = FlushSoon(outbox)
        self._timers: FlushingTimers | None = None
        self.live: set[DownstreamProtocol] = set()
        self.draining = False

    def timers(self, loop: asyncio.AbstractEventLoop) -> FlushingTimers:
        if self._timers is None or self._timers.loop is not loop:
            self._timers = FlushingTimers(loop, self.outbox)
        return self._timers

    async def drain(self, grace_s: float = 10.0) -> None:
        """GOAWAY on every connection, wait up to `grace_s` for in-flight streams, then close them all."""
        self.draining = True
        for conn in list(self.live):
            conn.drain()
        self.outbox.flush()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        while self.live and loop.time() < deadline:
            await asyncio.sleep(0.05)
        for conn in list(self.live):
            conn.abort("shutdown grace period over")
        self.pool.close()
        while self.pool.busy and loop.time() < deadline + 1.0:
            await asyncio.sleep(0.05)


class DownstreamProtocol(asyncio.Protocol):
    def __init__(self, stack: H2Stack, policy: Policy, on_tcp: Callable[[bool], None] | None = None) -> None:
        self.stack = stack
        self.loop = asyncio.get_running_loop()
        self.side = DownstreamH2(stack.outbox, stack.limits, clock=self.loop.time)
        self.session = DownstreamSession(self.side, policy, stack.pool, stack.timers(self.loop))
        self.transport: asyncio.Transport | None = None
        self.on_tcp = on_tcp  # (opened) for the tcp_open/close metrics of this connection
        self.last_active = self.loop.time()
        self.timer: asyncio.TimerHandle | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio classes
        self.transport = transport
        self.side.connected(transport.write)
        transport.set_write_buffer_limits(high=256 * 1024)
        self.stack.live.add(self)
        if self.on_tcp is not None:
            self.on_tcp(True)
        self.timer = self.loop.call_later(IDLE_S, self._idle_check)
        if self.stack.draining:
            self.drain()
        self.stack.outbox.flush()

    def data_received(self, data: bytes) -> None:
        self.last_active = self.loop.time()
        try:
            ok = self.session.receive(data)
            # Once every ready read has run: clients multiplexed on one upstream connection share a write.
            self.stack.flush_soon()
        except Exception as exc:  # a bug must cost one connection, not the proxy: reset, never hang
            log.error("h2 downstream connection aborted by an internal error: %r", exc, exc_info=_tracing())
            self.abort("internal error")
            return
        if not ok:
            self.abort(self.side.failed or "protocol error")
        elif self.side.peer_closing and not self.session.exchanges:
            self.abort("client closed the connection")
        elif self.side.paused and self._buffered() > WRITE_BUFFER_LIMIT:
            self.abort("client is not reading")  # e.g. a PING flood from a peer that never reads

    def _buffered(self) -> int:
        return self.transport.get_write_buffer_size() if self.transport is not None else 0

    def eof_received(self) -> bool:
        self.session.lost()
        return False

    def pause_writing(self) -> None:
        self.side.paused = True

    def resume_writing(self) -> None:
        self.side.paused = False
        self.session.resume()
        self.stack.outbox.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed()
        self.session.lost()
        self.stack.outbox.flush()

    # -- closing ----------------------------------------------------------------------------------
    def drain(self) -> None:
        """Graceful GOAWAY; the connection closes once its last stream is done."""
        if self.closed or self.side.draining:
            return
        self.session.drain(self._drained)
        self.loop.call_later(DRAIN_PING_S, self._final_goaway)

    def _final_goaway(self) -> None:
        if not self.closed:
            self.side.finish_drain()
            self.stack.outbox.flush()

    def _drained(self) -> None:
        # Called when the last exchange ends, possibly inside a read: close after this turn.
        self.loop.call_soon(self._close_if_idle)

    def _close_if_idle(self) -> None:
        if not self.closed and not self.session.exchanges:
            self.side.finish_drain()
            self.stack.outbox.flush()
            self._close()

    def _idle_check(self) -> None:
        self.timer = None
        if self.closed:
            return
        idle_for = self.loop.time() - self.last_active
        if not self.session.exchanges and idle_for >= IDLE_S:
            self.drain()
        else:
            self.timer = self.loop.call_later(max(1.0, IDLE_S - idle_for), self._idle_check)

    def abort(self, reason: str) -> None:
        """Close now: every exchange is cancelled (upstream streams reset)."""
        if self.closed:
            return
        log.debug("h2 downstream closed: %s", reason)
        self.session.lost()
        self.stack.outbox.flush()
        self._close()

    def _close(self) -> None:
        self._closed()
        if self.transport is not None:
            self.transport.close()

    def _closed(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.stack.live.discard(self)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.on_tcp is not None:
            self.on_tcp(False)


# -- the entry points the proxy uses ------------------------------------------------------------------
_stacks: weakref.WeakKeyDictionary[ProxyRuntime, dict[str, H2Stack]] = weakref.WeakKeyDictionary()


def make_h2_protocol(
    runtime: ProxyRuntime, direction: object, tls: bool, peer_identity: str | None
) -> asyncio.Protocol:
    """The protocol for a connection that speaks HTTP/2 (preface seen, or ALPN h2 after TLS).

    `direction` is "inbound", "outbound" or "ingress" (a str enum member works). Call on the loop,
    then `connection_made` and `data_received` with the bytes already read (the preface included).
    The protocol counts the connection in tcp_open_total/tcp_close_total (peer="src") itself.
    `peer_identity` is the client's mTLS identity (inbound), as the request stack sees it.
    """
    kind = str(getattr(direction, "value", direction))
    stacks = _stacks.setdefault(runtime, {})
    stack = stacks.get(kind)
    if stack is None:
        stack = stacks[kind] = _build_stack(runtime, kind)
    assert stack.requests is not None
    policy = ConnectionPolicy(stack.requests, peer_identity)
    metrics, counted = runtime.metrics, "inbound" if kind == "inbound" else "outbound"

    def on_tcp(opened: bool) -> None:
        if opened:
            metrics.tcp_opened(counted, "src", tls)
        else:
            metrics.tcp_closed(counted, "src", tls)

    protocol = DownstreamProtocol(stack, policy, on_tcp)
    policy.conn = protocol
    return protocol


async def drain_h2(runtime: ProxyRuntime, grace_s: float = 10.0) -> None:
    """Graceful shutdown of every HTTP/2 connection of `runtime` (GOAWAY, finish in flight, close)."""
    stacks = list(_stacks.get(runtime, {}).values())
    if stacks:
        await asyncio.gather(*(stack.drain(grace_s) for stack in stacks))


def _app_address(runtime: ProxyRuntime) -> UpstreamAddress | None:
    inbound = runtime.config.inbound
    return None if inbound is None else UpstreamAddress(inbound.app.host, inbound.app.port)


def _build_stack(runtime: ProxyRuntime, kind: str) -> H2Stack:
    outbox = Outbox()
    flush_soon = FlushSoon(outbox)  # one per stack: the downstream connections and the app pool share it
    metrics = runtime.metrics
    direction = "inbound" if kind == "inbound" else "outbound"
    upstream_tls = kind != "inbound"

    def on_tcp(endpoint: object, opened: bool) -> None:
        if opened:
            metrics.tcp_opened(direction, "dst", upstream_tls)
        else:
            metrics.tcp_closed(direction, "dst", upstream_tls)

    inbound = runtime.config.inbound
    pool: Pool
    if kind == "inbound" and inbound is not None and inbound.app_protocol != "grpc":
        pool = Http1Pool(plain_dialer(), flush_soon, on_tcp)  # the app speaks HTTP/1.1
    elif kind == "inbound":
        pool = H2Pool(plain_dialer(), outbox, on_tcp=on_tcp)  # gRPC app: HTTP/2 prior knowledge
    else:

        def context() -> ssl.SSLContext | None:
            return runtime.tls.client_h2 if runtime.tls is not None else None

        pool = H2Pool(tls_dialer(context, presented_identity), outbox, on_tcp=on_tcp)
    app = _app_address(runtime) if kind == "inbound" else None
    stack = H2Stack(pool, outbox, requests=Stack(runtime, kind, kind == "inbound", app))
    stack.flush_soon = flush_soon
    return stack
