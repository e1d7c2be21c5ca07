"""Fault injection on real sockets: client → outbound proxy → mTLS → inbound proxy → app. A 10 % abort
answers about a tenth of 1,000 requests with the injected status and reason, counted in the route
metrics; then a delay on one route holds its requests, and only its requests, for the fixed delay."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from meshctl.api import mesh_pb2
from tests.integration.test_proxy_h1 import NS, Client, counter, run
from tests.reliability.test_breaker import App
from tests.reliability.test_retries import books_snapshot, start_mesh, stop_mesh

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

REQUESTS = 1000
AUTHORITY = f"books.{NS}.svc.cluster.local:7000"
PROFILE = {"routes": [{"name": "list", "condition": {"method": "GET", "pathRegex": "/books"}},
                      {"name": "one", "condition": {"method": "GET", "pathRegex": "/books/\\d+"}}]}  # fmt: skip


def with_fault(fault: dict[str, Any], version: int) -> Any:
    def build(endpoints: list[mesh_pb2.Endpoint]) -> mesh_pb2.Snapshot:
        snapshot = books_snapshot(endpoints, PROFILE)
        snapshot.version = version
        snapshot.resources.append(mesh_pb2.Resource(kind="FaultInjection", name="books-faults", namespace=NS,
                                                    spec_json=json.dumps({"service": "books", **fault})))  # fmt: skip
        return snapshot

    return build


def test_an_abort_rate_and_a_route_delay() -> None:
    async def scenario() -> None:
        abort = {"abort": {"percent": 10, "httpStatus": 502}}
        proxies, port, servers = await start_mesh([App(200)], snapshot=with_fault(abort, 1))
        try:
            client = Client(*await asyncio.open_connection("127.0.0.1", port))
            aborted = 0
            for n in range(REQUESTS):
                status, headers, _ = await client.get(f"/books/{n}")
                if status != 200:
                    assert (status, headers["mesh-proxy-error"]) == (502, "fault injected")
                    aborted += 1
            metrics = proxies[-1].runtime.metrics.render().decode()
            inbound = proxies[0].config.inbound
            assert inbound is not None
            endpoints = [mesh_pb2.Endpoint(address="127.0.0.1", port=inbound.listen.port,
                                           identity=proxies[0].config.identity, pod="books-0", ready=True)]  # fmt: skip
            delay = {"routes": ["one"], "delay": {"percent": 100, "fixedDelay": "150ms"}}
            proxies[-1].runtime.on_snapshot(with_fault(delay, 2)(endpoints))
            started = time.monotonic()
            assert (await client.get("/books"))[0] == 200
            undelayed = time.monotonic() - started
            started = time.monotonic()
            assert (await client.get("/books/1"))[0] == 200
            delayed = time.monotonic() - started
            await client.close()
        finally:
            await stop_mesh(proxies, servers)
        assert 0.06 <= aborted / REQUESTS <= 0.14, aborted  # 10 % ± 4: over 4 standard deviations at 1,000
        labels = {"direction": "outbound", "authority": AUTHORITY, "rt_route": "one"}
        failed = counter(metrics, "route_response_total", status_code="502", classification="failure", **labels)
        assert failed == aborted
        assert counter(metrics, "faults_injected_total", authority=AUTHORITY) == aborted
        assert undelayed < 0.1 and 0.15 <= delayed < 0.5, (undelayed, delayed)

    run(scenario)
