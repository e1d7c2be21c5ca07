"""A client's own deadline on real sockets: client → outbound proxy → mTLS → inbound proxy → app.

`mesh-timeout` travels with the request as the time that is left at each hop, and a request whose
deadline passes is answered 504 "deadline exceeded" while the slow app is still working on it.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.integration.test_proxy_h1 import Client, counter, run
from tests.ports import free_port
from tests.reliability.test_retries import start_mesh, stop_mesh

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


class SlowApp:
    """Answers /slow after 1 s and anything else at once; records the mesh-timeout it was given."""

    def __init__(self) -> None:
        self.port = free_port()
        self.asked: list[str] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                while (h := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = h.decode().partition(":")
                    if name.strip().lower() == "mesh-timeout":
                        self.asked.append(value.strip())
                if line.startswith(b"GET /slow"):
                    await asyncio.sleep(1.0)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


def test_the_deadline_travels_as_time_left_and_is_enforced() -> None:
    async def scenario() -> None:
        app = SlowApp()
        proxies, port, servers = await start_mesh([app])
        try:
            client = Client(*await asyncio.open_connection("127.0.0.1", port))
            await client.send(b"GET /fast HTTP/1.1\r\nHost: books\r\nmesh-timeout: 5s\r\n\r\n")
            status, _, _ = await client.response()
            assert status == 200
            (asked,) = app.asked
            assert asked.endswith("ms") and 4000 <= int(asked[:-2]) <= 5000  # two hops took their share
            started = time.monotonic()
            await client.send(b"GET /slow HTTP/1.1\r\nHost: books\r\nmesh-timeout: 300ms\r\n\r\n")
            status, headers, _ = await client.response()
            elapsed = time.monotonic() - started
            assert status == 504 and headers["mesh-proxy-error"] == "deadline exceeded"
            assert 0.25 <= elapsed < 0.9, elapsed  # the app would take 1 s
            await client.close()
            metrics = proxies[-1].runtime.metrics.render().decode()
        finally:
            await stop_mesh(proxies, servers)
        assert counter(metrics, "route_response_total", status_code="504", direction="outbound") == 1

    run(scenario)
