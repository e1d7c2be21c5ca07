"""Circuit breaking on real sockets: two books replicas, one of whose apps answers 500 to everything,
behind an outbound proxy balancing round robin. Without failureAccrual half of the requests fail; with it
the broken replica is ejected after a few failures in a row and probed now and then, which shows in the
outbound proxy's metrics and config dump."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.integration.test_proxy_h1 import Client, counter, run
from tests.ports import free_port
from tests.reliability.test_retries import start_mesh, stop_mesh

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

REQUESTS = 200
AUTHORITY = "books.booksapp.svc.cluster.local:7000"


class App:
    def __init__(self, status: int) -> None:
        self.port = free_port()
        self.status = status

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readline():
                while await reader.readline() not in (b"\r\n", b""):
                    pass
                writer.write(b"HTTP/1.1 %d X\r\ncontent-length: 0\r\n\r\n" % self.status)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def failures(profile: dict[str, Any]) -> tuple[int, str, dict[str, Any]]:
    proxies, port, servers = await start_mesh([App(200), App(500)], profile, balancer="round-robin")
    try:
        client = Client(*await asyncio.open_connection("127.0.0.1", port))
        failed = 0
        for n in range(REQUESTS):
            status, _, _ = await client.get(f"/books/{n}")
            failed += status != 200
            await asyncio.sleep(0.005)  # ~1.5 s of load: the 1 s penalty ends once or twice
        await client.close()
        runtime = proxies[-1].runtime
        return failed, runtime.metrics.render().decode(), runtime.config_dump()
    finally:
        await stop_mesh(proxies, servers)


def test_a_broken_replica_is_ejected_and_probed() -> None:
    async def scenario() -> None:
        failed, _, _ = await failures({"routes": []})
        assert failed == REQUESTS // 2  # round robin, nothing ejected
        failed, metrics, dump = await failures({"routes": [], "failureAccrual": {"consecutiveFailures": 3}})
        ejections = counter(metrics, "endpoint_ejections_total", authority=AUTHORITY)
        # 3 failures to eject it, then one failed probe for each ejection after the first.
        assert ejections >= 1 and failed <= 3 + ejections - 1, (failed, ejections)
        (state,) = (s for e, s in dump["circuit_breakers"][AUTHORITY]["endpoints"].items() if s["state"] != "in")
        assert state["state"] in ("ejected", "probation")

    run(scenario)
