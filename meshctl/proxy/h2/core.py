"""HTTP/2 connection core (sans-IO): ngh2 plus the stream bookkeeping a proxy needs.

An `H2Side` takes bytes and returns a short list of stream events (h2/events.py: `Request`, `Response`,
`Body`, `Trailers`, `Reset`, `Window`, `Goaway`, `Failed`); frames to send accumulate until the glue
flushes the `Outbox`, once per read. A consumer may take the events every request has (a request or response head,
DATA) by direct calls instead (`on_request`, `on_response`, `on_body`), made as the frames are read,
before the rest of the read's events are returned: no event object and no second dispatch for them.
Header blocks are validated by h2/headers.py and bodies held to their content-length here, so a
malformed message resets one stream instead of failing the connection. The codec underneath (ngh2 with
the proxy's limits) is built by h2/conn.py `configured()`; the two ends (server side facing downstream,
client side facing upstream) and their guards live in h2/ends.py.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from ngh2 import DenialOfServiceError, ErrorCode

from meshctl.proxy.h2.conn import CodecError, configured
from meshctl.proxy.h2.conn import H2Limits as H2Limits  # re-exported: the ends, pool and server take it from here
from meshctl.proxy.h2.events import Body, Event, Reset, Trailers
from meshctl.proxy.h2.headers import Block, Malformed, check_trailers

_REMOTE_DONE = 1  # the peer sent END_STREAM
_LOCAL_DONE = 2  # we sent END_STREAM
_ANSWERED = 4  # we sent a header block (a response, on the server side)
_GOAWAY_HEAD = b"\x00\x00\x08\x07\x00\x00\x00\x00\x00"  # length 8, type GOAWAY, no flags, stream 0


class H2Side:
    """What both ends share: stream bookkeeping, flow-controlled sends and output batching."""

    client_side = False

    def __init__(self, outbox: Outbox, limits: H2Limits | None = None) -> None:
        self.limits = limits or H2Limits()
        self.h2 = configured(self.client_side, self.limits)
        self.outbox = outbox
        self.write: Callable[[bytes], None] | None = None  # the transport's write, once connected
        self.paused = False  # the transport's buffer is full: send no DATA until it drains
        self.failed: str | None = None
        self.streams: dict[int, int] = {}  # open stream id -> _REMOTE_DONE | _LOCAL_DONE | _ANSWERED
        self._length_left: dict[int, int] = {}  # body bytes a stream's content-length still announces
        self._finished = 0  # streams closed (the server side weighs its premature resets against them)
        self._head_requests: set[int] = set()  # client side: HEAD requests, whose responses carry no body
        self.marked = False
        self._early = b""  # frames built outside the codec (graceful GOAWAY), sent before its output
        self.highest_in = 0  # the highest stream id the peer opened (the last one a GOAWAY may name)
        # A consumer that takes a stream's DATA as it is read (stream id, data, end) instead of a Body
        # event in receive()'s list: the relay sessions, once a DATA frame on each side of a request.
        self.on_body: Callable[[int, bytes, bool], None] | None = None
        outbox.mark(self)

    # -- output -----------------------------------------------------------------------------------
    def output(self) -> bytes:
        try:
            data = self.h2.data_to_send()
        except CodecError:  # after a flood nghttp2 sends nothing more (the core's GOAWAY is in _early)
            data = b""
        if self._early:
            data, self._early = self._early + data, b""
        return data

    def connected(self, write: Callable[[bytes], None]) -> None:
        """The transport is up: frames queued so far (the preface first) go out on the next flush."""
        self.write = write
        self.outbox.mark(self)

    def flush(self) -> None:
        if self.write is None:
            return  # not connected yet: everything stays queued, in order
        try:  # output(), inline: once a flush
            data = self.h2.data_to_send()
        except CodecError:
            data = b""
        if self._early:
            data, self._early = self._early + data, b""
        if data:
            self.write(data)

    def _send_goaway(self, last_stream_id: int, error_code: int) -> None:
        """A GOAWAY written here, after what the codec queued: nghttp2 sends nothing after a flood, and the
        two GOAWAYs of a drain name the stream ids the core chooses (RFC 9113 §6.8)."""
        data = b""
        with contextlib.suppress(*CodecError):
            data = self.h2.data_to_send()
        body = (last_stream_id & 0x7FFFFFFF).to_bytes(4, "big") + int(error_code).to_bytes(4, "big")
        self._early += data + _GOAWAY_HEAD + body
        self.outbox.mark(self)

    # -- sending ----------------------------------------------------------------------------------
    def window(self, stream_id: int) -> int:
        """Bytes of DATA that may be sent on the stream now (0 while the transport is paused)."""
        if self.paused or self.failed is not None:
            return 0
        h2 = self.h2
        try:  # as NgH2Connection.local_flow_control_window, without a Python call between (once a DATA)
            stream = h2.stream_remote_window_size(stream_id) - h2.queued_body_size(stream_id)
        except CodecError:  # e.g. a request whose HEADERS nghttp2 has not framed yet: the adapter's answer
            try:
                return h2.local_flow_control_window(stream_id)
            except CodecError:
                return 0
        room = h2.remote_window_size - h2.queued_body_size()
        if stream < room:
            room = stream
        return room if room > 0 else 0

    def send_headers(self, stream_id: int, headers: Block, end_stream: bool = False) -> bool:
        try:
            first, value = headers[0]
            if first == b":status" and value[:1] != b"1":  # a final response, once a request: straight to ngh2
                self.h2.send_response(stream_id, headers, end_stream=end_stream)
            else:  # the adapter's dispatch: informational responses, requests, trailers
                self.h2.send_headers(stream_id, headers, end_stream=end_stream)
        except CodecError:
            return False
        if not self.marked:
            self.outbox.mark(self)
        streams = self.streams  # _local, inline: twice a request on each side
        state = streams.get(stream_id)
        if state is not None:
            if end_stream:
                state |= _LOCAL_DONE
                if state & _REMOTE_DONE:
                    del streams[stream_id]
                    self._finished += 1  # _closed(stream_id, premature=False), inline: once a request
                    self._length_left.pop(stream_id, None)
                    if self._head_requests:
                        self._head_requests.discard(stream_id)
                    return True
            streams[stream_id] = state | _ANSWERED
        return True

    def send_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> bool:
        """Send DATA that fits the window (see `window`); nghttp2 frames it to the peer's MAX_FRAME_SIZE."""
        try:
            self.h2.send_data(stream_id, data, end_stream=end_stream)
        except CodecError:
            return False
        if not self.marked:
            self.outbox.mark(self)
        if end_stream:  # _local, inline: once a request on each side
            streams = self.streams
            state = streams.get(stream_id)
            if state is not None:
                if state & _REMOTE_DONE:
                    del streams[stream_id]
                    self._finished += 1  # _closed(stream_id, premature=False), inline: once a request
                    self._length_left.pop(stream_id, None)
                    if self._head_requests:
                        self._head_requests.discard(stream_id)
                else:
                    streams[stream_id] = state | _LOCAL_DONE
        return True

    def reset(self, stream_id: int, error_code: int = ErrorCode.CANCEL) -> None:
        tracked = self.streams.pop(stream_id, None) is not None
        if self.failed is not None:
            return
        try:
            self.h2.reset_stream(stream_id, error_code)
            self.outbox.mark(self)
        except CodecError:
            pass
        if tracked:
            self._closed(stream_id, premature=False)

    def ack(self, stream_id: int, size: int) -> None:
        """Return flow-control credit for bytes that were consumed (written onward or dropped)."""
        if size <= 0 or self.failed is not None:
            return
        try:
            self.h2.acknowledge_received_data(size, stream_id)
        except CodecError:
            return
        if not self.marked:
            self.outbox.mark(self)

    def close(self, error_code: int = ErrorCode.NO_ERROR, reason: str = "closed") -> None:
        """GOAWAY with an error (or plain close): the connection takes no more frames."""
        if self.failed is None:
            self.failed = reason
            with contextlib.suppress(*CodecError):
                self.h2.close_connection(error_code)
            self.outbox.mark(self)

    # -- stream bookkeeping -----------------------------------------------------------------------
    def _local(self, stream_id: int, bits: int) -> None:
        state = self.streams.get(stream_id)
        if state is None:
            return
        state |= bits
        if state & (_REMOTE_DONE | _LOCAL_DONE) == _REMOTE_DONE | _LOCAL_DONE:
            del self.streams[stream_id]
            self._closed(stream_id, premature=False)
        else:
            self.streams[stream_id] = state

    def _track(self, stream_id: int, remote_done: bool) -> None:
        self.streams[stream_id] = _REMOTE_DONE if remote_done else 0

    def _remote_done(self, stream_id: int) -> None:
        state = self.streams.get(stream_id)
        if state is None:
            return
        if state & _LOCAL_DONE:
            del self.streams[stream_id]
            self._closed(stream_id, premature=False)
        else:
            self.streams[stream_id] = state | _REMOTE_DONE

    def _closed(self, stream_id: int, premature: bool) -> None:
        """A stream left the open set (the server side extends this). send_headers, send_data and _data
        repeat the premature=False case inline."""
        self._finished += 1
        self._length_left.pop(stream_id, None)
        if self._head_requests:
            self._head_requests.discard(stream_id)

    def _expect_body(self, stream_id: int, length: int | None) -> None:
        """The peer's body on this stream must be exactly `length` bytes (None: no content-length)."""
        if length is not None:
            self._length_left[stream_id] = length

    def _body_fits(self, ev: Any, out: list[Event]) -> bool:
        """Hold DATA to the content-length; a body that disagrees resets its stream only (RFC 9113 §8.1.1)."""
        sid = ev.stream_id
        left = self._length_left[sid] - len(ev.data)
        if left >= 0 and (left == 0 or not ev.end_stream):
            self._length_left[sid] = left
            return True
        del self._length_left[sid]
        self.ack(sid, len(ev.data))  # dropped, but it counted against the connection window
        if sid in self.streams:
            self._malformed(sid, out, "body disagrees with its content-length")
        return False

    def _h2_events(self, data: bytes) -> list[Any] | None:
        if self.failed is not None:
            return None
        try:
            events: list[Any] = self.h2.receive_data(data)
        except DenialOfServiceError as exc:  # nghttp2 will send nothing more: the GOAWAY is ours to write
            self._send_goaway(self.highest_in, ErrorCode.ENHANCE_YOUR_CALM)
            self.failed = f"flood: {exc}"[:200]
            return None
        except CodecError as exc:
            self.close(ErrorCode.PROTOCOL_ERROR, f"protocol error: {exc}"[:200])
            return None
        if not self.marked:
            self.outbox.mark(self)
        return events

    def _data(self, ev: Any, out: list[Event]) -> None:
        """DATA, its padding already acknowledged by nghttp2 (conn.py)."""
        sid = ev.stream_id
        data = ev.data
        end = ev.end_stream
        length_left = self._length_left
        left = length_left.get(sid)
        if left is not None:  # _body_fits, its common case inline (once a DATA)
            left -= len(data)
            if left >= 0 and (left == 0 or not end):
                length_left[sid] = left
            elif not self._body_fits(ev, out):
                return
        streams = self.streams
        state = streams.get(sid)
        if state is None:  # a stream we already reset: its bytes still count on the connection
            self.ack(sid, len(data))
            return
        if end:  # _remote_done, inline
            if state & _LOCAL_DONE:
                del streams[sid]
                self._finished += 1  # _closed(sid, premature=False), inline: once a request
                self._length_left.pop(sid, None)
                if self._head_requests:
                    self._head_requests.discard(sid)
            else:
                streams[sid] = state | _REMOTE_DONE
        on_body = self.on_body
        if on_body is not None:
            on_body(sid, data, end)
        else:
            out.append(Body(sid, data, end))

    def _trailers(self, ev: Any, out: list[Event]) -> None:
        sid = ev.stream_id
        if sid not in self.streams:
            return
        if self._length_left.pop(sid, 0):
            self._malformed(sid, out, "body shorter than its content-length")
            return
        try:
            check_trailers(ev.headers)
        except Malformed as exc:
            self._malformed(sid, out, f"malformed trailers: {exc}")
            return
        self._remote_done(sid)
        out.append(Trailers(sid, list(ev.headers)))

    def _malformed(self, sid: int, out: list[Event] | None, reason: str) -> None:
        """Reset a stream whose header block is malformed (RFC 9113 §8.1.1: a stream error)."""
        self.streams.pop(sid, None)
        with contextlib.suppress(*CodecError):
            self.h2.reset_stream(sid, ErrorCode.PROTOCOL_ERROR)
        self._closed(sid, premature=True)
        if out is not None:
            out.append(Reset(sid, ErrorCode.PROTOCOL_ERROR, reason))

    def _peer_reset(self, ev: Any, out: list[Event]) -> None:
        sid = ev.stream_id
        state = self.streams.pop(sid, None)
        if state is None:
            return
        self._closed(sid, premature=not state & _ANSWERED)
        out.append(Reset(sid, int(ev.error_code or 0), f"reset by peer ({code_name(ev.error_code)})"))

    def _codec_reset(self, ev: Any, out: list[Event]) -> None:
        """nghttp2 closed a stream the core still has open (it reset a malformed message itself)."""
        sid = ev.stream_id
        state = self.streams.pop(sid)
        self._closed(sid, premature=not state & _ANSWERED)
        code = ev.error_code or ErrorCode.PROTOCOL_ERROR
        reason = f"malformed message: {ev.local_error}" if ev.local_error else f"reset ({code_name(code)})"
        out.append(Reset(sid, code, reason[:200]))


class Outbox:
    """Sides with frames to write. The glue flushes once per read, so a read costs one write per socket."""

    __slots__ = ("_dirty",)

    def __init__(self) -> None:
        self._dirty: list[H2Side] = []

    def mark(self, side: H2Side) -> None:
        if not side.marked:
            side.marked = True
            self._dirty.append(side)

    def flush(self) -> None:
        while self._dirty:
            dirty, self._dirty = self._dirty, []
            for side in dirty:
                side.marked = False
                side.flush()


def code_name(code: Any) -> str:
    try:
        return ErrorCode(int(code)).name
    except (ValueError, TypeError):
        return str(code)
