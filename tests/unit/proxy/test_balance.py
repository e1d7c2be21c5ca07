"""Balancers: peak-EWMA prefers fast endpoints and penalises failures, P2C spreads, round robin cycles."""

from __future__ import annotations

import random
from collections import Counter

from meshctl.proxy.policy.balance import LeastRequest, PeakEwma, RoundRobin, make_balancer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def serve(balancer: PeakEwma | LeastRequest, endpoints: list[str], latency: dict[str, float], n: int,
          clock: Clock, ok: dict[str, bool] | None = None) -> Counter[str]:  # fmt: skip
    counts: Counter[str] = Counter()
    for _ in range(n):
        e = balancer.pick(endpoints)
        assert e is not None
        balancer.start(e)
        clock.now += 0.01
        balancer.done(e, latency[e], (ok or {}).get(e, True))
        counts[e] += 1
    return counts


def test_ewma_prefers_the_fast_endpoint() -> None:
    clock = Clock()
    balancer = PeakEwma(clock, random.Random(1))
    counts = serve(balancer, ["fast", "slow"], {"fast": 0.001, "slow": 0.050}, 1000, clock)
    assert counts["fast"] > 900


def test_p2c_spreads_over_equal_endpoints() -> None:
    clock = Clock()
    balancer = PeakEwma(clock, random.Random(2))
    endpoints = [f"e{i}" for i in range(5)]
    counts = serve(balancer, endpoints, dict.fromkeys(endpoints, 0.002), 2000, clock)
    assert set(counts) == set(endpoints)
    assert min(counts.values()) > 150


def test_failures_are_penalised() -> None:
    clock = Clock()
    balancer = PeakEwma(clock, random.Random(3))
    latency = {"good": 0.005, "bad": 0.001}  # the failing one even answers faster
    counts = serve(balancer, ["good", "bad"], latency, 1000, clock, ok={"bad": False})
    assert counts["good"] > 900


def test_pending_requests_count_against_an_endpoint() -> None:
    clock = Clock()
    balancer = PeakEwma(clock, random.Random(4))
    balancer.start("busy")
    balancer.start("busy")
    picks = Counter(balancer.pick(["busy", "idle"]) for _ in range(100))
    assert picks["idle"] == 100


def test_slow_peak_decays() -> None:
    clock = Clock()
    balancer = PeakEwma(clock, random.Random(5))
    balancer.start("a")
    balancer.done("a", 1.0, True)
    before = balancer._cost("a", clock.now)
    clock.now += 30.0
    assert balancer._cost("a", clock.now) < before / 10


def test_least_request() -> None:
    balancer = LeastRequest(Clock(), random.Random(6))
    balancer.start("a")
    assert all(balancer.pick(["a", "b"]) == "b" for _ in range(50))
    balancer.done("a", 0.0, True)
    assert {balancer.pick(["a", "b"]) for _ in range(50)} == {"a", "b"}


def test_round_robin_order() -> None:
    balancer = RoundRobin(lambda: 0.0)
    assert [balancer.pick(["a", "b", "c"]) for _ in range(7)] == ["a", "b", "c", "a", "b", "c", "a"]
    assert balancer.pick([]) is None


def test_single_and_empty() -> None:
    for kind in ("ewma", "least-request", "round-robin"):
        balancer = make_balancer(kind, Clock())
        assert balancer.pick([]) is None
        assert balancer.pick(["only"]) == "only"


def test_retain_forgets_gone_endpoints() -> None:
    clock = Clock()
    balancer = PeakEwma(clock)
    balancer.start("a")
    balancer.start("b")
    balancer.retain(["a"])
    assert set(balancer._loads) == {"a"}



def test_take_is_pick_then_start() -> None:
    """take() gives what pick() would (the same random draws) and counts the request in flight as start()."""

    def state(balancer: object, endpoints: list[str]) -> list[object]:
        loads = getattr(balancer, "_loads", {})
        return [getattr(balancer, "_next", None), *(loads[e].pending if e in loads else 0 for e in endpoints)]

    for kind in ("ewma", "least-request", "round-robin"):
        for endpoints in ([], ["only"], ["a", "b", "c"]):
            took, picked = (make_balancer(kind, Clock(), random.Random(7)) for _ in range(2))
            for _ in range(20):
                e = picked.pick(endpoints)
                if e is not None:
                    picked.start(e)
                assert took.take(endpoints) == e, (kind, endpoints)
            assert state(took, endpoints) == state(picked, endpoints), (kind, endpoints)
