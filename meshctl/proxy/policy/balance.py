"""Endpoint balancing: peak-EWMA power of two choices (default), round robin, least request.

Every balancer has the same three calls on the hot path: pick(endpoints) before a request,
start(endpoint) when it is sent, done(endpoint, latency_s, ok) when it ends. State is kept per
endpoint and survives snapshot updates (retain() drops endpoints that left).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, TypeVar

E = TypeVar("E")

DECAY_S = 10.0  # peak-EWMA time constant: how long a slow response keeps counting against an endpoint
DEFAULT_RTT_S = 0.001  # cost of an endpoint that has never answered: cheap, so new endpoints get traffic
FAILURE_PENALTY_S = 1.0  # a failed request counts as at least this slow


class Balancer(Protocol):
    def pick(self, endpoints: Sequence[E]) -> E | None: ...

    def start(self, endpoint: object) -> None: ...

    def done(self, endpoint: object, latency_s: float, ok: bool) -> None: ...

    def retain(self, endpoints: Iterable[object]) -> None: ...


class _Load:
    __slots__ = ("ewma", "stamp", "pending")

    def __init__(self, now: float) -> None:
        self.ewma = DEFAULT_RTT_S
        self.stamp = now
        self.pending = 0


class _Stateful:
    def __init__(self, clock: Callable[[], float], rng: random.Random | None = None) -> None:
        self._clock = clock
        self._random = (rng or random.Random()).random  # balancing needs no cryptographic randomness
        self._loads: dict[object, _Load] = {}

    def _load(self, endpoint: object) -> _Load:
        load = self._loads.get(endpoint)
        if load is None:
            load = self._loads[endpoint] = _Load(self._clock())
        return load

    def _two(self, endpoints: Sequence[E]) -> tuple[E, E]:
        n = len(endpoints)
        i = int(self._random() * n)
        j = int(self._random() * (n - 1))
        if j >= i:
            j += 1
        return endpoints[i], endpoints[j]

    def start(self, endpoint: object) -> None:
        self._load(endpoint).pending += 1

    def retain(self, endpoints: Iterable[object]) -> None:
        keep = set(endpoints)
        for gone in [e for e in self._loads if e not in keep]:
            del self._loads[gone]


class PeakEwma(_Stateful):
    """Cost = decayed peak latency × (pending + 1); the cheaper of two random endpoints wins."""

    def _cost(self, endpoint: object, now: float) -> float:
        load = self._loads.get(endpoint)
        if load is None:
            return DEFAULT_RTT_S
        ewma = load.ewma * math.exp(-(now - load.stamp) / DECAY_S) if load.pending == 0 else load.ewma
        return max(ewma, DEFAULT_RTT_S * 0.01) * (load.pending + 1)

    def pick(self, endpoints: Sequence[E]) -> E | None:
        if len(endpoints) < 2:
            return endpoints[0] if endpoints else None
        a, b = self._two(endpoints)
        now = self._clock()
        return a if self._cost(a, now) <= self._cost(b, now) else b

    def done(self, endpoint: object, latency_s: float, ok: bool) -> None:
        load = self._loads.get(endpoint)
        if load is None:
            return
        load.pending = max(0, load.pending - 1)
        if not ok:
            latency_s = max(latency_s, FAILURE_PENALTY_S)
        now = self._clock()
        if latency_s > load.ewma:
            load.ewma = latency_s  # peak: a slow response counts in full at once
        else:
            w = math.exp(-max(0.0, now - load.stamp) / DECAY_S)
            load.ewma = load.ewma * w + latency_s * (1.0 - w)
        load.stamp = now


class LeastRequest(_Stateful):
    """The one of two random endpoints with fewer requests in flight."""

    def pick(self, endpoints: Sequence[E]) -> E | None:
        if len(endpoints) < 2:
            return endpoints[0] if endpoints else None
        a, b = self._two(endpoints)
        la, lb = self._loads.get(a), self._loads.get(b)
        return a if (la.pending if la else 0) <= (lb.pending if lb else 0) else b

    def done(self, endpoint: object, latency_s: float, ok: bool) -> None:
        load = self._loads.get(endpoint)
        if load is not None:
            load.pending = max(0, load.pending - 1)


class RoundRobin:
    """Each endpoint in turn, in snapshot order."""

    def __init__(self) -> None:
        self._next = 0

    def pick(self, endpoints: Sequence[E]) -> E | None:
        if not endpoints:
            return None
        i = self._next % len(endpoints)
        self._next = i + 1
        return endpoints[i]

    def start(self, endpoint: object) -> None:
        pass

    def done(self, endpoint: object, latency_s: float, ok: bool) -> None:
        pass

    def retain(self, endpoints: Iterable[object]) -> None:
        pass


def make_balancer(kind: str, clock: Callable[[], float], rng: random.Random | None = None) -> Balancer:
    if kind == "round-robin":
        return RoundRobin()
    if kind == "least-request":
        return LeastRequest(clock, rng)
    if kind == "ewma":
        return PeakEwma(clock, rng)
    raise ValueError(f"unknown balancer {kind!r}")
