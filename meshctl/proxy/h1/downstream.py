"""asyncio glue of the HTTP/1.1 path, client side (upstream.py holds the upstream connection's protocol).

Callback driven, as uvicorn's protocols: no task or future per request. A downstream connection
parses a request, routes it, takes an idle upstream connection from the pool (or opens one: the one
awaited step, a task per new connection) and streams the head and body through; the response is parsed
and streamed back. Writes caused by one read leave in one write per socket. Both directions pause
reading when the other side's write buffer is full. Deadlines are floats checked by one lazily re-armed
timer per connection, so a request costs no timer calls. Every failure ends in `rescue`'s response, or
in closing the client connection when the response head had already gone out — never a hang.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Hashable
from typing import Any, Protocol, cast

from meshctl.aio import spawn
from meshctl.proxy.h1.codec import Headers, RequestHead, RequestReader, ResponseHead, chunk, last_chunk
from meshctl.proxy.h1.upstream import HIGH_WATER, Pool, Upstream, open_upstream
from meshctl.proxy.policy.balance import Balancer
from meshctl.proxy.policy.resolve import Destination, Endpoint
from meshctl.proxy.rescue import (
    NoEndpoints,
    ProxyFailure,
    ResponseTimeout,
    UnknownService,
    UpstreamClosed,
    UpstreamReset,
    render_http1,
)
from meshctl.proxy.runtime import ProxyRuntime

log = logging.getLogger("meshctl.proxy.h1.downstream")

HEADER_S = 10.0  # a request head must arrive within this
RESPONSE_S = 10.0  # response head deadline without a route timeout
PROGRESS_S = 60.0  # a body that makes no progress for this long is abandoned
IDLE_S = 60.0  # keep-alive connections idle for this long are closed
MAX_QUEUED = 16  # pipelined requests read ahead of the one in flight

# why downstream reading is paused (bits)
_UPSTREAM_FULL, _QUEUED, _BUFFERING = 1, 2, 4
# what the deadline is for
_HEADER, _RESPONSE, _PROGRESS, _IDLE = 0, 1, 2, 3


class Connection(Protocol):
    def drain(self) -> None: ...

    def abort(self, reason: str) -> None: ...


class Listener:
    """What the connections of one listener share."""

    def __init__(self, runtime: ProxyRuntime, direction: str) -> None:
        self.runtime = runtime
        self.direction = direction  # "outbound" | "inbound" | "ingress"
        self.metrics_direction = "inbound" if direction == "inbound" else "outbound"
        self.inbound = direction == "inbound"
        self.loop = asyncio.get_running_loop()
        self.pool: Pool[Upstream] = Pool(self.loop.time)
        self.live: set[Connection] = set()  # accepted connections, HTTP/1.1 or still detecting
        self.draining = False
        app = runtime.config.inbound.app if runtime.config.inbound is not None else None
        self.app_key: Hashable = (app.host, app.port) if app is not None else None
        self._sweeper = self.loop.call_later(10.0, self._sweep)

    def _sweep(self) -> None:
        self.pool.sweep()
        self._sweeper = self.loop.call_later(10.0, self._sweep)

    def drain(self) -> None:
        """Stop reusing connections: idle ones close now, busy ones after their response."""
        self.draining = True
        for conn in list(self.live):
            conn.drain()
        self.pool.close_all()

    def abort_all(self) -> None:
        for conn in list(self.live):
            conn.abort("shutdown")
        self._sweeper.cancel()
        self.pool.close_all()


class Downstream(asyncio.Protocol):
    """One client connection (the app's on outbound/ingress, a peer proxy's on inbound)."""

    def __init__(self, listener: Listener, tls: bool = False, peer_identity: str | None = None) -> None:
        self.listener = listener
        self.runtime = listener.runtime
        self.loop = listener.loop
        self.tls = tls
        self.peer_identity = peer_identity
        self.transport: asyncio.Transport | None = None
        self.reader = RequestReader(self)
        self.wbuf: list[bytes] = []
        self.queue: deque[tuple[RequestHead, list[bytes], Headers | None, bool]] = deque()
        self.paused = 0
        self.closed = False
        self.close_after = False  # close once the current exchange is done
        self.closing = False
        self.writing_paused = False  # the client is not reading: its upstream must not either
        self.gen = 0  # exchange number: a connection opened for an exchange that ended is pooled instead
        self.deadline = 0.0
        self.kind = _HEADER
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = 0.0
        self._clear_exchange()

    def _clear_exchange(self) -> None:
        self.head: RequestHead | None = None
        self.up: Upstream | None = None
        self.pending: list[bytes] = []  # request bytes waiting for an upstream connection
        self.pending_size = 0
        self.req_done = False
        self.resp_status = 0  # final status once its head went out
        self.rechunk = False
        self.stats: Any = None
        self.route: Any = None
        self.balancer: Balancer | None = None
        self.endpoint: Endpoint | None = None
        self.key: Hashable = None
        self.t0 = 0.0
        self.ttfb = 0.0
        self.reused = False

    # -- asyncio.Protocol ---------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio classes
        self.transport.set_write_buffer_limits(high=HIGH_WATER)
        self.listener.live.add(self)
        self.runtime.metrics.tcp_opened(self.listener.metrics_direction, "src", self.tls)
        self._deadline(_HEADER, HEADER_S)
        if self.peer_identity is not None:
            log.debug("inbound connection from %s", self.peer_identity)

    def data_received(self, data: bytes) -> None:
        if self.head is None and self.kind == _IDLE:
            self._deadline(_HEADER, HEADER_S)
        try:
            self.reader.feed(data)
        except ProxyFailure as exc:
            self._bad_request(exc)
        except Exception:  # a bug must cost one connection, not the process
            log.exception("unexpected error on a client connection")
            self.abort("internal error")
        up = self.up
        if up is not None and up.wbuf:
            up.flush()

    def eof_received(self) -> bool:
        # A client may half-close after its request; keep the socket open for the response then.
        self.close_after = True
        return self.head is not None and self.req_done

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed:
            return
        self.closed = True
        self.listener.live.discard(self)
        self.runtime.metrics.tcp_closed(self.listener.metrics_direction, "src", self.tls)
        if self.timer is not None:
            self.timer.cancel()
        if self.head is not None:
            self._abandon("client closed the connection")

    def pause_writing(self) -> None:
        self.writing_paused = True
        if self.up is not None:
            self.up.pause_reading(True)

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self.up is not None:
            self.up.pause_reading(False)

    # -- requests (RequestSink) ---------------------------------------------------------------------
    def on_request_head(self, head: RequestHead) -> None:
        if self.closing:
            return
        if self.head is not None or self.queue:
            if len(self.queue) >= MAX_QUEUED:
                self._reply_and_close(UpstreamReset("too many pipelined requests"))
                return
            self.queue.append((head, [], None, False))
            self._pause(_QUEUED)
            return
        self._begin(head)

    def on_request_body(self, data: bytes) -> None:
        if self.queue:
            self.queue[-1][1].append(data)
            return
        if self.head is None:
            return  # the request was already answered (and the connection is closing)
        self.deadline = self.loop.time() + PROGRESS_S
        self._send_up(chunk(data) if self.head.chunked else data)

    def on_request_end(self, trailers: Headers | None) -> None:
        if self.queue:
            head, body, _, _ = self.queue[-1]
            self.queue[-1] = (head, body, trailers, True)
            return
        if self.head is None:
            return
        if self.head.chunked:
            self._send_up(last_chunk(trailers))
        self.req_done = True
        if not self.resp_status:
            timeout = self.route.timeout_s if self.route is not None else None
            self._deadline(_RESPONSE, timeout or RESPONSE_S)

    # -- one exchange ---------------------------------------------------------------------------------
    def _begin(self, head: RequestHead) -> None:
        self.gen += 1
        self.head = head
        self.t0 = self.loop.time()
        listener = self.listener
        runtime = self.runtime
        dest: Destination | None
        if listener.inbound:
            dest = runtime.local
        elif listener.direction == "ingress":
            dest = runtime.resolve_ingress(head.authority)
        else:
            dest = runtime.resolve(head.authority)
        if dest is not None:
            self.route = route = dest.match(head.method, head.path)
            timeout = route.timeout_s or RESPONSE_S
            self.stats = runtime.metrics.route(
                listener.metrics_direction, dest.authority, route.name, True, dest.namespace, dest.service
            )
        else:
            timeout = RESPONSE_S
            self.stats = runtime.metrics.route(
                listener.metrics_direction, head.authority, "[DEFAULT]", listener.inbound, "", ""
            )
        self.stats.on_request()
        self.stats.on_actual_request()
        if not head.chunked and not head.content_length:
            self._deadline(_RESPONSE, timeout)
        else:
            self._deadline(_PROGRESS, PROGRESS_S)
        self.pending = [head.serialize()]
        self.pending_size = 0
        if listener.inbound:
            self.key = listener.app_key
        elif dest is None:
            self._fail(UnknownService(f"no service for authority {head.authority!r}"))
            return
        else:
            self.balancer = balancer = runtime.balancer(dest)
            endpoint = balancer.pick(dest.endpoints)
            if endpoint is None:
                self._fail(NoEndpoints(f"{dest.authority} has no ready endpoint"))
                return
            self.endpoint = endpoint
            self.key = endpoint
            balancer.start(endpoint)
        self._attach_or_connect()

    def _attach_or_connect(self, fresh: bool = False) -> None:
        up = None if fresh else self.listener.pool.take(self.key)
        self.reused = up is not None
        if up is not None:
            self._attach(up)
        else:
            spawn(self._connect(self.gen), name=f"connect {self.key}")

    async def _connect(self, gen: int) -> None:
        listener, key = self.listener, self.key
        try:
            up = await open_upstream(key, self.runtime.tls, listener.runtime.metrics, listener.metrics_direction,
                                     listener.pool)  # fmt: skip
        except ProxyFailure as exc:
            if gen == self.gen and self.head is not None and not self.closed:
                self._fail(exc)
            return
        if gen != self.gen or self.head is None or self.up is not None or self.closed:
            listener.pool.put(key, up)  # the exchange ended meanwhile (client gone, timed out): keep it
        else:
            self._attach(up)
            up.flush()

    def _attach(self, up: Upstream) -> None:
        self.up = up
        up.bind(self, self.head is not None and self.head.method == "HEAD")
        if self.writing_paused:
            up.pause_reading(True)
        up.wbuf.extend(self.pending)
        self.pending = []
        self.pending_size = 0
        self._resume(_BUFFERING)

    def _send_up(self, data: bytes) -> None:
        up = self.up
        if up is not None:
            up.wbuf.append(data)
            return
        self.pending.append(data)
        self.pending_size += len(data)
        if self.pending_size > HIGH_WATER:
            self._pause(_BUFFERING)

    # -- responses (called by Upstream) ---------------------------------------------------------------
    def on_response_head(self, head: ResponseHead) -> None:
        request = self.head
        if request is None:
            return
        if head.status < 200:
            if head.status == 100 or head.status >= 102:
                self.wbuf.append(head.serialize(request.version, True)[0])
            return
        now = self.loop.time()
        self.ttfb = now - self.t0
        self.resp_status = head.status
        keep = request.keep_alive and not self.close_after and not self.listener.draining
        data, self.rechunk, close = head.serialize(request.version, keep)
        self.close_after = close or not keep
        self.wbuf.append(data)
        self._deadline(_PROGRESS, PROGRESS_S)

    def on_response_body(self, data: bytes) -> None:
        self.deadline = self.loop.time() + PROGRESS_S
        self.wbuf.append(chunk(data) if self.rechunk else data)

    def on_response_end(self, trailers: Headers | None) -> None:
        if self.rechunk:
            self.wbuf.append(last_chunk(trailers))
        self._record(self.resp_status, False)
        if not self.req_done:
            # Answered before the request was read: the rest of it is unread, so neither side is reusable.
            self.close_after = self.req_done = True
            if self.up is not None:
                self.up.reusable = False
        self._finish()

    def upstream_failed(self, exc: ProxyFailure) -> None:
        """The upstream connection broke (or timed out) during this exchange."""
        up = self.up
        if up is not None:
            up.unbind()
            up.close()
            self.up = None
        replayable = self.reused and isinstance(exc, UpstreamClosed) and self.head is not None
        if replayable and not self.resp_status and self.head is not None and not self._has_body(self.head):
            # A pooled connection the server closed just before our request: try a fresh one once.
            self.pending = [self.head.serialize()]
            self._attach_or_connect(fresh=True)
            return
        self._fail(exc)

    @staticmethod
    def _has_body(head: RequestHead) -> bool:
        return head.chunked or bool(head.content_length)

    # -- endings --------------------------------------------------------------------------------------
    def _record(self, status: int, failed: bool) -> None:
        route = self.route
        if not failed and route is not None:
            failed = route.is_failure(status)
        elif not failed:
            failed = status >= 500
        latency_ms = self.ttfb * 1000.0
        self.stats.on_response(status, None, latency_ms, failed)
        self.stats.on_actual_response(status, None, latency_ms, failed)
        if self.balancer is not None and self.endpoint is not None:
            self.balancer.done(self.endpoint, self.ttfb, not failed)
            self.balancer = None

    def _finish(self) -> None:
        """Both messages are complete: reuse or close the upstream, then the next request or idle."""
        up = self.up
        if up is not None:
            up.unbind()
            if up.reusable and not self.listener.draining:
                up.pause_reading(False)  # an idle pooled connection must notice when its peer closes
                self.listener.pool.put(self.key, up)
            else:
                up.close()
        self._resume(_UPSTREAM_FULL)
        self.flush()
        self._clear_exchange()
        if self.close_after or self.closed:
            self._close()
            return
        if self.queue:
            self._next_queued()
        else:
            self._deadline(_IDLE, IDLE_S)

    def _next_queued(self) -> None:
        head, body, trailers, done = self.queue.popleft()
        if not self.queue:
            self._resume(_QUEUED)
        self._begin(head)
        for data in body:
            self.on_request_body(data)
        if done:
            self.on_request_end(trailers)
        if self.up is not None:
            self.up.flush()

    def _fail(self, exc: ProxyFailure) -> None:
        """Answer a failed exchange with rescue's response, or cut the client off if a response began."""
        response = self.runtime.rescue(exc)
        self.runtime.metrics.proxy_error(response.reason)
        client = f" client={self.peer_identity}" if self.peer_identity else ""
        log.info("%s %s: %s (%s)%s", self.listener.direction, response.http_status, response.reason,
                 _clean(str(exc) or type(exc).__name__), client)  # fmt: skip
        up = self.up
        if up is not None:
            up.unbind()
            up.close()
            self.up = None
        if self.resp_status:
            self._abandon_stats(True)
            self.abort(response.reason)
            return
        if self.stats is not None:
            self.ttfb = self.loop.time() - self.t0
            self._record(response.http_status, True)
        head = self.head
        body_unread = not self.req_done and head is not None and self._has_body(head)
        close = body_unread or self.close_after or (head is not None and not head.keep_alive)
        self.wbuf.append(render_http1(response, close=close))
        self.close_after = close
        self.req_done = True
        self._finish()

    def _abandon_stats(self, failed: bool) -> None:
        if self.balancer is not None and self.endpoint is not None:
            self.balancer.done(self.endpoint, self.loop.time() - self.t0, not failed)
            self.balancer = None
        if self.stats is not None and self.resp_status:
            self.stats.on_response(self.resp_status, None, self.ttfb * 1000.0, True)
            self.stats = None

    def _abandon(self, reason: str) -> None:
        up = self.up
        if up is not None:
            up.unbind()
            up.close()
            self.up = None
        self._abandon_stats(False)
        self._clear_exchange()

    def _bad_request(self, exc: ProxyFailure) -> None:
        if self.head is not None and not self.req_done:
            self._fail(exc)  # a malformed body: the exchange cannot continue
            return
        if self.head is not None:
            self.close_after = True  # a malformed follow-up: answer the current one, then close
            return
        self._reply_and_close(exc)

    def _reply_and_close(self, exc: ProxyFailure) -> None:
        response = self.runtime.rescue(exc)
        self.runtime.metrics.proxy_error(response.reason)
        log.info("%s %s: %s (%s)", self.listener.direction, response.http_status, response.reason, _clean(str(exc)))
        self.wbuf.append(render_http1(response, close=True))
        self._close()

    def flush(self) -> None:
        if self.wbuf and self.transport is not None and not self.closed:
            wbuf = self.wbuf
            self.transport.write(wbuf[0] if len(wbuf) == 1 else b"".join(wbuf))
        self.wbuf = []

    def _close(self) -> None:
        self.closing = True
        self.flush()
        if self.transport is not None:
            self.transport.close()

    def abort(self, reason: str) -> None:
        log.debug("closing client connection: %s", reason)
        self.closing = True
        self.flush()
        if self.transport is not None:
            self.transport.close()
        if self.head is not None:
            self._abandon(reason)

    def drain(self) -> None:
        if self.head is None and not self.queue:
            self._close()
        else:
            self.close_after = True

    # -- flow control and deadlines -------------------------------------------------------------------
    def _pause(self, reason: int) -> None:
        if not self.paused and self.transport is not None:
            self.transport.pause_reading()
        self.paused |= reason

    def _resume(self, reason: int) -> None:
        if self.paused & reason:
            self.paused &= ~reason
            if not self.paused and self.transport is not None and not self.closed:
                self.transport.resume_reading()

    def upstream_full(self, full: bool) -> None:
        if full:
            self._pause(_UPSTREAM_FULL)
        else:
            self._resume(_UPSTREAM_FULL)

    def _deadline(self, kind: int, seconds: float) -> None:
        self.kind = kind
        self.deadline = when = self.loop.time() + seconds
        if self.timer is None or self.timer_at > when:
            if self.timer is not None:
                self.timer.cancel()
            self.timer_at = when
            self.timer = self.loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self.timer = None
        if self.closed:
            return
        if self.loop.time() < self.deadline:
            self.timer_at = self.deadline
            self.timer = self.loop.call_at(self.deadline, self._on_timer)
            return
        kind = self.kind
        if kind == _RESPONSE and self.head is not None and not self.resp_status:
            self._fail(ResponseTimeout("no response head before the deadline"))
            if self.up is not None:
                self.up.flush()
        elif kind in (_HEADER, _IDLE) and self.head is None:
            self._close()
        else:
            self.abort("no progress before the deadline")


def _clean(text: str) -> str:
    """One log line per event: no CR/LF from peers."""
    return text.replace("\r", "\\r").replace("\n", "\\n")[:300]


def make_factory(listener: Listener) -> Callable[[], asyncio.Protocol]:
    return lambda: Downstream(listener)
