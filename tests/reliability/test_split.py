"""Traffic split on real sockets: books-v1 and books-v2 (app + inbound proxy each, mTLS) behind the apex
`books` of a TrafficSplit, reached through an outbound proxy. 90/10 holds over 2,000 requests, and
weights moved under load (to 50/50, then all to v2) fail no request."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable

import pytest

from meshctl.api import mesh_pb2
from tests.integration.test_proxy_h1 import NS, Client, run
from tests.ports import free_port
from tests.reliability.test_retries import start_mesh, stop_mesh

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

CLIENTS = 4


class NamedApp:
    def __init__(self, name: str) -> None:
        self.name = name.encode()
        self.port = free_port()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readline():
                while await reader.readline() not in (b"\r\n", b""):
                    pass
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(self.name), self.name))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


def split_snapshot(v1: int, v2: int, version: int = 1) -> Callable[[list[mesh_pb2.Endpoint]], mesh_pb2.Snapshot]:
    def build(endpoints: list[mesh_pb2.Endpoint]) -> mesh_pb2.Snapshot:
        split = {"service": "books", "backends": [{"service": "books-v1", "weight": v1},
                                                  {"service": "books-v2", "weight": v2}]}  # fmt: skip
        return mesh_pb2.Snapshot(
            version=version,
            services=[mesh_pb2.Service(name=f"books-v{i + 1}", namespace=NS, port=7000, protocol="http",
                                       endpoints=[e]) for i, e in enumerate(endpoints)],
            resources=[mesh_pb2.Resource(kind="TrafficSplit", name="books-canary", namespace=NS,
                                         spec_json=json.dumps(split))],
        )  # fmt: skip

    return build


async def load(port: int, requests: int, at: Callable[[int], None] = lambda n: None) -> tuple[list[str], int]:
    """`requests` GETs of the apex from CLIENTS connections; `at(n)` runs before the n-th is sent."""
    answers: list[str] = []
    failures = 0
    sent = 0

    async def one_client() -> None:
        nonlocal sent, failures
        client = Client(*await asyncio.open_connection("127.0.0.1", port))
        while sent < requests:
            sent += 1
            at(sent)
            status, _, body = await client.get(f"/books/{sent}")
            if status == 200:
                answers.append(body.decode())
            else:
                failures += 1
        await client.close()

    await asyncio.gather(*(one_client() for _ in range(CLIENTS)))
    return answers, failures


def test_ninety_ten_holds_and_weights_move_under_load_without_failures() -> None:
    async def scenario() -> None:
        proxies, port, servers = await start_mesh([NamedApp("v1"), NamedApp("v2")], snapshot=split_snapshot(90, 10))
        outbound = proxies[-1].runtime
        endpoints = [mesh_pb2.Endpoint(address="127.0.0.1", port=p.config.inbound.listen.port,
                                       identity=p.config.identity, pod=p.config.pod, ready=True)
                     for p in proxies[:-1] if p.config.inbound is not None]  # fmt: skip

        def move(n: int) -> None:
            if n == 201:
                outbound.on_snapshot(split_snapshot(50, 50, version=2)(endpoints))
            elif n == 401:
                outbound.on_snapshot(split_snapshot(0, 100, version=3)(endpoints))

        try:
            answers, failures = await load(port, 2000)
            assert failures == 0
            share = Counter(answers)["v1"] / len(answers)
            assert abs(share - 0.9) <= 0.02, share
            answers, failures = await load(port, 600, move)
        finally:
            await stop_mesh(proxies, servers)
        assert failures == 0
        assert 0.3 <= Counter(answers[200:400])["v1"] / 200 <= 0.7  # about half while at 50/50
        assert answers[-150:] == ["v2"] * 150

    run(scenario)
