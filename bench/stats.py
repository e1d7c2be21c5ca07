"""Percentiles and a log-linear latency histogram: the arithmetic of every latency the benchmarks report.

Runs are bounded in request count, so percentiles are computed exactly from the sorted samples; the
histogram exists to publish the whole distribution compactly (percentiles of two runs do not subtract).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

# Reported percentiles, in the order of every table.
PERCENTILES: tuple[float, ...] = (50.0, 90.0, 99.0, 99.9)


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of sorted values: the smallest value with at least p % at or below it."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0.0 <= p <= 100.0:
        raise ValueError(f"percentile {p} is outside 0..100")
    # The epsilon keeps p=99.9 of 10,000 samples at rank 9,990 despite 99.9 * 100 = 9990.000000000002.
    rank = max(1, math.ceil(p / 100.0 * len(sorted_values) - 1e-9))
    return sorted_values[rank - 1]


def percentile_key(p: float) -> str:
    """`p50`, `p99`, `p99.9`: the JSON key of a percentile."""
    return f"p{p:g}"


def summarize(values: Iterable[float]) -> dict[str, float]:
    """count, mean, the reported percentiles and max of the values (all zero when there are none)."""
    ordered = sorted(values)
    out: dict[str, float] = {"count": float(len(ordered))}
    if not ordered:
        out.update({"mean": 0.0, "max": 0.0, **{percentile_key(p): 0.0 for p in PERCENTILES}})
        return out
    out["mean"] = math.fsum(ordered) / len(ordered)
    for p in PERCENTILES:
        out[percentile_key(p)] = percentile(ordered, p)
    out["max"] = ordered[-1]
    return out


class LogHistogram:
    """Counts of non-negative integers in log-linear buckets (HdrHistogram's layout).

    Values below 2 * 2**sub_bits are counted exactly; above that each power-of-two range is split into
    2**sub_bits equal buckets, so a bucket's width is under 1 / 2**sub_bits of its values (0.8 % at 7 bits).
    """

    def __init__(self, sub_bits: int = 7) -> None:
        if not 1 <= sub_bits <= 20:
            raise ValueError("sub_bits must be in 1..20")
        self.sub_bits = sub_bits
        self._sub = 1 << sub_bits
        self.counts: dict[int, int] = {}
        self.total = 0

    def index(self, value: int) -> int:
        if value < 0:
            raise ValueError("histogram values must be non-negative")
        if value < 2 * self._sub:
            return value
        shift = value.bit_length() - (self.sub_bits + 1)
        return 2 * self._sub + (shift - 1) * self._sub + ((value >> shift) - self._sub)

    def bounds(self, index: int) -> tuple[int, int]:
        """Lowest and highest value counted in bucket `index` (inclusive)."""
        if index < 2 * self._sub:
            return index, index
        shift, offset = divmod(index - 2 * self._sub, self._sub)
        shift += 1
        low = (self._sub + offset) << shift
        return low, low + (1 << shift) - 1

    def record(self, value: int, count: int = 1) -> None:
        i = self.index(value)
        self.counts[i] = self.counts.get(i, 0) + count
        self.total += count

    def merge(self, other: LogHistogram) -> None:
        if other.sub_bits != self.sub_bits:
            raise ValueError("cannot merge histograms of different precision")
        for i, n in other.counts.items():
            self.counts[i] = self.counts.get(i, 0) + n
        self.total += other.total

    def value_at(self, p: float) -> int:
        """Upper bound of the bucket holding the nearest-rank p-th percentile (never under-reports)."""
        if self.total == 0:
            raise ValueError("percentile of an empty histogram")
        if not 0.0 <= p <= 100.0:
            raise ValueError(f"percentile {p} is outside 0..100")
        rank = max(1, math.ceil(p / 100.0 * self.total - 1e-9))
        seen = 0
        for i in sorted(self.counts):
            seen += self.counts[i]
            if seen >= rank:
                return self.bounds(i)[1]
        raise AssertionError("unreachable: ranks are bounded by the total")

    def buckets(self) -> list[tuple[int, int, int]]:
        """Non-empty buckets as (low, high, count), ascending: the JSON form."""
        return [(*self.bounds(i), self.counts[i]) for i in sorted(self.counts)]

    @classmethod
    def from_buckets(cls, rows: Iterable[Sequence[int]], sub_bits: int = 7) -> LogHistogram:
        hist = cls(sub_bits)
        for low, _high, count in rows:
            hist.record(low, count)
        return hist
