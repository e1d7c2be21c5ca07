"""Retries of retryable routes, within the destination's retry budget: the budget alone with a fake clock,
then the HTTP/1.1 exchange over the real request stack (routing, balancing, metrics), no sockets."""

from __future__ import annotations

import json
import random
from typing import Any

from meshctl.api import mesh_pb2
from meshctl.proxy.config import parse_proxy_config
from meshctl.proxy.errors import UpstreamReset
from meshctl.proxy.h1.exchange import REPLAY_LIMIT, Exchange
from meshctl.proxy.policy.retry import Budget
from meshctl.proxy.runtime import ProxyRuntime, build_runtime
from meshctl.proxy.stack import Stack
from meshctl.resources.service_profile import RetryBudget
from tests.unit.proxy.test_h1_exchange import FakeClient, FakeUpstream, attach, request

NS = "booksapp"
AUTH = f"books.{NS}.svc.cluster.local:7000"
FAIL = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nfail"
OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def budget(ratio: float, per_second: int, ttl_s: float, clock: Clock) -> Budget:
    return Budget(RetryBudget(ratio, per_second, f"{ttl_s}s", ttl_s), clock)


def test_retries_are_a_ratio_of_the_requests_in_the_window() -> None:
    clock = Clock()
    b = budget(0.2, 0, 10.0, clock)
    for _ in range(100):
        b.deposit()
    assert sum(b.withdraw() for _ in range(30)) == 20 and b.exhausted == 10
    clock.now += 10.5  # the window has moved past every deposit and withdrawal
    assert not b.withdraw() and (b.deposited, b.withdrawn) == (0, 0)
    for _ in range(10):
        b.deposit()
    assert b.withdraw() and b.withdraw() and not b.withdraw()


def test_the_minimum_per_second_holds_without_requests_and_old_deposits_leave_gradually() -> None:
    clock = Clock()
    b = budget(0.0, 2, 5.0, clock)
    assert sum(b.withdraw() for _ in range(20)) == 10  # 2/s over a 5 s window
    b = budget(0.5, 0, 10.0, clock)
    for _ in range(10):
        b.deposit()
        clock.now += 1.0  # one deposit a second: at the end the oldest ones are leaving the window
    assert 3 <= sum(b.withdraw() for _ in range(10)) <= 5


def make_runtime(retryable: bool = True, budget_spec: dict[str, Any] | None = None) -> ProxyRuntime:
    doc: dict[str, Any] = {
        "pod": "web-0", "namespace": NS, "identity": f"web.{NS}.serviceaccount.identity.meshctl.cluster.local",
        "outbound": {"listen": "127.0.0.1:4140"}, "admin": {"listen": "127.0.0.1:4191"},
        "control": {"address": "127.0.0.1:8086", "identity": "cp"}, "trust_anchors": "ca.pem", "token_file": "t",
        "balancer": "round-robin",
    }  # fmt: skip
    clock = Clock()
    rt = build_runtime(parse_proxy_config(doc), clock=clock)
    books = mesh_pb2.Service(
        name="books", namespace=NS, port=7000, protocol="http",
        endpoints=[
            mesh_pb2.Endpoint(address="127.0.0.1", port=5001, identity="b1", pod="books-0", ready=True),
            mesh_pb2.Endpoint(address="127.0.0.1", port=5002, identity="b2", pod="books-1", ready=True),
        ],
    )  # fmt: skip
    profile: dict[str, Any] = {"routes": [
        {"name": "list", "condition": {"method": "GET", "pathRegex": "/books"}, "isRetryable": retryable},
        {"name": "create", "condition": {"method": "POST", "pathRegex": "/books"}},
    ]}  # fmt: skip
    if budget_spec is not None:
        profile["retryBudget"] = budget_spec
    resource = mesh_pb2.Resource(kind="ServiceProfile", name=f"books.{NS}.svc.cluster.local", namespace=NS,
                                 spec_json=json.dumps(profile))  # fmt: skip
    rt.on_snapshot(mesh_pb2.Snapshot(version=1, services=[books], resources=[resource]))
    return rt


def exchange(rt: ProxyRuntime, wire: bytes) -> tuple[FakeClient, Exchange]:
    client = FakeClient(Stack(rt, "outbound", False))
    head, body = request(wire)
    ex = Exchange(client, head)
    ex.start()
    for piece in body:
        ex.on_body(piece)
    ex.on_end(None)
    return client, ex


GET = b"GET /books HTTP/1.1\r\nHost: books:7000\r\n\r\n"


def stats(rt: ProxyRuntime, route: str = "list") -> Any:
    return rt.metrics.route("outbound", AUTH, route, True, NS, "books")


def test_a_failed_attempt_of_a_retryable_route_is_retried_and_counted_as_actual() -> None:
    rt = make_runtime()
    client, ex = exchange(rt, GET)
    first = attach(ex)
    first.answer(FAIL)
    assert client.written == b"" and first.closed  # the failed attempt never reaches the client
    second = attach(ex)
    assert second.sent.startswith(b"GET /books HTTP/1.1\r\n")
    second.answer(OK)
    assert client.written.startswith(b"HTTP/1.1 200 OK")
    s = stats(rt)
    assert (s.requests, s.actual_requests) == (1, 2)
    assert {k: v.count for k, v in s.responses.items()} == {(200, None, False): 1}
    assert {k: v.count for k, v in s.actual_responses.items()} == {(503, None, True): 1, (200, None, False): 1}


def test_a_reset_before_the_response_is_retried_on_a_retryable_route() -> None:
    rt = make_runtime()
    client, ex = exchange(rt, GET)
    attach(ex)
    ex.upstream_failed(UpstreamReset("reset by peer"))
    attach(ex).answer(OK)
    assert client.written.startswith(b"HTTP/1.1 200 OK") and stats(rt).actual_requests == 2


def test_attempts_are_bounded_and_the_last_failure_is_the_answer() -> None:
    rt = make_runtime()
    client, ex = exchange(rt, GET)
    for _ in range(3):
        attach(ex).answer(FAIL)
    assert client.written.startswith(b"HTTP/1.1 503") and client.written.endswith(b"fail")
    assert len(client.dials) == 3 and stats(rt).actual_requests == 3


def test_routes_not_marked_retryable_and_large_bodies_are_never_retried() -> None:
    rt = make_runtime()
    client, ex = exchange(rt, b"POST /books HTTP/1.1\r\nHost: books:7000\r\ncontent-length: 2\r\n\r\nhi")
    attach(ex).answer(FAIL)
    assert client.written.startswith(b"HTTP/1.1 503") and len(client.dials) == 1
    rt = make_runtime()
    body = b"x" * (REPLAY_LIMIT + 1)
    client, ex = exchange(rt, b"GET /books HTTP/1.1\r\nHost: books:7000\r\ncontent-length: %d\r\n\r\n%s"
                          % (len(body), body))  # fmt: skip
    attach(ex).answer(FAIL)
    assert client.written.startswith(b"HTTP/1.1 503") and len(client.dials) == 1


def test_a_success_is_not_retried() -> None:
    rt = make_runtime()
    client, ex = exchange(rt, GET)
    attach(ex).answer(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
    assert client.written.startswith(b"HTTP/1.1 404") and len(client.dials) == 1


def test_a_thirty_percent_failing_route_gains_success_without_exceeding_the_budget() -> None:
    """10 requests/s for 100 s (fake time); each attempt fails with probability 0.3."""
    spec = {"retryRatio": 0.2, "minRetriesPerSecond": 1, "ttl": "10s"}
    rt = make_runtime(budget_spec=spec)
    clock: Clock = rt.clock  # type: ignore[assignment]
    rng = random.Random(7)
    attempts_failed = 0
    requests = 1000
    ok = 0
    for _ in range(requests):
        client, ex = exchange(rt, GET)
        while not ex.done:
            up = FakeUpstream(ex.endpoint)
            ex.attach(up, reused=False)
            if rng.random() < 0.3:
                attempts_failed += 1
                up.answer(FAIL)
            else:
                up.answer(OK)
        ok += client.written.startswith(b"HTTP/1.1 200")
        clock.now += 0.1
    s = stats(rt)
    retries = s.actual_requests - s.requests
    actual_ok = {k: v.count for k, v in s.actual_responses.items()}.get((200, None, False), 0)
    assert s.requests == requests and ok == actual_ok
    # Without retries ~70 % succeed; with them clearly more, each retry an actual request of its own.
    assert ok / requests >= 0.85, ok
    assert retries == attempts_failed - (requests - ok)
    # Never over budget: per 10 s window 20 % of its ~100 requests plus 1/s × 10 s; 11 windows at most.
    assert retries <= 0.2 * requests + 10 * 11, retries
    exhausted = rt.metrics.render().decode()
    assert f'retry_budget_exhausted_total{{direction="outbound",authority="{AUTH}"}}' in exhausted
    dump = rt.config_dump()["retry_budgets"][AUTH]
    assert dump["retryRatio"] == 0.2 and dump["exhausted"] > 0


def test_an_unconfigured_route_carries_no_budget() -> None:
    rt = make_runtime(retryable=False)
    _, ex = exchange(rt, GET)
    assert ex.plan is not None and ex.plan.budget is None and rt.config_dump()["retry_budgets"] == {}
