"""HTTP/2 connection core (sans-IO): python-h2 plus the stream bookkeeping a proxy needs.

An `H2Side` takes bytes and returns a short list of stream events (`Request`, `Response`, `Body`,
`Trailers`, `Reset`, `Window`, `Goaway`, `Failed`); frames to send accumulate until the glue flushes the
`Outbox`, once per read. Header blocks are validated by h2/headers.py, so a malformed block resets one
stream instead of failing the connection. The two ends (server side facing downstream, client side
facing upstream) and their guards live in h2/ends.py.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    StreamReset,
    TrailersReceived,
)
from h2.exceptions import H2Error, ProtocolError
from h2.settings import SettingCodes, Settings
from h2.stream import H2Stream
from hyperframe.frame import GoAwayFrame

from meshctl.proxy.h2.headers import (
    Header,
    Malformed,
    RequestHead,
    check_trailers,
)

_REMOTE_DONE = 1  # the peer sent END_STREAM
_LOCAL_DONE = 2  # we sent END_STREAM
_ANSWERED = 4  # we sent a header block (a response, on the server side)


@dataclass(frozen=True, slots=True)
class H2Limits:
    max_concurrent_streams: int = 100
    max_header_list_size: int = 64 * 1024
    stream_window: int = 256 * 1024  # bytes a peer may send per stream before we acknowledge
    connection_window: int = 1024 * 1024  # ... and on the whole connection: bounds memory per connection
    reset_floor: int = 200  # premature resets tolerated before the ratio rule applies
    control_frames_per_s: int = 500  # PING, SETTINGS, PRIORITY, empty DATA, unknown frames


@dataclass(slots=True)
class Request:
    stream_id: int
    head: RequestHead
    end_stream: bool


@dataclass(slots=True)
class Response:
    stream_id: int
    status: int
    headers: list[Header]
    end_stream: bool


@dataclass(slots=True)
class Body:
    stream_id: int
    data: bytes  # padding is acknowledged by the core; the consumer acknowledges len(data) once written
    end_stream: bool


@dataclass(slots=True)
class Trailers:
    stream_id: int
    headers: list[Header]


@dataclass(slots=True)
class Reset:
    """The stream is gone: reset by the peer, refused by a GOAWAY, or reset here for a malformed block."""

    stream_id: int
    error_code: int
    reason: str


@dataclass(slots=True)
class Window:
    stream_id: int  # 0: the connection window opened


@dataclass(slots=True)
class Goaway:
    """The peer is closing gracefully: streams up to last_stream_id may finish."""

    last_stream_id: int


@dataclass(slots=True)
class Failed:
    """The connection is unusable (protocol error, abuse, peer error GOAWAY); close it after flushing."""

    reason: str


Event = Request | Response | Body | Trailers | Reset | Window | Goaway | Failed


class _LengthUncheckedStream(H2Stream):
    """A request stream whose content-length the server core checks itself (ends.DownstreamH2).

    python-h2 makes an invalid or disagreeing content-length a connection error; RFC 9113 §8.1.1 makes
    it a malformed request, a stream error, so the other streams of the connection live on.
    """

    def _initialize_content_length(self, headers: Any) -> None:
        self._expected_content_length = None

    def _track_content_length(self, length: int, end_stream: bool) -> None:
        pass


class _Connection(H2Connection):
    """python-h2 with three RFC 9113 behaviours it lacks, all needed to proxy without collateral damage."""

    @property
    def open_inbound_streams(self) -> int:
        # h2 fails the whole connection past SETTINGS_MAX_CONCURRENT_STREAMS; the core refuses the one stream
        # instead (§5.1.2), so h2's check must always pass. Reading the base property keeps h2's cleanup.
        super().open_inbound_streams  # noqa: B018
        return 0

    def _receive_goaway_frame(self, frame: Any) -> Any:
        # A graceful GOAWAY lets streams up to last_stream_id finish (§6.8); h2 would close everything.
        if frame.error_code:
            return super()._receive_goaway_frame(frame)
        event = ConnectionTerminated()
        event.error_code = ErrorCodes.NO_ERROR
        event.last_stream_id = frame.last_stream_id
        event.additional_data = frame.additional_data or None
        return [], [event]

    def _begin_new_stream(self, stream_id: int, allowed_ids: Any) -> H2Stream:
        stream = super()._begin_new_stream(stream_id, allowed_ids)
        if not self.config.client_side:
            stream.__class__ = _LengthUncheckedStream  # same state, content-length left to the core
        return stream


def _configured(client_side: bool, limits: H2Limits) -> _Connection:
    config = H2Configuration(
        client_side=client_side,
        header_encoding=None,
        validate_inbound_headers=False,  # headers.py does it, resetting streams instead of connections
        normalize_inbound_headers=False,
        validate_outbound_headers=False,  # we only send blocks that were validated or built here
        normalize_outbound_headers=False,
    )
    conn = _Connection(config)
    # Settings are fixed before the preface, so the first SETTINGS frame already carries them.
    conn.local_settings = Settings(
        client=client_side,
        initial_values={
            SettingCodes.MAX_CONCURRENT_STREAMS: limits.max_concurrent_streams,
            SettingCodes.MAX_HEADER_LIST_SIZE: limits.max_header_list_size,
            SettingCodes.INITIAL_WINDOW_SIZE: limits.stream_window,
            SettingCodes.ENABLE_PUSH: 0,
        },
    )
    conn.decoder.max_header_list_size = limits.max_header_list_size
    conn.initiate_connection()
    conn.increment_flow_control_window(limits.connection_window - 65535)
    return conn


class H2Side:
    """What both ends share: stream bookkeeping, flow-controlled sends and output batching."""

    client_side = False

    def __init__(self, outbox: Outbox, limits: H2Limits | None = None) -> None:
        self.limits = limits or H2Limits()
        self.h2 = _configured(self.client_side, self.limits)
        self.outbox = outbox
        self.write: Callable[[bytes], None] | None = None  # the transport's write, once connected
        self.paused = False  # the transport's buffer is full: send no DATA until it drains
        self.failed: str | None = None
        self.streams: dict[int, int] = {}  # open stream id -> _REMOTE_DONE | _LOCAL_DONE | _ANSWERED
        self.marked = False
        self._early = b""  # frames built outside h2 (graceful GOAWAY), sent before h2's next output
        outbox.mark(self)

    # -- output -----------------------------------------------------------------------------------
    def output(self) -> bytes:
        data = self.h2.data_to_send()
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
        data = self.output()
        if data:
            self.write(data)

    def _send_frame(self, frame: GoAwayFrame) -> None:
        self._early += self.h2.data_to_send() + frame.serialize()
        self.outbox.mark(self)

    # -- sending ----------------------------------------------------------------------------------
    def window(self, stream_id: int) -> int:
        """Bytes of DATA that may be sent on the stream now (0 while the transport is paused)."""
        if self.paused or self.failed is not None:
            return 0
        try:
            return self.h2.local_flow_control_window(stream_id)
        except H2Error:
            return 0

    def send_headers(self, stream_id: int, headers: list[Header], end_stream: bool = False) -> bool:
        try:
            self.h2.send_headers(stream_id, headers, end_stream=end_stream)
        except H2Error:
            return False
        self.outbox.mark(self)
        self._local(stream_id, _ANSWERED | (_LOCAL_DONE if end_stream else 0))
        return True

    def send_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> bool:
        """Send DATA that fits the window (see `window`), split into frames the peer accepts."""
        try:
            step = self.h2.max_outbound_frame_size
            if len(data) <= step:
                self.h2.send_data(stream_id, data, end_stream=end_stream)
            else:
                view = memoryview(data)
                last = len(data) - step
                for at in range(0, len(data), step):
                    self.h2.send_data(stream_id, view[at : at + step], end_stream=end_stream and at >= last)
        except H2Error:
            return False
        self.outbox.mark(self)
        if end_stream:
            self._local(stream_id, _LOCAL_DONE)
        return True

    def reset(self, stream_id: int, error_code: int = ErrorCodes.CANCEL) -> None:
        tracked = self.streams.pop(stream_id, None) is not None
        if self.failed is not None:
            return
        try:
            self.h2.reset_stream(stream_id, error_code)
            self.outbox.mark(self)
        except H2Error:
            pass
        if tracked:
            self._closed(stream_id, premature=False)

    def ack(self, stream_id: int, size: int) -> None:
        """Return flow-control credit for bytes that were consumed (written onward or dropped)."""
        if size <= 0 or self.failed is not None:
            return
        try:
            self.h2.acknowledge_received_data(size, stream_id)
        except H2Error:
            return
        self.outbox.mark(self)

    def close(self, error_code: int = ErrorCodes.NO_ERROR, reason: str = "closed") -> None:
        """GOAWAY with an error (or plain close): the connection takes no more frames."""
        if self.failed is None:
            self.failed = reason
            with contextlib.suppress(H2Error):
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
        """Hook: a stream left the open set."""

    def _h2_events(self, data: bytes) -> list[Any] | None:
        if self.failed is not None:
            return None
        try:
            events: list[Any] = self.h2.receive_data(data)
        except ProtocolError as exc:  # h2 has queued the GOAWAY
            self.failed = f"protocol error: {exc}"[:200]
            self.outbox.mark(self)
            return None
        except H2Error as exc:
            self.close(ErrorCodes.PROTOCOL_ERROR, f"protocol error: {exc}"[:200])
            return None
        self.outbox.mark(self)
        return events

    def _data(self, ev: DataReceived, out: list[Event]) -> None:
        sid = ev.stream_id
        data = ev.data
        padding = ev.flow_controlled_length - len(data)
        if sid not in self.streams:  # a stream we already reset: its bytes still count on the connection
            self.ack(sid, ev.flow_controlled_length)
            return
        if padding:
            self.ack(sid, padding)
        end = ev.stream_ended is not None
        if end:
            self._remote_done(sid)
        out.append(Body(sid, data, end))

    def _trailers(self, ev: TrailersReceived, out: list[Event]) -> None:
        sid = ev.stream_id
        if sid not in self.streams:
            return
        try:
            check_trailers(ev.headers)
        except Malformed as exc:
            self._malformed(sid, out, f"malformed trailers: {exc}")
            return
        self._remote_done(sid)
        out.append(Trailers(sid, ev.headers))

    def _malformed(self, sid: int, out: list[Event] | None, reason: str) -> None:
        """Reset a stream whose header block is malformed (RFC 9113 §8.1.1: a stream error)."""
        self.streams.pop(sid, None)
        with contextlib.suppress(H2Error):
            self.h2.reset_stream(sid, ErrorCodes.PROTOCOL_ERROR)
        self._closed(sid, premature=True)
        if out is not None:
            out.append(Reset(sid, ErrorCodes.PROTOCOL_ERROR, reason))

    def _peer_reset(self, ev: StreamReset, out: list[Event]) -> None:
        sid = ev.stream_id
        state = self.streams.pop(sid, None)
        if state is None:
            return
        self._closed(sid, premature=not state & _ANSWERED)
        out.append(Reset(sid, int(ev.error_code or 0), f"reset by peer ({code_name(ev.error_code)})"))


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
        return ErrorCodes(int(code)).name
    except (ValueError, TypeError):
        return str(code)
