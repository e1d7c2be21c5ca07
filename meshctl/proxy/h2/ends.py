"""The two ends of a proxied HTTP/2 connection, with the guards each one owes its peer.

`DownstreamH2` (server side, facing whoever connects to the proxy) refuses streams past the concurrency
limit with REFUSED_STREAM (RFC 9113 §5.1.2) so they never reach an upstream, closes the connection with
GOAWAY ENHANCE_YOUR_CALM on rapid resets (CVE-2023-44487) and control-frame floods, and drains with a
two-step graceful GOAWAY. `UpstreamH2` (client side) tracks how many streams a connection still takes and
turns a graceful GOAWAY into REFUSED resets for the streams the peer will not process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import ngh2
from ngh2 import ErrorCode

from meshctl.proxy.h2.conn import CodecError
from meshctl.proxy.h2.core import _ANSWERED, _LOCAL_DONE, _REMOTE_DONE, H2Limits, H2Side, Outbox, code_name
from meshctl.proxy.h2.events import Event, Failed, Goaway, Request, Reset, Response, Window
from meshctl.proxy.h2.headers import (
    Block,
    Header,
    Malformed,
    Refused,
    RequestHead,
    check_request,
    check_response,
    safe_value,
)

_DRAIN_PING = b"mshdrain"
_MAX_STREAM_ID = 2**31 - 1
_ALLOW = b"GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH, TRACE"  # every method but CONNECT

# ngh2's event classes, compared by identity (`type(ev) is _DATA`): cheaper per event than a dict of
# kinds or isinstance() calls. Each chain below tests the events of every request first.
_REQUEST = ngh2.RequestReceived
_RESPONSE = ngh2.ResponseReceived
_DATA = ngh2.DataReceived
_TRAILERS = ngh2.TrailersReceived
_RESET = ngh2.StreamReset
_WINDOW = ngh2.WindowUpdated
_PING_ACK = ngh2.PingAcknowledged
_CONTROL = frozenset({ngh2.PingReceived, ngh2.SettingsReceived, ngh2.PriorityUpdateReceived})
_GOAWAY = ngh2.GoAwayReceived
_CLOSED = ngh2.ConnectionClosed  # nghttp2 closed it (a protocol error): its GOAWAY is queued
_STREAM_CLOSED = ngh2.StreamClosed  # nghttp2 resets malformed messages itself (conn.py)


class DownstreamH2(H2Side):
    """The server side of a connection accepted by the proxy."""

    client_side = False

    def __init__(
        self,
        outbox: Outbox,
        limits: H2Limits | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(outbox, limits)
        self._clock = clock
        self._premature = 0
        self._burst_start = clock()
        self._burst = 0
        self.accept_up_to = _MAX_STREAM_ID  # lowered by the final GOAWAY of a drain
        self.draining = False
        self.peer_closing = False
        self.on_request: Callable[[int, RequestHead, bool], None] | None = None  # instead of Request events

    def receive(self, data: bytes) -> list[Event]:
        events = self._h2_events(data)
        if events is None:
            return [Failed(self.failed or "closed")]
        out: list[Event] = []
        # A HEADERS+END_STREAM cancelled in the same read never reaches the upstream (twisted#12705).
        doomed: Any = ()
        if len(events) > 1 and ngh2.StreamReset in set(map(type, events)):
            doomed = {e.stream_id for e in events if type(e) is ngh2.StreamReset}
        for ev in events:
            kind = type(ev)
            if kind is _REQUEST:
                self._request(ev, out, doomed)
            elif kind is _STREAM_CLOSED:  # one per stream: early in the chain
                if ev.stream_id in self.streams:
                    self._codec_reset(ev, out)
            elif kind is _DATA:
                if not ev.data and not ev.end_stream:
                    self._control_frame()
                self._data(ev, out)
            elif kind is _TRAILERS:
                self._trailers(ev, out)
            elif kind is _RESET:
                if ev.stream_id in self.streams:
                    self._peer_reset(ev, out)
                elif ev.stream_id in doomed:
                    self._closed(ev.stream_id, premature=True)
            elif kind is _WINDOW:
                out.append(Window(ev.stream_id))
            elif kind is _PING_ACK:
                if ev.opaque_data == _DRAIN_PING:
                    self.finish_drain()
            elif kind in _CONTROL:
                self._control_frame()
            elif kind is _GOAWAY:
                if ev.error_code:
                    self.failed = f"peer closed the connection ({code_name(ev.error_code)})"
                else:
                    self.peer_closing = True
                    out.append(Goaway(ev.last_stream_id or 0))
            elif kind is _CLOSED:
                self.failed = _codec_closed(ev)
            if self.failed is not None:
                out.append(Failed(self.failed))
                break
        return out

    def _request(self, ev: Any, out: list[Event], doomed: Any) -> None:
        sid = ev.stream_id
        if sid > self.highest_in:
            self.highest_in = sid
        if sid in doomed:
            return
        if sid > self.accept_up_to or len(self.streams) >= self.limits.max_concurrent_streams:
            self._refuse(sid)
            return
        end = ev.end_stream
        try:
            head = check_request(list(ev.headers))  # a list: policies add fields to it in place
            if end and head.content_length:
                raise Malformed("content-length without a body")
        except Malformed:
            self._malformed(sid, None, "malformed request")  # the stream never reaches the consumer
            return
        except Refused as exc:
            self._answer(sid, exc, end)
            return
        if end:  # _track and _expect_body, inline
            self.streams[sid] = _REMOTE_DONE
        else:
            self.streams[sid] = 0
            if head.content_length is not None:
                self._length_left[sid] = head.content_length
        on_request = self.on_request
        if on_request is not None:
            on_request(sid, head, end)
        else:
            out.append(Request(sid, head, end))

    def _answer(self, sid: int, refused: Refused, end: bool) -> None:
        """Answer a request the mesh does not carry on its own stream, with the reason in mesh-proxy-error."""
        self._track(sid, end)
        headers = [
            (b":status", b"%d" % refused.status),
            (b"mesh-proxy-error", safe_value(refused.reason)),
            (b"content-length", b"0"),
        ]
        if refused.status == 405:
            headers.append((b"allow", _ALLOW))
        if not self.send_headers(sid, headers, end_stream=True):
            self.streams.pop(sid, None)
            return
        if not end:  # the client may still be sending: tell it to stop (RFC 9113 §8.1)
            self.reset(sid, ErrorCode.NO_ERROR)

    def _refuse(self, sid: int) -> None:
        try:
            self.h2.reset_stream(sid, ErrorCode.REFUSED_STREAM)
        except CodecError:
            return
        self._closed(sid, premature=True)

    def _closed(self, stream_id: int, premature: bool) -> None:
        self._length_left.pop(stream_id, None)  # H2Side._closed, without the call
        self._finished += 1
        if premature:
            self._premature += 1
            if self._premature >= self.limits.reset_floor and 2 * self._premature >= self._finished:
                self.close(ErrorCode.ENHANCE_YOUR_CALM, "too many streams reset before a response")

    def _control_frame(self) -> None:
        now = self._clock()
        if now - self._burst_start >= 1.0:
            self._burst_start, self._burst = now, 0
        self._burst += 1
        if self._burst > self.limits.control_frames_per_s:
            self.close(ErrorCode.ENHANCE_YOUR_CALM, "control frame flood")

    # -- graceful shutdown ------------------------------------------------------------------------
    def start_drain(self) -> None:
        """GOAWAY(2^31-1) and a PING: streams in flight towards us still land (RFC 9113 §6.8)."""
        if self.draining or self.failed is not None:
            return
        self.draining = True
        self._send_goaway(_MAX_STREAM_ID, ErrorCode.NO_ERROR)
        try:
            self.h2.ping(_DRAIN_PING)
        except CodecError:
            self.finish_drain()

    def finish_drain(self) -> None:
        """The final GOAWAY naming the last stream we will serve; later streams are refused."""
        if self.accept_up_to != _MAX_STREAM_ID or self.failed is not None:
            return
        self.draining = True
        self.accept_up_to = self.highest_in
        self._send_goaway(self.accept_up_to, ErrorCode.NO_ERROR)


class UpstreamH2(H2Side):
    """The client side of a connection the proxy opened to an app or another proxy."""

    client_side = True

    def __init__(self, outbox: Outbox, limits: H2Limits | None = None) -> None:
        super().__init__(outbox, limits)
        self.goaway_last: int | None = None
        # The stream limit, ours and the peer's: read from nghttp2 (µs per read) only after a SETTINGS.
        self._stream_limit: int | None = None
        # (stream id, status, header block, end) instead of Response events
        self.on_response: Callable[[int, int, Block, bool], None] | None = None

    def capacity(self) -> int:
        """How many more streams this connection takes now (0 once it is closing)."""
        if self.failed is not None or self.goaway_last is not None:
            return 0
        limit = self._stream_limit
        if limit is None:
            limit = self._stream_limit = min(self.h2.peer_stream_limit(), self.limits.max_concurrent_streams)
        return limit - len(self.streams)

    def start(self, headers: list[Header], end_stream: bool, is_head: bool | None = None) -> int | None:
        """Open a stream with a request header block; None when the connection cannot take it.
        `is_head`: whether it is a HEAD request, when the caller knows (no scan of the block for it)."""
        if self.failed is not None or self.goaway_last is not None:  # capacity(), inline (once a request)
            return None
        limit = self._stream_limit
        if limit is None:
            limit = self._stream_limit = min(self.h2.peer_stream_limit(), self.limits.max_concurrent_streams)
        if len(self.streams) >= limit:
            return None
        h2 = self.h2
        sid = h2.next_stream_id
        try:  # send_headers for a request, without its dispatch (once a request)
            if h2.send_request(headers, end_stream=end_stream) != sid:
                return None  # nghttp2 chose another stream id: never seen, but the core would lose track
        except CodecError:
            return None
        if not self.marked:
            self.outbox.mark(self)
        self.streams[sid] = _ANSWERED | _LOCAL_DONE if end_stream else _ANSWERED
        if is_head if is_head is not None else (b":method", b"HEAD") in headers:  # named once (check_request)
            self._head_requests.add(sid)
        return sid

    def receive(self, data: bytes) -> list[Event]:
        events = self._h2_events(data)
        if events is None:
            return [Failed(self.failed or "closed")]
        out: list[Event] = []
        for ev in events:
            kind = type(ev)
            if kind is _RESPONSE:
                sid = ev.stream_id
                if sid not in self.streams:
                    continue
                end = ev.end_stream
                headers = ev.headers  # a tuple, never changed: handed on as it is
                try:
                    status, length = check_response(headers)
                    if length is not None:  # _response_length: a HEAD, 204 or 304 response has no body
                        if self._head_requests and sid in self._head_requests:
                            self._head_requests.discard(sid)
                            length = None
                        elif status == 204 or status == 304:
                            length = None
                        elif end and length:
                            raise Malformed("content-length without a body")
                    elif self._head_requests:
                        self._head_requests.discard(sid)
                except Malformed as exc:
                    self._malformed(sid, out, f"malformed response: {exc}")
                    continue
                if end:
                    self._remote_done(sid)
                elif length is not None:  # _expect_body, inline
                    self._length_left[sid] = length
                on_response = self.on_response
                if on_response is not None:
                    on_response(sid, status, headers, end)
                else:
                    out.append(Response(sid, status, headers, end))
            elif kind is _STREAM_CLOSED:  # one per stream: early in the chain
                if ev.stream_id in self.streams:
                    self._codec_reset(ev, out)
            elif kind is _DATA:
                self._data(ev, out)
            elif kind is _TRAILERS:
                self._trailers(ev, out)
            elif kind is _RESET:
                self._peer_reset(ev, out)
            elif kind is _WINDOW:
                out.append(Window(ev.stream_id))
            elif kind in _CONTROL:
                self._stream_limit = None  # a SETTINGS may have changed the peer's limit
            elif kind is _GOAWAY:
                if ev.error_code:
                    self.failed = f"upstream closed the connection ({code_name(ev.error_code)})"
                else:
                    self._goaway(ev.last_stream_id or 0, out)
            elif kind is _CLOSED:
                self.failed = _codec_closed(ev)
            if self.failed is not None:
                out.append(Failed(self.failed))
                break
        return out

    def _goaway(self, last: int, out: list[Event]) -> None:
        self.goaway_last = last if self.goaway_last is None else min(last, self.goaway_last)
        for sid in [s for s in self.streams if s > last]:
            del self.streams[sid]
            self._closed(sid, premature=True)
            out.append(Reset(sid, ErrorCode.REFUSED_STREAM, "refused by upstream GOAWAY"))
        out.append(Goaway(last))


def _codec_closed(ev: Any) -> str:
    """The reason nghttp2 closed the connection, as the core words a protocol error."""
    detail = ev.debug_data.decode("ascii", "replace") or code_name(ev.error_code)
    return f"protocol error: {detail}"[:200]
