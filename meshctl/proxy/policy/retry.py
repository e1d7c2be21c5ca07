"""Retry budgets: how many retries a destination may take on top of its requests (as Linkerd's).

A route marked `isRetryable` in its ServiceProfile may be tried again after a failed attempt, but only
while the destination's budget allows it: over the last `ttl`, retries may be at most `retryRatio`
of the requests on its retryable routes plus `minRetriesPerSecond × ttl`. So a failing service gets at
most 20 % more load from retries (Linkerd's defaults), never a retry storm, and a quiet one can still
retry its rare failures. The window is ten slots: a deposit or a withdrawal touches one slot and two
running totals. Requests that provably never reached an app are retried outside any budget (stack.py).
"""

from __future__ import annotations

from collections.abc import Callable

from meshctl.resources.service_profile import RetryBudget

SLOTS = 10  # the ttl window in this many slots: old deposits leave it a tenth at a time


class Budget:
    """The retry budget of one destination; `deposit` per retryable request, `withdraw` per retry."""

    __slots__ = ("spec", "ratio", "reserve", "_clock", "_slot_s", "_slot_end", "_i", "_deposits", "_withdrawals",
                 "deposited", "withdrawn", "exhausted")  # fmt: skip

    def __init__(self, spec: RetryBudget, clock: Callable[[], float]) -> None:
        self.spec = spec
        self.ratio = spec.retry_ratio
        self.reserve = spec.min_retries_per_second * spec.ttl_s  # retries allowed whatever the ratio
        self._clock = clock
        self._slot_s = max(spec.ttl_s, 0.001) / SLOTS
        self._slot_end = clock() + self._slot_s
        self._i = 0
        self._deposits = [0] * SLOTS
        self._withdrawals = [0] * SLOTS
        self.deposited = 0  # totals over the window
        self.withdrawn = 0
        self.exhausted = 0  # retries refused since the budget was made (metrics and the config dump)

    def deposit(self) -> None:
        if self._clock() >= self._slot_end:
            self._rotate()
        self._deposits[self._i] += 1
        self.deposited += 1

    def withdraw(self) -> bool:
        """True and one retry spent when the budget allows one more; False (and counted) otherwise."""
        if self._clock() >= self._slot_end:
            self._rotate()
        if self.withdrawn + 1 > self.reserve + self.ratio * self.deposited:
            self.exhausted += 1
            return False
        self._withdrawals[self._i] += 1
        self.withdrawn += 1
        return True

    def _rotate(self) -> None:
        now = self._clock()
        steps = min(int((now - self._slot_end) / self._slot_s) + 1, SLOTS)
        for _ in range(steps):
            self._i = i = (self._i + 1) % SLOTS
            self.deposited -= self._deposits[i]
            self.withdrawn -= self._withdrawals[i]
            self._deposits[i] = self._withdrawals[i] = 0
        self._slot_end = now + self._slot_s

    def to_json(self) -> dict[str, object]:
        spec = self.spec
        return {
            "retryRatio": spec.retry_ratio, "minRetriesPerSecond": spec.min_retries_per_second, "ttl": spec.ttl,
            "window": {"requests": self.deposited, "retries": self.withdrawn}, "exhausted": self.exhausted,
        }  # fmt: skip
