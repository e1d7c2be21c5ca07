"""The connection's one deadline across an HTTP/1.1 request: real client and upstream connections on
transports that only keep what is written, the real stack underneath."""

from __future__ import annotations

import asyncio

from meshctl.proxy.h1.downstream import IDLE_S, PROGRESS_S, Downstream, Listener
from meshctl.proxy.h1.ends import IDLE, PROGRESS, RESPONSE
from meshctl.proxy.h1.exchange import Exchange
from meshctl.proxy.h1.upstream import Upstream
from tests.unit.proxy.test_h1_handover import Transport as KeepingTransport
from tests.unit.proxy.test_stack import AUTH, make_runtime

REQUEST = b"GET /books HTTP/1.1\r\nHost: " + AUTH.encode() + b"\r\n\r\n"
HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"


class Transport(KeepingTransport):
    def close(self) -> None:
        raise AssertionError("both connections stay open")


async def _deadlines() -> None:
    listener = Listener(make_runtime(), "outbound")
    down = Downstream(listener)
    client = Transport()
    down.connection_made(client)  # type: ignore[arg-type]
    up = Upstream(listener.runtime.metrics, "outbound", False, listener.dialer.pool, None)
    up.connection_made(Transport())  # type: ignore[arg-type]

    def attach(ex: Exchange, fresh: bool) -> None:
        ex.attach(up, True)

    down.connect = attach
    armed: list[int] = []
    arm = down.arm

    def counting(kind: int, seconds: float, now: float = 0.0) -> None:
        armed.append(kind)
        arm(kind, seconds, now)

    down.arm = counting  # type: ignore[method-assign]
    clock = asyncio.get_running_loop().time

    # A response read whole: armed for it when the request started, then idle once it ended (set in place).
    down.data_received(REQUEST)
    assert (down.kind, armed) == (RESPONSE, [RESPONSE])
    up.data_received(HEAD + b"0123456789")
    assert client.written.endswith(b"\r\n\r\n0123456789") and (down.kind, armed) == (IDLE, [RESPONSE])
    assert clock() + IDLE_S - 1 < down.deadline <= clock() + IDLE_S

    # A body still coming after the head's read waits on the progress deadline, re-armed by each read.
    armed.clear()
    down.data_received(REQUEST)
    up.data_received(HEAD + b"0123")
    assert (down.kind, armed) == (PROGRESS, [RESPONSE, PROGRESS])
    assert clock() + PROGRESS_S - 1 < down.deadline <= clock() + PROGRESS_S
    up.data_received(b"45")
    assert armed == [RESPONSE, PROGRESS, PROGRESS]
    up.data_received(b"6789")
    assert (down.kind, armed) == (IDLE, [RESPONSE, PROGRESS, PROGRESS])
    assert client.written.endswith(b"\r\n\r\n0123456789")


def test_one_deadline_per_response_read_whole_and_progress_while_a_body_comes() -> None:
    asyncio.run(_deadlines())
