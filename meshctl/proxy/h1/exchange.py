"""One proxied HTTP/1.1 request/response cycle, shaped like the HTTP/2 path's Exchange.

An exchange owns what belongs to one request: its head and request plan (stack.py), the upstream
connection it is bound to, request bytes waiting for that connection, and the response's framing.
The downstream connection (downstream.py) feeds it the request as the codec parses it and writes
what it appends to the client buffer; the upstream connection feeds it the response. It never touches
a socket: the connection and the connector are passed in, so tests drive it with fakes and a fake
clock. Every way it ends leaves through `_finish` or `abandon`, which report to the plan exactly once.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING

from meshctl.proxy.errors import (
    ConnectFailed,
    DeadlineExceeded,
    Failure,
    ProxyFailure,
    ResponseTimeout,
    UpstreamClosed,
)
from meshctl.proxy.h1.codec import Headers, chunk, last_chunk
from meshctl.proxy.h1.ends import PROGRESS, RESPONSE, Client, UpstreamConn
from meshctl.proxy.h1.response_head import ResponseHead
from meshctl.proxy.policy import deadline
from meshctl.proxy.rescue import NEVER_SENT, NOT_DELIVERED, PROXY_ERROR_HEADER, render_http1

if TYPE_CHECKING:
    from meshctl.proxy.h1.request import RequestHead
    from meshctl.proxy.plan import RequestPlan

REPLAY_LIMIT = 64 * 1024  # a request is replayed on another endpoint only if its whole body fits
HIGH_WATER = 256 * 1024  # request bytes buffered before a connection: the client stops being read
IDEMPOTENT = frozenset(("GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"))  # RFC 9110 9.2.2

class Exchange:
    __slots__ = ("client", "head", "plan", "up", "pending", "pending_size", "req_done", "resp_status", "rechunk", "t0",
                 "ttfb", "reused", "redialed", "replay", "done", "refusal", "deadline", "own_deadline")  # fmt: skip

    def __init__(self, client: Client, head: RequestHead, refusal: ProxyFailure | None = None) -> None:
        self.client = client
        self.head = head
        self.plan: RequestPlan | None = None
        self.up: UpstreamConn | None = None
        self.pending: list[bytes] = []  # request bytes waiting for an upstream connection
        self.pending_size = 0
        self.req_done = False  # the whole request has been read from the client
        self.resp_status = 0  # final status once its head went out
        self.rechunk = False
        self.t0 = 0.0
        self.ttfb = 0.0
        self.reused = False
        self.redialed = False  # resent once after a new connection closed before any response
        self.replay: list[bytes] | None = None  # body bytes sent so far, while another attempt is possible
        self.done = False
        self.refusal = refusal  # answered with this failure when its turn comes (read too far ahead)
        self.deadline: float | None = None  # when the client's own deadline (mesh-timeout) ends, if it sent one
        self.own_deadline = False  # that deadline is tighter than the route's timeout

    @property
    def endpoint(self) -> Hashable:
        return self.plan.endpoint if self.plan is not None else None

    # -- start (its turn on the connection) -----------------------------------------------------------
    def start(self) -> None:
        client, head = self.client, self.head
        self.t0 = now = client.now()
        if self.refusal is not None:  # never routed: answered with its reason, then the connection closes
            client.close_after = True
            self._answer(client.stack.rescue(self.refusal))
            return
        self.plan = plan = client.stack.plan(head.method, head.authority, head.path, head.headers, client)
        if head.timeout is not None:
            self._asked(deadline.parse(head.timeout))
        if self.req_done or not (head.chunked or head.content_length):
            client.arm(RESPONSE, self._response_s() if self.deadline is not None else
                       plan.timeout_s or client.stack.response_s, now)  # fmt: skip
        else:
            client.arm(PROGRESS, 0.0, now)
        self.pending.insert(0, head.raw if head.raw is not None and head.cuts is None else self._serialized_head())
        if plan.failure is not None:
            self._answer(plan.failure)
            return
        if self.deadline is not None and self.deadline <= self.t0:
            self._answer(plan.rescue(DeadlineExceeded("the request came with no time left")))
            return
        if not head.chunked and (head.content_length or 0) <= REPLAY_LIMIT:
            self.replay = []  # the whole request fits in memory: it can be sent again if never delivered
        if plan.delay_s:
            client.later(plan.delay_s, self._delayed)
            return
        client.connect(self, False)

    def _delayed(self) -> None:
        """An injected delay is over: the first attempt, unless the request ended meanwhile."""
        if not self.done and self.up is None:
            self._connect(False)

    def _asked(self, asked: float | None) -> None:
        """The client's own deadline: it bounds every attempt together with the route's timeout."""
        if asked is None or self.plan is None:
            return
        route_s = self.plan.timeout_s
        self.own_deadline = route_s is None or asked < route_s
        self.deadline = self.t0 + (asked if route_s is None else min(asked, route_s))

    def _response_s(self) -> float:
        """How long to wait for a response head from now."""
        if self.deadline is not None:
            return max(self.deadline - self.client.now(), 0.001)  # 0 would arm the progress deadline
        plan = self.plan
        return (plan.timeout_s if plan is not None else None) or self.client.stack.response_s

    def _serialized_head(self) -> bytes:
        """The request head for an attempt (start() sends a head read with nothing to leave out as it
        came, without a call); a deadline is forwarded as the time that is left now."""
        head = self.head
        if self.deadline is not None:  # (never on a head forwarded as read: mesh-timeout is read per field)
            left = deadline.format_left(self.deadline - self.client.now())
            head.headers = [(n, left) if n.lower() == deadline.HEADER else (n, v) for n, v in head.headers]
        return head.serialize()

    def attach(self, up: UpstreamConn, reused: bool) -> None:
        self.up = up
        self.reused = reused
        # Bound to this exchange: the response goes straight to it, which keeps `reusable` as it reads.
        up.owner = self
        up.reusable = False
        reader = up.reader
        reader.sink = self
        reader.expect(self.head.method == "HEAD")
        if self.client.writing_paused:
            up.pause_reading(True)
        wbuf = up.wbuf  # mostly empty: it takes the pending list itself (no copy, no new list)
        up.wbuf, self.pending = (wbuf + self.pending, []) if wbuf else (self.pending, wbuf)
        if self.pending_size:
            self.pending_size = 0
            self.client.buffering(False)

    # -- request direction (from the client's codec) --------------------------------------------------
    def on_body(self, data: bytes) -> None:
        plan = self.plan
        if plan is not None:
            self.client.progress()
            if plan.tap is not None:
                plan.tapped(True, data)
        self._send_up(chunk(data) if self.head.chunked else data)
        if self.replay is not None:
            self.replay.append(data)

    def on_end(self, trailers: Headers | None) -> None:
        head = self.head
        if head.chunked:
            self._send_up(last_chunk(trailers))
        self.req_done = True
        # A request without a body was armed for its response when it started, in this same read.
        if self.plan is not None and not self.resp_status and (head.chunked or head.content_length):
            self.client.arm(RESPONSE, self._response_s())

    def _send_up(self, data: bytes) -> None:
        up = self.up
        if up is not None:
            up.wbuf.append(data)
            return
        self.pending.append(data)
        self.pending_size += len(data)
        if self.pending_size > HIGH_WATER:
            self.client.buffering(True)

    # -- response direction (from the upstream connection) --------------------------------------------
    def on_response_head(self, head: ResponseHead) -> None:
        status = head.status
        up = self.up
        if up is not None and status >= 200:
            up.reusable = head.keep_alive
        if self.done:
            return
        client, request = self.client, self.head
        if status < 200:
            if status == 100 or status >= 102:
                client.wbuf.append(head.serialize(request.version, True)[0])
            return
        plan = self.plan
        if self.replay is not None and self.req_done:  # the whole request is at hand: it can be sent again
            if status >= 502 and self._not_delivered(head):
                if self._retry(ConnectFailed("the peer proxy lost its app")):
                    return
            elif plan is not None and plan.budget is not None and self._retry_route(status):
                return
        self.replay = None
        self.ttfb = client.now() - self.t0
        self.resp_status = status
        if plan is not None and plan.set_cookie is not None:  # session affinity's new key
            head.add(b"set-cookie", plan.set_cookie)
        keep = request.keep_alive and not client.close_after
        data, self.rechunk, close = head.serialize(request.version, keep)
        client.close_after = close or not keep
        client.wbuf.append(data)  # the body's deadline: upstream.py arms it once the read is through
        if plan is not None and plan.tap is not None:
            plan.tap.response(status, head.headers)

    def on_response_body(self, data: bytes) -> None:
        if self.done:
            return
        self.client.wbuf.append(chunk(data) if self.rechunk else data)
        plan = self.plan
        if plan is not None and plan.tap is not None:
            plan.tapped(False, data)

    def on_response_end(self, trailers: Headers | None, last: bytes = b"") -> None:
        up = self.up
        if up is not None:
            up.reusable = up.reusable and not up.closed and not up.reader.trailing
        if self.done:
            return
        plan = self.plan
        if last:  # on_response_body(last), without the call
            self.client.wbuf.append(chunk(last) if self.rechunk else last)
            if plan is not None and plan.tap is not None:
                plan.tapped(False, last)
        if self.rechunk:
            self.client.wbuf.append(last_chunk(trailers))
        if trailers and plan is not None and plan.tap is not None:
            plan.tap_trailers = trailers
        if not self.req_done:
            # Answered before the request was read: the rest of it is unread, so neither side is reusable.
            self.client.close_after = self.req_done = True
            if up is not None:
                up.reusable = False
        if plan is not None:
            plan.finish(self.resp_status, None, self.ttfb * 1000.0)
        # _finish(), without the call on every response
        self.done = True
        self.replay = None
        self.up = None
        self.client.exchange_done(self, up)

    def connect_failed(self, exc: ProxyFailure) -> None:
        """No connection to the endpoint: nothing was sent, so another endpoint may take the request."""
        if self.done:
            return
        plan = self.plan
        if isinstance(exc, NEVER_SENT) and plan is not None and plan.repick(exc):
            self._connect(False)  # `pending` still holds every byte of the request
            return
        self.fail(exc)

    def upstream_failed(self, exc: ProxyFailure) -> None:
        """The upstream connection broke during this exchange."""
        self._drop_up()
        if self.done:
            return
        # Closed before any response to a bodiless request: once more on a fresh connection. A pooled one the
        # server closed just before our request; or, once, a new one for an idempotent method: a killed app's
        # kept-alive connections close before its listener, which resets the connection it queued meanwhile.
        bodiless = self.replay is not None and not self.replay and not self.head.content_length
        again = self.reused or (not self.redialed and self.head.method in IDEMPOTENT)
        if not self.resp_status and isinstance(exc, UpstreamClosed) and bodiless and again:
            self.redialed |= not self.reused
            self._resend(fresh=True)
            return
        plan = self.plan
        if not self.resp_status and self.replay is not None and self.req_done and plan is not None \
                and plan.budget is not None and self._retry_route(plan.stack.runtime.rescue(exc).http_status):
            return
        self.fail(exc)

    def upstream_full(self, full: bool) -> None:
        self.client.buffering(full)

    def flush(self) -> None:
        self.client.flush()

    # -- another attempt ---------------------------------------------------------------------------------
    @staticmethod
    def _not_delivered(head: ResponseHead) -> bool:
        for name, value in head.headers:
            if len(name) == 16 and name.lower() == PROXY_ERROR_HEADER:
                return value.strip().lower() in NOT_DELIVERED
        return False

    def _retry(self, exc: BaseException | None) -> bool:
        """The peer proxy says its app never got the request: send it to another endpoint."""
        plan = self.plan
        if plan is None or not plan.repick(exc):
            return False
        self._drop_up()
        self._resend(fresh=False)
        return True

    def _retry_route(self, status: int) -> bool:
        """A failed attempt on a retryable route (5xx as the route classifies it, or a reset before the
        response): once more, while the retry budget and the attempts allow."""
        plan = self.plan
        if plan is None or not plan.retry(status, None, (self.client.now() - self.t0) * 1000.0):
            return False
        self._drop_up()
        self._resend(fresh=False)
        return True

    def _resend(self, fresh: bool) -> None:
        replay = self.replay or []
        head = self.head
        self.pending = [self._serialized_head(), *((chunk(b) for b in replay) if head.chunked else replay)]
        if head.chunked:
            self.pending.append(last_chunk(None))
        self._connect(fresh)

    def _connect(self, fresh: bool) -> None:
        """Another attempt, started from an upstream callback: nobody else flushes what it queued."""
        self.client.connect(self, fresh)
        up = self.up
        if up is not None:
            up.flush()

    # -- endings ---------------------------------------------------------------------------------------
    def fail(self, exc: BaseException) -> None:
        """Answer with the failure `exc` maps to, or cut the client off when a response had begun."""
        if self.done:
            return
        plan = self.plan
        failure = plan.rescue(exc) if plan is not None else self.client.stack.rescue(exc)
        self._drop_up()
        if self.resp_status:
            self.done = True
            if plan is not None:
                plan.finish(self.resp_status, None, self.ttfb * 1000.0, failed=True)
            self.client.abort(failure.reason)
            return
        self._answer(failure)

    def _answer(self, failure: Failure) -> None:
        client, head = self.client, self.head
        self.ttfb = client.now() - self.t0
        if self.plan is not None:
            self.plan.finish(failure.http_status, None, self.ttfb * 1000.0, failed=True)
        body_unread = not self.req_done and (head.chunked or bool(head.content_length))
        close = body_unread or client.close_after or not head.keep_alive
        client.wbuf.append(render_http1(failure, close=close))
        client.close_after = close
        self.req_done = True
        self._finish()

    def expired(self) -> None:
        """The connection's response deadline passed with no response head."""
        if not self.done and not self.resp_status:
            if self.own_deadline:
                self.fail(DeadlineExceeded("no response head before the request's own deadline"))
            else:
                self.fail(ResponseTimeout("no response head before the route's timeout"))

    def abandon(self) -> None:
        """The client went away (or the connection was cut): release everything, report no response."""
        if self.done:
            return
        self.done = True
        self._drop_up()
        if self.plan is not None:
            self.plan.abandon()

    def _finish(self) -> None:
        """Both messages are complete: the connection hands the upstream back (or closes it) and goes on."""
        self.done = True
        self.replay = None
        up, self.up = self.up, None
        self.client.exchange_done(self, up)

    def _drop_up(self) -> None:
        up = self.up
        if up is not None:
            self.up = None
            up.unbind()
            up.close()
