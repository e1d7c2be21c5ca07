"""Latency quantiles from cumulative bucket counts, computed as Prometheus' `histogram_quantile` does.

One query fetches every bucket of every route; p50, p95 and p99 are computed here instead of asking
Prometheus three times. The answer lies in the bucket that holds the rank, interpolated linearly: its
error is bounded by that bucket's width (e.g. 100 ms for a value between 100 ms and 200 ms).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

QUANTILES = (0.5, 0.95, 0.99)

Bucket = tuple[float, float]  # (upper bound `le`, cumulative count)


def parse_le(text: str) -> float:
    return math.inf if text == "+Inf" else float(text)


def quantile(q: float, buckets: Iterable[Bucket]) -> float | None:
    """The q-quantile (0 < q < 1) of a histogram; None when it has no observation or no +Inf bucket."""
    ordered = _clean(buckets)
    if len(ordered) < 2 or not math.isinf(ordered[-1][0]):
        return None
    total = ordered[-1][1]
    if total <= 0:
        return None
    rank = q * total
    index = next(i for i, (_, count) in enumerate(ordered) if count >= rank)
    if index == len(ordered) - 1:
        return ordered[-2][0]  # in +Inf: the highest finite bound is all that is known
    upper, count = ordered[index]
    if index == 0 and upper <= 0:
        return upper
    lower = 0.0
    if index > 0:
        lower, below = ordered[index - 1]
        count -= below
        rank -= below
    return upper if count <= 0 else lower + (upper - lower) * (rank / count)


def bucket_of(value: float, bounds: Iterable[float]) -> tuple[float, float]:
    """The (lower, upper] bucket of the bounds that holds value."""
    lower = 0.0
    for upper in sorted(bounds):
        if value <= upper:
            return lower, upper
        lower = upper
    return lower, math.inf


def _clean(buckets: Iterable[Bucket]) -> list[Bucket]:
    """Sorted by bound, equal bounds merged, counts made monotonic (scrapes of a histogram are not atomic)."""
    merged: dict[float, float] = {}
    for le, count in buckets:
        if not math.isnan(count):
            merged[le] = merged.get(le, 0.0) + count
    out: list[Bucket] = []
    highest = 0.0
    for le in sorted(merged):
        highest = max(highest, merged[le])
        out.append((le, highest))
    return out
