"""One connection of the control plane's gRPC server: TLS over memory BIOs, one nghttp2 session, its calls.

gRPC on HTTP/2: a request is one length-prefixed message (at most 1 MiB); an answer is HEADERS, the messages
as DATA, and grpc-status in trailers, or a trailers-only block when the call fails before its first message.
A call's grpc-timeout is its deadline: a call still running then (a Watch included) ends with
DEADLINE_EXCEEDED, as grpcio's server ends it. Keepalive: a connection nothing was read from for
`keepalive_s` is PINGed and closed when the ack does not come within `ack_timeout_s`, which cancels its Watch
stream. Client PINGs are answered by nghttp2; its flood limits (unread ACKs, rapid resets, glitches) stay on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from typing import TYPE_CHECKING, Any, cast

import ngh2

from meshctl.control.grpc_wire import RESPONSE, BadRequest, framed, request_message, status_block, too_large
from meshctl.control.rpc import Aborted, CallContext, Method, StatusCode
from meshctl.proxy.h2.call_events import CallEvents
from meshctl.proxy.h2.grpc import parse_timeout

if TYPE_CHECKING:
    from meshctl.control.grpc_server import GrpcServer

log = logging.getLogger("meshctl.control.grpc")

READ_SIZE = 4096
_READ = bytearray(READ_SIZE)  # shared: buffer_updated consumes it before the next read can happen
_READ_VIEW = memoryview(_READ)
_CODEC_ERRORS = (ngh2.NGH2Error, ValueError)
_KEEPALIVE_PING = b"keepaliv"
# DATA goes to nghttp2 in pieces of this size, each framed before the next: nghttp2 copies a frame into a
# 16 KiB buffer of its session, and the pages a frame touches stay resident for the connection's life.
# Measured over 1,000 sessions: 12.5 KiB each idle, 24.5 after one 13 KiB frame, 12.9 with 2 KiB frames.
PIECE = 2048


class Call:
    __slots__ = ("method", "deadline", "request", "task", "answered", "drained", "pending", "offset")

    def __init__(self, method: Method, deadline: float | None) -> None:
        self.method = method
        self.deadline = deadline  # the loop's time when the caller's grpc-timeout ends, if it sent one
        self.request = bytearray()
        self.task: asyncio.Task[None] | None = None
        self.answered = False  # response headers went out
        self.drained: asyncio.Event | None = None  # set when the stream's queued messages are all sent
        self.pending: bytes | None = None  # the framed message being sent, from `offset` on
        self.offset = 0


class Connection(CallEvents, asyncio.BufferedProtocol):
    __slots__ = ("server", "loop", "transport", "calls", "peer", "paused", "secure", "last_read", "timer",
                 "pinged", "incoming", "outgoing", "tls", "h2")  # fmt: skip

    def __init__(self, server: GrpcServer) -> None:
        self.server = server
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.calls: dict[int, Call] = {}
        self.peer = "unknown"
        self.paused = False
        self.secure = False
        self.last_read = self.loop.time()
        self.timer: asyncio.TimerHandle | None = None
        self.pinged = False
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.tls = server.tls().wrap_bio(self.incoming, self.outgoing, server_side=True)
        limits = server.limits
        config = ngh2.Configuration(max_inbound_header_list_size=limits.max_header_list_size)
        self.h2 = ngh2.Connection(ngh2.Role.SERVER, config)
        self.h2.initiate_connection(
            {
                ngh2.Setting.MAX_CONCURRENT_STREAMS: limits.max_concurrent_streams,
                ngh2.Setting.MAX_HEADER_LIST_SIZE: limits.max_header_list_size,
            }
        )

    # -- asyncio.BufferedProtocol --------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.peer = f"ipv6:[{peer[0]}]:{peer[1]}" if ":" in str(peer[0]) else f"ipv4:{peer[0]}:{peer[1]}"
        self.server.connections.add(self)
        self.timer = self.loop.call_later(self.server.limits.keepalive_s, self._keepalive)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        if self.timer is not None:
            self.timer.cancel()
        for call in self.calls.values():
            if call.task is not None:
                call.task.cancel()  # a Watch's `finally` runs: its stream count and log stay right
        self.calls.clear()
        self.transport = None

    def get_buffer(self, sizehint: int) -> memoryview:
        return _READ_VIEW

    def buffer_updated(self, nbytes: int) -> None:
        self.last_read = self.loop.time()
        self.incoming.write(_READ_VIEW[:nbytes])
        try:
            if not self.secure:
                self.tls.do_handshake()
                self.secure = True
                self.server.handshaken()
                self._flush()  # the server preface (SETTINGS) goes out with the handshake's last flight
            while True:
                chunk = self.tls.read(READ_SIZE)
                if not chunk:  # close_notify
                    self.close()
                    return
                self.h2.receive_data(chunk)
                self._dispatch(self.h2.events())
                if self.transport is None or self.transport.is_closing():
                    return  # closed on the peer's GOAWAY: what follows is not read
        except ssl.SSLWantReadError:
            pass
        except (ssl.SSLError, OSError) as exc:
            log.debug("TLS from %s failed: %s", self.peer, exc)
            self._abort()
            return
        except _CODEC_ERRORS as exc:
            log.debug("HTTP/2 from %s refused: %s", self.peer, exc)
            self._flush()
            self._abort()
            return
        self._flush()

    def eof_received(self) -> bool:
        return False

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._check_drained()

    # -- HTTP/2 events ----------------------------------------------------------------------------
    # `_dispatch` (proxy/h2/call_events.py) calls these and the _on_request... hooks below.
    def _window_opened(self) -> None:
        self._check_drained()

    def _ping_acknowledged(self) -> None:
        self.pinged = False

    def _peer_closed(self) -> None:
        self.close()

    def _on_request(self, stream_id: int, headers: dict[bytes, bytes]) -> None:
        path = headers.get(b":path", b"")
        method = self.server.methods.get(path)
        if headers.get(b":method") != b"POST" or not headers.get(b"content-type", b"").startswith(b"application/grpc"):
            self._refuse(stream_id, StatusCode.INTERNAL, "expected a gRPC request (POST, application/grpc)")
        elif method is None:
            self._refuse(stream_id, StatusCode.UNIMPLEMENTED, f"unknown method {path.decode('ascii', 'replace')}")
        else:
            timeout = headers.get(b"grpc-timeout")
            seconds = parse_timeout(timeout) if timeout is not None else None
            if timeout is not None and seconds is None:  # as grpcio's server answers it
                self._refuse(
                    stream_id, StatusCode.INTERNAL, f"malformed grpc-timeout {timeout.decode('ascii', 'replace')!r}"
                )
                return
            self.calls[stream_id] = Call(method, None if seconds is None else self.loop.time() + seconds)

    def _on_data(self, stream_id: int, data: bytes) -> None:
        call = self.calls.get(stream_id)
        if call is None or call.task is not None:
            return
        call.request += data
        refusal = too_large(call.request)
        if refusal is not None:
            self._refuse(stream_id, StatusCode.RESOURCE_EXHAUSTED, refusal)

    def _on_request_end(self, stream_id: int) -> None:
        call = self.calls.get(stream_id)
        if call is None or call.task is not None:
            return
        raw = bytes(call.request)
        call.request = bytearray()
        try:
            message = request_message(raw)
        except BadRequest as exc:
            self._refuse(stream_id, exc.code, exc.message)
            return
        try:
            request = call.method.parse(message)
        except Exception:
            self._refuse(stream_id, StatusCode.INTERNAL, "the request message cannot be parsed")
            return
        call.task = self.loop.create_task(self._run(stream_id, call, request))

    # -- running a call -------------------------------------------------------------------------------
    async def _run(self, stream_id: int, call: Call, request: Any) -> None:
        method, context = call.method, CallContext(self.peer)
        status, message = StatusCode.OK, ""
        deadline = asyncio.timeout_at(call.deadline)
        try:
            async with deadline:
                if method.unary is not None:
                    self._send_message(stream_id, call, method.serialize(await method.unary(request, context)))
                    await self._drained(stream_id, call)
                elif method.stream is not None:
                    async for response in method.stream(request, context):
                        self._send_message(stream_id, call, method.serialize(response))
                        await self._drained(stream_id, call)
        except TimeoutError:
            if not deadline.expired():
                log.exception("a call from %s failed", self.peer)
                status, message = StatusCode.UNKNOWN, "the control plane failed on this call; see its log"
            else:
                status, message = StatusCode.DEADLINE_EXCEEDED, "the call's deadline (grpc-timeout) passed"
        except Aborted as exc:
            status, message = exc.code, exc.message
        except (asyncio.CancelledError, *_CODEC_ERRORS):
            return  # the stream or the connection is gone: nobody to answer
        except Exception:
            log.exception("a call from %s failed", self.peer)
            status, message = StatusCode.UNKNOWN, "the control plane failed on this call; see its log"
        if self.calls.get(stream_id) is not call or self.transport is None:
            return
        del self.calls[stream_id]
        with contextlib.suppress(*_CODEC_ERRORS):
            if call.answered:
                self.h2.send_trailers(stream_id, status_block(status, message))
            else:
                self.h2.send_response(stream_id, RESPONSE + status_block(status, message), end_stream=True)
        self._flush()

    def _send_message(self, stream_id: int, call: Call, body: bytes) -> None:
        if not call.answered:
            call.answered = True
            self.h2.send_response(stream_id, RESPONSE)
        call.pending, call.offset = framed(body), 0
        self._pump(stream_id, call)
        self._flush()

    def _pump(self, stream_id: int, call: Call) -> None:
        """Hand nghttp2 the message piece by piece, as far as the peer's windows and the socket take it."""
        pending = call.pending
        while pending is not None and not self.paused and self.transport is not None:
            room = self._window(stream_id)
            if room <= 0:
                return  # WindowUpdated pumps again
            end = min(len(pending), call.offset + min(room, PIECE))
            self.h2.send_data(stream_id, pending[call.offset : end])
            call.offset = end
            if end == len(pending):
                call.pending = pending = None
            self._write()

    def _window(self, stream_id: int) -> int:
        """DATA bytes the peer takes now on this stream, less what nghttp2 holds queued."""
        try:
            stream = self.h2.stream_remote_window_size(stream_id) - self.h2.queued_body_size(stream_id)
            return min(stream, self.h2.remote_window_size - self.h2.queued_body_size())
        except _CODEC_ERRORS:
            return 0

    async def _drained(self, stream_id: int, call: Call) -> None:
        """Wait until the peer took this stream's messages: a slow proxy holds one message, not a backlog."""
        while self.transport is not None and (call.pending is not None or self.paused or self._queued(stream_id)):
            call.drained = asyncio.Event()
            await call.drained.wait()

    def _check_drained(self) -> None:
        for stream_id, call in list(self.calls.items()):
            if call.pending is not None:
                self._pump(stream_id, call)
            if call.drained is not None and call.pending is None and not self.paused and not self._queued(stream_id):
                call.drained.set()
                call.drained = None

    def _queued(self, stream_id: int) -> int:
        try:
            return self.h2.queued_body_size(stream_id)
        except _CODEC_ERRORS:
            return 0

    def _refuse(self, stream_id: int, code: StatusCode, message: str) -> None:
        """A trailers-only answer, then RST_STREAM(NO_ERROR) so the client stops sending (RFC 9113 §8.1)."""
        self._forget(stream_id)
        with contextlib.suppress(*_CODEC_ERRORS):
            self.h2.send_response(stream_id, RESPONSE + status_block(code, message), end_stream=True)
            self._flush()  # nghttp2 would drop the queued answer behind the reset
            self.h2.reset_stream(stream_id, 0)

    def _forget(self, stream_id: int) -> None:
        call = self.calls.pop(stream_id, None)
        if call is not None and call.task is not None and not call.task.done():
            call.task.cancel()

    # -- writing, keepalive, closing --------------------------------------------------------------------
    def _flush(self) -> None:
        self._write()
        self._check_drained()

    def _write(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        if self.secure:
            data = self.h2.data_to_send()
            if data:
                try:
                    self.tls.write(data)
                except ssl.SSLError as exc:
                    log.debug("TLS to %s failed: %s", self.peer, exc)
                    self._abort()
                    return
        out = self.outgoing.read()
        if out:
            self.transport.write(out)

    def _keepalive(self) -> None:
        limits = self.server.limits
        if self.transport is None:
            return
        idle = self.loop.time() - self.last_read
        if self.pinged or not self.secure:  # no ack, or no finished handshake since the last tick
            log.info("closing the connection from %s: no answer to keepalive", self.peer)
            self._abort()
            return
        if idle >= limits.keepalive_s:
            self.pinged = True
            with contextlib.suppress(*_CODEC_ERRORS):
                self.h2.ping(_KEEPALIVE_PING)
            self._flush()
            self.timer = self.loop.call_later(limits.ack_timeout_s, self._keepalive)
        else:
            self.timer = self.loop.call_later(limits.keepalive_s - idle, self._keepalive)

    def goaway(self) -> None:
        """Tell the client no new calls are taken here; the running ones may finish."""
        if self.secure:
            with contextlib.suppress(*_CODEC_ERRORS):
                self.h2.send_goaway(0)
            self._flush()

    def close(self) -> None:
        if self.transport is None:
            return
        if self.secure:
            with contextlib.suppress(*_CODEC_ERRORS):
                self.h2.terminate_connection(0)
            self._flush()
            with contextlib.suppress(ssl.SSLError):
                self.tls.unwrap()
            out = self.outgoing.read()
            if out and not self.transport.is_closing():
                self.transport.write(out)
        self.transport.close()

    def _abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
