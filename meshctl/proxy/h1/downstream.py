"""asyncio glue of the HTTP/1.1 path, client side: a listener's shared state and one client connection.

Callback driven, as uvicorn's protocols: no task or future per request. A downstream connection parses
requests with the sans-IO codec and hands each one to an `Exchange` (exchange.py) that carries it to an
upstream connection (upstream.py) and streams the response back. Pipelined requests queue as exchanges
of their own, each with its own body, and are answered in order. Writes caused by one read leave in one
write per socket. Both directions pause reading when the other side's write buffer is full. Deadlines
are floats checked by one lazily re-armed timer per connection, so a request costs no timer calls.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Hashable
from typing import Protocol, cast

from meshctl.proxy.errors import ProxyFailure, TooManyPipelined
from meshctl.proxy.h1.codec import Headers
from meshctl.proxy.h1.ends import HEADER, IDLE, RESPONSE, UpstreamConn
from meshctl.proxy.h1.exchange import Exchange
from meshctl.proxy.h1.request import RequestHead, RequestReader
from meshctl.proxy.h1.upstream import HIGH_WATER, Dialer, Upstream
from meshctl.proxy.rescue import render_http1
from meshctl.proxy.runtime import ProxyRuntime
from meshctl.proxy.stack import Stack

log = logging.getLogger("meshctl.proxy.h1")

HEADER_S = 10.0  # a request head must arrive within this
PROGRESS_S = 60.0  # a body that makes no progress for this long is abandoned
IDLE_S = 60.0  # keep-alive connections idle for this long are closed
MAX_QUEUED = 32  # pipelined requests read ahead of the one in flight; more are refused, in order

# why downstream reading is paused (bits)
_UPSTREAM_FULL, _QUEUED, _BUFFERING = 1, 2, 4


class Connection(Protocol):
    def drain(self) -> None: ...

    def abort(self, reason: str) -> None: ...


class Listener:
    """What the connections of one listener share: its request stack and its upstream dialer."""

    def __init__(self, runtime: ProxyRuntime, direction: str) -> None:
        self.runtime = runtime
        self.direction = direction  # "outbound" | "inbound" | "ingress"
        self.metrics_direction = "inbound" if direction == "inbound" else "outbound"
        self.inbound = direction == "inbound"
        self.loop = asyncio.get_running_loop()
        app = runtime.config.inbound.app if runtime.config.inbound is not None else None
        app_key: Hashable = (app.host, app.port) if app is not None else None
        self.stack = Stack(runtime, direction, self.inbound, app_key)
        self.dialer = Dialer(runtime, self.metrics_direction, self.loop)
        self.live: set[Connection] = set()  # accepted connections, HTTP/1.1 or still detecting
        self.draining = False

    def drain(self) -> None:
        """Stop reusing connections: idle ones close now, busy ones after their response."""
        self.draining = True
        for conn in list(self.live):
            conn.drain()
        self.dialer.close_all()

    def abort_all(self) -> None:
        for conn in list(self.live):
            conn.abort("shutdown")
        self.dialer.close_all(final=True)


class Downstream(asyncio.Protocol):
    """One client connection (the app's on outbound/ingress, a peer proxy's on inbound)."""

    def __init__(self, listener: Listener, tls: bool = False, peer_identity: str | None = None) -> None:
        self.listener = listener
        self.stack = listener.stack
        self.loop = listener.loop
        self.tls = tls
        self.peer_identity = peer_identity
        self.transport: asyncio.Transport | None = None
        self.reader = RequestReader(self, listener.direction != "ingress")  # the ingress adds trace fields
        self.wbuf: list[bytes] = []
        self.current: Exchange | None = None  # the exchange whose response is due
        self.queue: deque[Exchange] = deque()  # pipelined exchanges read ahead of it
        self.paused = 0
        self.closed = False
        self.close_after = False  # close once the current exchange is done
        self.closing = False
        self.refusing = False  # a request was refused for reading too far ahead: read no more
        self.writing_paused = False  # the client is not reading: its upstream must not either
        self.deadline = 0.0
        self.kind = HEADER
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = 0.0
        # Bound once: the exchange asks for the time and a connection on every request.
        self.now: Callable[[], float] = self.loop.time
        self.connect: Callable[[Exchange, bool], None] = listener.dialer.connect

    # -- asyncio.Protocol ---------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio classes
        self.transport.set_write_buffer_limits(high=HIGH_WATER)
        self.listener.live.add(self)
        self.stack.runtime.metrics.tcp_opened(self.listener.metrics_direction, "src", self.tls)
        self.arm(HEADER, HEADER_S)
        if self.peer_identity is not None:
            log.debug("inbound connection from %s", self.peer_identity)

    def data_received(self, data: bytes) -> None:
        if self.refusing:
            return
        idle_at = self.deadline if self.current is None and self.kind == IDLE else 0.0
        try:
            self.reader.feed(data)
        except ProxyFailure as exc:
            self._bad_request(exc)
        except Exception:  # a bug must cost one connection, not the process
            log.exception("unexpected error on a client connection")
            self.abort("internal error")
        if idle_at and self.deadline == idle_at:
            # Only part of a head came: it has HEADER_S from now. (A request read whole re-armed the
            # deadline for its response already: no second timer arithmetic for it.)
            self.arm(HEADER, HEADER_S)
        current = self.current
        if current is not None and current.up is not None and current.up.wbuf:
            current.up.flush()
        if self.wbuf:
            self.flush()

    def eof_received(self) -> bool:
        # A client may half-close after its request; keep the socket open for the responses then.
        self.close_after = True
        reading = self.queue[-1] if self.queue else self.current
        return reading is not None and reading.req_done

    def connection_lost(self, exc: Exception | None) -> None:
        if self.closed:
            return
        self.closed = True
        self.listener.live.discard(self)
        self.stack.runtime.metrics.tcp_closed(self.listener.metrics_direction, "src", self.tls)
        if self.timer is not None:
            self.timer.cancel()
        self._abandon_all()

    def pause_writing(self) -> None:
        self.writing_paused = True
        if self.current is not None and self.current.up is not None:
            self.current.up.pause_reading(True)

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self.current is not None and self.current.up is not None:
            self.current.up.pause_reading(False)

    # -- requests (the codec's RequestSink) ---------------------------------------------------------
    def on_request_head(self, head: RequestHead) -> None:
        if self.closing or self.refusing:
            return
        if self.current is None and not self.queue:
            self.current = ex = Exchange(self, head)
            ex.start()
            return
        if len(self.queue) >= MAX_QUEUED:
            # Answered in its turn, after the responses before it; nothing after it is read.
            self.queue.append(Exchange(self, head, TooManyPipelined(f"more than {MAX_QUEUED} requests ahead")))
            self.queue[-1].req_done = True
            self.refusing = True
            return
        self.queue.append(Exchange(self, head))
        self._pause(_QUEUED)

    def on_request(self, head: RequestHead) -> None:
        if self.current is None and not self.queue and not (self.closing or self.refusing):
            self.current = ex = Exchange(self, head)
            ex.req_done = True  # read whole: start() arms its response deadline, as it does for any bodiless one
            ex.start()
            return
        self.on_request_head(head)
        self.on_request_end(None)

    def on_request_body(self, data: bytes) -> None:
        ex = self.queue[-1] if self.queue else self.current
        if ex is not None and not ex.req_done and not ex.done:
            ex.on_body(data)

    def on_request_end(self, trailers: Headers | None) -> None:
        ex = self.queue[-1] if self.queue else self.current
        if ex is not None and not ex.req_done:
            head = ex.head
            if head.chunked or head.content_length:
                ex.on_end(trailers)
            else:  # all on_end does for a request without a body (armed for its response as it started)
                ex.req_done = True

    # -- what exchanges ask of their connection (ends.Client) -------------------------------------
    def peer_address(self) -> str:
        peer = self.transport.get_extra_info("peername") if self.transport is not None else None
        return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "-"

    def buffering(self, full: bool) -> None:
        if full:
            self._pause(_BUFFERING | _UPSTREAM_FULL)
        else:
            self._resume(_BUFFERING | _UPSTREAM_FULL)

    def progress(self) -> None:
        self.deadline = self.loop.time() + PROGRESS_S

    def exchange_done(self, ex: Exchange, up: UpstreamConn | None) -> None:
        """Both messages of `ex` are complete: reuse or close its upstream (still bound to `ex`), then the
        next request or idle. One time reading serves the pool and the idle deadline."""
        now = self.loop.time()
        if up is not None:
            listener = self.listener
            if up.reusable and not listener.draining:
                plan = ex.plan
                key = plan.endpoint if plan is not None else None
                dialer = listener.dialer
                stack = dialer.pool.idle.get(key) if not dialer.waiting else None
                conn: Upstream = up  # type: ignore[assignment]  # (the dialer's connections are these)
                if stack is not None and len(stack) < dialer.pool.max_idle and not conn.reading_paused:
                    # dialer.release(key, up, now) without the call, once per request: no request waits
                    # for the endpoint, and its pool has room
                    conn.owner = None
                    conn.reader.sink = conn
                    conn.idle_since = now
                    stack.append(conn)
                else:
                    dialer.release(key, conn, now)
            else:
                up.unbind()
                up.close()
        if ex is not self.current:
            return
        self.current = None
        if self.paused:
            self._resume(_UPSTREAM_FULL | _BUFFERING)
        if self.close_after or self.closed:
            self._close()
            return
        if self.queue:
            self.current = nxt = self.queue.popleft()
            if not self.queue:
                self._resume(_QUEUED)
            nxt.start()
            if nxt.up is not None:
                nxt.up.flush()
        else:
            # arm(IDLE, IDLE_S) without the call, once per request: the timer set for the request fires before
            # this deadline (it re-arms itself for a later one), so it rarely has to move.
            self.kind = IDLE
            self.deadline = when = now + IDLE_S
            if self.timer is None or self.timer_at > when:
                self.arm(IDLE, IDLE_S)

    def flush(self) -> None:
        if self.wbuf and self.transport is not None and not self.closed:
            wbuf = self.wbuf
            self.transport.write(wbuf[0] if len(wbuf) == 1 else b"".join(wbuf))
        self.wbuf = []

    def abort(self, reason: str) -> None:
        log.debug("closing client connection: %s", reason)
        self.closing = True
        self.flush()
        if self.transport is not None:
            self.transport.close()
        self._abandon_all()

    def drain(self) -> None:
        if self.current is None and not self.queue:
            self._close()
        else:
            self.close_after = True

    # -- endings --------------------------------------------------------------------------------------
    def _abandon_all(self) -> None:
        current, queued = self.current, list(self.queue)
        self.current = None
        self.queue.clear()
        if current is not None:
            current.abandon()
        for ex in queued:
            ex.abandon()

    def _bad_request(self, exc: ProxyFailure) -> None:
        reading = self.queue[-1] if self.queue else self.current
        if reading is not None and not reading.req_done:
            if reading is self.current:
                reading.fail(exc)  # a malformed body: the exchange cannot continue
                self.close_after = True
                return
            reading.refusal, reading.req_done = exc, True  # answered in its turn
            self.refusing = True
            return
        if reading is not None:
            # A malformed follow-up: answer what was read, then this one's error, then close.
            self.queue.append(Exchange(self, _placeholder_head(), exc))
            self.queue[-1].req_done = True
            self.refusing = True
            return
        self._reply_and_close(exc)

    def _reply_and_close(self, exc: ProxyFailure) -> None:
        response = self.stack.rescue(exc)
        self.wbuf.append(render_http1(response, close=True))
        self._close()

    def _close(self) -> None:
        self.closing = True
        self.flush()
        if self.transport is not None:
            self.transport.close()

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

    def later(self, seconds: float, callback: Callable[[], None]) -> None:
        """Call `callback` in `seconds` (an injected delay: the exchange checks it is still wanted)."""
        self.loop.call_later(seconds, callback)

    def arm(self, kind: int, seconds: float, now: float = 0.0) -> None:
        """The connection's one deadline: what it is for, and when (0 s: the progress deadline); `now`:
        the loop's time when the caller has just read it."""
        self.kind = kind
        self.deadline = when = (now or self.loop.time()) + (seconds or PROGRESS_S)
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
        kind, current = self.kind, self.current
        if kind == RESPONSE and current is not None and not current.resp_status:
            current.expired()
            self.flush()
        elif kind in (HEADER, IDLE) and current is None:
            self._close()
        else:
            self.abort("no progress before the deadline")


def _placeholder_head() -> RequestHead:
    """The head of a request that could not be parsed: it is only answered, never forwarded."""
    head = RequestHead([])
    head.method, head.keep_alive = "GET", False
    return head


def make_factory(listener: Listener) -> Callable[[], asyncio.Protocol]:
    return lambda: Downstream(listener)
