"""Per-service load balancing without sockets: weights under every policy, session affinity by header and
cookie (placement, spread, minimal movement when an endpoint leaves), and success-rate failure accrual."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from meshctl.proxy.policy.affinity import SessionAffinity
from meshctl.proxy.policy.balance import make_balancer
from meshctl.proxy.policy.breaker import Breaker
from meshctl.proxy.policy.resolve import Endpoint
from meshctl.resources.failure_accrual import FailureAccrual, SuccessRate
from meshctl.resources.load_balancer import Affinity, LoadBalancer
from tests.unit.proxy.test_retry import Clock

ENDS = tuple(Endpoint("127.0.0.1", 5000 + i, f"id{i}", f"books-{i}") for i in range(3))
TWO = ENDS[:2]


def shares(policy: str, picks: int = 4000, weights: tuple[tuple[str, int], ...] = (("books-0", 3),)) -> float:
    """books-0's share of `picks` sequential requests over TWO, weighted 3:1."""
    clock = Clock()
    balancer = make_balancer("ewma", clock, random.Random(7), LoadBalancer(policy, None, weights))
    counts: Counter[object] = Counter()
    for _ in range(picks):
        endpoint = balancer.pick(TWO)
        assert endpoint is not None
        balancer.start(endpoint)
        clock.now += 0.001
        balancer.done(endpoint, 0.001, True)
        counts[endpoint] += 1
    return counts[TWO[0]] / picks


@pytest.mark.parametrize("policy", ["peak-ewma", "least-request", "round-robin"])
def test_weights_three_to_one_give_three_quarters_under_every_policy(policy: str) -> None:
    assert abs(shares(policy) - 0.75) <= 0.03


def test_round_robin_weights_are_exact_and_interleaved_and_an_address_names_an_endpoint() -> None:
    balancer = make_balancer("ewma", Clock(), None, LoadBalancer("round-robin", None, (("127.0.0.1:5001", 2),)))
    picks = [balancer.pick(ENDS) for _ in range(8)]
    assert Counter(picks) == {ENDS[0]: 2, ENDS[1]: 4, ENDS[2]: 2}
    assert all(a != b or a == ENDS[1] for a, b in zip(picks, picks[1:], strict=False))  # smooth: no runs


@pytest.mark.parametrize("policy", ["peak-ewma", "least-request"])
def test_a_slow_endpoint_that_gathers_requests_loses_weighted_traffic(policy: str) -> None:
    clock = Clock()
    balancer = make_balancer("ewma", clock, random.Random(3), LoadBalancer(policy, None, (("books-0", 3),)))
    counts: Counter[object] = Counter()
    in_flight: list[tuple[float, object]] = []  # (ends at, endpoint): 16 requests at a time
    for _ in range(4000):
        while len(in_flight) >= 16:
            in_flight.sort(key=lambda item: item[0])
            ends, done = in_flight.pop(0)
            clock.now = max(clock.now, ends)
            balancer.done(done, 0.0, True)
        endpoint = balancer.pick(TWO)
        assert endpoint is not None
        balancer.start(endpoint)
        in_flight.append((clock.now + (0.050 if endpoint == TWO[0] else 0.001), endpoint))
        counts[endpoint] += 1
    assert counts[TWO[0]] / 4000 < 0.5  # the heavy one, 50x slower, gathers requests and loses its 75 %


def affinity(header: str | None = "x-user", cookie: str | None = None,
             weights: tuple[tuple[str, int], ...] = ()) -> SessionAffinity:  # fmt: skip
    spec = LoadBalancer("session-affinity", Affinity(header=header, cookie=cookie), weights)
    balancer = make_balancer("ewma", Clock(), random.Random(5), spec)
    assert isinstance(balancer, SessionAffinity) and balancer.affinity is balancer
    return balancer


def test_one_key_always_lands_on_one_endpoint_and_keys_spread_evenly() -> None:
    balancer = affinity()
    first = {balancer.pick_keyed([(b"X-User", b"alice")], ENDS)[0] for _ in range(100)}
    assert len(first) == 1
    counts = Counter(balancer.place(b"user-%d" % n, ENDS) for n in range(3000))
    assert all(abs(c / 3000 - 1 / 3) <= 0.05 for c in counts.values()), counts
    # Another proxy (another process's hash seed) places keys the same way.
    assert affinity().place(b"alice", ENDS) == balancer.place(b"alice", ENDS)


def test_an_endpoint_that_leaves_moves_only_its_own_keys() -> None:
    balancer = affinity()
    keys = [b"k%d" % n for n in range(1000)]
    before = {k: balancer.place(k, ENDS) for k in keys}
    after = {k: balancer.place(k, ENDS[1:]) for k in keys}  # ENDS[0] ejected
    moved = [k for k in keys if before[k] != after[k]]
    assert moved and all(before[k] == ENDS[0] for k in moved)
    assert {k: balancer.place(k, ENDS) for k in keys} == before  # back: every key returns


def test_affinity_honours_weights() -> None:
    balancer = affinity(weights=(("books-0", 3),))
    counts = Counter(balancer.place(b"u%d" % n, TWO) for n in range(4000))
    assert abs(counts[TWO[0]] / 4000 - 0.75) <= 0.03


def test_a_request_without_the_header_is_balanced_by_weight() -> None:
    balancer = affinity()
    picks = Counter(balancer.pick_keyed([(b"other", b"x")], ENDS)[0] for _ in range(300))
    assert len(picks) == 3 and all(c > 50 for c in picks.values())


def test_cookie_is_set_when_absent_and_honoured_after() -> None:
    balancer = affinity(header=None, cookie="books-session")
    endpoint, set_cookie = balancer.pick_keyed([(b"host", b"books")], ENDS)
    assert set_cookie is not None and set_cookie.startswith(b"books-session=")
    assert set_cookie.endswith(b"; Path=/; Max-Age=3600; HttpOnly")
    value = set_cookie.split(b";")[0]
    for _ in range(50):
        again, none = balancer.pick_keyed([(b"Cookie", b"theme=dark; " + value)], ENDS)
        assert (again, none) == (endpoint, None)


def test_an_unreachable_endpoint_is_skipped_by_its_keys_only() -> None:
    balancer = affinity()
    keys = [b"k%d" % n for n in range(300)]
    home = {k: balancer.place(k, ENDS) for k in keys}
    balancer.start(ENDS[0])
    balancer.done(ENDS[0], 0.0, False, unreachable=True)
    assert all(balancer.place(k, ENDS) == home[k] for k in keys if home[k] != ENDS[0])
    assert all(balancer.place(k, ENDS) != ENDS[0] for k in keys)


# -- success-rate failure accrual ------------------------------------------------------------------------


def forty_percent(breaker: Breaker, clock: Clock, outcomes: int) -> int:
    """`outcomes` responses of endpoint "a", failing 2 in 5 and never twice in a row; ejections seen."""
    ejected = 0
    for n in range(outcomes):
        clock.now += 0.01
        if breaker.endpoints(("a", "b")) == ("b",):
            continue
        ejected += breaker.outcome("a", n % 5 in (1, 3))
    return ejected


def test_a_replica_failing_often_but_never_in_a_row_is_ejected_by_success_rate_only() -> None:
    clock = Clock()
    by_run = Breaker(FailureAccrual(5), clock)
    assert forty_percent(by_run, clock, 500) == 0
    by_rate = Breaker(FailureAccrual(None, success_rate=SuccessRate(0.8, "30s", 30.0, 20)), clock)
    assert forty_percent(by_rate, clock, 500) >= 1
    assert by_rate.to_json()["successRate"] == {"threshold": 0.8, "window": "30s", "minRequests": 20}


def test_success_rate_needs_min_requests_and_forgets_outside_the_window() -> None:
    clock = Clock()
    b = Breaker(FailureAccrual(None, success_rate=SuccessRate(0.8, "10s", 10.0, 20)), clock)
    for _ in range(10):
        assert not b.outcome("a", True)  # 10 failures, but fewer than minRequests outcomes
    clock.now += 11.0  # the window has moved past them
    for n in range(19):
        assert not b.outcome("a", n % 10 == 0)  # 2 failures in 19: 89 % success
    for _ in range(3):
        b.outcome("a", True)
    assert b.endpoints(("a", "b")) == ("b",)  # 17 of 22: 77 % < 80 %
    clock.now += 1.0  # minPenalty: a probe; a success closes it with a clean window
    assert b.endpoints(("a", "b")) == ("a", "b")
    assert not b.outcome("a", False)
    assert not b.outcome("a", True)
    assert b.to_json()["endpoints"]["a"]["outcomes_in_window"] == 2  # type: ignore[index]


def test_under_success_rate_a_passed_probe_does_not_reset_the_doubling() -> None:
    clock = Clock()
    b = Breaker(FailureAccrual(None, "1s", 1.0, "8s", 8.0, SuccessRate(0.8, "30s", 30.0, 10)), clock)
    penalties = []
    for _ in range(3):
        n = 0
        while b.endpoints(("a", "b")) == ("a", "b"):
            b.outcome("a", n % 5 in (1, 3))  # 60 % success: ejected once 10 outcomes are in
            n += 1
        start = clock.now
        while b.endpoints(("a", "b")) == ("b",):
            clock.now += 0.25
        penalties.append(clock.now - start)
        assert not b.outcome("a", False)  # the probe passes
    assert penalties == [1.0, 2.0, 4.0]
    for _ in range(10):
        b.outcome("a", False)  # a healthy window: the next ejection starts from minPenalty again
    assert b.to_json()["endpoints"]["a"]["success_rate"] == 1.0  # type: ignore[index]
