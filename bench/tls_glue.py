"""What Python does per exchange on our mTLS hop, counted rather than timed.

    python -m bench.tls_glue                       # Python calls per exchange, each SSL object / protocol kind
    python -m bench.tls_glue --callgrind           # + instructions per exchange under valgrind (slow)

One process, one uvloop loop, two endpoints on loopback with the mesh's kind of TLS (contexts from
meshctl.proxy.tls, leaves from the bench mesh's CA via bench.sidecar.issue: TLS 1.3, client certificate
required and verified both ways, identity checked as server_hostname). The client sends 1 KiB, the server
answers 1 KiB on the same connection, the client sends the next: one exchange. Counted per exchange:

* Python frames entered and C functions called from Python (sys.setprofile), by function, so the frames
  of ssl.py's SSLObject wrappers show beside the protocols' own;
* with --callgrind, instructions: the whole process under `valgrind --tool=callgrind` at two exchange
  counts, the difference divided by the difference of counts (start-up, handshake and imports cancel).

Counts and instructions do not move with the machine's load, so before/after figures compare; no
wall-clock figure is printed on purpose (the benchmark job measures time on pinned cores).

Measured 2026-11-29 (CPython 3.11.7, uvloop 0.23.0, OpenSSL 3.0): per exchange, both ends together,
ssl.SSLObject 8 Python frames (6 of them SSLObject.read/write/pending) and 73.9k instructions;
DirectSSLObject 2 frames (the two protocols' data_received) and 70.5k (-4.6 %). Of those 70.5k, about
37k are libcrypto + libssl, 13k libpython, 11k libc (malloc, memcpy), 5k uvloop. Without the proxies'
malloc settings each TLS read also cost an mmap, mremap and munmap (strace), so this runs with them.
Buffered protocols (read(n, buffer) into one reused buffer) cost more, 71.9k: the get_buffer frame and
the memoryview per read outweigh the bytes object they save, so the copied path stays.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import ssl
import sys
import tempfile
from collections import Counter
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any, cast

from bench.callgrind import instructions as process_instructions

SIZE = 1024
REQUEST = b"q" * SIZE
RESPONSE = b"r" * SIZE
CLIENT_IDENTITY = "glue-client.bench.tls"
SERVER_IDENTITY = "glue-server.bench.tls"
# ssl.SSLObject as shipped; meshctl.proxy.tls's object with C methods bound; the same with buffered protocols
# (uvloop then reads records with read(n, buffer) into the protocol's reused buffer, not a new bytes each).
KINDS = ("stdlib", "direct", "buffered")


class Server(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.got = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.got += len(data)
        if self.got >= SIZE and self.transport is not None:
            self.got -= SIZE
            self.transport.write(RESPONSE)


class Client(asyncio.Protocol):
    def __init__(self, exchanges: int, done: asyncio.Future[None]) -> None:
        self.transport: asyncio.Transport | None = None
        self.left = exchanges
        self.done = done
        self.got = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def start(self) -> None:
        assert self.transport is not None
        self.transport.write(REQUEST)

    def data_received(self, data: bytes) -> None:
        self.got += len(data)
        if self.got < SIZE or self.transport is None:
            return
        self.got -= SIZE
        self.left -= 1
        if self.left > 0:
            self.transport.write(REQUEST)
        elif not self.done.done():
            self.done.set_result(None)


class BufferedServer(asyncio.BufferedProtocol):
    """Server's twin on uvloop's other read path (it takes it only for non-asyncio.Protocol instances)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.got = 0
        self.buffer = memoryview(bytearray(64 * 1024))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.got += nbytes
        if self.got >= SIZE and self.transport is not None:
            self.got -= SIZE
            self.transport.write(RESPONSE)


class BufferedClient(asyncio.BufferedProtocol):
    def __init__(self, exchanges: int, done: asyncio.Future[None]) -> None:
        self.transport: asyncio.Transport | None = None
        self.left = exchanges
        self.done = done
        self.got = 0
        self.buffer = memoryview(bytearray(64 * 1024))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def start(self) -> None:
        assert self.transport is not None
        self.transport.write(REQUEST)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.got += nbytes
        if self.got < SIZE or self.transport is None:
            return
        self.got -= SIZE
        self.left -= 1
        if self.left > 0:
            self.transport.write(REQUEST)
        elif not self.done.done():
            self.done.set_result(None)


class CallCounter:
    """Python frames ('call') and C calls made from Python ('c_call') while active, by function."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.c_calls: Counter[str] = Counter()

    def _hook(self, frame: FrameType, event: str, arg: Any) -> None:
        if event == "call":
            code = frame.f_code
            self.calls[f"{Path(code.co_filename).name}:{code.co_qualname}"] += 1
        elif event == "c_call":
            self.c_calls[getattr(arg, "__qualname__", repr(arg))] += 1

    def __enter__(self) -> CallCounter:
        sys.setprofile(self._hook)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.setprofile(None)


def write_material(out: Path) -> Path:
    """Leaves for both ends from a fresh bench CA, as JSON the measuring process loads (no key generation
    there, so the instruction difference between two runs is the exchanges')."""
    from bench.sidecar import issue
    from meshctl.control.ca import ensure_identity_material

    ensure_identity_material(out / "ca")
    material = {}
    for identity in (CLIENT_IDENTITY, SERVER_IDENTITY):
        cert = issue(out / "ca", identity)
        material[identity] = {
            "key_pem": cert.key_pem.decode(), "chain_pem": cert.cert_chain_pem.decode(),
            "anchors_pem": cert.trust_anchors_pem.decode(), "not_after": cert.not_after.isoformat(),
        }  # fmt: skip
    path = out / "material.json"
    path.write_text(json.dumps(material))
    return path


def contexts(material: Path, kind: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    from meshctl.proxy.control_client import IssuedCertificate
    from meshctl.proxy.tls import build_contexts

    data = json.loads(material.read_text())
    built = {}
    for identity, m in data.items():
        cert = IssuedCertificate(
            key_pem=m["key_pem"].encode(), cert_chain_pem=m["chain_pem"].encode(),
            trust_anchors_pem=m["anchors_pem"].encode(), identity=identity,
            not_after=datetime.fromisoformat(m["not_after"]),
        )  # fmt: skip
        built[identity] = build_contexts(cert)
    server, client = built[SERVER_IDENTITY].server, built[CLIENT_IDENTITY].client_h1
    if kind == "stdlib":
        server.sslobject_class = client.sslobject_class = ssl.SSLObject
    return server, client


async def exchange(material: Path, kind: str, warmup: int, exchanges: int, count: bool) -> tuple[CallCounter, str]:
    """Warm-up exchanges, then `exchanges` more (counted when `count`); the counter and the SSL object's class."""
    loop = asyncio.get_running_loop()
    server_ctx, client_ctx = contexts(material, kind)
    server_class, client_class = (BufferedServer, BufferedClient) if kind == "buffered" else (Server, Client)
    server = await loop.create_server(server_class, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    done: asyncio.Future[None] = loop.create_future()
    _, client = await loop.create_connection(
        lambda: client_class(warmup, done), "127.0.0.1", port, ssl=client_ctx, server_hostname=SERVER_IDENTITY
    )
    object_class = type(client.transport.get_extra_info("ssl_object")).__name__ if client.transport else "?"
    counted = CallCounter()
    for n, hook in ((warmup, False), (exchanges, count)):
        if n <= 0:
            continue
        client.done = done = loop.create_future()
        client.left = n
        with counted if hook else contextlib.nullcontext():
            client.start()
            await done
    if client.transport is not None:
        client.transport.close()
    server.close()
    await server.wait_closed()
    return counted, object_class


def run_counts(material: Path, exchanges: int, top: int) -> None:
    import uvloop

    for kind in KINDS:
        counted, object_class = uvloop.run(exchange(material, kind, 50, exchanges, count=True))
        frames, c_calls = sum(counted.calls.values()) / exchanges, sum(counted.c_calls.values()) / exchanges
        print(f"{kind} ({object_class}): {frames:.2f} Python frames, {c_calls:.2f} C calls from Python per exchange")
        for name, n in counted.calls.most_common(top):
            print(f"    {n / exchanges:6.2f}  {name}")


def instructions(material: Path, kind: str, exchanges: int, out: Path) -> int:
    """Instructions of one whole measuring process under callgrind."""
    args = ["--child", str(material), "--kind", kind, "--exchanges", str(exchanges)]
    return process_instructions("bench.tls_glue", args, timeout_s=900, out_file=str(out / "callgrind.out"))


def run_callgrind(material: Path, low: int, high: int, out: Path) -> None:
    for kind in KINDS:
        a = instructions(material, kind, low, out)
        b = instructions(material, kind, high, out)
        print(f"{kind}: {(b - a) / (high - low):,.0f} instructions per exchange (callgrind, {low} vs {high} exchanges)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tls_glue", description=__doc__.split("\n\n")[0])
    parser.add_argument("--exchanges", type=int, default=2000, help="exchanges counted (default 2000)")
    parser.add_argument("--top", type=int, default=12, help="functions listed per kind (default 12)")
    parser.add_argument("--callgrind", action="store_true", help="also count instructions under valgrind")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--kind", choices=KINDS, default="direct", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    from meshctl.proxy.allocator import tune_allocator

    tune_allocator()  # as the proxies run: TLS reads' 256 KiB buffers come from the heap, not mmap
    if args.child is not None:  # one measured process under callgrind: warm-up, then the exchanges, no hooks
        import uvloop

        uvloop.run(exchange(args.child, args.kind, 20, args.exchanges, count=False))
        return 0
    if args.callgrind and shutil.which("valgrind") is None:
        print("bench.tls_glue: valgrind not found (install it, or run without --callgrind)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="tls-glue-") as tmp:
        material = write_material(Path(tmp))
        run_counts(material, args.exchanges, args.top)
        if args.callgrind:
            run_callgrind(material, 100, 600, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
