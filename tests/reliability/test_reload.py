"""Resources reloaded under load fail no request: ~200 requests/s through outbound → mTLS → inbound → app
while every proxy gets a new snapshot every 50 ms, alternating a ServiceProfile's retries, budget and
failure accrual, a FaultInjection that injects nothing, and a TrafficTarget admitting the client."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from meshctl.api import mesh_pb2
from tests.integration.test_proxy_h1 import NS, Client, run
from tests.reliability.test_breaker import App
from tests.reliability.test_retries import books_snapshot, start_mesh, stop_mesh
from tests.unit.proxy.test_authz import resources as access_resources

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

REQUESTS = 400
CLIENTS = 4


def version(n: int, endpoints: list[mesh_pb2.Endpoint]) -> mesh_pb2.Snapshot:
    profile: dict[str, Any] = {
        "routes": [{"name": "one", "condition": {"method": "GET", "pathRegex": "/books/\\d+"},
                    "isRetryable": n % 2 == 0, "timeout": f"{5 + n % 3}s"}],
        "retryBudget": {"retryRatio": 0.1 + 0.1 * (n % 2), "minRetriesPerSecond": 5 + n % 4, "ttl": "10s"},
    }  # fmt: skip
    if n % 3:
        profile["failureAccrual"] = {"consecutiveFailures": 3 + n % 2}
    snapshot = books_snapshot(endpoints, profile)
    snapshot.version = n
    if n % 2:
        fault = {"service": "books", "abort": {"percent": 0}, "delay": {"percent": 0, "fixedDelay": "1s"}}
        snapshot.resources.append(mesh_pb2.Resource(kind="FaultInjection", name="nothing", namespace=NS,
                                                    spec_json=json.dumps(fault)))  # fmt: skip
    if n % 4 < 2:
        snapshot.resources.extend(access_resources())  # books admits webapp's reads
    return snapshot


def test_reloading_every_kind_under_load_fails_nothing() -> None:
    async def scenario() -> None:
        proxies, port, servers = await start_mesh([App(200)])
        inbound = proxies[0].config.inbound
        assert inbound is not None
        endpoints = [mesh_pb2.Endpoint(address="127.0.0.1", port=inbound.listen.port,
                                       identity=proxies[0].config.identity, pod="books-0", ready=True)]  # fmt: skip
        reloads = 0
        done = asyncio.Event()

        async def reload() -> None:
            nonlocal reloads
            while not done.is_set():
                reloads += 1
                for proxy in proxies:
                    proxy.runtime.on_snapshot(version(reloads + 1, endpoints))
                await asyncio.sleep(0.05)

        failures: list[int] = []
        sent = 0

        async def one_client() -> None:
            nonlocal sent
            client = Client(*await asyncio.open_connection("127.0.0.1", port))
            while sent < REQUESTS:
                sent += 1
                status, _, _ = await client.get(f"/books/{sent}")
                if status != 200:
                    failures.append(status)
                await asyncio.sleep(CLIENTS / 200)
            await client.close()

        reloading = asyncio.ensure_future(reload())
        try:
            await asyncio.gather(*(one_client() for _ in range(CLIENTS)))
        finally:
            done.set()
            await reloading
            await stop_mesh(proxies, servers)
        assert failures == [] and reloads >= 20, (failures, reloads)

    run(scenario)
