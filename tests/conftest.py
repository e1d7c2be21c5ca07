"""Fixtures shared by every suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module", params=["h2", "ngh2"])
def h2_codec(request: pytest.FixtureRequest) -> Iterator[str]:
    """The HTTP/2 codec every proxy end built in this process runs on (MESHCTL_H2_CODEC, decided per test
    module so module-scoped meshes are built once per codec). Peers that tests script stay python-h2."""
    from meshctl.proxy.h2 import conn  # not at import: most suites never load the HTTP/2 stack

    saved, conn.CODEC = conn.CODEC, request.param
    yield request.param
    conn.CODEC = saved
