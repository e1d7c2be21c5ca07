"""The connection every HTTP/2 end of the proxy runs on: ngh2 (libnghttp2, sans-IO), and its limits.

`NgH2Connection` subclasses ngh2's own `Connection`, so the calls the core makes most (send_data,
reset_stream, acknowledge_received_data, data_to_send, ping) go straight to C; only what the core needs
in another shape is adapted here. The events are ngh2's own objects, read by h2/ends.py as they are.

What nghttp2 does itself, and what the adapter does so the core's behaviour is what RFC 9113 asks of a
proxy (a problem on one stream costs that stream, not every client multiplexed on the connection):

- SETTINGS_MAX_CONCURRENT_STREAMS: nghttp2 makes a stream past the acknowledged limit a connection error
  (GOAWAY PROTOCOL_ERROR). nghttp2 is told no limit; the limit is written into the SETTINGS frame it
  sends (`_advertise`), so the peer still sees it, and the core refuses the one extra stream with
  REFUSED_STREAM (RFC 9113 §5.1.2).
- Floods (SETTINGS/PING ACKs never read, CONTINUATION trains): nghttp2 raises DenialOfServiceError and
  then sends nothing at all; the core writes its own GOAWAY(ENHANCE_YOUR_CALM) (core._h2_events).
- Padding: nghttp2 returns the flow-control credit of padding itself (auto_window_update=False still
  consumes padding), so DATA events carry the body only and the core acknowledges len(data).
- PRIORITY and unknown frames produce no event, so the core's control-frame budget cannot count them:
  nghttp2's glitch rate limit (Configuration.glitch_rate_limit, GOAWAY ENHANCE_YOUR_CALM) is the guard
  for those. PING, SETTINGS and empty DATA frames are still counted by the core; nghttp2's own limit on
  unread SETTINGS/PING ACKs (max_outbound_ack) stays on behind it.
- Rapid reset: nghttp2's RST_STREAM rate limit is turned off (see __init__); the core's rule applies.
- Header blocks: nghttp2 validates field names and values itself and resets a malformed stream with no
  event for the block; h2/headers.py still runs on every block it lets through (pseudo-headers,
  CONNECT, lengths), and the content-length is held by the core (H2Side._body_fits).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import ngh2

# What a failed call raises (ngh2 raises ValueError for an out-of-range acknowledgement).
CodecError = (ngh2.NGH2Error, ValueError)


@dataclass(frozen=True, slots=True)
class H2Limits:
    max_concurrent_streams: int = 100
    max_header_list_size: int = 64 * 1024
    stream_window: int = 256 * 1024  # bytes a peer may send per stream before we acknowledge
    connection_window: int = 1024 * 1024  # ... and on the whole connection: bounds memory per connection
    reset_floor: int = 200  # premature resets tolerated before the ratio rule applies
    control_frames_per_s: int = 500  # PING, SETTINGS, PRIORITY, empty DATA, unknown frames


_MAGIC = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_SETTINGS = 0x4
_MAX_CONCURRENT_STREAMS = 0x3
_INITIAL_WINDOW_SIZE = 0x4
_UNLIMITED = 2**63


def _advertise(out: bytes, client_side: bool, setting: int, value: int) -> bytes:
    """Add one entry to the first SETTINGS frame in `out` (the preface nghttp2 queued)."""
    at = len(_MAGIC) if client_side else 0
    length = int.from_bytes(out[at : at + 3], "big")
    if out[at + 3] != _SETTINGS:
        raise RuntimeError("ngh2 did not start with a SETTINGS frame")
    body_end = at + 9 + length
    entry = setting.to_bytes(2, "big") + value.to_bytes(4, "big")
    return out[:at] + (length + 6).to_bytes(3, "big") + out[at + 3 : body_end] + entry + out[body_end:]


# ngh2's own methods, called by the overrides below without building a super() object (once a read and
# once a flush on every connection).
_receive_data = ngh2.Connection.receive_data
_data_to_send = ngh2.Connection.data_to_send


class NgH2Connection(ngh2.Connection):
    """An ngh2 connection with the proxy's limits, answering the calls H2Side and the ends make."""

    __slots__ = ("_held",)

    # ngh2 splits DATA into frames of the peer's MAX_FRAME_SIZE itself: the core hands it whole bodies.
    max_outbound_frame_size = 1 << 30

    def __init__(self, client_side: bool, limits: H2Limits) -> None:
        config = ngh2.Configuration(
            auto_window_update=False,  # the core acknowledges a body once it was written onward
            max_inbound_header_list_size=limits.max_header_list_size,
            # nghttp2 counts every RST_STREAM (1,000 burst, 33/s) and ends the connection with INTERNAL_ERROR,
            # so a client cancelling many answered calls would lose its connection. The core's rule counts
            # only streams reset before an answer (ends.DownstreamH2._closed) and says ENHANCE_YOUR_CALM.
            stream_reset_rate_limit=(_UNLIMITED, _UNLIMITED),
        )
        super().__init__(ngh2.Role.CLIENT if client_side else ngh2.Role.SERVER, config)
        settings = {
            ngh2.Setting.MAX_HEADER_LIST_SIZE: limits.max_header_list_size,
            ngh2.Setting.INITIAL_WINDOW_SIZE: limits.stream_window,
        }
        if client_side:
            settings[ngh2.Setting.ENABLE_PUSH] = 0
        self.initiate_connection(settings)
        self.set_local_window_size(limits.connection_window)
        # Frames taken from nghttp2 before the core asked (the preface first), sent ahead of anything later.
        self._held = _advertise(
            super().data_to_send(), client_side, _MAX_CONCURRENT_STREAMS, limits.max_concurrent_streams
        )

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Any]:  # type: ignore[override]
        _receive_data(self, data)
        if self.want_write:
            # nghttp2 closes a stream it reset (a malformed message) or a connection it failed only once
            # the RST_STREAM or GOAWAY is framed, and says so (StreamClosed, ConnectionClosed) only then:
            # frame now, so the core hears of it in this read instead of the next one, which may never come.
            self._held += _data_to_send(self)
        return self.events()

    def data_to_send(self, amount: int | None = None) -> bytes:
        if self._held:
            held, self._held = self._held, b""
            return held + _data_to_send(self)
        return _data_to_send(self)

    def send_headers(self, stream_id: int, headers: Sequence[tuple[bytes, bytes]], end_stream: bool = False) -> None:
        """One call for every header block (the core's), mapped onto ngh2's one call per kind of block."""
        first, value = headers[0]
        if first == b":status":
            if value[:1] == b"1":
                self.send_informational_response(stream_id, headers)
            else:
                self.send_response(stream_id, headers, end_stream=end_stream)
        elif first[:1] == b":":  # a request: pseudo-header fields come first, in any order (grpcio: :path)
            opened = self.send_request(headers, end_stream=end_stream)
            if opened != stream_id:  # the core asked get_next_available_stream_id() just before
                raise ngh2.StreamUnavailableError(f"stream {opened} opened, {stream_id} expected")
        else:
            self.send_trailers(stream_id, headers)  # trailers always end the stream

    def reset_stream(self, stream_id: int, error_code: int = 0x08) -> None:
        # nghttp2 sends RST_STREAM ahead of the HEADERS and DATA already queued on the stream, and drops
        # them: a complete answer followed by RST_STREAM(NO_ERROR) (RFC 9113 §8.1) or a gRPC status in
        # trailers would never reach the peer. Frame what is queued first.
        self._held += super().data_to_send()
        super().reset_stream(stream_id, error_code)

    def get_next_available_stream_id(self) -> int:
        return self.next_stream_id

    def local_flow_control_window(self, stream_id: int) -> int:
        """DATA bytes the peer's windows take now, less what ngh2 holds queued but has not framed yet."""
        try:
            stream = self.stream_remote_window_size(stream_id)
        except ngh2.StreamUnavailableError:  # a request whose HEADERS nghttp2 has not framed yet
            stream = self.remote_settings.get(_INITIAL_WINDOW_SIZE, 65535)
        conn = self.remote_window_size - self.queued_body_size()
        return max(0, min(conn, stream - self.queued_body_size(stream_id)))

    def close_connection(self, error_code: int = 0) -> None:
        self.terminate_connection(error_code)

    def peer_stream_limit(self) -> int:
        """The peer's SETTINGS_MAX_CONCURRENT_STREAMS (unlimited until it says otherwise)."""
        return self.remote_settings.get(_MAX_CONCURRENT_STREAMS, 2**32 - 1)


def configured(client_side: bool, limits: H2Limits) -> NgH2Connection:
    """A connection with the proxy's limits, its preface (SETTINGS) already queued."""
    return NgH2Connection(client_side, limits)
