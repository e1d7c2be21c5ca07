"""Trace headers on real sockets: client → ingress proxy → mTLS → inbound proxy → app. A request without
trace context reaches the app with one new trace in B3 single, B3 multi and W3C form; a trace id the
client set at the ingress arrives at the app unchanged."""

from __future__ import annotations

import asyncio

import pytest

from tests.integration.test_proxy_h1 import Client, run
from tests.ports import free_port
from tests.reliability.test_retries import start_mesh, stop_mesh

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


class RecordingApp:
    def __init__(self) -> None:
        self.port = free_port()
        self.seen: list[dict[str, str]] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readline():
                headers: dict[str, str] = {}
                while (h := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = h.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                self.seen.append(headers)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


def test_the_ingress_starts_a_trace_and_a_client_trace_id_reaches_the_app() -> None:
    async def scenario() -> None:
        app = RecordingApp()
        proxies, port, servers = await start_mesh([app], ingress=True)
        try:
            client = Client(*await asyncio.open_connection("127.0.0.1", port))
            await client.send(b"GET /books HTTP/1.1\r\nHost: www.example.com\r\n\r\n")
            assert (await client.response())[0] == 200
            await client.send(b"GET /books HTTP/1.1\r\nHost: www.example.com\r\n"
                              b"traceparent: 00-%s-00f067aa0ba902b7-01\r\n\r\n" % TRACE.encode())  # fmt: skip
            assert (await client.response())[0] == 200
            await client.close()
        finally:
            await stop_mesh(proxies, servers)
        started, carried = app.seen
        trace = started["x-b3-traceid"]
        assert len(trace) == 32 and started["traceparent"].split("-")[1] == trace
        assert started["b3"].split("-")[0] == trace and started["x-b3-sampled"] == "1"
        assert carried["traceparent"].split("-")[1] == TRACE and carried["x-b3-traceid"] == TRACE

    run(scenario)
