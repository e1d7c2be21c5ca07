"""Latency histograms with linkerd2-proxy's millisecond buckets, exposed in seconds.

Observation (inlined in RouteStats.on_response) is one `bisect` plus two in-place adds on plain
attributes: buckets are stored non-cumulative and made cumulative only when rendered.
"""

from __future__ import annotations

# Upper bounds in milliseconds, as linkerd2-proxy's latency histograms; +Inf is implicit.
BOUNDS_MS: tuple[int, ...] = (
    1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500,
    1000, 2000, 3000, 4000, 5000, 10000, 20000, 30000, 40000, 50000,
)  # fmt: skip

# The `le` label text of every bucket, in seconds (Prometheus' base unit, which promtool insists on),
# +Inf last; precomputed so render() only concatenates. Observations stay in milliseconds.
LE_LABELS: tuple[str, ...] = tuple(f"{bound / 1000:g}" for bound in BOUNDS_MS) + ("+Inf",)


class Latency:
    """One histogram series. `buckets[i]` counts observations in (BOUNDS_MS[i-1], BOUNDS_MS[i]]."""

    __slots__ = ("buckets", "sum")

    def __init__(self) -> None:
        self.buckets: list[int] = [0] * len(LE_LABELS)
        self.sum: float = 0.0

    def add(self, other: Latency) -> None:
        """Fold another series into this one (aggregation at render time)."""
        mine = self.buckets
        for i, n in enumerate(other.buckets):
            mine[i] += n
        self.sum += other.sum
