"""The `top` aggregation: the busiest (source, destination, method, path) with their latencies.

As Linkerd's top: rows merge on the key columns and sort by count; latency is the whole request
(start to response end); success means a status below 500, no failing gRPC status and no proxy failure.
"""

from __future__ import annotations

from dataclasses import dataclass

from meshctl.tapping.events import Endpoint
from meshctl.tapping.exchange import Exchange

COLUMNS = ("Source", "Destination", "Method", "Path", "Count", "Best", "Worst", "Last", "Success Rate")


def endpoint_name(endpoint: Endpoint) -> str:
    """The pod where known, else the workload, else the host (source ports are ephemeral)."""
    if endpoint.pod:
        return endpoint.pod
    if endpoint.workload:
        return endpoint.workload
    host, sep, _ = endpoint.address.rpartition(":")
    return host if sep else endpoint.address


@dataclass
class TopRow:
    source: str
    destination: str
    method: str
    path: str
    count: int = 0
    successes: int = 0
    best_us: int = 0
    worst_us: int = 0
    last_us: int = 0

    @property
    def success_rate(self) -> float:
        return self.successes / self.count if self.count else 0.0


class TopTable:
    def __init__(self, *, hide_sources: bool = False) -> None:
        self.hide_sources = hide_sources
        self._rows: dict[tuple[str, str, str, str], TopRow] = {}
        self.total = 0

    def add(self, exchange: Exchange) -> None:
        """Count one exchange once it has ended (call it when the end arrives)."""
        request, end = exchange.request, exchange.end
        if request is None or end is None:
            return
        source = "" if self.hide_sources else endpoint_name(request.source)
        key = (source, endpoint_name(request.destination), request.method, request.path.split("?", 1)[0])
        row = self._rows.get(key)
        latency = end.since_request_init_us
        if row is None:
            row = self._rows[key] = TopRow(*key, best_us=latency, worst_us=latency)
        row.count += 1
        row.successes += 1 if exchange.success else 0
        row.best_us, row.worst_us, row.last_us = min(row.best_us, latency), max(row.worst_us, latency), latency
        self.total += 1

    def rows(self, limit: int | None = None) -> list[TopRow]:
        ordered = sorted(self._rows.values(), key=lambda r: (-r.count, r.source, r.destination, r.method, r.path))
        return ordered[:limit] if limit is not None else ordered


def human_us(micros: int) -> str:
    if micros < 1000:
        return f"{micros}µs"
    if micros < 1_000_000:
        return f"{micros / 1000:.1f}ms" if micros < 10_000 else f"{micros // 1000}ms"
    return f"{micros / 1e6:.2f}s"


def table_lines(rows: list[TopRow], *, hide_sources: bool = False, width: int | None = None) -> list[str]:
    """The table as aligned text lines (header first); paths are cut to fit `width` when given."""
    columns = list(COLUMNS[1:] if hide_sources else COLUMNS)
    cells = [
        ([] if hide_sources else [r.source])
        + [r.destination, r.method, r.path, str(r.count), human_us(r.best_us), human_us(r.worst_us),
           human_us(r.last_us), f"{r.success_rate * 100:.2f}%"]
        for r in rows
    ]  # fmt: skip
    widths = [max([len(columns[i])] + [len(row[i]) for row in cells]) for i in range(len(columns))]
    if width is not None:  # narrow the text columns, path first, down to their headers' width
        for name in ("Path", "Source", "Destination"):
            if name in columns:
                col = columns.index(name)
                excess = sum(widths) + 2 * (len(widths) - 1) - width
                if excess > 0:
                    widths[col] = max(len(name), widths[col] - excess)
    numeric = {columns.index(c) for c in ("Count", "Best", "Worst", "Last", "Success Rate")}

    def line(values: list[str]) -> str:
        out = []
        for i, value in enumerate(values):
            if len(value) > widths[i]:
                value = value[: max(1, widths[i] - 1)] + "…"
            out.append(value.rjust(widths[i]) if i in numeric else value.ljust(widths[i]))
        return "  ".join(out).rstrip()

    return [line(columns)] + [line(row) for row in cells]
