"""Protocol detection on accept: HTTP/2 or HTTP/1.1, then hand the connection to that path.

TLS connections (inbound) decide by ALPN at once; plaintext ones (outbound, ingress) by the first
bytes: the HTTP/2 client preface starts "PRI * HTTP/2.0". The chosen protocol takes the transport with
set_protocol and gets the bytes read so far replayed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import cast

from meshctl.proxy.h1.downstream import Downstream, Listener
from meshctl.proxy.tls import peer_identity

log = logging.getLogger("meshctl.proxy.detect")

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DETECT_S = 10.0  # a client that sends nothing decisive for this long is closed


def _h2_protocol(listener: Listener, tls: bool, identity: str | None) -> asyncio.Protocol | None:
    try:
        from meshctl.proxy.h2.server import make_h2_protocol
    except ImportError as exc:  # the HTTP/2 path failed to load: refuse h2, keep serving HTTP/1.1
        log.error("HTTP/2 is unavailable: %s", exc)
        return None
    return make_h2_protocol(listener.runtime, listener.direction, tls, identity)


class Detect(asyncio.Protocol):
    def __init__(self, listener: Listener, tls: bool) -> None:
        self.listener = listener
        self.tls = tls
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.identity: str | None = None
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.listener.live.add(self)
        if self.listener.draining:
            self.abort("shutting down")
            return
        if self.tls:
            ssl_object = transport.get_extra_info("ssl_object")
            self.identity = peer_identity(ssl_object)
            alpn = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
            self._switch(alpn == "h2")
            return
        self.timer = self.listener.loop.call_later(DETECT_S, self._timeout)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        n = min(len(self.buffer), len(PREFACE))
        if self.buffer[:n] != PREFACE[:n]:
            self._switch(False)
        elif n == len(PREFACE):
            self._switch(True)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.listener.live.discard(self)
        if self.timer is not None:
            self.timer.cancel()

    def drain(self) -> None:
        self.abort("shutting down")

    def abort(self, reason: str) -> None:
        """Nothing was asked yet: closing loses nothing."""
        self.listener.live.discard(self)
        if self.transport is not None:
            self.transport.close()

    def _timeout(self) -> None:
        self.timer = None
        if self.transport is not None:
            self.transport.close()

    def _switch(self, h2: bool) -> None:
        transport = self.transport
        assert transport is not None
        self.listener.live.discard(self)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        protocol: asyncio.Protocol | None
        if h2:
            protocol = _h2_protocol(self.listener, self.tls, self.identity)
            if protocol is None:
                log.warning("closing an HTTP/2 connection: HTTP/2 is unavailable")
                transport.close()
                return
        else:
            protocol = Downstream(self.listener, self.tls, self.identity)
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if self.buffer:
            data, self.buffer = self.buffer, b""
            protocol.data_received(data)


def detect_factory(listener: Listener, tls: bool) -> Detect:
    return Detect(listener, tls)
