"""The language floor: the least an HTTP/1.1 pass-through in Python can do, as a benchmark arm.

    python -m bench.floor --listen 127.0.0.1:8081 --upstream 127.0.0.1:8080
    python -m bench.floor --listen ... --upstream ... --tls-client cert,key,ca --server-name IDENTITY
    python -m bench.floor --listen ... --upstream ... --tls-server cert,key,ca

**THIS IS A MEASURING STICK, NOT A PROXY.** It checks no header, has no smuggling defence, no routing,
no timeouts, no metrics, no limits; it trusts both peers completely. Never put it in front of anything.
It exists so that the benchmark can say what Python itself (uvloop + httptools) costs per request on the
same machine in the same run, and so how much of our proxy's cost is the language and how much is ours.

What it does, and nothing more: one upstream connection per downstream connection (dialled when the
client connects, over TLS when asked: TLS 1.3, client certificate required and verified, the peer's
identity checked as server_hostname, as our mTLS hop does); every byte read on one side is written
unchanged to the other; httptools is fed both directions only to find where messages end (the
minimum an HTTP-aware proxy must know: whether the connection is between messages), so a client that
closes with responses still owed gets them before the upstream is closed. Content-Length, chunked and
read-until-close responses, keep-alive and pipelining pass through as bytes. Not followed: HEAD
responses (the response parser would wait for a body that never comes; the bytes still pass), upgrades
and CONNECT. A parse error closes both connections, as any proxy would.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import ssl
import sys
from typing import Any, cast

import httptools


class _Ends:
    """Counts complete messages of one direction (httptools calls on_message_complete)."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = 0

    def on_message_complete(self) -> None:
        self.done += 1


class _Half(asyncio.Protocol):
    """One side of the pair: forwards what it reads to `peer` and pauses it when its own writes back up."""

    peer: _Half | None = None
    transport: asyncio.Transport | None = None

    def __init__(self, parser: Any, ends: _Ends) -> None:
        self.parser = parser
        self.ends = ends
        self.paused = False  # our transport's reading, paused because the peer cannot write

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.close_both()
            return
        self.forward(data)

    def forward(self, data: bytes) -> None:
        peer = self.peer
        if peer is not None and peer.transport is not None and not peer.transport.is_closing():
            peer.transport.write(data)

    def pause_writing(self) -> None:
        # Our transport's buffer is full: stop reading from the side that fills it.
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()
            self.peer.paused = True

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None and self.peer.paused:
            self.peer.paused = False
            self.peer.transport.resume_reading()

    def close_both(self) -> None:
        for half in (self, self.peer):
            if half is not None and half.transport is not None:
                half.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()  # flushes what is buffered, then closes


class Upstream(_Half):
    def __init__(self, downstream: Downstream) -> None:
        super().__init__(None, _Ends())
        self.parser = httptools.HttpResponseParser(self.ends)
        self.peer = downstream

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        down = self.peer
        if isinstance(down, Downstream) and down.eof and self.ends.done >= down.ends.done:
            self.close_both()  # the client has gone and has every response it asked for

    def eof_received(self) -> bool | None:
        return None  # read-until-close bodies end here: close, and connection_lost closes the client


class Downstream(_Half):
    """A client connection; dials its own upstream connection as soon as it is accepted."""

    def __init__(self, upstream: tuple[str, int], tls: ssl.SSLContext | None, server_name: str | None) -> None:
        super().__init__(None, _Ends())
        self.parser = httptools.HttpRequestParser(self.ends)
        self.upstream = upstream
        self.tls = tls
        self.server_name = server_name
        self.early: list[bytes] = []  # bytes read before the upstream connection is up
        self.eof = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        asyncio.get_running_loop().create_task(self.dial())

    async def dial(self) -> None:
        loop = asyncio.get_running_loop()
        host, port = self.upstream
        try:
            _, up = await loop.create_connection(
                lambda: Upstream(self), host, port, ssl=self.tls, server_hostname=self.server_name if self.tls else None
            )
        except (OSError, ssl.SSLError) as exc:
            print(f"bench.floor: cannot reach {host}:{port}: {exc}", file=sys.stderr)
            if self.transport is not None:
                self.transport.close()
            return
        self.peer = up
        if self.transport is None or self.transport.is_closing():
            up.close_both()
            return
        for data in self.early:
            self.forward(data)
        self.early.clear()
        if self.eof and up.ends.done >= self.ends.done:
            self.close_both()

    def forward(self, data: bytes) -> None:
        if self.peer is None:
            self.early.append(data)
        else:
            super().forward(data)

    def eof_received(self) -> bool | None:
        # The client will send no more; keep its side open until every response it is owed has passed.
        self.eof = True
        up = self.peer
        if up is not None and up.ends.done >= self.ends.done:
            self.close_both()
            return None
        return True


def _tls(arg: str, purpose: ssl.Purpose) -> ssl.SSLContext:
    cert, key, ca = arg.split(",")
    side = ssl.PROTOCOL_TLS_SERVER if purpose is ssl.Purpose.CLIENT_AUTH else ssl.PROTOCOL_TLS_CLIENT
    ctx = ssl.SSLContext(side)
    # The same settings as our proxies' mTLS hop (meshctl/proxy/tls.py), so both arms pay for the same TLS;
    # its SSL object class too (C read/write/pending without a Python frame each), so the floor stays a floor.
    from meshctl.proxy.tls import DirectSSLObject

    ctx.sslobject_class = DirectSSLObject
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cafile=ca)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


async def serve(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    server_tls = _tls(args.tls_server, ssl.Purpose.CLIENT_AUTH) if args.tls_server else None
    client_tls = _tls(args.tls_client, ssl.Purpose.SERVER_AUTH) if args.tls_client else None
    host, port = args.listen
    server = await loop.create_server(
        lambda: Downstream(args.upstream, client_tls, args.server_name), host, port, ssl=server_tls, backlog=1024
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.floor",
        description=__doc__.split("\n\n")[0] + " A measuring stick, not a proxy: never put it in front of anything.",
    )
    parser.add_argument("--listen", type=_address, required=True, help="HOST:PORT to accept clients on")
    parser.add_argument("--upstream", type=_address, required=True, help="HOST:PORT to forward to")
    parser.add_argument("--tls-server", metavar="CERT,KEY,CA", help="accept clients over mutual TLS")
    parser.add_argument("--tls-client", metavar="CERT,KEY,CA", help="dial the upstream over mutual TLS")
    parser.add_argument("--server-name", help="identity the upstream's certificate must carry (with --tls-client)")
    args = parser.parse_args(argv)
    if args.tls_client and not args.server_name:
        parser.error("--tls-client needs --server-name (the upstream's identity, checked as with our proxies)")
    for flag in ("tls_server", "tls_client"):
        value = getattr(args, flag)
        if value and len(value.split(",")) != 3:
            parser.error(f"--{flag.replace('_', '-')} takes CERT,KEY,CA (three paths, comma-separated)")
    import uvloop

    if args.tls_server or args.tls_client:
        # uvloop reads each TLS record into a fresh 256 KiB bytes object: without the proxies' malloc
        # settings that is an mmap, mremap and munmap per read, which the proxies do not pay.
        from meshctl.proxy.allocator import tune_allocator

        tune_allocator()
    try:
        uvloop.run(serve(args))
    except (OSError, ssl.SSLError) as exc:
        print(f"bench.floor: {exc} (check --listen is free and the TLS files are readable)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
