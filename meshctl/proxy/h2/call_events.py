"""How a gRPC server connection on ngh2 reads its HTTP/2 events into calls: the proxy's tap server
(proxy/observe/tap_server.py) and the control plane's server (control/grpc_connection.py) share it.

A server of calls needs little of HTTP/2: a request head opens a call, DATA adds to its request message,
END_STREAM (on either) completes it, a reset or close forgets it, an opened window lets answers move on,
and a GOAWAY ends the connection. Each connection says what each of those means to it in the hooks.
"""

from __future__ import annotations

from collections.abc import Iterable

from ngh2 import (
    ConnectionClosed,
    DataReceived,
    GoAwayReceived,
    PingAcknowledged,
    RequestReceived,
    SettingsReceived,
    StreamClosed,
    StreamReset,
    WindowUpdated,
)


class CallEvents:
    """Mixed into a connection: `_dispatch` hands one read's events to the hooks below."""

    __slots__ = ()

    def _dispatch(self, events: Iterable[object]) -> bool:
        """Each event to its hook, in order; False once the peer ended the connection (the rest is not read)."""
        for event in events:
            if isinstance(event, RequestReceived):
                self._on_request(event.stream_id, dict(event.headers))
                if event.end_stream:
                    self._on_request_end(event.stream_id)
            elif isinstance(event, DataReceived):
                self._on_data(event.stream_id, event.data)
                if event.end_stream:
                    self._on_request_end(event.stream_id)
            elif isinstance(event, StreamReset | StreamClosed):
                self._forget(event.stream_id)
            elif isinstance(event, WindowUpdated | SettingsReceived):  # a SETTINGS may widen every window
                self._window_opened()
            elif isinstance(event, PingAcknowledged):
                self._ping_acknowledged()
            elif isinstance(event, GoAwayReceived | ConnectionClosed):
                self._peer_closed()
                return False
        return True

    def _on_request(self, stream_id: int, headers: dict[bytes, bytes]) -> None:
        """A call's request head: refuse it, or open the call."""
        raise NotImplementedError

    def _on_data(self, stream_id: int, data: bytes) -> None:
        """Bytes of a call's request message."""
        raise NotImplementedError

    def _on_request_end(self, stream_id: int) -> None:
        """The request is complete: the call can run."""
        raise NotImplementedError

    def _forget(self, stream_id: int) -> None:
        """The stream is gone (reset or closed): drop its call."""
        raise NotImplementedError

    def _window_opened(self) -> None:
        """Flow-control windows may have opened: send what waited for them."""
        raise NotImplementedError

    def _ping_acknowledged(self) -> None:
        """The peer answered a PING (only a connection that sends them cares)."""

    def _peer_closed(self) -> None:
        """The peer sent GOAWAY or the codec ended the connection."""
        raise NotImplementedError
