"""Circuit breaking: endpoints ejected from balancing after failures (ServiceProfile failureAccrual).

One Breaker per destination whose profile asks for it, kept across snapshots. Each response (as the
route classifies it) or unreachable attempt is an outcome for its endpoint; `consecutiveFailures` failures
in a row, or (`successRate`) a success rate below the threshold over the window once it holds
`minRequests` outcomes, eject it for a penalty that doubles with each ejection in a row (minPenalty up
to maxPenalty). When the penalty is over the endpoint is on probation: the first outcome decides — a
success closes the circuit again, a failure ejects it at once for twice as long. Under successRate a
passed probe does not reset the doubling (an endpoint failing 40 % passes most probes): only a window
that meets the threshold again does. The window is WINDOW_BUCKETS buckets of counts: an outcome costs a
few int updates and the rate is summed on a failure only. With every endpoint ejected the request is
answered at once (503 "circuit open"), never queued. Without ejections `endpoints` costs one int check.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar

from meshctl.resources import failure_accrual
from meshctl.resources.failure_accrual import FailureAccrual

E = TypeVar("E", bound=Hashable)
WINDOW_BUCKETS = 10


class _Window:
    """Outcomes over the last WINDOW_BUCKETS bucket widths: (epoch, outcomes, failures) per bucket."""

    __slots__ = ("epochs", "totals", "failures")

    def __init__(self) -> None:
        self.epochs = [-1] * WINDOW_BUCKETS
        self.totals = [0] * WINDOW_BUCKETS
        self.failures = [0] * WINDOW_BUCKETS

    def add(self, epoch: int, failed: bool) -> None:
        slot = epoch % WINDOW_BUCKETS
        if self.epochs[slot] != epoch:
            self.epochs[slot], self.totals[slot], self.failures[slot] = epoch, 0, 0
        self.totals[slot] += 1
        if failed:
            self.failures[slot] += 1

    def counts(self, epoch: int) -> tuple[int, int]:
        """(outcomes, failures) in the window that ends in bucket `epoch`."""
        oldest = epoch - WINDOW_BUCKETS
        total = failed = 0
        for slot, at in enumerate(self.epochs):
            if at > oldest:
                total += self.totals[slot]
                failed += self.failures[slot]
        return total, failed

    def clear(self) -> None:
        self.epochs = [-1] * WINDOW_BUCKETS


class _Accrual:
    __slots__ = ("failures", "ejections", "until", "probation", "window")

    def __init__(self, rate: bool = False) -> None:
        self.failures = 0  # failed outcomes in a row
        self.ejections = 0  # ejections in a row (the penalty doubles with each)
        self.until = 0.0  # ejected until then; 0: in balancing
        self.probation = False  # back from an ejection: the next outcome decides
        self.window = _Window() if rate else None  # successRate only


class Breaker:
    __slots__ = ("spec", "_clock", "_states", "_ejected", "_release_at", "_live", "_live_of", "ejections")

    def __init__(self, spec: FailureAccrual, clock: Callable[[], float]) -> None:
        self.spec = spec
        self._clock = clock
        self._states: dict[Hashable, _Accrual] = {}
        self._ejected = 0  # endpoints ejected now
        self._release_at = math.inf  # the earliest end of a penalty
        self._live: tuple[Hashable, ...] | None = None  # the endpoints in balancing, while nothing changes
        self._live_of: tuple[Hashable, ...] | None = None  # ... of this endpoint tuple (snapshots replace it)
        self.ejections = 0  # since the breaker was made

    def endpoints(self, endpoints: tuple[E, ...]) -> tuple[E, ...]:
        """The endpoints to balance over: all of them unless some are ejected; () when every one is."""
        if not self._ejected:
            return endpoints
        if self._clock() >= self._release_at:
            self._release()
            if not self._ejected:
                return endpoints
        if self._live is None or self._live_of is not endpoints:
            states = self._states
            self._live = tuple(e for e in endpoints if e not in states or not states[e].until)
            self._live_of = endpoints
        return self._live  # type: ignore[return-value]  # the same endpoints, filtered

    def outcome(self, endpoint: Hashable, failed: bool) -> bool:
        """An attempt on `endpoint` ended; True when this failure ejected it."""
        if self.spec.success_rate is not None:
            return self._rate_outcome(endpoint, failed)
        state = self._states.get(endpoint)
        if not failed:
            if state is not None and (state.failures or state.probation):
                state.failures = state.ejections = 0
                state.probation = False
            return False
        if state is None:
            state = self._states[endpoint] = _Accrual()
        if state.until:
            return False  # an attempt that started before the ejection
        state.failures += 1
        if state.probation or state.failures >= (self.spec.consecutive_failures or 1):
            self._eject(state)
            return True
        return False

    def _rate_outcome(self, endpoint: Hashable, failed: bool) -> bool:
        rate = self.spec.success_rate
        assert rate is not None
        state = self._states.get(endpoint)
        if state is None:
            state = self._states[endpoint] = _Accrual(rate=True)
        if state.until:
            return False  # an attempt that started before the ejection
        if state.probation:
            if failed:
                self._eject(state)
                return True
            state.probation = False  # one success does not prove the rate: the penalty keeps doubling ...
        window = state.window
        assert window is not None
        epoch = int(self._clock() * WINDOW_BUCKETS / rate.window_s)
        window.add(epoch, failed)
        if not failed:
            if state.ejections:  # ... until a full window meets the threshold again
                total, failures = window.counts(epoch)
                if total >= rate.min_requests and (total - failures) / total >= rate.threshold:
                    state.ejections = 0
            return False
        total, failures = window.counts(epoch)
        if total >= rate.min_requests and (total - failures) / total < rate.threshold:
            self._eject(state)
            return True
        return False

    def _eject(self, state: _Accrual) -> None:
        spec = self.spec
        penalty = min(spec.min_penalty_s * 2 ** min(state.ejections, 30), spec.max_penalty_s)
        state.ejections += 1
        state.failures = 0
        state.probation = False
        if state.window is not None:
            state.window.clear()  # back on probation with a clean slate
        state.until = until = self._clock() + penalty
        self._ejected += 1
        self._release_at = min(self._release_at, until)
        self._live = None
        self.ejections += 1

    def _release(self) -> None:
        """Penalties that are over: those endpoints go back into balancing, on probation."""
        now = self._clock()
        next_at = math.inf
        for state in self._states.values():
            if not state.until:
                continue
            if state.until <= now:
                state.until = 0.0
                state.probation = True
                self._ejected -= 1
            else:
                next_at = min(next_at, state.until)
        self._release_at = next_at
        self._live = None

    def retain(self, endpoints: Iterable[Hashable]) -> None:
        """A new snapshot: forget endpoints that left."""
        keep = set(endpoints)
        self._states = {e: s for e, s in self._states.items() if e in keep}
        self._ejected = sum(1 for s in self._states.values() if s.until)
        self._release_at = min((s.until for s in self._states.values() if s.until), default=math.inf)
        self._live = None

    def to_json(self) -> dict[str, object]:
        now = self._clock()
        spec = self.spec
        return {
            **failure_accrual.to_dict(spec), "ejections": self.ejections,
            "endpoints": {
                str(e): {"state": "ejected" if s.until > now else ("probation" if s.probation or s.until else "in"),
                         "failures_in_a_row": s.failures, **self._rate_json(s, now),
                         "ejected_for_s": round(max(s.until - now, 0.0), 3)}
                for e, s in sorted(self._states.items(), key=lambda item: str(item[0]))
            },
        }  # fmt: skip

    def _rate_json(self, state: _Accrual, now: float) -> dict[str, object]:
        rate = self.spec.success_rate
        if rate is None or state.window is None:
            return {}
        total, failures = state.window.counts(int(now * WINDOW_BUCKETS / rate.window_s))
        return {"outcomes_in_window": total, "success_rate": round((total - failures) / total, 4) if total else None}
