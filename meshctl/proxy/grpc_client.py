"""A small gRPC client on the proxy's own event loop: unary and server-streaming calls over one HTTP/2
connection (ngh2, the codec the proxy already carries, TLS from the `ssl` module).

The proxy talks to the control plane with it instead of grpcio, whose threads and ~10 MiB would stay in
every sidecar for its whole life and whose idle threads make the event loop's timers late. It speaks
only what the control API needs: length-prefixed protobuf messages, `grpc-timeout`, statuses from
trailers (or trailers-only responses), flow control (nghttp2 returns credit as DATA is read) and PING
keepalives.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections import deque
from typing import cast

import ngh2
from ngh2 import (
    ConnectionClosed,
    DataReceived,
    GoAwayReceived,
    NGH2Error,
    PingAcknowledged,
    ResponseReceived,
    StreamClosed,
    StreamReset,
    TrailersReceived,
)

log = logging.getLogger("meshctl.proxy.grpc")

MAX_MESSAGE = 64 * 1024 * 1024  # a snapshot of a very large mesh still fits; more is refused
WINDOW = 4 * 1024 * 1024


class GrpcError(Exception):
    """A call failed: a gRPC status other than OK, or the connection broke (status UNAVAILABLE)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{_CODE_NAMES.get(code, str(code))}: {message}")
        self.code = code


_CODE_NAMES = {1: "CANCELLED", 2: "UNKNOWN", 4: "DEADLINE_EXCEEDED", 5: "NOT_FOUND", 7: "PERMISSION_DENIED",
               12: "UNIMPLEMENTED", 13: "INTERNAL", 14: "UNAVAILABLE", 16: "UNAUTHENTICATED"}  # fmt: skip


class Call:
    """The messages of one call's response, in order; iterate with `await call.next()` (None at the end)."""

    def __init__(self) -> None:
        self._buffer = b""
        self._messages: deque[bytes] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self.error: GrpcError | None = None
        self.ended = False

    async def next(self) -> bytes | None:
        while not self._messages:
            if self.error is not None:
                raise self.error
            if self.ended:
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        return self._messages.popleft()

    async def unary(self) -> bytes:
        message = await self.next()
        if message is None:
            raise GrpcError(13, "the server sent no message")
        return message

    def feed(self, data: bytes) -> None:
        buffer = self._buffer + data
        while len(buffer) >= 5:
            compressed, size = struct.unpack(">BI", buffer[:5])
            if compressed or size > MAX_MESSAGE:
                self.fail(GrpcError(13, "compressed or oversized message"))
                return
            if len(buffer) < 5 + size:
                break
            self._messages.append(buffer[5 : 5 + size])
            buffer = buffer[5 + size :]
        self._buffer = buffer
        self._wake()

    def finish(self, headers: list[tuple[bytes, bytes]]) -> None:
        """Trailers (or a trailers-only response): the call's status."""
        fields = dict(headers)
        status = fields.get(b"grpc-status")
        if status is not None and status != b"0":
            code = int(status) if status.isdigit() else 2
            self.fail(GrpcError(code, fields.get(b"grpc-message", b"").decode("utf-8", "replace")))
        elif status is None and fields.get(b":status", b"200") != b"200":
            self.fail(GrpcError(14, f"HTTP status {fields[b':status'].decode('ascii', 'replace')}"))

    def end(self) -> None:
        self.ended = True
        self._wake()

    def fail(self, error: GrpcError) -> None:
        if self.error is None and not self.ended:
            self.error = error
        self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class GrpcConnection(asyncio.Protocol):
    """One HTTP/2 connection to a gRPC server. Open with `connect()`; `closed` resolves when it is gone."""

    def __init__(self, authority: str) -> None:
        self.authority = authority.encode("ascii")
        self.h2 = ngh2.Connection(ngh2.Role.CLIENT)  # WINDOW_UPDATEs as DATA is read (auto_window_update)
        self.calls: dict[int, Call] = {}
        self.transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.closed: asyncio.Future[str] = loop.create_future()  # no more calls: the reason
        self.lost: asyncio.Future[None] = loop.create_future()  # the transport is gone too
        self._pongs: dict[bytes, asyncio.Future[None]] = {}

    # -- asyncio.Protocol ---------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.h2.initiate_connection({ngh2.Setting.INITIAL_WINDOW_SIZE: WINDOW, ngh2.Setting.ENABLE_PUSH: 0})
        self.h2.set_local_window_size(WINDOW)
        self._flush()

    def data_received(self, data: bytes) -> None:
        try:
            self.h2.receive_data(data)
        except NGH2Error as exc:
            self.close(f"protocol error from the server: {exc}")
            return
        for event in self.h2.events():
            self._event(event)
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self._gone(f"connection lost: {exc}" if exc else "connection closed")
        if not self.lost.done():
            self.lost.set_result(None)

    # -- calls ----------------------------------------------------------------------------------------
    def call(self, path: str, message: bytes, timeout_s: float | None = None) -> Call:
        """Start a call with one request message; its response messages arrive on the returned Call."""
        call = Call()
        if self.closed.done() or self.transport is None:
            call.fail(GrpcError(14, self.closed.result() if self.closed.done() else "not connected"))
            return call
        headers = [(b":method", b"POST"), (b":scheme", b"https"), (b":path", path.encode("ascii")),
                   (b":authority", self.authority), (b"content-type", b"application/grpc"), (b"te", b"trailers")]
        if timeout_s is not None:
            headers.append((b"grpc-timeout", b"%dm" % max(1, int(timeout_s * 1000))))  # fmt: skip
        try:
            stream_id = self.h2.send_request(headers)
            self.h2.send_data(stream_id, struct.pack(">BI", 0, len(message)) + message, end_stream=True)
        except NGH2Error as exc:  # the connection is closing (a GOAWAY arrived in this read)
            call.fail(GrpcError(14, f"cannot start the call: {exc}"))
            return call
        self.calls[stream_id] = call
        self._flush()
        return call

    async def ping(self, timeout_s: float) -> bool:
        """True when the server answers a PING within `timeout_s`."""
        if self.closed.done():
            return False
        payload = struct.pack(">Q", id(self) ^ len(self._pongs) ^ int(asyncio.get_running_loop().time() * 1e6))
        try:
            self.h2.ping(payload)
        except NGH2Error:
            return False
        pong = self._pongs[payload] = asyncio.get_running_loop().create_future()
        self._flush()
        try:
            await asyncio.wait_for(asyncio.shield(pong), timeout_s)
            return True
        except TimeoutError:
            return False
        finally:
            self._pongs.pop(payload, None)

    def close(self, reason: str = "closed by the client") -> None:
        if self.transport is not None and not self.transport.is_closing():
            try:
                self.h2.terminate_connection()
                self._flush()
            except NGH2Error:
                pass
            self.transport.close()
        self._gone(reason)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
        self._gone("aborted")

    # -- internals --------------------------------------------------------------------------------------
    def _event(self, event: object) -> None:
        if isinstance(event, DataReceived):
            call = self.calls.get(event.stream_id)
            if call is not None:
                call.feed(event.data)
                if event.end_stream:
                    self._ended(event.stream_id)
        elif isinstance(event, ResponseReceived | TrailersReceived):
            call = self.calls.get(event.stream_id)
            if call is not None:
                call.finish(list(event.headers))
                if isinstance(event, TrailersReceived) or event.end_stream:
                    self._ended(event.stream_id)
        elif isinstance(event, StreamReset):
            call = self.calls.pop(event.stream_id, None)
            if call is not None:
                call.fail(GrpcError(14, f"stream reset by the server ({_code_name(event.error_code)})"))
        elif isinstance(event, StreamClosed):  # still open here: nghttp2 reset a malformed response itself
            call = self.calls.pop(event.stream_id, None)
            if call is not None:
                why = event.local_error or _code_name(event.error_code)
                call.fail(GrpcError(14, f"stream closed before the call ended ({why})"))
        elif isinstance(event, PingAcknowledged):
            pong = self._pongs.get(event.opaque_data)
            if pong is not None and not pong.done():
                pong.set_result(None)
        elif isinstance(event, GoAwayReceived | ConnectionClosed):
            self.close(f"the server went away (GOAWAY {_code_name(event.error_code)})")

    def _ended(self, stream_id: int) -> None:
        call = self.calls.pop(stream_id, None)
        if call is not None:
            call.end()

    def _flush(self) -> None:
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _gone(self, reason: str) -> None:
        if not self.closed.done():
            self.closed.set_result(reason)
        calls, self.calls = self.calls, {}
        for call in calls.values():
            call.fail(GrpcError(14, reason))
        for pong in self._pongs.values():
            if not pong.done():
                pong.cancel()


def _code_name(code: int) -> str:
    try:
        return ngh2.ErrorCode(code).name
    except ValueError:
        return str(code)
