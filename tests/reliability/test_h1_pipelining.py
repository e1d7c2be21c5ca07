"""HTTP/1.1 pipelining through real proxies: every pipelined request is answered, in order, with its own body.

Regression: queued requests used to replay their bodies through handlers that appended them to the *next*
queued request, so the second of three pipelined POSTs went upstream without its body and the connection
hung; past 16 queued requests the client got a misleading 502 and lost the response in flight.
"""

from __future__ import annotations

import asyncio

import pytest

from meshctl.proxy.h1.downstream import MAX_QUEUED
from tests.integration.test_proxy_h1 import Client, Mesh, run

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


async def responses(client: Client, n: int) -> list[tuple[int, dict[str, str], bytes]]:
    return [await client.response() for _ in range(n)]


def test_pipelined_gets_are_all_answered_in_order() -> None:
    async def scenario() -> None:
        async with Mesh() as mesh:
            client = await mesh.connect()
            await client.send(b"".join(b"GET /books/%d HTTP/1.1\r\nHost: books\r\n\r\n" % i for i in range(5)))
            got = await responses(client, 5)
            assert [(s, b.split(b" ")[1]) for s, _, b in got] == [(200, b"/books/%d" % i) for i in range(5)]
            assert (await client.get("/books/after"))[0] == 200  # the connection is still good
            await client.close()

    run(scenario)


def test_pipelined_posts_each_carry_their_own_body() -> None:
    async def scenario() -> None:
        async with Mesh() as mesh:
            client = await mesh.connect()
            bodies = [b"first", b"second-body", b"3"]
            await client.send(b"".join(
                b"POST /echo/%d HTTP/1.1\r\nHost: books\r\ncontent-length: %d\r\n\r\n%s" % (i, len(b), b)
                for i, b in enumerate(bodies)
            ))  # fmt: skip
            got = await responses(client, 3)
            assert [s for s, _, _ in got] == [200, 200, 200]
            assert [b.rsplit(b" ", 1)[1] for _, _, b in got] == bodies
            chunked = b"POST /c HTTP/1.1\r\nHost: books\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
            await client.send(chunked + b"GET /books/9 HTTP/1.1\r\nHost: books\r\n\r\n" + chunked)
            got = await responses(client, 3)
            assert [b.split(b" ")[1] for _, _, b in got] == [b"/c", b"/books/9", b"/c"]
            assert got[0][2].endswith(b"abc") and got[2][2].endswith(b"abc")
            await client.close()

    run(scenario)


def test_reading_too_far_ahead_is_refused_after_the_responses_before_it() -> None:
    async def scenario() -> None:
        async with Mesh() as mesh:
            client = await mesh.connect()
            total = MAX_QUEUED + 10
            await client.send(b"".join(b"GET /books/%d HTTP/1.1\r\nHost: books\r\n\r\n" % i for i in range(total)))
            answered = MAX_QUEUED + 1  # the one in flight and the ones queued behind it
            got = await responses(client, answered + 1)
            assert [s for s, _, _ in got[:answered]] == [200] * answered
            assert [b.split(b" ")[1] for _, _, b in got[:answered]] == [b"/books/%d" % i for i in range(answered)]
            status, headers, _ = got[answered]
            assert status == 503 and headers["mesh-proxy-error"] == "too many pipelined requests"
            assert headers["connection"] == "close"
            assert await client.closed()
            await client.close()

    run(scenario)


def test_a_malformed_request_behind_good_ones_is_answered_in_its_turn() -> None:
    async def scenario() -> None:
        async with Mesh() as mesh:
            client = await mesh.connect()
            good = b"GET /books/1 HTTP/1.1\r\nHost: books\r\n\r\n"
            bad = b"GET /x HTTP/1.1\r\nHost: books\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n"
            await client.send(good + good + bad)
            got = await responses(client, 3)
            assert [s for s, _, _ in got] == [200, 200, 400]
            assert await client.closed()
            await client.close()

    run(scenario)


def test_a_slow_first_response_does_not_let_later_ones_overtake_it() -> None:
    async def scenario() -> None:
        async with Mesh() as mesh:
            client = await mesh.connect()
            await client.send(b"GET /drain HTTP/1.1\r\nHost: books\r\n\r\nGET /books/2 HTTP/1.1\r\nHost: books\r\n\r\n")
            got = await asyncio.wait_for(responses(client, 2), 10)
            assert [b.split(b" ")[1] for _, _, b in got] == [b"/drain", b"/books/2"]
            await client.close()

    run(scenario)
