"""bench.grpc_load against a real grpc.aio server in this process: what it counts is what the server saw."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import pytest

from bench.grpc_load import LoadError, LoadSpec, run_load
from bench.grpc_service import BenchRatings, Context, start_server
from meshctl.demo.proto import ratings_pb2


class CountingRatings(BenchRatings):
    """The bench service, counting the calls it answered and how many were in progress at once."""

    def __init__(self, delay_s: float = 0.0) -> None:
        super().__init__()
        self.delay_s = delay_s
        self.answered = 0
        self.active = 0
        self.max_active = 0

    async def GetRating(  # noqa: N802 - the RPC's name
        self, request: ratings_pb2.GetRatingRequest, context: Context
    ) -> ratings_pb2.Rating:
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            await asyncio.sleep(self.delay_s)  # holds the call open, so the client's in-flight count shows here
            return await super().GetRating(request, context)
        finally:
            self.active -= 1
            self.answered += 1


async def _against(service: CountingRatings, **spec: Any) -> dict[str, Any]:
    server, port = await start_server("127.0.0.1:0", service)
    try:
        return await run_load(LoadSpec(target=f"127.0.0.1:{port}", **spec))
    finally:
        await server.stop(grace=None)


def test_every_call_issued_is_counted_once_and_exactly_n_are_kept_in_flight() -> None:
    service = CountingRatings(delay_s=0.005)
    res = asyncio.run(_against(service, in_flight=4, warmup_s=0.2, duration_s=0.8))
    assert res["max_in_flight"] == 4 and service.max_active == 4
    assert res["errors"] == 0 and res["errors_by_status"] == {} and res["warmup_errors_by_status"] == {}
    # Each call lands in exactly one of warm-up, window and drain, and the server answered each one.
    assert res["issued"] == res["warmup_calls"] + res["calls"] + res["after_window"] == service.answered
    assert res["calls"] > 20 and res["warmup_calls"] > 0
    # The drain: every worker has one call outstanding when the window closes, none starts after it.
    assert res["after_window"] <= 4
    assert res["calls_per_s"] == pytest.approx(res["calls"] / 0.8)
    assert res["latency_ms"]["count"] == res["calls"]
    assert 5.0 <= res["latency_ms"]["p50"] <= res["latency_ms"]["p99"] <= res["latency_ms"]["max"]
    assert res["window_s"] == pytest.approx(0.8, abs=0.2) and res["client_cpu"] > 0


def test_failed_calls_are_counted_by_status_and_not_as_calls() -> None:
    service = CountingRatings()
    res = asyncio.run(_against(service, in_flight=2, warmup_s=0.0, duration_s=0.4, book_id=0))  # no such book
    assert res["calls"] == 0 and res["calls_per_s"] == 0.0 and res["latency_ms"]["count"] == 0
    assert res["errors"] == res["errors_by_status"]["NOT_FOUND"] > 0
    assert list(res["errors_by_status"]) == ["NOT_FOUND"]
    assert res["issued"] == res["errors"] + res["after_window"] == service.answered


def test_max_calls_bounds_a_run_before_its_duration() -> None:
    service = CountingRatings()
    started = time.monotonic()
    res = asyncio.run(_against(service, in_flight=3, warmup_s=0.0, duration_s=30.0, max_calls=25))
    assert time.monotonic() - started < 10.0
    assert res["issued"] == 25 == service.answered and res["max_calls_reached"] is True
    assert res["calls"] == 25 and res["cpu"] == {}


def test_an_unreachable_target_is_an_error_that_names_it() -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(LoadError, match=f"cannot connect to 127.0.0.1:{port}"):
        asyncio.run(run_load(LoadSpec(target=f"127.0.0.1:{port}", timeout_s=0.5, duration_s=0.2)))
