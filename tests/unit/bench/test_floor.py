"""bench.floor in a real process on loopback, in front of a tiny asyncio HTTP/1.1 origin: every byte passes
unchanged both ways, one upstream connection per client connection, and messages end where they should."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.procs import free_port

REPO = Path(__file__).resolve().parents[3]
BODY = b"x" * 1024
CL = b"HTTP/1.1 200 OK\r\nContent-Length: 1024\r\nContent-Type: text/plain\r\n\r\n" + BODY
CHUNKED = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5\r\nhello\r\n1f4\r\n" + b"y" * 500 + b"\r\n0\r\nX-Trailer: t\r\n\r\n")  # fmt: skip
UNTIL_CLOSE = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"z" * 3000
RESPONSES = {b"/cl": CL, b"/chunked": CHUNKED, b"/close": UNTIL_CLOSE}


def request(path: bytes, extra: bytes = b"") -> bytes:
    return b"GET " + path + b" HTTP/1.1\r\nHost: origin\r\nX-Odd:  spaces kept \r\n" + extra + b"\r\n"


class Origin:
    """Answers each request head with RESPONSES[path]; records every connection's request bytes."""

    def __init__(self) -> None:
        self.connections: list[bytearray] = []
        self.handlers: list[asyncio.Task[None]] = []

    def used(self) -> list[bytes]:
        # The readiness probe's connection made the floor dial one upstream connection that carried nothing.
        return [bytes(c) for c in self.connections if c]

    async def finished(self) -> None:
        if self.handlers:
            await asyncio.wait(self.handlers, timeout=10)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen = bytearray()
        self.connections.append(seen)
        task = asyncio.current_task()
        assert task is not None
        self.handlers.append(task)
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                seen += head
                response = RESPONSES[head.split(b" ", 2)[1]]
                writer.write(response)
                await writer.drain()
                if response is UNTIL_CLOSE:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()


@contextlib.contextmanager
def floor(upstream_port: int, *flags: str) -> Iterator[int]:
    port = free_port()
    argv = [sys.executable, "-m", "bench.floor", "--listen", f"127.0.0.1:{port}", "--upstream",
            f"127.0.0.1:{upstream_port}", *flags]  # fmt: skip
    proc = subprocess.Popen(argv, cwd=REPO, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
            assert time.monotonic() < deadline, "bench.floor did not listen within 20 s"
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stderr:
            proc.stderr.close()


async def scenario(steps: list[tuple[bytes, bytes]], *, half_close: bool = False) -> tuple[list[bytes], Origin]:
    """Runs the floor; for each step writes its bytes and reads exactly the expected reply; then reads to EOF."""
    origin = Origin()
    server = await asyncio.start_server(origin.handle, "127.0.0.1", 0)
    origin_port = server.sockets[0].getsockname()[1]
    got: list[bytes] = []
    try:
        with floor(origin_port) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            for i, (send, expect) in enumerate(steps):
                writer.write(send)
                if half_close and i == len(steps) - 1:
                    writer.write_eof()
                got.append(await asyncio.wait_for(reader.readexactly(len(expect)), 10))
            got.append(await asyncio.wait_for(reader.read(), 10) if half_close or steps[-1][1] is UNTIL_CLOSE
                       else b"")  # fmt: skip
            writer.close()
            await writer.wait_closed()
        await origin.finished()  # the floor has gone: every upstream connection is closed
    finally:
        server.close()
    return got, origin


def test_keep_alive_content_length_and_chunked_pass_unchanged_over_one_upstream_connection() -> None:
    sent = [request(b"/cl"), request(b"/chunked"), request(b"/cl", b"Content-Length: 0\r\n")]
    got, origin = asyncio.run(scenario([(sent[0], CL), (sent[1], CHUNKED), (sent[2], CL)]))
    assert got == [CL, CHUNKED, CL, b""]
    assert origin.used() == [b"".join(sent)]


def test_two_pipelined_requests_get_both_responses_in_order() -> None:
    both = request(b"/chunked") + request(b"/cl")
    got, origin = asyncio.run(scenario([(both, CHUNKED + CL)]))
    assert got == [CHUNKED + CL, b""]
    assert origin.used() == [both]


def test_a_client_that_half_closes_still_gets_the_response_it_is_owed_then_eof() -> None:
    got, origin = asyncio.run(scenario([(request(b"/cl"), CL)], half_close=True))
    assert got == [CL, b""]  # the response, then end of stream
    assert origin.used() == [request(b"/cl")]


def test_a_read_until_close_body_ends_when_the_origin_closes() -> None:
    got, _ = asyncio.run(scenario([(request(b"/cl"), CL), (request(b"/close"), UNTIL_CLOSE)]))
    assert got == [CL, UNTIL_CLOSE, b""]


def test_a_malformed_request_closes_the_connection() -> None:
    async def run() -> bytes:
        origin = Origin()
        server = await asyncio.start_server(origin.handle, "127.0.0.1", 0)
        try:
            with floor(server.sockets[0].getsockname()[1]) as port:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(b"GET / HTTP/1.1\r\nContent-Length: nope\r\n\r\n")
                data = await asyncio.wait_for(reader.read(), 10)
                writer.close()
            await origin.finished()
            return data
        finally:
            server.close()

    assert asyncio.run(run()) == b""


def test_two_floors_with_mutual_tls_between_them_pass_bytes_and_check_the_peer_identity(tmp_path: Path) -> None:
    from bench.topology import floor_tls_files
    from meshctl.control.ca import ensure_identity_material
    from meshctl.identity import workload_identity

    ensure_identity_material(tmp_path / "identity")
    client, server = (workload_identity(sa, "bench") for sa in ("bench-client", "nginx"))
    server_tls = floor_tls_files(tmp_path / "identity", tmp_path / "floor", server, "server")
    client_tls = floor_tls_files(tmp_path / "identity", tmp_path / "floor", client, "client")

    async def run(server_name: str) -> tuple[bytes, list[bytes]]:
        origin = Origin()
        server_ = await asyncio.start_server(origin.handle, "127.0.0.1", 0)
        try:
            with (
                floor(server_.sockets[0].getsockname()[1], "--tls-server", server_tls) as back,
                floor(back, "--tls-client", client_tls, "--server-name", server_name) as front,
            ):
                reader, writer = await asyncio.open_connection("127.0.0.1", front)
                writer.write(request(b"/chunked") + request(b"/cl"))
                try:
                    data = await asyncio.wait_for(reader.readexactly(len(CHUNKED + CL)), 10)
                except asyncio.IncompleteReadError as exc:
                    data = exc.partial
                writer.close()
            await origin.finished()
            return data, origin.used()
        finally:
            server_.close()

    assert asyncio.run(run(server)) == (CHUNKED + CL, [request(b"/chunked") + request(b"/cl")])
    # A peer whose certificate names another identity fails the handshake: nothing reaches the origin.
    assert asyncio.run(run(client)) == (b"", [])


@pytest.mark.parametrize("flags", [["--tls-client", "a,b,c"], ["--tls-server", "a,b"]])
def test_bad_tls_flags_are_one_line_errors(flags: list[str]) -> None:
    argv = [sys.executable, "-m", "bench.floor", "--listen", "127.0.0.1:1", "--upstream", "127.0.0.1:2", *flags]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "--server-name" in done.stderr or "CERT,KEY,CA" in done.stderr


def test_floor_tls_contexts_match_the_mesh_hop(tmp_path: Path) -> None:
    import ssl

    from bench.floor import _tls
    from bench.topology import floor_tls_files
    from meshctl.control.ca import ensure_identity_material
    from meshctl.proxy.tls import DirectSSLObject

    ensure_identity_material(tmp_path / "identity")
    files = floor_tls_files(tmp_path / "identity", tmp_path / "floor", "nginx.bench.serviceaccount.identity", "s")
    for purpose in (ssl.Purpose.CLIENT_AUTH, ssl.Purpose.SERVER_AUTH):
        ctx = _tls(files, purpose)
        # The proxies' SSL object class, so the floor's TLS glue costs what the mesh hop's does.
        assert ctx.sslobject_class is DirectSSLObject
        assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.minimum_version == ssl.TLSVersion.TLSv1_3
    assert _tls(files, ssl.Purpose.SERVER_AUTH).check_hostname
