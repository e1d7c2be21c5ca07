"""What `routes` and `stat` report: frozen values, rendered by meshctl.cli.tables."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_ROUTE = "[DEFAULT]"


@dataclass(frozen=True)
class Counts:
    """Responses over a window, split by classification."""

    success: float = 0.0
    failure: float = 0.0

    @property
    def total(self) -> float:
        return self.success + self.failure

    @property
    def success_rate(self) -> float | None:
        return self.success / self.total if self.total > 0 else None

    def rps(self, window_s: float) -> float:
        return self.total / window_s


@dataclass(frozen=True)
class Latency:
    """Percentiles of the time to the response headers, in milliseconds; None without responses."""

    p50: float | None = None
    p95: float | None = None
    p99: float | None = None


@dataclass(frozen=True)
class RouteRow:
    namespace: str  # of the destination service
    service: str  # the destination service ("" when the proxy could not tell)
    route: str  # the ServiceProfile route name, or [DEFAULT]
    effective: Counts  # what clients saw (after the proxy's retries)
    actual: Counts | None  # every attempt; None when the proxy recorded none
    latency: Latency
    in_profile: bool  # False: traffic seen under a name the current profile no longer has

    @property
    def has_traffic(self) -> bool:
        return self.effective.total > 0


@dataclass(frozen=True)
class RoutesReport:
    target: str  # "deploy/books"
    namespace: str
    to: str | None  # "svc/authors" for the outbound view, None for the inbound (server) view
    window_s: int
    rows: tuple[RouteRow, ...]
    unprofiled: tuple[str, ...] = ()  # "books.booksapp": services with no ServiceProfile
    coverage: Coverage | None = None  # None: not measured (the proxies' scrape targets are unknown)

    @property
    def direction(self) -> str:
        return "inbound" if self.to is None else "outbound"

    @property
    def span_s(self) -> float:
        """Seconds the rates are computed over: the window, or less when it holds less data."""
        if self.coverage is None or self.coverage.covered_s is None:
            return float(self.window_s)
        return max(1.0, min(float(self.window_s), self.coverage.covered_s))


@dataclass(frozen=True)
class Coverage:
    """How much of the window Prometheus holds data for, and which proxies it does not scrape."""

    covered_s: float | None  # seconds of scrapes in the window (None: no proxy scraped in it)
    unscraped: tuple[str, ...] = ()  # pods the platform lists that Prometheus has no target for
    failing: tuple[str, ...] = ()  # pods whose last scrape failed (up == 0)


@dataclass(frozen=True)
class WorkloadRow:
    namespace: str
    name: str  # deployment, pod or namespace name
    meshed: int | None  # instances with a running proxy; None when the platform does not know
    instances: int | None
    counts: Counts
    latency: Latency
    in_flight: int | None  # requests received and not answered yet
    tcp_connections: int | None  # open connections from clients


@dataclass(frozen=True)
class StatReport:
    kind: str  # "deployment" | "pod" | "namespace"
    namespace: str | None  # None: every namespace
    window_s: int
    rows: tuple[WorkloadRow, ...]
