"""python-h2 as a client that keeps working after a graceful GOAWAY, for the drain tests.

RFC 9113 §6.8 lets the streams up to a graceful GOAWAY's last_stream_id finish, and a drain must refuse
the streams a careless client opens after it. python-h2 closes its whole connection on any GOAWAY and
nghttp2 stops opening streams, so neither plays that client as it is: this one only reports the GOAWAY.
"""

from __future__ import annotations

from typing import Any

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import ConnectionTerminated


class LingeringClient(H2Connection):
    def _receive_goaway_frame(self, frame: Any) -> Any:
        if frame.error_code:
            return super()._receive_goaway_frame(frame)
        event = ConnectionTerminated()
        event.error_code = ErrorCodes.NO_ERROR
        event.last_stream_id = frame.last_stream_id
        event.additional_data = frame.additional_data or None
        return [], [event]


def lingering_client() -> LingeringClient:
    conn = LingeringClient(H2Configuration(client_side=True, header_encoding=None))
    conn.initiate_connection()
    return conn
