"""The HTTP/2 hot-path benchmark drives the real proxy path, and the proxy coalesces its writes."""

from __future__ import annotations

import asyncio

import ngh2
import pytest

from bench import h2_hotpath
from meshctl.proxy.h2.server import DownstreamProtocol, make_h2_protocol


@pytest.mark.parametrize("inbound", [False, True])
def test_the_recorded_path_answers_every_request_and_replays_to_the_same_bytes(
    inbound: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(h2_hotpath.measure(inbound, 5, profile=False))  # raises SystemExit when either is not so
    out = capsys.readouterr().out
    writes_per_read = float(out.rsplit(" writes/read", 1)[0].rsplit(" ", 1)[1])
    assert "bytecodes/request" in out and writes_per_read < 1.1  # one write per socket per read, plus the handshake


def test_client_reads_in_one_loop_turn_share_one_write_to_the_upstream_connection() -> None:
    async def scenario() -> tuple[int, int]:
        arm = h2_hotpath.Arm(inbound=False, keep=True)
        runtime = arm.runtime
        downs: list[DownstreamProtocol] = [arm.down]
        transports = [arm.client_t]
        for _ in range(7):
            down = make_h2_protocol(runtime, "outbound", False, None)  # the same stack, pool and upstream
            assert isinstance(down, DownstreamProtocol)
            transport = h2_hotpath.CountingTransport(keep=True)
            down.connection_made(transport)  # type: ignore[arg-type]
            downs.append(down)
            transports.append(transport)
        clients = []
        for transport in transports:
            client = ngh2.Connection(ngh2.Role.CLIENT)
            client.initiate_connection()
            client.receive_data(transport.take())
            clients.append(client)
        upstream = arm.up_ts[0]
        before = upstream.writes
        for client, down in zip(clients, downs, strict=True):
            for _ in range(h2_hotpath.STREAMS):
                client.send_request(h2_hotpath.REQUEST, end_stream=True)
            down.data_received(client.data_to_send())
        assert upstream.writes == before  # nothing leaves inside a read...
        await asyncio.sleep(0)
        server = ngh2.Connection(ngh2.Role.SERVER)
        server.initiate_connection()
        server.receive_data(upstream.take())
        requests = sum(isinstance(e, ngh2.RequestReceived) for e in server.events())
        return upstream.writes - before, requests

    writes, requests = asyncio.run(scenario())
    assert (writes, requests) == (1, 8 * h2_hotpath.STREAMS)  # ...and eight reads' requests leave in one write


@pytest.mark.parametrize("inbound", [False, True])
def test_the_callgrind_child_records_and_replays_without_a_failure(inbound: bool) -> None:
    asyncio.run(h2_hotpath.replay_only(inbound, 3))  # raises SystemExit when a recorded request went unanswered
