"""Session affinity: the requests with one key go to one endpoint (ServiceProfile loadBalancer).

The key is a header's value, or the value of a cookie: a request without the cookie gets a fresh random
value, is placed by it, and its response carries `Set-Cookie` so the client's next requests come back
with it (as Istio's httpCookie). Placement is weighted rendezvous hashing (highest random weight): each
endpoint scores `weight / -ln(u)` with `u` a hash of (key, endpoint), the highest wins. It needs no ring
to rebuild; when an endpoint leaves the candidates (ejected by the breaker, gone from discovery, or
unreachable) only the keys it held move, each to its next best, and they come back when it returns. The
hash is blake2b, not Python's `hash`, so every client proxy places a key on the same endpoint.

A request without a key (no such header), and any retry, is placed by weight at random.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Sequence
from hashlib import blake2b
from typing import TYPE_CHECKING, TypeVar

from meshctl.proxy.policy.balance import _Stateful

if TYPE_CHECKING:
    from meshctl.proxy.plan import Headers
    from meshctl.resources.load_balancer import Affinity, LoadBalancer

E = TypeVar("E")
_MASK = (1 << 64) - 1
_SCALE = 1.0 / 2.0**64


def _mix(x: int) -> int:
    """splitmix64's finalizer: spreads (key hash ^ endpoint seed) over 64 bits."""
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def _hash64(data: bytes) -> int:
    return int.from_bytes(blake2b(data, digest_size=8).digest(), "little")


class SessionAffinity(_Stateful):
    def __init__(self, clock: Callable[[], float], rng: random.Random | None, spec: LoadBalancer,
                 affinity: Affinity) -> None:  # fmt: skip
        super().__init__(clock, rng, spec)
        self.affinity = self
        self._rng = rng or random.Random()
        self._header = affinity.header.encode("latin-1") if affinity.header is not None else None
        self._cookie = (affinity.cookie.encode("latin-1") + b"=") if affinity.cookie is not None else None
        self._cookie_attributes = b"; Path=/; Max-Age=%d; HttpOnly" % int(affinity.ttl_s)
        self._seeds: dict[object, int] = {}  # endpoint -> its hash seed (str(endpoint) hashed once)

    # -- keyed: the first attempt ------------------------------------------------------------------
    def pick_keyed(self, headers: Headers, endpoints: Sequence[E]) -> tuple[E | None, bytes | None]:
        if not endpoints:
            return None, None
        set_cookie = None
        if self._header is not None:
            key = _header(headers, self._header)
            if key is None:
                return self.pick(endpoints), None
        else:
            assert self._cookie is not None
            key = _cookie(headers, self._cookie)
            if key is None:
                key = b"%016x" % self._rng.getrandbits(64)
                set_cookie = self._cookie + key + self._cookie_attributes
        return self.place(key, endpoints), set_cookie

    def place(self, key: bytes, endpoints: Sequence[E]) -> E:
        """The endpoint of `key` among `endpoints` (reachable ones first)."""
        if self._avoiding:
            now = self._clock()
            endpoints = [e for e in endpoints if not self._avoided(e, now)] or endpoints
        if len(endpoints) == 1:
            return endpoints[0]
        hashed = _hash64(key)
        seeds = self._seeds
        weights = self._weights
        best, best_score = endpoints[0], -1.0
        for endpoint in endpoints:
            seed = seeds.get(endpoint)
            if seed is None:
                seed = seeds[endpoint] = _hash64(str(endpoint).encode())
            u = (_mix(hashed ^ seed) + 0.5) * _SCALE  # in (0, 1)
            score = -1.0 / math.log(u)
            if weights is not None:
                score *= weights.of(endpoint)
            if score > best_score:
                best, best_score = endpoint, score
        return best

    # -- unkeyed: by weight at random --------------------------------------------------------------
    def pick(self, endpoints: Sequence[E]) -> E | None:
        if len(endpoints) < 2:
            return endpoints[0] if endpoints else None
        if self._weights is not None:
            return self._weighted(endpoints)
        a, _ = self._two(endpoints)
        return a

    def retain(self, endpoints: Iterable[object]) -> None:
        keep = set(endpoints)
        super().retain(keep)
        self._seeds = {e: s for e, s in self._seeds.items() if e in keep}


def _header(headers: Headers, name: bytes) -> bytes | None:
    size = len(name)
    for key, value in headers:
        if len(key) == size and key.lower() == name:
            return value.strip() or None
    return None


def _cookie(headers: Headers, prefix: bytes) -> bytes | None:
    """The value of the cookie `prefix` ("name=") in the request's Cookie headers."""
    for key, value in headers:
        if len(key) == 6 and key.lower() == b"cookie":
            for part in value.split(b";"):
                part = part.strip()
                if part.startswith(prefix):
                    return part[len(prefix):] or None
    return None
