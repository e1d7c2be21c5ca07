"""An app that sends more bytes than its response's Content-Length, through real proxies.

Regression: the upstream connection the extra bytes came on went back to the pool as if clean. The next
request sent on it got a 502 (the reader had failed on the extra bytes), or a request waiting for a
connection read them as the start of its own response. Now the response is delivered whole and that
connection is closed instead of reused.
"""

from __future__ import annotations

import pytest

from tests.integration.test_proxy_h1 import Mesh, run

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def test_bytes_past_a_response_do_not_reach_the_next_request() -> None:
    async def scenario() -> None:
        async with Mesh() as mesh:
            client = await mesh.connect()
            for i in range(3):
                status, _, body = await client.get("/overlong")
                assert (status, body) == (200, b"hello")
                status, _, body = await client.get(f"/books/{i}")
                assert status == 200, body
                assert body.startswith(b"GET /books/%d " % i)
            await client.close()

    run(scenario)
