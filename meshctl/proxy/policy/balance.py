"""Endpoint balancing: peak-EWMA power of two choices (default), round robin, least request.

Every balancer has the same three calls on the hot path: pick(endpoints) before a request,
start(endpoint) when it is sent, done(endpoint, latency_s, ok, unreachable) when it ends. State is kept
per endpoint and survives snapshot updates (retain() drops endpoints that left). A ServiceProfile's
`loadBalancer` chooses the policy per service (policy/affinity.py adds session affinity).

An endpoint that could not be reached (connection refused, handshake failed, its proxy says its app is
gone) is avoided at once, whatever its latency history, for a backoff that doubles with each further
failure (UNREACHABLE_BACKOFF_S up to MAX_BACKOFF_S); when it is over, one request probes it. A fast
failure must never look cheaper than a slow success.

Weights (`loadBalancer.weights`) are honoured by every policy. Two random choices cannot keep shares
(whichever of two is cheaper wins every time, so the shares follow the latencies), so with weights the
load-aware policies pick at random over every endpoint in proportion to weight, scaled down for an
endpoint with more than WEIGHTED_TOLERANCE × the fewest requests in flight (+1 each, as Envoy's least
request weighs by weight / load when weights differ). Requests in flight, not peak latency, because
they are the latency under load (Little's law) without its noise: on a busy machine single slow answers
moved a 3:1 share to 86:14 when peak latency counted. So a slow or stuck endpoint, which gathers requests,
loses traffic, and otherwise the shares are the operator's. Round robin is smooth weighted round robin.
Without weights none of this runs (`_weights` is None) and the pick is P2C.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Sequence
from math import exp as _exp
from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    from meshctl.proxy.plan import Headers
    from meshctl.resources.load_balancer import LoadBalancer

E = TypeVar("E")

DECAY_S = 10.0  # peak-EWMA time constant: how long a slow response keeps counting against an endpoint
DEFAULT_RTT_S = 0.001  # cost of an endpoint that has never answered: cheap, so new endpoints get traffic
FAILURE_PENALTY_S = 1.0  # a failed request counts as at least this slow
UNREACHABLE_BACKOFF_S = 0.25  # first avoidance of an unreachable endpoint; doubles per failure in a row
MAX_BACKOFF_S = 10.0
WEIGHTED_TOLERANCE = 2.0  # with weights, requests in flight within this factor of the fewest count as equal


class Affine(Protocol):
    """A balancer that keeps a request's key on one endpoint (policy/affinity.py)."""

    def pick_keyed(self, headers: Headers, endpoints: Sequence[E]) -> tuple[E | None, bytes | None]:
        """(the endpoint, a Set-Cookie value to add to the response or None)."""
        ...


class Balancer(Protocol):
    spec: LoadBalancer | None  # the profile's loadBalancer it was made for (None: the proxy's default)
    affinity: Affine | None  # None unless the policy is session-affinity

    def pick(self, endpoints: Sequence[E]) -> E | None: ...

    def start(self, endpoint: object) -> None: ...

    def take(self, endpoints: Sequence[E]) -> E | None:
        """pick() and, when it gives one, start(): the endpoint a request goes to now, in one call."""
        ...

    def done(self, endpoint: object, latency_s: float, ok: bool, unreachable: bool = False) -> None: ...

    def retain(self, endpoints: Iterable[object]) -> None: ...


class _Load:
    __slots__ = ("ewma", "stamp", "pending", "failures", "avoid_until")

    def __init__(self, now: float) -> None:
        self.ewma = DEFAULT_RTT_S
        self.stamp = now
        self.pending = 0
        self.failures = 0  # unreachable in a row
        self.avoid_until = 0.0


class Weights:
    """Endpoint weights by pod name or "address:port"; endpoints not named weigh 1."""

    __slots__ = ("by_name",)

    def __init__(self, by_name: dict[str, int]) -> None:
        self.by_name = by_name

    def of(self, endpoint: object) -> int:
        by_name = self.by_name
        return by_name.get(getattr(endpoint, "pod", ""), 0) or by_name.get(str(endpoint), 0) or 1


def weights_of(spec: LoadBalancer | None) -> Weights | None:
    return Weights(dict(spec.weights)) if spec is not None and spec.weights else None


class _Stateful:
    affinity: Affine | None = None

    def __init__(self, clock: Callable[[], float], rng: random.Random | None = None,
                 spec: LoadBalancer | None = None) -> None:  # fmt: skip
        self._clock = clock
        self._random = (rng or random.Random()).random  # balancing needs no cryptographic randomness
        self._loads: dict[object, _Load] = {}
        self._avoiding = 0  # endpoints with unreachable failures: 0 keeps the check off the hot path
        self.spec = spec
        self._weights = weights_of(spec)

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
        a, b = endpoints[i], endpoints[j]
        if self._avoiding:
            now = self._clock()
            a_out, b_out = self._avoided(a, now), self._avoided(b, now)
            if a_out or b_out:
                return self._reachable(endpoints, a, b, a_out, b_out, now)
        return a, b

    def _avoided(self, endpoint: object, now: float) -> bool:
        load = self._loads.get(endpoint)
        return load is not None and load.avoid_until > now

    def _reachable(self, endpoints: Sequence[E], a: E, b: E, a_out: bool, b_out: bool, now: float) -> tuple[E, E]:
        """The pair to compare when one of them is being avoided: a reachable one if there is any."""
        if a_out != b_out:
            keep = b if a_out else a
            return keep, keep
        live = [e for e in endpoints if not self._avoided(e, now)]
        if live:
            pick = live[int(self._random() * len(live))]
            return pick, pick
        # Every endpoint is being avoided: probe the one whose backoff ends first.
        first = min(endpoints, key=lambda e: self._loads[e].avoid_until)
        return first, first

    def _unreachable(self, load: _Load) -> None:
        if not load.failures:
            self._avoiding += 1
        load.failures += 1
        backoff = min(UNREACHABLE_BACKOFF_S * (2 ** min(load.failures - 1, 16)), MAX_BACKOFF_S)
        load.avoid_until = self._clock() + backoff

    def _reachable_again(self, load: _Load) -> None:
        if load.failures:
            load.failures = 0
            self._avoiding = max(0, self._avoiding - 1)

    def _in_flight(self, endpoint: object) -> float:
        load = self._loads.get(endpoint)
        return 1.0 + (load.pending if load is not None else 0)  # as Envoy's weighted least request (active + 1)

    def _weighted(self, endpoints: Sequence[E]) -> E:
        """At random by weight over every reachable endpoint, less for one much busier (weights are set)."""
        assert self._weights is not None
        now = self._clock()
        if self._avoiding:
            endpoints = [e for e in endpoints if not self._avoided(e, now)] or endpoints
        weight_of, cost = self._weights.of, self._in_flight
        costs = [cost(e) for e in endpoints]
        tolerated = WEIGHTED_TOLERANCE * min(costs)
        shares = [weight_of(e) * min(1.0, tolerated / c) for e, c in zip(endpoints, costs, strict=True)]
        target = self._random() * sum(shares)
        for endpoint, share in zip(endpoints, shares, strict=True):
            target -= share
            if target < 0.0:
                return endpoint
        return endpoints[-1]

    def pick(self, endpoints: Sequence[E]) -> E | None:
        raise NotImplementedError

    def start(self, endpoint: object) -> None:
        load = self._loads.get(endpoint)
        if load is None:
            load = self._load(endpoint)
        load.pending += 1

    def take(self, endpoints: Sequence[E]) -> E | None:
        # Every policy picks the only endpoint there is: no pick() call for it.
        endpoint = endpoints[0] if len(endpoints) == 1 else self.pick(endpoints)
        if endpoint is not None:
            load = self._loads.get(endpoint)
            if load is None:
                load = self._load(endpoint)
            load.pending += 1
        return endpoint

    def done(self, endpoint: object, latency_s: float, ok: bool, unreachable: bool = False) -> None:
        """Requests in flight and reachability; PeakEwma also records the latency."""
        load = self._loads.get(endpoint)
        if load is not None:
            if load.pending > 0:
                load.pending -= 1
            if unreachable:
                self._unreachable(load)
            elif latency_s > 0.0 and load.failures:
                self._reachable_again(load)

    def retain(self, endpoints: Iterable[object]) -> None:
        keep = set(endpoints)
        for gone in [e for e in self._loads if e not in keep]:
            del self._loads[gone]
        self._avoiding = sum(1 for load in self._loads.values() if load.failures)


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
        if self._weights is not None:
            return self._weighted(endpoints)
        a, b = self._two(endpoints)
        if a is b:
            return a
        now = self._clock()
        return a if self._cost(a, now) <= self._cost(b, now) else b

    def done(self, endpoint: object, latency_s: float, ok: bool, unreachable: bool = False) -> None:
        load = self._loads.get(endpoint)
        if load is None:
            return
        if load.pending > 0:
            load.pending -= 1
        if unreachable:
            self._unreachable(load)
            return
        if latency_s > 0.0 and load.failures:  # the common case, reachable all along, costs no call
            self._reachable_again(load)
        if not ok:
            latency_s = max(latency_s, FAILURE_PENALTY_S)
        now = self._clock()
        if latency_s > load.ewma:
            load.ewma = latency_s  # peak: a slow response counts in full at once
        else:
            elapsed = now - load.stamp  # max(0.0, elapsed) without the call, once per response
            w = _exp(-(elapsed if elapsed > 0.0 else 0.0) / DECAY_S)
            load.ewma = load.ewma * w + latency_s * (1.0 - w)
        load.stamp = now


class LeastRequest(_Stateful):
    """The one of two random endpoints with fewer requests in flight."""

    def pick(self, endpoints: Sequence[E]) -> E | None:
        if len(endpoints) < 2:
            return endpoints[0] if endpoints else None
        if self._weights is not None:
            return self._weighted(endpoints)
        a, b = self._two(endpoints)
        if a is b:
            return a
        la, lb = self._loads.get(a), self._loads.get(b)
        return a if (la.pending if la else 0) <= (lb.pending if lb else 0) else b


class RoundRobin:
    """Each endpoint in turn, in snapshot order; unreachable ones are skipped while their backoff runs.

    With weights: smooth weighted round robin (as nginx's), exact over every sum-of-weights picks."""

    affinity: Affine | None = None

    def __init__(self, clock: Callable[[], float], spec: LoadBalancer | None = None) -> None:
        self._clock = clock
        self._next = 0
        self._avoid: dict[object, tuple[int, float]] = {}  # endpoint -> (failures in a row, avoid until)
        self.spec = spec
        self._weights = weights_of(spec)
        self._current: dict[object, int] = {}  # smooth weighted round robin: each endpoint's credit

    def pick(self, endpoints: Sequence[E]) -> E | None:
        n = len(endpoints)
        if not n:
            return None
        if self._weights is not None:
            return self._weighted(endpoints)
        i = self._next % n
        if self._avoid:
            now = self._clock()
            for step in range(n):
                entry = self._avoid.get(endpoints[(i + step) % n])
                if entry is None or entry[1] <= now:
                    i = (i + step) % n
                    break
        self._next = i + 1
        return endpoints[i]

    def _weighted(self, endpoints: Sequence[E]) -> E:
        assert self._weights is not None
        live = endpoints
        if self._avoid:
            now = self._clock()
            live = [e for e in endpoints if self._avoid.get(e, (0, 0.0))[1] <= now] or endpoints
        current, weight_of = self._current, self._weights.of
        best, best_credit, total = live[0], -math.inf, 0
        for endpoint in live:
            weight = weight_of(endpoint)
            total += weight
            credit = current[endpoint] = current.get(endpoint, 0) + weight
            if credit > best_credit:
                best, best_credit = endpoint, credit
        current[best] -= total
        return best

    def start(self, endpoint: object) -> None:
        pass

    def take(self, endpoints: Sequence[E]) -> E | None:
        return self.pick(endpoints)  # nothing to start: no count in flight

    def done(self, endpoint: object, latency_s: float, ok: bool, unreachable: bool = False) -> None:
        if unreachable:
            failures = self._avoid.get(endpoint, (0, 0.0))[0] + 1
            backoff = min(UNREACHABLE_BACKOFF_S * (2 ** min(failures - 1, 16)), MAX_BACKOFF_S)
            self._avoid[endpoint] = (failures, self._clock() + backoff)
        elif latency_s > 0.0 and self._avoid:
            self._avoid.pop(endpoint, None)

    def retain(self, endpoints: Iterable[object]) -> None:
        keep = set(endpoints)
        self._avoid = {e: v for e, v in self._avoid.items() if e in keep}
        self._current = {e: v for e, v in self._current.items() if e in keep}


def make_balancer(kind: str, clock: Callable[[], float], rng: random.Random | None = None,
                  spec: LoadBalancer | None = None) -> Balancer:  # fmt: skip
    """The balancer of one destination: its profile's `spec` when it has one, else the proxy's `kind`."""
    if spec is not None:
        kind = spec.policy
    if kind == "round-robin":
        return RoundRobin(clock, spec)
    if kind == "least-request":
        return LeastRequest(clock, rng, spec)
    if kind in ("ewma", "peak-ewma"):
        return PeakEwma(clock, rng, spec)
    if kind == "session-affinity" and spec is not None and spec.affinity is not None:
        from meshctl.proxy.policy.affinity import SessionAffinity

        return SessionAffinity(clock, rng, spec, spec.affinity)
    raise ValueError(f"unknown balancer {kind!r}")
