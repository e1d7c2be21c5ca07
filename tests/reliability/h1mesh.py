"""Real proxies on all three port kinds in front of a recording backend, on a loop in a background thread.

    client → ingress-0 (plaintext)  ─┐
    client → webapp-0 outbound      ─┼─ mTLS → books-0 inbound → recording backend
    client → books-0 inbound (mTLS) ─┘

The control plane is bypassed: each runtime gets its certificate and a discovery snapshot through the
callbacks the control client calls, as in tests/integration/test_proxy_h1.py. The backend parses requests
strictly (CRLF only, one Content-Length or chunked, no obs-fold) and records every one it sees, or the raw
bytes of anything it cannot parse, and echoes what it saw in an `x-seen` header. Tests use plain
blocking sockets from the test thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import re
import socket
import ssl
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import uvloop

from meshctl.api import mesh_pb2
from meshctl.identity import workload_identity
from meshctl.proxy.config import parse_proxy_config
from meshctl.proxy.main import Proxy
from meshctl.proxy.runtime import build_runtime
from meshctl.proxy.tls import build_contexts
from tests.fakes.mesh_pki import MeshPki
from tests.ports import free_port

NS = "booksapp"
BOOKS_ID = workload_identity("books", NS)
WEB_ID = workload_identity("webapp", NS)
INGRESS_ID = workload_identity("ingress", NS)
AUTHORS_ID = workload_identity("authors", NS)
AUTHORITY = f"books.{NS}.svc.cluster.local:7000"
START_S = 10.0
_CHUNK_SIZE = re.compile(rb"^[0-9a-fA-F]{1,8}$")


@dataclass(frozen=True)
class Seen:
    """A request as the backend parsed it, or `method="UNPARSABLE"` with the raw bytes as body."""

    method: str
    target: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()

    def label(self) -> str:
        return f"{self.method} {self.target} {len(self.body)}"


class Unparsable(Exception):
    pass


class RecordingBackend:
    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self._lock = threading.Lock()

    def take(self) -> list[Seen]:
        with self._lock:
            seen, self.seen = self.seen, []
        return seen

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stream = _Buffered(reader)
        try:
            while True:
                try:
                    seen = await _parse_request(stream)
                except Unparsable as exc:
                    self._record(Seen("UNPARSABLE", str(exc), stream.data))
                    return
                if seen is None:
                    return
                self._record(seen)
                body = b"ok"
                writer.write(b"HTTP/1.1 200 OK\r\nx-seen: %s\r\ncontent-length: %d\r\n\r\n%s"
                             % (seen.label().encode("latin-1"), len(body), body))  # fmt: skip
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


class _Buffered:
    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader
        self.data = b""

    async def _more(self) -> None:
        more = await self.reader.read(65536)
        if not more:
            raise asyncio.IncompleteReadError(self.data, None)
        self.data += more

    async def until(self, separator: bytes) -> bytes:
        while separator not in self.data:
            await self._more()
        taken, self.data = self.data.split(separator, 1)
        return taken

    async def exactly(self, n: int) -> bytes:
        while len(self.data) < n:
            await self._more()
        taken, self.data = self.data[:n], self.data[n:]
        return taken


async def _parse_request(stream: _Buffered) -> Seen | None:
    """One request, strictly; None at a clean end of the connection."""
    try:
        head = await stream.until(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        if stream.data:
            raise Unparsable("connection closed inside a request head") from None
        return None
    lines = head.split(b"\r\n")
    if any(b"\n" in line or b"\r" in line or b"\0" in line for line in lines):
        raise Unparsable("bare CR/LF or NUL in the head")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or parts[2] != b"HTTP/1.1":
        raise Unparsable(f"request line {lines[0]!r}")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip() or line[:1] in b" \t":
            raise Unparsable(f"header line {line!r}")
        headers.append((name.decode("latin-1").lower(), value.strip().decode("latin-1")))
    values = {name: [v for n, v in headers if n == name] for name, _ in headers}
    body = b""
    if "transfer-encoding" in values:
        if values["transfer-encoding"] != ["chunked"] or "content-length" in values:
            raise Unparsable(f"framing {values['transfer-encoding']} with {values.get('content-length')}")
        while (size_line := await stream.until(b"\r\n")) != b"0":
            if not _CHUNK_SIZE.match(size_line):
                raise Unparsable(f"chunk size {size_line!r}")
            body += await stream.exactly(int(size_line, 16))
            if await stream.exactly(2) != b"\r\n":
                raise Unparsable("chunk data longer than its size")
        while await stream.until(b"\r\n"):
            pass  # trailer fields, up to the empty line
    elif "content-length" in values:
        if len(values["content-length"]) != 1 or not values["content-length"][0].isdigit():
            raise Unparsable(f"content-length {values['content-length']}")
        body = await stream.exactly(int(values["content-length"][0]))
    return Seen(parts[0].decode("latin-1"), parts[1].decode("latin-1"), body, tuple(headers))


@dataclass
class H1Mesh:
    pki: MeshPki = field(default_factory=MeshPki)
    backend: RecordingBackend = field(default_factory=RecordingBackend)
    ports: dict[str, int] = field(default_factory=dict)  # "ingress", "outbound", "inbound"
    loop: asyncio.AbstractEventLoop | None = None
    loop_errors: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _proxies: list[Proxy] = field(default_factory=list)
    _stop: asyncio.Event | None = None

    def client_tls(self, identity: str = WEB_ID) -> ssl.SSLContext:
        """A mesh client's TLS context, as another proxy would dial the inbound port."""
        return build_contexts(self.pki.issue(identity)).client_h1

    def connect(self, kind: str, *, identity: str = WEB_ID, timeout: float = 5.0) -> socket.socket:
        raw = socket.create_connection(("127.0.0.1", self.ports[kind]), timeout=timeout)
        if kind != "inbound":
            return raw
        return self.client_tls(identity).wrap_socket(raw, server_hostname=BOOKS_ID)

    async def _serve(self, started: Future[None]) -> None:
        app_port = free_port()
        self.ports = {"ingress": free_port(), "outbound": free_port(), "inbound": free_port()}
        app = await asyncio.start_server(self.backend.connection, "127.0.0.1", app_port)
        endpoint = mesh_pb2.Endpoint(address="127.0.0.1", port=self.ports["inbound"], identity=BOOKS_ID,
                                     pod="books-0", ready=True)  # fmt: skip
        service = mesh_pb2.Service(name="books", namespace=NS, port=7000, protocol="http", endpoints=[endpoint])
        # Discovery says the authors endpoint is authors, but books-0's inbound answers there.
        impostor = mesh_pb2.Endpoint(address="127.0.0.1", port=self.ports["inbound"], identity=AUTHORS_ID,
                                     pod="authors-0", ready=True)  # fmt: skip
        authors = mesh_pb2.Service(name="authors", namespace=NS, port=7001, protocol="http", endpoints=[impostor])
        rules = '{"rules":[{"paths":[{"pathPrefix":"/","service":"books"}]}]}'
        exposed = mesh_pb2.Resource(kind="MeshIngress", name="books", namespace=NS, spec_json=rules)
        snapshot = mesh_pb2.Snapshot(version=1, services=[service, authors], resources=[exposed])
        common: dict[str, Any] = {
            "namespace": NS, "control": {"address": "127.0.0.1:1", "identity": "unused"},
            "trust_anchors": "unused", "token_file": "unused",
        }  # fmt: skip
        docs = [
            {**common, "pod": "books-0", "identity": BOOKS_ID, "admin": {"listen": f"127.0.0.1:{free_port()}"},
             "inbound": {"listen": f"127.0.0.1:{self.ports['inbound']}", "app": f"127.0.0.1:{app_port}"}},
            {**common, "pod": "webapp-0", "identity": WEB_ID, "admin": {"listen": f"127.0.0.1:{free_port()}"},
             "outbound": {"listen": f"127.0.0.1:{self.ports['outbound']}"}},
            {**common, "pod": "ingress-0", "identity": INGRESS_ID, "admin": {"listen": f"127.0.0.1:{free_port()}"},
             "ingress": {"listen": f"127.0.0.1:{self.ports['ingress']}"}},
        ]  # fmt: skip
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            for doc in docs:
                config = parse_proxy_config(doc)
                runtime = build_runtime(config, clock=loop.time)
                runtime.on_certificate(self.pki.issue(config.identity))
                runtime.on_snapshot(snapshot)
                proxy = Proxy(config, runtime)
                await proxy.start_listeners()
                self._proxies.append(proxy)
        except BaseException as exc:
            started.set_exception(exc)
            raise
        started.set_result(None)
        await self._stop.wait()
        for proxy in self._proxies:
            await proxy.stop()
        app.close()

    @contextlib.contextmanager
    def running(self) -> Iterator[H1Mesh]:
        started: Future[None] = Future()
        thread = threading.Thread(target=lambda: uvloop.run(self._main(started)), daemon=True, name="h1mesh")
        thread.start()
        started.result(START_S)
        try:
            yield self
        finally:
            if self.loop is not None and self._stop is not None:
                self.loop.call_soon_threadsafe(self._stop.set)
            thread.join(15)

    async def _main(self, started: Future[None]) -> None:
        self.loop = loop = asyncio.get_running_loop()

        def record(_: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            with self._lock:
                self.loop_errors.append(f"{context.get('message')}: {context.get('exception')!r}")

        loop.set_exception_handler(record)  # a failure no request handler caught, e.g. in a dropped task
        await self._serve(started)

    def collect_garbage(self) -> None:
        assert self.loop is not None
        asyncio.run_coroutine_threadsafe(_collect(), self.loop).result(5)

    def take_loop_errors(self) -> list[str]:
        with self._lock:
            errors, self.loop_errors = self.loop_errors, []
        return errors


async def _collect() -> None:
    await asyncio.sleep(0.05)  # let the proxies finish with the connections just closed
    gc.collect()


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


def read_replies(sock: socket.socket, within_s: float = 5.0) -> tuple[list[Reply], bytes]:
    """Every response until the peer closes (bounded); the bytes that did not parse as a response."""
    sock.settimeout(within_s)
    data = b""
    with contextlib.suppress(TimeoutError, ConnectionError, ssl.SSLError):
        while chunk := sock.recv(65536):
            data += chunk
    replies: list[Reply] = []
    while b"\r\n\r\n" in data:
        head, rest = data.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers = {n.strip().lower(): v.strip() for n, _, v in (x.partition(":") for x in lines[1:])}
        length = int(headers.get("content-length", "0"))
        replies.append(Reply(int(lines[0].split(" ")[1]), headers, rest[:length]))
        data = rest[length:]
    return replies, data
