"""Access control with real mTLS identities: two clients (webapp and reviews, each with its own outbound
proxy and certificate) call books, whose inbound proxy is selected by a TrafficTarget admitting webapp's
reads only. webapp reads; its write and every request from reviews get 403 "unauthorized"."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from meshctl.api import mesh_pb2
from meshctl.identity import workload_identity
from tests.integration.test_proxy_h1 import NS, WEB_ID, Client, counter, run
from tests.reliability.test_breaker import App
from tests.reliability.test_retries import books_snapshot, start_mesh, stop_mesh
from tests.unit.proxy.test_authz import resources

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

REVIEWS_ID = workload_identity("reviews", NS)


def with_policy(endpoints: list[mesh_pb2.Endpoint]) -> mesh_pb2.Snapshot:
    snapshot = books_snapshot(endpoints, {"routes": []})
    snapshot.resources.extend(resources())
    return snapshot


async def ask(port: int, method: str) -> tuple[int, dict[str, str]]:
    client = Client(*await asyncio.open_connection("127.0.0.1", port))
    body = b"new book" if method == "POST" else b""
    status, headers, _ = await client.get("/books" if body else "/books/1", body=body)
    await client.close()
    return status, headers


def test_a_listed_identity_is_admitted_and_an_unlisted_one_denied() -> None:
    async def scenario() -> None:
        proxies, web, servers = await start_mesh([App(200)], snapshot=with_policy, clients=(WEB_ID, REVIEWS_ID))
        reviews_config: Any = proxies[2].config
        try:
            assert (await ask(web, "GET"))[0] == 200
            status, headers = await ask(web, "POST")
            assert (status, headers["mesh-proxy-error"]) == (403, "unauthorized")
            status, headers = await ask(reviews_config.outbound.listen.port, "GET")
            assert (status, headers["mesh-proxy-error"]) == (403, "unauthorized")
            inbound = proxies[0].runtime.metrics.render().decode()
        finally:
            await stop_mesh(proxies, servers)
        assert counter(inbound, "authz_denied_total", direction="inbound", policy=f"{NS}/books-readers") == 2

    run(scenario)
