"""The HTTP/2 codec under test: modules that use the `h2_codec` fixture run once per codec (h2, ngh2)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from meshctl.proxy.h2 import conn


@pytest.fixture(params=conn.CODECS)
def h2_codec(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Every proxy-side HTTP/2 end built during the test runs on this codec (the peers the tests script stay
    python-h2 unless a test says otherwise)."""
    monkeypatch.setattr(conn, "CODEC", request.param)
    yield request.param
