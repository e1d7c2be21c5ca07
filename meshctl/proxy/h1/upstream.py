"""Upstream HTTP/1.1 connections: the protocol of one connection, and the pool of idle ones.

`Upstream` is asyncio glue (with downstream.py and detect.py, the only HTTP/1.1 code on sockets): bound to one
downstream exchange at a time, it feeds response bytes to a ResponseReader whose events go to its owner.
`Pool` is sans-IO: it keeps idle connections per endpoint (most recently used first); the glue puts one
back only when both messages of its last exchange completed cleanly, and a periodic sweep closes those
idle for longer than IDLE_S.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, cast

from meshctl.proxy.h1.codec import Headers, ResponseHead, ResponseReader
from meshctl.proxy.policy.resolve import Endpoint
from meshctl.proxy.rescue import ConnectFailed, IdentityMismatch, ProxyFailure, UpstreamReset

if TYPE_CHECKING:
    from meshctl.proxy.h1.downstream import Downstream
    from meshctl.proxy.tls import TlsContexts

log = logging.getLogger("meshctl.proxy.h1.upstream")

CONNECT_TIMEOUT_S = 3.0
HIGH_WATER = 256 * 1024  # write buffer size at which the other side stops reading

IDLE_S = 60.0
MAX_IDLE_PER_KEY = 256


class Pooled(Protocol):
    closed: bool
    idle_since: float

    def close(self) -> None: ...


C = TypeVar("C", bound=Pooled)


class Pool(Generic[C]):
    def __init__(self, clock: Callable[[], float], idle_s: float = IDLE_S, max_idle: int = MAX_IDLE_PER_KEY) -> None:
        self._clock = clock
        self._idle_s = idle_s
        self._max_idle = max_idle
        self._idle: dict[Hashable, list[C]] = {}

    def take(self, key: Hashable) -> C | None:
        stack = self._idle.get(key)
        while stack:
            conn = stack.pop()
            if not conn.closed:
                return conn
        return None

    def put(self, key: Hashable, conn: C) -> None:
        stack = self._idle.get(key)
        if stack is None:
            stack = self._idle[key] = []
        if len(stack) >= self._max_idle:
            conn.close()
            return
        conn.idle_since = self._clock()
        stack.append(conn)

    def discard(self, key: Hashable, conn: C) -> None:
        """A pooled connection closed (by the peer): forget it."""
        stack = self._idle.get(key)
        if stack and conn in stack:
            stack.remove(conn)

    def sweep(self) -> int:
        """Close connections idle for too long; returns how many were closed."""
        limit = self._clock() - self._idle_s
        closed = 0
        for key, stack in list(self._idle.items()):
            stale = [c for c in stack if c.closed or c.idle_since <= limit]
            if stale:
                stack[:] = [c for c in stack if not (c.closed or c.idle_since <= limit)]
                for conn in stale:
                    if not conn.closed:
                        conn.close()
                        closed += 1
            if not stack:
                del self._idle[key]
        return closed

    def close_all(self) -> None:
        for stack in self._idle.values():
            for conn in stack:
                conn.close()
        self._idle.clear()

    def __len__(self) -> int:
        return sum(len(s) for s in self._idle.values())


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
        self.owner: Downstream | None = None
        self.transport: asyncio.Transport | None = None
        self.wbuf: list[bytes] = []
        self.closed = False
        self.lost = False
        self.idle_since = 0.0
        self.response_done = False
        self.reusable = False

    def bind(self, owner: Downstream, head_request: bool) -> None:
        self.owner = owner
        self.reader.expect(head_request)
        self.response_done = self.reusable = False

    def unbind(self) -> None:
        self.owner = None

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
        owner.flush()
        if self.wbuf:
            self.flush()

    def on_response_head(self, head: ResponseHead) -> None:
        if head.status >= 200:
            self.reusable = head.keep_alive
        if self.owner is not None:
            self.owner.on_response_head(head)

    def on_response_body(self, data: bytes) -> None:
        if self.owner is not None:
            self.owner.on_response_body(data)

    def on_response_end(self, trailers: Headers | None) -> None:
        self.response_done = True
        self.reusable = self.reusable and not self.closed
        if self.owner is not None:
            self.owner.on_response_end(trailers)

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
