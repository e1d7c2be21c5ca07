"""HTTP/2 requests forwarded to an HTTP/1.1 app: one request per connection at a time, kept alive.

Used by the inbound side when the app speaks "http" but the request arrived over HTTP/2. The
translation is the plain one (RFC 9113 §8.2.3, RFC 9112): `:authority` becomes Host, split cookies
are joined, a body of unknown length is sent chunked (with trailers, if any), and the response's
connection-specific fields are dropped. HTTP/1.1 has no flow control, so back-pressure is the
socket's: reading from the app pauses while too many response bytes wait for the client.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Protocol, cast

import httptools
from ngh2 import ErrorCode

from meshctl.aio import spawn
from meshctl.proxy.errors import UpstreamReset
from meshctl.proxy.h2.exchange import Exchange
from meshctl.proxy.h2.headers import CONNECTION_SPECIFIC, Header
from meshctl.proxy.h2.pool import Dialer

_SKIP_REQUEST = frozenset({b"te", b"host", b"cookie"}) | CONNECTION_SPECIFIC
_PSEUDO = frozenset({b":method", b":scheme", b":path", b":authority"})
_SKIP_LINE = _SKIP_REQUEST | _PSEUDO
_FIELD_LINE = b"%s: %s\r\n"
_COLON_SP = b": "
_STATUS = {code: b"%d" % code for code in range(100, 1000)}  # a :status value without formatting it
_SKIP_RESPONSE = CONNECTION_SPECIFIC | {b"te", b"trailer"}
# _SKIP_RESPONSE plus the fields a response's Connection header names, by that header's value.
_SKIP_LISTED: dict[bytes, frozenset[bytes]] = {}
_WINDOW = 64 * 1024  # request bytes accepted per pump: the transport's own buffer limits apply after
_PAUSE_AT = 1024 * 1024  # response bytes handed on but not yet written downstream
_RESUME_AT = 256 * 1024
_SID = 1  # the one "stream" of a connection
IDEMPOTENT = frozenset((b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"))  # RFC 9110 9.2.2
MAX_IDLE = 256  # idle connections kept per app address: as many as HTTP/2 clients keep requests in flight
# (h2load -m10 -c8 keeps 80; 32 made most requests dial the app anew), and as h1/upstream.py keeps


class Flusher(Protocol):
    """The Outbox flushed soon (server.FlushSoon): `pending` while a flush is already due."""

    pending: bool

    def __call__(self) -> None: ...


class Http1Upstream(asyncio.Protocol):
    """One HTTP/1.1 connection to the app; it is its own UpstreamEnd and UpstreamLink."""

    def __init__(self, pool: Http1Pool, key: object) -> None:
        self.pool = pool
        self.key = key
        self.side = self  # the UpstreamEnd an exchange drives (an attribute: read five times a request)
        self.exchanges: dict[int, Exchange] = {}
        self.blocked: set[Exchange] = set()
        self.streams: dict[int, int] = {}
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.chunked = False
        self.head_request = False
        self.headers: list[Header] = []
        self.trailers: list[Header] = []
        self.in_body = False
        self.fields = self.headers  # where on_header puts a field: the head's, then the trailers' list
        self.request_done = False
        self.response_done = False
        self.reusable = False
        self.paused = False
        self.reading_paused = False
        self.unacked = 0
        self.closed = False
        self.requests = 0  # requests started on this connection: more than one means it was reused
        self.answering = False  # a byte of a response to the current request arrived
        self.held: Exchange | None = None  # body bytes queued in this read, sent once it is parsed

    # -- asyncio ----------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.pool.opened(self, True)

    def data_received(self, data: bytes) -> None:
        self.answering = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._lost(f"malformed response from the app: {exc}")
        held = self.held
        if held is not None:  # the body goes on, in a later read: send what this one brought
            self.held = None
            held.pump_response()
        flush = self.pool.outbox_flush
        if not flush.pending:  # FlushSoon's own test, without its call when a flush is due already
            flush()

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        for ex in list(self.blocked):
            self.blocked.discard(ex)
            ex.pump_request()
        self.pool.outbox_flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.opened(self, False)
        self.pool.discard(self)
        self._lost("the app closed the connection", closed=True)
        self.pool.outbox_flush()

    def _lost(self, reason: str, closed: bool = False) -> None:
        self.streams.clear()
        for ex in list(self.exchanges.values()):
            ex.upstream_lost(reason, resend=closed and not self.answering and self._resendable(ex))
        self.close()

    def _resendable(self, ex: Exchange) -> bool:
        """Closed before any byte of a response to a bodiless request: the app cannot have acted on it when
        the connection was a pooled one it closed just as we wrote (its keep-alive timeout), nor, once, for an
        idempotent method on a new one (a killed app's listener resets what it queued). As h1/exchange.py."""
        bodiless = ex.replay == () and ex.req_sent_end and not ex.head.content_length
        return bodiless and (self.requests > 1 or (ex.attempts == 1 and ex.head.method in IDEMPOTENT))

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    # -- UpstreamEnd --------------------------------------------------------------------------------
    def start(self, headers: list[Header], end_stream: bool, is_head: bool | None = None) -> int | None:
        if self.streams or self.closed or self.transport is None:
            return None
        # One pass in C for the pseudo-headers and the lookups. check_request let through only request
        # pseudo-headers, none twice, all before the regular fields: when no other field is left out, the
        # field lines are the rest of the list, rendered in C.
        named = dict(headers)
        method = named.get(b":method", b"")
        path = named.get(b":path", b"")
        authority = named.get(b":authority", b"")
        if not authority:
            authority = next((value for name, value in headers if name == b"host" and value), b"")
        left_out = _SKIP_LINE.intersection(named)
        if left_out <= _PSEUDO:
            # A line per field as name + ": " + value joined in C: %-formatting a line costs more (3 fields:
            # ~4,900 instructions instead of ~7,000). The empty last item ends the last line with its CRLF.
            fields = b"\r\n".join([*map(_COLON_SP.join, headers[len(left_out) :]), b""])
        else:
            lines = [_FIELD_LINE % field for field in headers if field[0] not in _SKIP_LINE]
            if b"cookie" in named:
                lines.append(b"cookie: %s\r\n" % b"; ".join([value for name, value in headers if name == b"cookie"]))
            fields = b"".join(lines)
        length = named.get(b"content-length")
        self.chunked = length is None and not end_stream
        if self.chunked:
            fields += b"transfer-encoding: chunked\r\n"
        self.head_request = method == b"HEAD"
        self.request_done = end_stream
        self.response_done = self.reusable = False
        self.headers, self.trailers, self.in_body = [], [], False
        self.fields = self.headers
        self.streams[_SID] = 0
        self.requests += 1
        self.answering = False
        head = b"%s %s HTTP/1.1\r\nhost: %s\r\n%s\r\n" % (method, path or b"/", authority, fields)
        self.transport.write(head)
        return _SID

    def window(self, stream_id: int) -> int:
        return 0 if self.paused or self.closed else _WINDOW

    def send_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> bool:
        transport = self.transport
        if transport is None or self.request_done:
            return False
        if self.chunked:
            if data:
                transport.write(b"%x\r\n%s\r\n" % (len(data), data))
            if end_stream:
                transport.write(b"0\r\n\r\n")
        elif data:
            transport.write(data)
        if end_stream:
            self._request_finished()
        return True

    def send_headers(self, stream_id: int, headers: list[Header], end_stream: bool = False) -> bool:
        """Request trailers: they fit only in a chunked body; otherwise the body just ends."""
        transport = self.transport
        if transport is None or self.request_done:
            return False
        if self.chunked:
            fields = b"".join(b"%s: %s\r\n" % (k, v) for k, v in headers if k not in _SKIP_REQUEST)
            transport.write(b"0\r\n%s\r\n" % fields)
        self._request_finished()
        return True

    def ack(self, stream_id: int, size: int) -> None:
        self.unacked -= size
        if self.reading_paused and self.unacked < _RESUME_AT and self.transport is not None:
            self.reading_paused = False
            self.transport.resume_reading()

    def reset(self, stream_id: int, error_code: int = ErrorCode.CANCEL) -> None:
        """HTTP/1.1 cannot cancel one request: the connection goes."""
        self.streams.clear()
        self.close()

    def forget(self, ex: Exchange) -> None:
        self.exchanges.pop(_SID, None)
        if self.blocked:
            self.blocked.discard(ex)
        if self.reusable and not self.streams and not self.closed:
            self.pool.release(self)
        else:
            self.close()

    def _request_finished(self) -> None:
        self.request_done = True
        self._maybe_done()

    def _maybe_done(self) -> None:
        if self.request_done and self.response_done:
            self.streams.pop(_SID, None)

    # -- httptools callbacks ----------------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        self.fields.append((name.lower(), value.strip()))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status < 200:
            self.headers = self.fields = []  # 1xx: the final response follows
            return
        self.reusable = self.parser.should_keep_alive() and not self.head_request
        headers = self.headers
        named = dict(headers)
        if b"connection" not in named:
            skip = _SKIP_RESPONSE
        else:
            if len(named) == len(headers):
                listed = named[b"connection"]
            else:
                listed = b",".join([v for k, v in headers if k == b"connection"])
            skip = _SKIP_LISTED.get(listed) or _skip_listed(listed)
        block = [(b":status", _STATUS[status])]  # a final status: llhttp reads three digits
        left_out = skip.intersection(named)
        if not left_out:
            block += headers
        elif len(left_out) == 1 and len(named) == len(headers):  # one field left out (Connection): cut in C
            block += headers
            (name,) = left_out
            del block[1 + list(named).index(name)]
        else:
            block += [field for field in headers if field[0] not in skip]
        self.in_body = True
        self.fields = self.trailers
        if self.head_request:
            self._response_finished()
        ex = self.exchanges.get(_SID)
        if ex is not None:
            ex.on_response(status, block, self.head_request)

    def on_body(self, body: bytes) -> None:
        ex = self.exchanges.get(_SID)
        if ex is None:
            return
        self.unacked += len(body)
        # Held until the read is parsed: a body that ends in it leaves in one DATA frame with END_STREAM.
        ex.resp_q.append(body)  # queued: pump_response sends it with what follows
        if ex.plan.tap is not None:
            ex.plan.tapped(False, body)
        self.held = ex
        if self.unacked > _PAUSE_AT and not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()

    def on_message_complete(self) -> None:
        if not self.in_body or self.response_done:
            return  # the end of a 1xx, or the body of a HEAD response we already ended
        self.response_done = True  # _response_finished, inline: once a response
        if not self.request_done:
            self.reusable = False  # the app answered before the whole request was sent
        else:
            self.streams.pop(_SID, None)
        self.held = None
        ex = self.exchanges.get(_SID)
        if ex is not None:
            if self.trailers:
                trailers = [(k, v) for k, v in self.trailers if k not in _SKIP_RESPONSE]
                if trailers:
                    ex.on_response_trailers(trailers)
                    return
            ex.resp_end = True  # pump_response(b"", True), its arguments set here (once a response)
            ex.pump_response()

    def _response_finished(self) -> None:
        self.response_done = True
        if not self.request_done:
            self.reusable = False  # the app answered before the whole request was sent
        self._maybe_done()


def _skip_listed(listed: bytes) -> frozenset[bytes]:
    """The response fields not forwarded when its Connection header lists `listed` (remembered, bounded)."""
    skip = _SKIP_RESPONSE | {token.strip().lower() for token in listed.split(b",")}
    if len(_SKIP_LISTED) >= 64:
        _SKIP_LISTED.clear()
    _SKIP_LISTED[listed] = skip
    return skip


class Http1Pool:
    """The Connector for HTTP/1.1 apps: reuse an idle connection or dial a new one per request."""

    def __init__(
        self, dial: Dialer, flush: Flusher, on_tcp: Callable[[object, bool], None] | None = None
    ) -> None:
        self.dial = dial
        self.outbox_flush = flush
        self._on_tcp = on_tcp
        self._idle: dict[object, deque[Http1Upstream]] = {}
        self._live: set[Http1Upstream] = set()

    def opened(self, conn: Http1Upstream, up: bool) -> None:
        if up:
            self._live.add(conn)
        else:
            self._live.discard(conn)
        if self._on_tcp is not None:
            self._on_tcp(conn.key, up)

    @property
    def busy(self) -> bool:
        return any(conn.exchanges for conn in self._live)

    def connect(self, exchange: Exchange) -> None:
        key = exchange.plan.endpoint
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            if not conn.closed and exchange.attach(conn):
                return
        spawn(self._dial(key, exchange), name="http1-dial")

    async def _dial(self, key: object, exchange: Exchange) -> None:
        try:
            _, conn = await self.dial(key, lambda: Http1Upstream(self, key))
        except Exception as exc:  # whatever it is, the request gets an answer (rescue maps it)
            exchange.fail(exc)
        else:
            assert isinstance(conn, Http1Upstream)
            if not exchange.attach(conn):
                exchange.fail(UpstreamReset("the app connection closed during setup"))
        self.outbox_flush()

    def release(self, conn: Http1Upstream) -> None:
        idle = self._idle.get(conn.key)
        if idle is None:  # not setdefault(key, deque()): that built a deque (a system malloc) per request
            idle = self._idle[conn.key] = deque()
        if len(idle) >= MAX_IDLE:
            conn.close()
        else:
            idle.append(conn)

    def discard(self, conn: Http1Upstream) -> None:
        idle = self._idle.get(conn.key)
        if idle is not None and conn in idle:
            idle.remove(conn)

    def close(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
        for conn in list(self._live):
            if not conn.exchanges:
                conn.close()
