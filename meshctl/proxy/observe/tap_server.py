"""The tap gRPC service (`meshctl.tap.v1.Tap/Observe`) on the proxy's tap port, without grpcio.

gRPC is HTTP/2 plus length-prefixed protobuf messages, so the proxy's own HTTP/2 connection (ngh2,
sans-IO, h2/conn.py) on an asyncio Protocol serves it with no thread and no grpcio in the proxy's
memory. One Observe call becomes one hub subscriber; its queued events go out as DATA frames when the
client's flow-control window and the socket allow, so a slow client backs up into its own bounded queue
(and its drop counter), never into the request path. Only the instance's own loopback may tap, as only
it may change the admin settings; anyone else gets PERMISSION_DENIED with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from collections.abc import Callable
from typing import cast

from meshctl.api import tap_pb2
from meshctl.errors import ConflictError, MeshError
from meshctl.metrics.admin import listen_address
from meshctl.metrics.adminapp import is_loopback
from meshctl.proxy.h2.call_events import CallEvents
from meshctl.proxy.h2.conn import CodecError, H2Limits, configured
from meshctl.proxy.h2.grpc import GrpcStatus, encode_message
from meshctl.proxy.observe.tap import Subscriber, TapHub
from meshctl.proxy.observe.tap_match import MatchError

FLUSH_S = 0.005  # how long events wait to be sent together
log = logging.getLogger("meshctl.proxy.tap")

OBSERVE = b"/meshctl.tap.v1.Tap/Observe"
MAX_REQUEST = 64 * 1024
MAX_SUBSCRIBERS = 8
MAX_CONNECTIONS = 32  # idle connections included: loopback-only, but still bounded
NOTICE_S = 1.0  # how often drop counts are sent
TAKE_BYTES = 64 * 1024  # events taken from a queue per write


class _Call:
    __slots__ = ("stream_id", "request", "sub", "pending")

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id
        self.request = bytearray()
        self.sub: Subscriber | None = None
        self.pending = b""  # taken from the queue, not yet within the window


class TapServer:
    def __init__(
        self,
        hub: TapHub,
        *,
        max_subscribers: int = MAX_SUBSCRIBERS,
        notice_s: float = NOTICE_S,
        may_connect: Callable[[str | None], bool] = is_loopback,
    ) -> None:
        self.hub = hub
        self.may_connect = may_connect
        self.max_subscribers = max_subscribers
        self.notice_s = notice_s
        self.connections: set[_TapConnection] = set()
        self._server: asyncio.AbstractServer | None = None

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen on host:port (0: any free port); returns the bound address."""
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(lambda: _TapConnection(self), host, port, reuse_address=True)
        except OSError as exc:
            where = f"{host}:{port}"
            if exc.errno == errno.EADDRINUSE:
                raise ConflictError(
                    f"the tap endpoint cannot listen on {where}: the address is in use",
                    hint="stop the process that holds the port, or configure another tap address",
                ) from None
            raise MeshError(f"the tap endpoint cannot listen on {where}: {exc.strerror or exc}") from None
        return listen_address(self._server)

    async def stop(self) -> None:
        """Stop listening and end every call with UNAVAILABLE, so clients learn why the stream ended."""
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.shutdown()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)

    @property
    def subscribers(self) -> int:
        return len(self.hub.subscribers)


class _TapConnection(CallEvents, asyncio.Protocol):
    def __init__(self, server: TapServer) -> None:
        self.server = server
        self.hub = server.hub
        self.h2 = configured(client_side=False, limits=H2Limits())  # its preface is queued already
        self.calls: dict[int, _Call] = {}
        self.transport: asyncio.Transport | None = None
        self.allowed = False
        self.peer = "?"
        self.paused = False
        self.flush_scheduled = False
        self.timer: asyncio.TimerHandle | None = None
        self.loop = asyncio.get_running_loop()

    # -- asyncio.Protocol ------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        self.allowed = self.server.may_connect(self.peer)
        if len(self.server.connections) >= MAX_CONNECTIONS:
            log.warning("tap: refusing a connection from %s: %d already open", self.peer, MAX_CONNECTIONS)
            self.transport.abort()
            return
        self.server.connections.add(self)
        self._write()
        self.timer = self.loop.call_later(self.server.notice_s, self._tick)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        for call in self.calls.values():
            if call.sub is not None:
                self.hub.unsubscribe(call.sub)
        self.calls.clear()
        if self.timer is not None:
            self.timer.cancel()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except CodecError as exc:
            log.debug("tap: protocol error from %s: %s", self.peer, exc)
            self._close()
            return
        if self._dispatch(events):  # proxy/h2/call_events.py: into the hooks below
            self._write()

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._schedule()

    def _window_opened(self) -> None:
        self._schedule()

    def _peer_closed(self) -> None:
        self._close()

    # -- the Observe call ----------------------------------------------------------------------------
    def _on_request(self, stream_id: int, headers: dict[bytes, bytes]) -> None:
        if not self.allowed:
            reason = "tap is served only to the instance's own loopback: use port-forward (or run on the host)"
            self._fail(stream_id, GrpcStatus.PERMISSION_DENIED, reason)
        elif headers.get(b":method") != b"POST" or headers.get(b":path") != OBSERVE:
            self._fail(stream_id, GrpcStatus.UNIMPLEMENTED, f"unknown method {headers.get(b':path', b'')!r}")
        elif not headers.get(b"content-type", b"").startswith(b"application/grpc"):
            self._fail(stream_id, GrpcStatus.INTERNAL, "content-type is not application/grpc")
        else:
            self.calls[stream_id] = _Call(stream_id)

    def _on_data(self, stream_id: int, data: bytes) -> None:
        with contextlib.suppress(*CodecError):
            self.h2.acknowledge_received_data(len(data), stream_id)  # nghttp2 credits padding itself
        call = self.calls.get(stream_id)
        if call is None or call.sub is not None:
            return
        call.request += data
        if len(call.request) > MAX_REQUEST:
            self._fail(stream_id, GrpcStatus.RESOURCE_EXHAUSTED, f"request over {MAX_REQUEST} bytes")

    def _on_request_end(self, stream_id: int) -> None:
        call = self.calls.get(stream_id)
        if call is None or call.sub is not None:
            return
        raw = bytes(call.request)
        if len(raw) < 5 or raw[0] != 0 or int.from_bytes(raw[1:5], "big") != len(raw) - 5:
            self._fail(stream_id, GrpcStatus.INTERNAL, "expected one uncompressed length-prefixed message")
            return
        try:
            request = tap_pb2.ObserveRequest.FromString(raw[5:])
        except Exception:
            self._fail(stream_id, GrpcStatus.INTERNAL, "the request is not an ObserveRequest")
            return
        if len(self.hub.subscribers) >= self.server.max_subscribers:
            self._fail(stream_id, GrpcStatus.RESOURCE_EXHAUSTED, f"{self.server.max_subscribers} taps already run")
            return
        try:
            call.sub = self.hub.subscribe(request, self._schedule)
        except MatchError as exc:
            self._fail(stream_id, 3, f"match refused: {exc}")  # INVALID_ARGUMENT
            return
        self.h2.send_headers(stream_id, [(b":status", b"200"), (b"content-type", b"application/grpc")])
        log.info("tap: subscriber from %s (limit %d/s)", self.peer, call.sub.limit)

    def _fail(self, stream_id: int, status: int, message: str) -> None:
        """A trailers-only gRPC answer: the status and why, in the one header block."""
        self._forget(stream_id)
        headers = [(b":status", b"200"), (b"content-type", b"application/grpc"),
                   (b"grpc-status", b"%d" % status), (b"grpc-message", encode_message(message))]  # fmt: skip
        with contextlib.suppress(*CodecError):
            self.h2.send_headers(stream_id, headers, end_stream=True)

    def _forget(self, stream_id: int) -> None:
        call = self.calls.pop(stream_id, None)
        if call is not None and call.sub is not None:
            self.hub.unsubscribe(call.sub)
            sub = call.sub
            log.info("tap: subscriber from %s left: %d requests taken, %d lost; %d seen by the proxy in all",
                     self.peer, sub.delivered, sub.lost, self.hub.seen)  # fmt: skip

    # -- sending -------------------------------------------------------------------------------------
    def _schedule(self) -> None:
        # Events are sent in batches, FLUSH_S apart: one frame and one write for many events instead of one
        # per event, which at 1,000 rps doubled the proxy's CPU per request. A tap shows requests that late.
        if not self.flush_scheduled and self.transport is not None:
            self.flush_scheduled = True
            self.loop.call_later(FLUSH_S, self._flush)

    def _flush(self) -> None:
        self.flush_scheduled = False
        if self.transport is None:
            return
        try:
            for call in list(self.calls.values()):
                if call.sub is not None:
                    self._send(call, call.sub)
        except CodecError as exc:
            log.debug("tap: cannot send to %s: %s", self.peer, exc)
        self._write()

    def _send(self, call: _Call, sub: Subscriber) -> None:
        frame_size = self.h2.max_outbound_frame_size
        while not self.paused:
            if not call.pending:
                call.pending = sub.take(TAKE_BYTES)
                if not call.pending:
                    return
            window = self.h2.local_flow_control_window(call.stream_id)
            if window <= 0:
                return  # WindowUpdated schedules the next flush
            size = min(window, frame_size, len(call.pending))
            self.h2.send_data(call.stream_id, call.pending[:size])
            call.pending = call.pending[size:]
            self._write()  # a full socket buffer calls pause_writing, which ends this loop

    def _tick(self) -> None:
        for call in self.calls.values():
            if call.sub is not None:
                call.sub.push_notice()
        self.timer = self.loop.call_later(self.server.notice_s, self._tick)

    def _write(self) -> None:
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def shutdown(self) -> None:
        for stream_id in list(self.calls):
            trailers = [(b"grpc-status", b"%d" % GrpcStatus.UNAVAILABLE),
                        (b"grpc-message", b"the proxy is shutting down")]  # fmt: skip
            with contextlib.suppress(*CodecError):
                self.h2.send_headers(stream_id, trailers, end_stream=True)
            self._forget(stream_id)
        self._write()  # the trailers first: nghttp2 drops what is still queued once its GOAWAY is out
        with contextlib.suppress(*CodecError):
            self.h2.close_connection()
        self._write()
        self._close()

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()
