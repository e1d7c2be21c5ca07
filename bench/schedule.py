"""The sans-IO core of the open-loop driver: when each request is due, which connection carries it, and
what its latency is.

Latency is always measured from the request's *intended* send time. A request whose connection is still
busy waits on that connection, and the wait counts: a slow server cannot slow the driver down and so hide
its own queueing (coordinated omission).
"""

from __future__ import annotations

import math
from array import array
from collections import Counter, deque
from dataclasses import dataclass

from bench.stats import LogHistogram, summarize

NS_PER_MS = 1_000_000
NS_PER_US = 1_000
# The driver's lag is a defect of the measurement, not of the target: a run whose sends were later than this
# at p99 is flagged as driver-limited (noisy), and the benchmark job reruns it.
MAX_DRIVER_LAG_P99_MS = 1.0
# A run whose achieved rate is further than this from the offered rate measured a saturated target.
RATE_TOLERANCE = 0.01


@dataclass(frozen=True)
class Schedule:
    """A fixed-rate schedule: `warmup` requests whose results are discarded, then `measured` ones."""

    rate: float
    warmup: int
    measured: int
    connections: int

    @classmethod
    def plan(cls, rate: float, warmup_s: float, duration_s: float, connections: int, max_requests: int) -> Schedule:
        """The schedule of a run; max_requests bounds the total (the measured part shrinks to fit)."""
        if rate <= 0 or not math.isfinite(rate):
            raise ValueError("rate must be a positive number of requests per second")
        if duration_s <= 0 or warmup_s < 0:
            raise ValueError("duration must be positive and warm-up not negative")
        if connections < 1:
            raise ValueError("at least one connection is needed")
        warmup = round(rate * warmup_s)
        measured = min(round(rate * duration_s), max_requests - warmup)
        if measured < 1:
            raise ValueError(f"max_requests={max_requests} leaves nothing after {warmup} warm-up requests")
        return cls(rate, warmup, measured, connections)

    @property
    def total(self) -> int:
        return self.warmup + self.measured

    def offset_ns(self, i: int) -> int:
        """Intended send time of request i, in ns after the start of the run."""
        return round(i * 1e9 / self.rate)

    def connection_of(self, i: int) -> int:
        """Requests are dealt to connections round-robin, whatever state the connections are in."""
        return i % self.connections

    def due_until(self, first: int, elapsed_ns: int) -> int:
        """One past the last request from `first` on that is due `elapsed_ns` after the start."""
        last_due = math.floor(elapsed_ns * self.rate / 1e9)
        # Rounding in offset_ns can put a request a nanosecond either side of the floor; settle it exactly.
        while last_due + 1 < self.total and self.offset_ns(last_due + 1) <= elapsed_ns:
            last_due += 1
        while last_due >= 0 and self.offset_ns(last_due) > elapsed_ns:
            last_due -= 1
        return max(first, min(self.total, last_due + 1))


class ConnectionQueue:
    """One keep-alive connection's requests: at most one in flight (no pipelining), the rest wait in order."""

    def __init__(self) -> None:
        self.waiting: deque[int] = deque()
        self.in_flight: int | None = None
        self.connected = False

    def submit(self, i: int) -> bool:
        """Queue request i; True when it should be written now (connected and idle)."""
        if self.connected and self.in_flight is None:
            self.in_flight = i
            return True
        self.waiting.append(i)
        return False

    def on_connected(self) -> int | None:
        """The connection is up: the request to write first, if any is waiting."""
        self.connected = True
        return self._next()

    def on_response(self, keep_alive: bool = True) -> tuple[int, int | None]:
        """The in-flight request got its response: (that request, the next one to write or None).

        Without keep-alive the server closes the connection, so the next request waits for a new one.
        """
        if self.in_flight is None:
            raise RuntimeError("a response arrived with no request in flight")
        done, self.in_flight = self.in_flight, None
        if not keep_alive:
            self.connected = False
        return done, self._next()

    def on_disconnected(self) -> int | None:
        """The connection is gone: the request it lost (None if it was idle); waiting ones stay queued."""
        lost, self.in_flight = self.in_flight, None
        self.connected = False
        return lost

    def drain(self) -> list[int]:
        """Every request still owned (in flight first, then waiting), removed: they failed."""
        owned = ([] if self.in_flight is None else [self.in_flight]) + list(self.waiting)
        self.in_flight = None
        self.waiting.clear()
        return owned

    def _next(self) -> int | None:
        if self.connected and self.in_flight is None and self.waiting:
            self.in_flight = self.waiting.popleft()
        else:
            return None
        return self.in_flight


class Recorder:
    """Per-request outcomes of one run, indexed by request number; times are absolute perf_counter ns."""

    def __init__(self, schedule: Schedule, start_ns: int) -> None:
        self.schedule = schedule
        self.start_ns = start_ns
        n = schedule.total
        self.latency_ns = array("q", [-1]) * n
        self.lag_ns = array("q", [-1]) * n
        self.done_ns = array("q", [-1]) * n
        self.finished = 0
        self.queued = 0
        self.errors: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()

    def intended_ns(self, i: int) -> int:
        return self.start_ns + self.schedule.offset_ns(i)

    def dispatched(self, i: int, now_ns: int, *, waited: bool) -> None:
        """The driver handed request i to its connection at now_ns; `waited` if the connection was busy."""
        self.lag_ns[i] = now_ns - self.intended_ns(i)
        if waited and i >= self.schedule.warmup:
            self.queued += 1

    def completed(self, i: int, now_ns: int, status: int, proxy_error: str | None = None) -> None:
        self.finished += 1
        self.statuses[status] += 1
        if 200 <= status < 400:
            self.latency_ns[i] = now_ns - self.intended_ns(i)
            self.done_ns[i] = now_ns
        elif i >= self.schedule.warmup:
            self.errors[f"http {status}" + (f" ({proxy_error})" if proxy_error else "")] += 1

    def failed(self, i: int, reason: str) -> None:
        self.finished += 1
        if i >= self.schedule.warmup:
            self.errors[reason] += 1

    @property
    def all_finished(self) -> bool:
        return self.finished >= self.schedule.total

    def summary(self) -> dict[str, object]:
        """The run's report: latency and driver-lag percentiles in ms, achieved rate, errors, validity.

        Valid = no errors and the offered rate achieved; a late driver is a warning (see above).
        """
        sched = self.schedule
        measured = range(sched.warmup, sched.total)
        lat_ns = [self.latency_ns[i] for i in measured if self.latency_ns[i] >= 0]
        lags = [self.lag_ns[i] / NS_PER_MS for i in measured if self.lag_ns[i] >= 0]
        ok = len(lat_ns)
        window_start = self.intended_ns(sched.warmup)
        last_done = max((self.done_ns[i] for i in measured), default=-1)
        span_s = (last_done - window_start) / 1e9 if last_done > window_start else 0.0
        # Before its last intended send the run cannot have finished, so its span is at least the schedule's.
        span_s = max(span_s, (sched.measured - 1) / sched.rate)
        achieved = ok / span_s if span_s > 0 else 0.0
        hist = LogHistogram()
        for v in lat_ns:
            hist.record(v // NS_PER_US)
        latency = summarize(v / NS_PER_MS for v in lat_ns)
        lag = summarize(lags)
        errors = sum(self.errors.values())
        problems = []
        if errors:
            problems.append(f"{errors} errors")
        if abs(achieved - sched.rate) > RATE_TOLERANCE * sched.rate:
            problems.append(f"achieved {achieved:.1f} rps of {sched.rate:g} offered (saturated)")
        # A late driver does not invalidate a run: latency counts from the intended time, so its lateness
        # is charged to the target (an over-estimate, never an under-estimate). It is flagged as noise.
        warnings = []
        if lag["p99"] > MAX_DRIVER_LAG_P99_MS:
            warnings.append(f"driver lag p99 {lag['p99']:.3f} ms (driver-limited)")
        return {
            "offered_rps": sched.rate,
            "achieved_rps": achieved,
            "connections": sched.connections,
            "warmup_requests": sched.warmup,
            "requests": sched.measured,
            "ok": ok,
            "errors": dict(self.errors),
            "error_count": errors,
            "queued_on_busy_connection": self.queued,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "latency_ms": latency,
            "driver_lag_ms": lag,
            "histogram_us": hist.buckets(),
            "valid": not problems,
            "problems": problems,
            "driver_limited": bool(warnings),
            "warnings": warnings,
        }
