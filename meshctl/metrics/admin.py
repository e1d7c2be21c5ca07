"""The admin HTTP/1.1 server: an asyncio.Protocol driven by httptools callbacks.

Requests are answered synchronously from the parser callbacks (the routes only read in-memory state),
so there is no task per request. The server is built to face careless and hostile clients alike:
malformed requests get 400, heads over 16 KiB 431, bodies over 4 KiB 413, a request must arrive
within 10 s of its first byte and a connection that sends nothing (before its first request or between
two) lives 2 s; a client that stops reading stops being read and is cut off at the deadline.

Connections are limited per peer address, so one client holding idle sockets cannot starve the kubelet,
Prometheus or the control plane's readiness probe: a peer gets at most 8, and when the server is full a
newcomer takes the place of the longest idle connection of the peer that holds the most.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import weakref
from dataclasses import dataclass
from http import HTTPStatus
from typing import cast

import httptools

from meshctl.errors import ConflictError, MeshError
from meshctl.metrics.adminapp import AdminApp, AdminRequest, AdminResponse, MetricsSource, is_loopback

__all__ = [
    "AdminApp",
    "AdminLimits",
    "AdminRequest",
    "AdminResponse",
    "MetricsSource",
    "is_loopback",
    "listen_address",
    "start_admin_server",
    "stop_admin_server",
]

log = logging.getLogger(__name__)

_SLICE = 512  # bytes fed to the parser at a time; the precision of the head limit


@dataclass(frozen=True)
class AdminLimits:
    max_head_bytes: int = 16 * 1024
    max_body_bytes: int = 4 * 1024
    deadline_s: float = 10.0  # per request from its first byte
    idle_s: float = 2.0  # a connection with no request in progress (capped by deadline_s)
    max_connections: int = 128
    max_per_peer: int = 8  # connections from one address; the rest of the room stays for others


class _ServerState:
    def __init__(self, app: AdminApp, limits: AdminLimits) -> None:
        self.app = app
        self.limits = limits
        self.connections: set[_AdminConnection] = set()
        self.per_peer: dict[str | None, int] = {}
        self.stopping = False

    def admit(self, connection: _AdminConnection) -> str | None:
        """Register a new connection, or say why it is refused."""
        peer = connection.peer_host
        if self.stopping:
            return "the admin endpoint is stopping"
        if self.per_peer.get(peer, 0) >= self.limits.max_per_peer:
            return f"too many admin connections from {peer}"
        if len(self.connections) >= self.limits.max_connections:
            victim = self._idle_of_busiest_peer(peer)
            if victim is None:
                return "too many admin connections"
            victim.close_if_idle()
        self.connections.add(connection)
        self.per_peer[peer] = self.per_peer.get(peer, 0) + 1
        return None

    def release(self, connection: _AdminConnection) -> None:
        if connection in self.connections:
            self.connections.discard(connection)
            left = self.per_peer.get(connection.peer_host, 1) - 1
            if left > 0:
                self.per_peer[connection.peer_host] = left
            else:
                self.per_peer.pop(connection.peer_host, None)

    def _idle_of_busiest_peer(self, newcomer: str | None) -> _AdminConnection | None:
        busiest = max(self.per_peer, key=lambda peer: self.per_peer[peer], default=None)
        if busiest is None or busiest == newcomer:
            return None
        idle = [c for c in self.connections if c.peer_host == busiest and c.idle]
        return min(idle, key=lambda c: c.idle_since, default=None)  # the one idle the longest


_STATES: weakref.WeakKeyDictionary[asyncio.AbstractServer, _ServerState] = weakref.WeakKeyDictionary()


async def start_admin_server(
    host: str, port: int, app: AdminApp, *, limits: AdminLimits | None = None
) -> asyncio.AbstractServer:
    """Listen on host:port (port 0 picks a free one; see server.sockets) and serve `app`."""
    state = _ServerState(app, limits or AdminLimits())
    loop = asyncio.get_running_loop()
    try:
        server = await loop.create_server(lambda: _AdminConnection(state), host, port, reuse_address=True)
    except OSError as error:
        where = f"{host}:{port}"
        if error.errno == errno.EADDRINUSE:
            raise ConflictError(
                f"the admin endpoint cannot listen on {where}: the address is in use",
                hint="stop the process that holds the port, or configure another admin address",
            ) from error
        raise MeshError(
            f"the admin endpoint cannot listen on {where}: {error.strerror or error}",
            hint="check that the address belongs to this machine (loopback aliases included)",
        ) from error
    _STATES[server] = state
    return server


def listen_address(server: asyncio.AbstractServer) -> tuple[str, int]:
    """The address the server listens on; with port 0 this is where to find the chosen port."""
    sockets = getattr(server, "sockets", ())  # asyncio.Server and uvloop's Server both have it
    if not sockets:
        raise ValueError("the server is not listening")
    host, port = sockets[0].getsockname()[:2]
    return str(host), int(port)


async def stop_admin_server(server: asyncio.AbstractServer, grace_s: float = 1.0) -> None:
    """Stop listening, close idle connections, let busy ones finish for `grace_s`, then cut them."""
    server.close()
    state = _STATES.pop(server, None)
    if state is not None:
        state.stopping = True
        for connection in list(state.connections):
            connection.close_if_idle()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        while state.connections and loop.time() < deadline:
            await asyncio.sleep(0.01)
        for connection in list(state.connections):
            connection.abort()
    await server.wait_closed()


class _AdminConnection(asyncio.Protocol):
    """One client connection; httptools calls the on_* methods while data_received feeds it."""

    def __init__(self, state: _ServerState) -> None:
        self._state = state
        self._limits = state.limits
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self.peer_host: str | None = None
        self.idle_since = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._closing = False
        self._in_request = False
        self._reject: tuple[int, str] | None = None
        self._reset_request()

    def _reset_request(self) -> None:
        self._url = bytearray()
        self._head_bytes = 0
        self._in_head = False
        self._expect_continue = False
        self._body = bytearray()

    # -- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer_host = peer[0] if isinstance(peer, tuple) and peer else None
        refusal = self._state.admit(self)
        if refusal is not None:
            self._fail(503, refusal)
            return
        self._arm(idle=True)

    @property
    def idle(self) -> bool:
        return not self._in_request and not self._closing

    def connection_lost(self, exc: Exception | None) -> None:
        self._state.release(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._transport = None
        self._closing = True

    def data_received(self, data: bytes) -> None:
        # httptools buffers an unfinished header line internally and reports a header only once it is
        # complete, so the head is measured here: data goes in slices and every slice fed while a
        # head is being read counts. The limit holds to within one slice.
        for start in range(0, len(data), _SLICE):
            if self._closing:
                return
            piece = data[start : start + _SLICE]
            try:
                self._parser.feed_data(piece)
            except httptools.HttpParserUpgrade:
                # The request was answered with `Connection: close`; no other protocol is spoken here.
                if self._reject is None:
                    self._close()
                    return
            except httptools.HttpParserError as error:
                if self._reject is None:
                    self._reject = (400, f"malformed request: {error}")
            if self._in_head and self._reject is None:
                self._head_bytes += len(piece)
                if self._head_bytes > self._limits.max_head_bytes:
                    self._reject = (431, f"request head over {self._limits.max_head_bytes} bytes")
            if self._reject is not None:
                self._fail(*self._reject)
                return

    def pause_writing(self) -> None:
        # The client is not reading its responses: stop reading its requests until it does.
        if self._transport is not None and not self._transport.is_closing():
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()

    # -- httptools callbacks ---------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._reset_request()
        self._in_request = True
        self._in_head = True
        self._arm()

    def on_url(self, url: bytes) -> None:
        if len(self._url) <= self._limits.max_head_bytes:
            self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"content-length":
            # Refuse a declared oversized body before reading it.
            length = value.strip()
            if length.isdigit() and int(length) > self._limits.max_body_bytes and self._reject is None:
                self._reject = (413, f"request body over {self._limits.max_body_bytes} bytes")
        elif name == b"expect":
            self._expect_continue = value.strip().lower() == b"100-continue"

    def on_headers_complete(self) -> None:
        self._in_head = False
        if self._reject is None and self._expect_continue and self._transport is not None:
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        if self._reject is not None:
            return
        if len(self._body) + len(body) > self._limits.max_body_bytes:
            self._reject = (413, f"request body over {self._limits.max_body_bytes} bytes")
            return
        self._body += body

    def on_message_complete(self) -> None:
        if self._reject is not None or self._closing or self._transport is None:
            return
        parser = self._parser
        method = parser.get_method().decode("ascii")
        keep_alive = parser.should_keep_alive() and not parser.should_upgrade() and not self._state.stopping
        request = AdminRequest(method, self._url.decode("latin-1"), bytes(self._body), self.peer_host)
        response = self._state.app.handle(request)
        self._write(
            response, keep_alive, head_only=method == "HEAD", http10=parser.get_http_version() == "1.0"
        )
        self._in_request = False
        if keep_alive:
            self._arm(idle=True)
        else:
            self._close()

    # -- helpers ---------------------------------------------------------------------------------

    def _write(self, response: AdminResponse, keep_alive: bool, *, head_only: bool, http10: bool) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        status = response.status
        lines = [f"HTTP/1.1 {status} {_reason(status)}"]
        has_body = status >= 200 and status not in (204, 304)
        if has_body:
            lines.append(f"Content-Type: {response.content_type}")
            lines.append(f"Content-Length: {len(response.body)}")
        lines.extend(f"{name}: {value}" for name, value in response.headers)
        if not keep_alive:
            lines.append("Connection: close")
        elif http10:
            lines.append("Connection: keep-alive")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        transport.write(head + response.body if has_body and not head_only else head)

    def _fail(self, status: int, reason: str) -> None:
        """Answer a request that cannot be served and close the connection."""
        log.debug("admin: %s from %s: %s", status, self.peer_host, reason)
        self._write(AdminResponse(status, reason.encode() + b"\n"), False, head_only=False, http10=False)
        self._close()

    def _close(self) -> None:
        self._closing = True
        if self._transport is not None:
            self._transport.close()
            self._arm()  # a peer that never reads what is left gets cut off at the deadline

    def _arm(self, *, idle: bool = False) -> None:
        if self._timer is not None:
            self._timer.cancel()
        limits, loop = self._limits, asyncio.get_running_loop()
        if idle:
            self.idle_since = loop.time()
        delay = min(limits.idle_s, limits.deadline_s) if idle else limits.deadline_s
        self._timer = loop.call_later(delay, self._on_deadline)

    def _on_deadline(self) -> None:
        self._timer = None
        transport = self._transport
        if transport is None:
            return
        if self._closing or transport.get_write_buffer_size() > 0:
            transport.abort()
        elif self._in_request:
            self._fail(408, f"request not received within {self._limits.deadline_s:g} s")
        else:
            transport.close()  # idle keep-alive connection

    def close_if_idle(self) -> None:
        if not self._in_request and self._transport is not None:
            self._close()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"
