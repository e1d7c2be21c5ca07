"""Upstream HTTP/1.1 connections: the protocol of one connection, the pool of idle ones, and the dialer.

`Upstream` is asyncio glue (with downstream.py and detect.py, the only HTTP/1.1 code on sockets): bound to
one exchange at a time, it feeds response bytes to a ResponseReader whose events go to that exchange.
`Pool` is sans-IO: it keeps idle connections per endpoint (most recently used first); a connection goes
back only when both messages of its last exchange completed cleanly, and a periodic sweep closes those
idle for longer than IDLE_S. `Dialer` gives exchanges connections: an idle one, else a new one, with at
most MAX_CONNECTING connects in flight per endpoint — further requests wait for the first connection
that frees up (a burst does not become a storm of handshakes), and past MAX_WAITING they are shed.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import deque
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, cast

from meshctl.aio import spawn
from meshctl.proxy.errors import ConnectFailed, IdentityMismatch, LoadShed, ProxyFailure, UpstreamReset
from meshctl.proxy.h1.codec import Headers
from meshctl.proxy.h1.ends import PROGRESS
from meshctl.proxy.h1.response import ResponseReader
from meshctl.proxy.h1.response_head import ResponseHead
from meshctl.proxy.policy.resolve import Endpoint

if TYPE_CHECKING:
    from meshctl.proxy.h1.exchange import Exchange
    from meshctl.proxy.runtime import ProxyRuntime
    from meshctl.proxy.tls import TlsContexts

log = logging.getLogger("meshctl.proxy.h1.upstream")

CONNECT_TIMEOUT_S = 3.0
HIGH_WATER = 256 * 1024  # write buffer size at which the other side stops reading

IDLE_S = 60.0
MAX_IDLE_PER_KEY = 256
MAX_CONNECTING = 8  # connects in flight per endpoint
MAX_WAITING = 512  # requests waiting per endpoint for a connection; more are shed with 503
SWEEP_S = 10.0


class Pooled(Protocol):
    closed: bool
    idle_since: float

    def close(self) -> None: ...


C = TypeVar("C", bound=Pooled)


class Pool(Generic[C]):
    """Idle connections per key, most recent last. The request path takes from and gives back to `idle`
    itself (Dialer.connect pops the most recent open one; a finished exchange appends while the key has
    fewer than `max_idle`, stamping idle_since): a call less each way per request. put() is the rest."""

    def __init__(self, clock: Callable[[], float], idle_s: float = IDLE_S, max_idle: int = MAX_IDLE_PER_KEY) -> None:
        self._clock = clock
        self._idle_s = idle_s
        self.max_idle = max_idle
        self.idle: dict[Hashable, list[C]] = {}

    def put(self, key: Hashable, conn: C) -> None:
        stack = self.idle.get(key)
        if stack is None:
            stack = self.idle[key] = []
        if len(stack) >= self.max_idle:
            conn.close()
            return
        conn.idle_since = self._clock()
        stack.append(conn)

    def discard(self, key: Hashable, conn: C) -> None:
        """A pooled connection closed (by the peer): forget it."""
        stack = self.idle.get(key)
        if stack and conn in stack:
            stack.remove(conn)

    def sweep(self) -> int:
        """Close connections idle for too long; returns how many were closed."""
        limit = self._clock() - self._idle_s
        closed = 0
        for key, stack in list(self.idle.items()):
            stale = [c for c in stack if c.closed or c.idle_since <= limit]
            if stale:
                stack[:] = [c for c in stack if not (c.closed or c.idle_since <= limit)]
                for conn in stale:
                    if not conn.closed:
                        conn.close()
                        closed += 1
            if not stack:
                del self.idle[key]
        return closed

    def close_all(self) -> None:
        for stack in self.idle.values():
            for conn in stack:
                conn.close()
        self.idle.clear()

    def __len__(self) -> int:
        return sum(len(s) for s in self.idle.values())


class Upstream(asyncio.Protocol):
    """One connection to an endpoint (a peer proxy's inbound, or the local app), bound to one
    downstream exchange at a time and pooled in between."""

    def __init__(self, metrics: Any, direction: str, tls: bool, pool: Pool[Upstream], key: Hashable) -> None:
        self.metrics = metrics
        self.direction = direction
        self.tls = tls
        self.pool = pool
        self.key = key
        self.reader = ResponseReader(self)
        self.owner: Exchange | None = None
        self.transport: asyncio.Transport | None = None
        self.wbuf: list[bytes] = []
        self.closed = False
        self.lost = False
        self.idle_since = 0.0
        self.reusable = False
        self.reading_paused = False

    def unbind(self) -> None:
        """No exchange any more (Exchange.attach binds one: owner, reader sink, reusable)."""
        self.owner = None
        self.reader.sink = self

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(high=HIGH_WATER)
        self.metrics.tcp_opened(self.direction, "dst", self.tls)

    def data_received(self, data: bytes) -> None:
        owner = self.owner
        if owner is None:
            self.close()  # bytes on an idle connection: it cannot be trusted any more
            return
        try:
            self.reader.feed(data)
        except ProxyFailure as exc:
            owner.upstream_failed(exc)
        except Exception:
            log.exception("unexpected error on an upstream connection")
            owner.upstream_failed(UpstreamReset("internal error"))
        if self.owner is owner and owner.resp_status:
            # Its body is still coming: the progress deadline, once per read (a response read whole,
            # the common case, ended with its exchange, which armed the connection's next deadline).
            owner.client.arm(PROGRESS, 0.0)
        owner.client.flush()
        if self.wbuf:
            self.flush()

    # The reader's sink while no exchange is bound (bytes then are dropped); the exchange's own
    # on_response_* keep `reusable` as these do.
    def on_response_head(self, head: ResponseHead) -> None:
        if head.status >= 200:
            self.reusable = head.keep_alive
        if self.owner is not None:
            self.owner.on_response_head(head)

    def on_response_body(self, data: bytes) -> None:
        if self.owner is not None:
            self.owner.on_response_body(data)

    def on_response_end(self, trailers: Headers | None, last: bytes = b"") -> None:
        self.reusable = self.reusable and not self.closed and not self.reader.trailing
        if self.owner is not None:
            self.owner.on_response_end(trailers, last)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.lost:
            return
        self.lost = self.closed = True
        self.metrics.tcp_closed(self.direction, "dst", self.tls)
        owner = self.owner
        if owner is None:
            self.pool.discard(self.key, self)
            return
        try:
            self.reader.eof()
        except ProxyFailure as failure:
            owner.upstream_failed(failure)
        owner.flush()

    def pause_reading(self, paused: bool) -> None:
        self.reading_paused = paused
        if self.transport is not None and not self.closed:
            if paused:
                self.transport.pause_reading()
            else:
                self.transport.resume_reading()

    def pause_writing(self) -> None:
        if self.owner is not None:
            self.owner.upstream_full(True)

    def resume_writing(self) -> None:
        if self.owner is not None:
            self.owner.upstream_full(False)

    def flush(self) -> None:
        wbuf = self.wbuf
        if wbuf and self.transport is not None and not self.closed:
            self.transport.write(wbuf[0] if len(wbuf) == 1 else b"".join(wbuf))
        self.wbuf = []

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.owner = None
            self.reader.sink = self
            if self.transport is not None:
                self.transport.close()


async def open_upstream(
    key: Hashable, tls: TlsContexts | None, metrics: Any, direction: str, pool: Pool[Upstream]
) -> Upstream:
    """Connect to `key`: a mesh Endpoint with an identity gets mTLS with hostname = identity (a peer
    proving another identity fails the handshake); the local app (a (host, port) key) and endpoints
    without an identity (not meshed) get plaintext. Every failure is a ProxyFailure."""
    loop = asyncio.get_running_loop()
    endpoint = key if isinstance(key, Endpoint) else None
    host, port = (endpoint.host, endpoint.port) if endpoint is not None else cast(tuple[str, int], key)
    secure = endpoint is not None and bool(endpoint.identity)
    up = Upstream(metrics, direction, secure, pool, key)
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            if not secure:
                await loop.create_connection(lambda: up, host, port)
            elif tls is None:
                raise ConnectFailed("no certificate yet")
            else:
                assert endpoint is not None
                await loop.create_connection(
                    lambda: up, host, port, ssl=tls.client_h1, server_hostname=endpoint.identity,
                    ssl_handshake_timeout=CONNECT_TIMEOUT_S,
                )  # fmt: skip
    except ssl.SSLCertVerificationError as exc:
        up.close()
        expected = endpoint.identity if endpoint is not None else "?"
        raise IdentityMismatch(f"{host}:{port} is not {expected}: {exc.verify_message}") from None
    except TimeoutError:
        up.close()
        raise ConnectFailed(f"connect to {host}:{port} timed out") from None
    except (OSError, ssl.SSLError) as exc:
        up.close()
        raise ConnectFailed(f"connect to {host}:{port} failed: {getattr(exc, 'strerror', None) or exc}") from None
    return up


class Dialer:
    """Connections for the exchanges of one listener: pooled, capped and queued per endpoint."""

    def __init__(self, runtime: ProxyRuntime, direction: str, loop: asyncio.AbstractEventLoop) -> None:
        self.runtime = runtime
        self.direction = direction
        self.loop = loop
        self.pool: Pool[Upstream] = Pool(loop.time)
        self.connecting: dict[Hashable, int] = {}
        self.waiting: dict[Hashable, deque[Exchange]] = {}
        self._sweeper: asyncio.TimerHandle | None = loop.call_later(SWEEP_S, self._sweep)

    def connect(self, ex: Exchange, fresh: bool) -> None:
        plan = ex.plan  # ex.endpoint, without a property call per request
        key = plan.endpoint if plan is not None else None
        if not fresh:
            stack = self.pool.idle.get(key)  # the most recent open one (see Pool)
            while stack:
                up = stack.pop()
                if not up.closed:
                    ex.attach(up, True)
                    transport = up.transport
                    if ex.req_done and transport is not None:  # whole: up.flush() now, without the call
                        wbuf = up.wbuf
                        transport.write(wbuf[0] if len(wbuf) == 1 else b"".join(wbuf))
                        up.wbuf = []
                    return
        if self.connecting.get(key, 0) < MAX_CONNECTING:
            self._open(ex, key)
            return
        queue = self.waiting.get(key)
        if queue is None:
            queue = self.waiting[key] = deque()
        if len(queue) >= MAX_WAITING:
            ex.fail(LoadShed(f"{MAX_WAITING} requests already wait for a connection to {key}"))
            return
        queue.append(ex)

    def release(self, key: Hashable, up: Upstream, now: float = 0.0) -> None:
        """A reusable connection is free (it may still be bound to the exchange that ended): the oldest
        request waiting for the endpoint gets it, else the pool. `now`: the loop's time, when just read."""
        ex = self._next_waiter(key) if self.waiting else None
        if ex is not None:
            ex.attach(up, True)
            up.flush()
            return
        up.owner = None  # up.unbind(), one call less per request
        up.reader.sink = up
        if up.reading_paused:
            up.pause_reading(False)  # an idle pooled connection must notice when its peer closes
        pool = self.pool
        stack = pool.idle.get(key)
        if stack is not None and len(stack) < pool.max_idle:  # pool.put(key, up), one call less per request
            up.idle_since = now or pool._clock()
            stack.append(up)
        else:
            pool.put(key, up)

    def close_all(self, final: bool = False) -> None:
        self.pool.close_all()
        if final and self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None

    def _open(self, ex: Exchange, key: Hashable) -> None:
        self.connecting[key] = self.connecting.get(key, 0) + 1
        spawn(self._dial(ex, key), name=f"connect {key}")

    async def _dial(self, ex: Exchange, key: Hashable) -> None:
        runtime = self.runtime
        try:
            up = await open_upstream(key, runtime.tls, runtime.metrics, self.direction, self.pool)
        except ProxyFailure as exc:
            self._dialed(key)
            ex.connect_failed(exc)
            ex.flush()
            return
        self._dialed(key)
        if ex.done or ex.up is not None or ex.endpoint != key:
            self.release(key, up)  # the exchange ended or moved on meanwhile: the connection serves another
        else:
            ex.attach(up, False)
            up.flush()

    def _dialed(self, key: Hashable) -> None:
        """A connect slot is free: the next waiter (if any) dials."""
        left = self.connecting.get(key, 1) - 1
        if left:
            self.connecting[key] = left
        else:
            self.connecting.pop(key, None)
        ex = self._next_waiter(key)
        if ex is not None:
            self._open(ex, key)

    def _next_waiter(self, key: Hashable) -> Exchange | None:
        queue = self.waiting.get(key)
        while queue:
            ex = queue.popleft()
            if not ex.done and ex.up is None and ex.endpoint == key:
                return ex
        if queue is not None:
            del self.waiting[key]
        return None

    def _sweep(self) -> None:
        self.pool.sweep()
        self._sweeper = self.loop.call_later(SWEEP_S, self._sweep)
