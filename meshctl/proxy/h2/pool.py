"""Pooled upstream HTTP/2 connections: a few per endpoint, shared by every downstream connection.

Requests are multiplexed onto an endpoint's connections up to each one's stream limit; past that a new
connection is dialled (at most `MAX_CONNECTIONS` per endpoint) and the request waits in a bounded
queue. A connection is dialled by the `Dialer` (plaintext prior knowledge to the app, or mTLS with
ALPN h2 and a verified peer identity to another proxy). Connections idle for `IDLE_S` are closed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, cast

from meshctl.aio import spawn
from meshctl.proxy.errors import ConnectFailed, PoolExhausted, UpstreamReset
from meshctl.proxy.h2.core import H2Limits, Outbox
from meshctl.proxy.h2.ends import UpstreamH2
from meshctl.proxy.h2.exchange import Exchange
from meshctl.proxy.h2.relay import UpstreamSession

log = logging.getLogger("meshctl.proxy.h2")


def _tracing() -> bool:
    """Tracebacks of internal errors only at debug level: users see one line."""
    return log.isEnabledFor(logging.DEBUG)


MAX_CONNECTIONS = 4  # per endpoint
MAX_WAITING = 1000  # requests queued per endpoint while every connection is full
IDLE_S = 60.0
WRITE_BUFFER_LIMIT = 4 * 1024 * 1024  # a peer that never reads is cut off past this


# Open a connection to an endpoint (a pool key) running the factory's protocol; raise rescue's failures.
Dialer = Callable[[object, Callable[[], asyncio.Protocol]], Awaitable[tuple[asyncio.BaseTransport, Any]]]


class UpstreamProtocol(asyncio.Protocol):
    """The asyncio glue of one upstream connection."""

    def __init__(self, pool: H2Pool, key: object) -> None:
        self.pool = pool
        self.session = UpstreamSession(UpstreamH2(pool.outbox, pool.limits), key, pool.slot_freed)
        self.transport: asyncio.Transport | None = None
        self.idle_timer: asyncio.TimerHandle | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio classes
        self.transport = transport
        self.session.side.connected(transport.write)
        transport.set_write_buffer_limits(high=256 * 1024)
        self.pool.tcp(self.session.key, True)
        self.pool.outbox.flush()

    def data_received(self, data: bytes) -> None:
        try:
            ok = self.session.receive(data)
            self.pool.outbox.flush()
        except Exception as exc:  # a bug must cost one connection, not the proxy: fail its requests
            log.error("h2 upstream connection aborted by an internal error: %r", exc, exc_info=_tracing())
            ok = False
        transport = self.transport
        if self.session.side.paused and transport is not None:
            ok = ok and transport.get_write_buffer_size() <= WRITE_BUFFER_LIMIT  # a peer that never reads
        if not ok:
            self.close()
        elif self.session.side.goaway_last is not None and self.session.idle:
            self.close()  # the peer is draining and nothing is left on this connection
        else:
            self.pool.dispatch(self.session.key)

    def pause_writing(self) -> None:
        self.session.side.paused = True

    def resume_writing(self) -> None:
        self.session.side.paused = False
        self.session.resume()
        self.pool.outbox.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.idle_timer is not None:
            self.idle_timer.cancel()
        self.pool.forget(self)
        self.session.lost("upstream connection lost" if exc is None else f"upstream connection lost: {exc}")
        self.pool.outbox.flush()
        if self.transport is not None:
            self.pool.tcp(self.session.key, False)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.pool.forget(self)
            self.session.lost("upstream connection closed")
            self.pool.outbox.flush()
            if self.transport is not None:
                self.transport.close()


class _Endpoint:
    __slots__ = ("conns", "waiting", "dialing", "dispatch_pending")

    def __init__(self) -> None:
        self.conns: list[UpstreamProtocol] = []
        self.waiting: deque[Exchange] = deque()
        self.dialing = 0
        self.dispatch_pending = False


class H2Pool:
    def __init__(
        self,
        dialer: Dialer,
        outbox: Outbox,
        limits: H2Limits | None = None,
        on_tcp: Callable[[object, bool], None] | None = None,
    ) -> None:
        self.dialer = dialer
        self.outbox = outbox
        self.limits = limits or H2Limits()
        self._on_tcp = on_tcp  # (endpoint, opened) for tcp open/close metrics
        self._endpoints: dict[object, _Endpoint] = {}
        self._closing = False

    # -- the Connector the exchanges use ----------------------------------------------------------
    def connect(self, exchange: Exchange) -> None:
        key = exchange.plan.endpoint
        entry = self._endpoints.get(key)
        if entry is None:
            entry = self._endpoints[key] = _Endpoint()
        if not entry.waiting:  # _place, inline (once a request)
            for conn in entry.conns:
                if exchange.attach(conn.session):  # False when the connection has no stream slot free
                    if conn.idle_timer is not None:
                        self._touch(conn)
                    return
        if len(entry.waiting) >= MAX_WAITING or self._closing:
            exchange.fail(PoolExhausted("too many requests waiting for a connection"))
            return
        entry.waiting.append(exchange)
        self._grow(key, entry)

    def _grow(self, key: object, entry: _Endpoint) -> None:
        """Dial another connection when the queue is longer than the dials under way will absorb."""
        if len(entry.conns) + entry.dialing >= MAX_CONNECTIONS or self._closing:
            return
        if len(entry.waiting) > entry.dialing * self.limits.max_concurrent_streams:
            entry.dialing += 1
            spawn(self._dial(key, entry), name=f"h2-dial-{key}")

    def _place(self, entry: _Endpoint, exchange: Exchange) -> bool:
        for conn in entry.conns:
            if exchange.attach(conn.session):  # the stream limit is checked once, in UpstreamH2.start
                if conn.idle_timer is not None:
                    self._touch(conn)
                return True
        return False

    async def _dial(self, key: object, entry: _Endpoint) -> None:
        try:
            _, protocol = await self.dialer(key, lambda: UpstreamProtocol(self, key))
        except Exception as exc:  # whatever it is, the waiting requests get an answer (rescue maps it)
            entry.dialing -= 1
            self._dial_failed(key, entry, exc)
            return
        entry.dialing -= 1
        assert isinstance(protocol, UpstreamProtocol)
        if protocol.closed:
            self._dial_failed(key, entry, ConnectFailed("connection closed during setup"))
            return
        entry.conns.append(protocol)
        self.dispatch(key)
        self.outbox.flush()

    def _dial_failed(self, key: object, entry: _Endpoint, exc: Exception) -> None:
        log.warning("upstream %s: %s", key, exc)
        if entry.conns or entry.dialing:
            return  # other connections will serve the queue
        waiting, entry.waiting = entry.waiting, deque()
        for exchange in waiting:
            exchange.fail(exc)
        if not entry.conns and not entry.dialing and not entry.waiting:
            self._endpoints.pop(key, None)
        self.outbox.flush()

    def slot_freed(self, session: UpstreamSession) -> None:
        """A stream ended on `session`: queued requests may take its place (dispatched soon, once)."""
        entry = self._endpoints.get(session.key)
        if entry is None:
            return
        if entry.waiting:
            if not entry.dispatch_pending:
                entry.dispatch_pending = True
                asyncio.get_running_loop().call_soon(self._dispatch_soon, session.key)
        elif not session.exchanges:  # idle
            for conn in entry.conns:
                if conn.session is session:
                    if session.side.goaway_last is not None:
                        conn.close()  # the peer asked us to go: its last stream is done
                    else:
                        self._arm_idle(conn)
                    break

    def _dispatch_soon(self, key: object) -> None:
        entry = self._endpoints.get(key)
        if entry is not None:
            entry.dispatch_pending = False
            self.dispatch(key)
            self.outbox.flush()

    def dispatch(self, key: object) -> None:
        entry = self._endpoints.get(key)
        if entry is None:
            return
        waiting = entry.waiting
        while waiting:
            exchange = waiting[0]
            if exchange.done:
                waiting.popleft()
                continue
            if not self._place(entry, exchange):
                break
            waiting.popleft()
        if waiting:
            self._grow(key, entry)

    # -- connection lifecycle ---------------------------------------------------------------------
    def _touch(self, conn: UpstreamProtocol) -> None:
        if conn.idle_timer is not None:
            conn.idle_timer.cancel()
            conn.idle_timer = None

    def _arm_idle(self, conn: UpstreamProtocol) -> None:
        if conn.idle_timer is None and not conn.closed:
            conn.idle_timer = asyncio.get_running_loop().call_later(IDLE_S, self._idle_expired, conn)

    def _idle_expired(self, conn: UpstreamProtocol) -> None:
        conn.idle_timer = None
        if conn.session.idle:
            conn.close()

    def forget(self, conn: UpstreamProtocol) -> None:
        key = conn.session.key
        entry = self._endpoints.get(key)
        if entry is not None and conn in entry.conns:
            entry.conns.remove(conn)
            if entry.waiting:
                self.dispatch(key)
            elif not entry.conns and not entry.dialing:
                del self._endpoints[key]  # endpoints come and go with pods: keep no trace of old ones

    def tcp(self, key: object, opened: bool) -> None:
        if self._on_tcp is not None:
            self._on_tcp(key, opened)

    def close(self) -> None:
        """Shutdown: close idle connections now and every other one as soon as it is idle."""
        self._closing = True
        for entry in list(self._endpoints.values()):
            for exchange in list(entry.waiting):
                exchange.fail(UpstreamReset("proxy shutting down"))
            entry.waiting.clear()
            for conn in list(entry.conns):
                if conn.session.idle:
                    conn.close()
        self.outbox.flush()

    @property
    def busy(self) -> bool:
        return any(not c.session.idle for e in self._endpoints.values() for c in e.conns)
