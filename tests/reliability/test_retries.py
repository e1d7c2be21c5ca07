"""Retries on real sockets: client → outbound proxy → mTLS → inbound proxy → an app failing 30 % of requests.

The ServiceProfile marks one route retryable with a small budget (20 % of requests + 1 retry/s over 10 s),
another not. The effective success rate of the retryable route rises well above the app's 70 %, the
outbound proxy's actual metrics count every retry, the app sees exactly the requests plus the retries,
and the retries never exceed the budget. The other route is passed through as it is.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from typing import Any, Protocol

import pytest

from meshctl.api import mesh_pb2
from meshctl.proxy.config import parse_proxy_config
from meshctl.proxy.main import Proxy
from meshctl.proxy.runtime import build_runtime
from tests.fakes.mesh_pki import MeshPki
from tests.integration.test_proxy_h1 import BOOKS_ID, NS, WEB_ID, Client, counter, run
from tests.ports import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

REQUESTS = 400  # per route, from CLIENTS keep-alive connections
CLIENTS = 4
FAILING = 0.3
RATIO, PER_SECOND, TTL_S = 0.2, 1, 10.0
AUTHORITY = f"books.{NS}.svc.cluster.local:7000"
PROFILE = {
    "routes": [
        {"name": "flaky", "condition": {"method": "GET", "pathRegex": "/flaky/\\d+"}, "isRetryable": True},
        {"name": "plain", "condition": {"method": "GET", "pathRegex": "/plain/\\d+"}},
    ],
    "retryBudget": {"retryRatio": RATIO, "minRetriesPerSecond": PER_SECOND, "ttl": "10s"},
}


class FlakyApp:
    """Answers 500 to 30 % of requests (seeded), 200 to the rest; counts what it received."""

    def __init__(self) -> None:
        self.port = free_port()
        self.random = random.Random(12)
        self.received = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readline():
                while await reader.readline() not in (b"\r\n", b""):
                    pass
                self.received += 1
                if self.random.random() < FAILING:
                    writer.write(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\n\r\nfail")
                else:
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


class App(Protocol):
    port: int

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None: ...


def books_snapshot(endpoints: list[mesh_pb2.Endpoint], profile: dict[str, Any]) -> mesh_pb2.Snapshot:
    """Every endpoint backing the books service, with `profile` as its ServiceProfile."""
    return mesh_pb2.Snapshot(
        version=1, services=[mesh_pb2.Service(name="books", namespace=NS, port=7000, protocol="http",
                                              endpoints=endpoints)],
        resources=[mesh_pb2.Resource(kind="ServiceProfile", name=f"books.{NS}.svc.cluster.local", namespace=NS,
                                     spec_json=json.dumps(profile))],
    )  # fmt: skip


async def start_mesh(
    apps: list[App],
    profile: dict[str, Any] = PROFILE,
    balancer: str = "ewma",
    snapshot: Callable[[list[mesh_pb2.Endpoint]], mesh_pb2.Snapshot] | None = None,
    clients: tuple[str, ...] = (WEB_ID,),
    ingress: bool = False,
) -> tuple[list[Proxy], int, list[asyncio.Server]]:
    """Each app behind its inbound proxy (books-0, books-1, ...), and a client-side outbound proxy with the
    `balancer`: (proxies, the outbound port, the app servers); the outbound proxy is the last one. The
    discovery snapshot is `snapshot(endpoints)`, by default the books service with `profile`. With more
    `clients` identities, each has an outbound proxy of its own, in that order after the inbound ones.
    With `ingress` the clients' proxies are ingresses to the books service instead."""
    servers = [await asyncio.start_server(app.serve, "127.0.0.1", app.port) for app in apps]
    inbound_ports, outbound_ports = [free_port() for _ in apps], [free_port() for _ in clients]
    pki = MeshPki()
    endpoints = [mesh_pb2.Endpoint(address="127.0.0.1", port=port, identity=BOOKS_ID, pod=f"books-{i}", ready=True)
                 for i, port in enumerate(inbound_ports)]  # fmt: skip
    snap = books_snapshot(endpoints, profile) if snapshot is None else snapshot(endpoints)
    if ingress:  # what the ingress exposes: the config's default (older proxies), or a MeshIngress resource
        exposed = {"rules": [{"paths": [{"pathPrefix": "/", "service": "books"}]}]}
        snap.resources.append(mesh_pb2.Resource(kind="MeshIngress", name="books", namespace=NS,
                                                spec_json=json.dumps(exposed)))  # fmt: skip
    common: dict[str, Any] = {
        "namespace": NS, "control": {"address": "127.0.0.1:1", "identity": "unused"},
        "trust_anchors": "unused", "token_file": "unused",
    }  # fmt: skip
    docs = [
        {**common, "pod": f"books-{i}", "identity": BOOKS_ID, "admin": {"listen": f"127.0.0.1:{free_port()}"},
         "inbound": {"listen": f"127.0.0.1:{port}", "app": f"127.0.0.1:{app.port}"}}
        for i, (app, port) in enumerate(zip(apps, inbound_ports, strict=True))
    ] + [
        {**common, "pod": f"client-{i}", "identity": identity, "admin": {"listen": f"127.0.0.1:{free_port()}"},
         **({"ingress": {"listen": f"127.0.0.1:{port}", "default_authority": f"books.{NS}.svc.cluster.local:7000"}}
            if ingress else {"outbound": {"listen": f"127.0.0.1:{port}"}}), "balancer": balancer}
        for i, (identity, port) in enumerate(zip(clients, outbound_ports, strict=True))
    ]  # fmt: skip
    loop = asyncio.get_running_loop()
    proxies: list[Proxy] = []
    try:
        for doc in docs:
            config = parse_proxy_config(doc)
            runtime = build_runtime(config, clock=loop.time)
            runtime.on_certificate(pki.issue(config.identity))
            runtime.on_snapshot(snap)
            proxy = Proxy(config, runtime)
            proxies.append(proxy)  # before it binds: stop() closes whatever it bound
            await proxy.start_listeners()
    except BaseException:
        # (a port taken between free_port() and the bind) what started would stay open, and uvloop's
        # loop.close() waits for open servers forever: the test would hang instead of failing
        await stop_mesh(proxies, servers)
        raise
    return proxies, outbound_ports[0], servers


async def stop_mesh(proxies: list[Proxy], servers: list[asyncio.Server]) -> None:
    for proxy in proxies:
        await proxy.stop()
    for server in servers:
        server.close()


async def load(port: int, route: str) -> int:
    """REQUESTS GETs of `route` from CLIENTS connections; the number answered 200."""
    ok = 0
    sent = 0

    async def one_client() -> None:
        nonlocal ok, sent
        client = Client(*await asyncio.open_connection("127.0.0.1", port))
        while sent < REQUESTS:
            sent += 1
            status, _, _ = await client.get(f"/{route}/{sent}")
            ok += status == 200
        await client.close()

    await asyncio.gather(*(one_client() for _ in range(CLIENTS)))
    return ok


def test_a_thirty_percent_failing_route_is_retried_within_its_budget() -> None:
    async def scenario() -> None:
        app = FlakyApp()
        proxies, port, servers = await start_mesh([app])
        try:
            started = time.monotonic()
            ok = await load(port, "flaky")
            elapsed = time.monotonic() - started
            received = app.received
            plain_ok = await load(port, "plain")
            metrics = proxies[-1].runtime.metrics.render().decode()
        finally:
            await stop_mesh(proxies, servers)
        labels = {"direction": "outbound", "authority": AUTHORITY}
        requests = counter(metrics, "route_request_total", rt_route="flaky", **labels)
        actual = counter(metrics, "route_actual_request_total", rt_route="flaky", **labels)
        retries = actual - requests
        assert requests == REQUESTS and received == actual  # every retry reached the app, and was counted
        # The app fails 30 % of attempts: effective success rises well above 70 % with the retries.
        assert ok / REQUESTS >= 0.8, f"effective success {ok / REQUESTS:.2f} with {retries:.0f} retries"
        effective_ok = counter(metrics, "route_response_total", rt_route="flaky", status_code="200", **labels)
        actual_failed = counter(metrics, "route_actual_response_total", rt_route="flaky", classification="failure",
                                **labels)  # fmt: skip
        assert effective_ok == ok and actual_failed >= retries
        # Never over budget: 20 % of the requests plus 1/s over each 10 s window the load spanned.
        assert retries <= RATIO * REQUESTS + PER_SECOND * TTL_S * (elapsed // TTL_S + 1), retries
        assert counter(metrics, "retry_budget_exhausted_total", **labels) > 0
        # The route not marked retryable: every attempt is a request, failures go back as they are.
        plain = counter(metrics, "route_request_total", rt_route="plain", **labels)
        assert plain == counter(metrics, "route_actual_request_total", rt_route="plain", **labels) == REQUESTS
        assert 0.6 <= plain_ok / REQUESTS <= 0.8

    run(scenario)
