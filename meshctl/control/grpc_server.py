"""The control plane's gRPC server: TLS and HTTP/2 on one asyncio Protocol per connection, no grpcio.

A connected proxy costs what it holds: an SSLObject over two memory BIOs, one nghttp2 session (ngh2,
sans-IO) and its Watch task. Bytes are read into one 4 KiB buffer shared by every connection (a
BufferedProtocol, so no per-read allocation), because asyncio's own SSL transport keeps a 256 KiB read
buffer per connection and grpcio's C core kept 41 KiB; measured in bench/README.md ("Deltas and memory").
`python -m bench.control_scale --sizes 100`: 47.6 KiB RSS per connected proxy here, 89.4 with grpcio.

Each connection and its calls: grpc_connection.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from meshctl.control.allocator import trim
from meshctl.control.grpc_connection import Connection
from meshctl.control.rpc import Method
from meshctl.errors import ConflictError, MeshError

TRIM_AFTER_S = 0.5  # quiet time after the last handshake before freed memory is returned


@dataclass(frozen=True, slots=True)
class ServerLimits:
    keepalive_s: float = 20.0
    ack_timeout_s: float = 10.0
    max_concurrent_streams: int = 100
    max_header_list_size: int = 16 * 1024


class GrpcServer:
    def __init__(
        self,
        methods: Mapping[bytes, Method],
        tls: Callable[[], ssl.SSLContext],
        limits: ServerLimits | None = None,
    ) -> None:
        self.methods = methods
        self.tls = tls  # called per connection: a renewed certificate reaches the next handshake
        self.limits = limits or ServerLimits()
        self.connections: set[Connection] = set()
        self._server: asyncio.AbstractServer | None = None
        self._trim: asyncio.TimerHandle | None = None

    def handshaken(self) -> None:
        """A handshake freed its buffers (OpenSSL's 16 KiB record buffers among them) between the
        connection's lasting allocations; once a burst of handshakes is over, the free pages go back
        to the OS. Measured at 100 proxies: 53 -> 49 KiB RSS per connected proxy."""
        if self._trim is not None:
            self._trim.cancel()
        self._trim = asyncio.get_running_loop().call_later(TRIM_AFTER_S, trim)

    async def start(self, host: str, port: int) -> int:
        """Listen on host:port (0: any free port); returns the bound port. An address in use is refused."""
        loop = asyncio.get_running_loop()
        try:
            # SO_REUSEADDR only lets a restart bind over TIME_WAIT; without SO_REUSEPORT a second live
            # control plane on the same address fails here.
            self._server = await loop.create_server(lambda: Connection(self), host, port, reuse_address=True)
        except OSError as exc:
            where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            if exc.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL):
                raise ConflictError(
                    f"cannot listen on {where}: address in use or not available",
                    hint="is another control plane running? (`meshctl down` stops the local mesh)",
                ) from None
            raise MeshError(f"cannot listen on {where}: {exc.strerror or exc}") from None
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self, grace: float) -> None:
        """Stop listening, announce GOAWAY, let running calls end within `grace`, then close every connection."""
        if self._server is not None:
            self._server.close()
        if self._trim is not None:
            self._trim.cancel()
        for connection in list(self.connections):
            connection.goaway()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while loop.time() < deadline and any(c.calls for c in self.connections):
            await asyncio.sleep(0.05)
        for connection in list(self.connections):
            connection.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
