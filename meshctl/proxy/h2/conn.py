"""python-h2 adapted to a proxy: the connection every HTTP/2 end of the proxy runs on, and its limits.

python-h2 turns several stream-level problems into connection errors; a proxy multiplexes many clients'
requests on a connection, so each of those costs every other stream on it. The subclasses here keep them
stream errors, as RFC 9113 says, and leave the checks to the core (h2/core.py, h2/headers.py).

The codec is an evaluation switch: MESHCTL_H2_CODEC=ngh2 (read once, at import) runs every HTTP/2 end
of the proxy on ngh2 (libnghttp2, h2/ngh2_conn.py) instead of python-h2 (`h2`, the default). The ends
consume both codecs' events; python-h2's are brought to ngh2's shape in `ProxyConnection.receive_data`
(`end_stream`, `opaque_data`, padding acknowledged by the codec), which costs python-h2 one attribute
write per event and ngh2 nothing.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ngh2
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import ConnectionTerminated, DataReceived, PingAckReceived, RequestReceived, ResponseReceived
from h2.exceptions import H2Error
from h2.settings import SettingCodes, Settings
from h2.stream import H2Stream

if TYPE_CHECKING:
    from meshctl.proxy.h2.ngh2_conn import NgH2Connection

CODECS = ("h2", "ngh2")
CODEC = os.environ.get("MESHCTL_H2_CODEC", "h2")
if CODEC not in CODECS:
    print(f"MESHCTL_H2_CODEC={CODEC!r} is not one of h2, ngh2: using h2 (unset it or name a codec)", file=sys.stderr)
    CODEC = "h2"

# What a failed call on either codec raises (ngh2 raises ValueError for an out-of-range acknowledgement).
CodecError = (H2Error, ngh2.NGH2Error, ValueError)


@dataclass(frozen=True, slots=True)
class H2Limits:
    max_concurrent_streams: int = 100
    max_header_list_size: int = 64 * 1024
    stream_window: int = 256 * 1024  # bytes a peer may send per stream before we acknowledge
    connection_window: int = 1024 * 1024  # ... and on the whole connection: bounds memory per connection
    reset_floor: int = 200  # premature resets tolerated before the ratio rule applies
    control_frames_per_s: int = 500  # PING, SETTINGS, PRIORITY, empty DATA, unknown frames


class _LengthUncheckedStream(H2Stream):
    """A stream whose content-length the core checks itself (H2Side._body_fits).

    python-h2 makes an invalid or disagreeing content-length a connection error; RFC 9113 §8.1.1 makes
    it a malformed message, a stream error, so the other streams of the connection live on.
    """

    def _initialize_content_length(self, headers: Any) -> None:
        self._expected_content_length = None

    def _track_content_length(self, length: int, end_stream: bool) -> None:
        pass


class ProxyConnection(H2Connection):
    """python-h2 with three RFC 9113 behaviours it lacks, all needed to proxy without collateral damage."""

    def receive_data(self, data: Any) -> list[Any]:
        """python-h2's events in the shape the ends read (ngh2's): `end_stream`, `opaque_data`, no padding."""
        events: list[Any] = super().receive_data(data)
        for ev in events:
            kind = type(ev)
            if kind is DataReceived:
                ev.end_stream = ev.stream_ended is not None
                padding = ev.flow_controlled_length - len(ev.data)
                if padding:  # as nghttp2 does: padding is no one's to consume
                    with contextlib.suppress(H2Error):
                        self.acknowledge_received_data(padding, ev.stream_id)
            elif kind is RequestReceived or kind is ResponseReceived:
                ev.end_stream = ev.stream_ended is not None
            elif kind is PingAckReceived:
                ev.opaque_data = ev.ping_data
        return events

    def peer_stream_limit(self) -> int:
        return int(self.remote_settings.max_concurrent_streams)

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
        stream.__class__ = _LengthUncheckedStream  # same state; the content-length is the core's to check
        return stream


def configured(client_side: bool, limits: H2Limits, codec: str | None = None) -> ProxyConnection | NgH2Connection:
    """A connection on the configured codec (MESHCTL_H2_CODEC), or on `codec` (tests run both in one process)."""
    if (codec or CODEC) == "ngh2":
        from meshctl.proxy.h2.ngh2_conn import NgH2Connection

        return NgH2Connection(client_side, limits)
    config = H2Configuration(
        client_side=client_side,
        header_encoding=None,
        validate_inbound_headers=False,  # headers.py does it, resetting streams instead of connections
        normalize_inbound_headers=False,
        validate_outbound_headers=False,  # we only send blocks that were validated or built here
        normalize_outbound_headers=False,
    )
    conn = ProxyConnection(config)
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
