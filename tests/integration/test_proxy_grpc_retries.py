"""gRPC retries through two sidecars with mTLS: a grpcio client calls a method failing with UNAVAILABLE
30 % of the time (trailers-only answers) on a route marked retryable. The client's success rises well
above 70 %, the outbound proxy counts every attempt, the backend received exactly the requests plus
the retries, and the retries stay within the budget (20 % of requests + 1/s over 10 s here)."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest

from tests.integration.test_proxy_grpc_support import SERVICE, Mesh, _same

pytestmark = pytest.mark.integration

CALLS = 300
RATIO, PER_SECOND, TTL_S = 0.2, 1, 10.0
PROFILE = {
    "routes": [{"name": "flaky", "condition": {"method": "POST", "pathRegex": f"/{SERVICE}/Flaky"},
                "isRetryable": True}],
    "retryBudget": {"retryRatio": RATIO, "minRetriesPerSecond": PER_SECOND, "ttl": "10s"},
}  # fmt: skip


class FlakyBackend:
    def __init__(self) -> None:
        self.random = random.Random(5)
        self.lock = threading.Lock()
        self.received = 0
        handler = grpc.unary_unary_rpc_method_handler(self.flaky, _same, _same)
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Flaky": handler}),))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def flaky(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        with self.lock:
            self.received += 1
            failing = self.random.random() < 0.3
        if failing:
            context.abort(grpc.StatusCode.UNAVAILABLE, "try again")
        return request


@pytest.fixture
def backend() -> Iterator[FlakyBackend]:
    server = FlakyBackend()
    yield server
    server.server.stop(grace=None)


def test_unavailable_answers_are_retried_within_the_budget(backend: FlakyBackend) -> None:
    mesh = Mesh(backend.port, profile=PROFILE)
    try:
        ok = 0
        with mesh.channel() as ch:
            call = ch.unary_unary(f"/{SERVICE}/Flaky", _same, _same)
            for n in range(CALLS):
                try:
                    assert call(b"%d" % n, timeout=10) == b"%d" % n
                    ok += 1
                except grpc.RpcError as error:
                    assert error.code() == grpc.StatusCode.UNAVAILABLE
        stats = mesh.stats("outbound", "flaky")
        requests, actual = mesh.call(lambda: (stats.requests, stats.actual_requests))
    finally:
        mesh.stop()
    retries = actual - requests
    assert requests == CALLS and backend.received == actual
    assert ok / CALLS >= 0.8, (ok, retries)
    # The calls take a second or two: at most two ttl windows of the minimum on top of the ratio.
    assert 0 < retries <= RATIO * CALLS + PER_SECOND * TTL_S * 2, retries
