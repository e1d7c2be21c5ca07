"""The proxy's metrics registry, named and labelled like linkerd2-proxy's.

`route(...)` is on the hot path: one dict lookup on the raw label tuple, then RouteStats methods
(see meshctl.metrics.routes). TCP, error and process metrics are kept here.

Every label value a client can influence is bounded: at most `max_authorities` distinct authorities
per direction, `max_routes_per_authority` routes, `max_series` route series in all and
`max_response_classes` (status, grpc-status, classification) combinations per series. Values beyond
a cap fold into `[OVERFLOW]` and are counted in `proxy_metrics_overflow_total{label}`. The
defaults bound the exposition at the cap to about 5 MB, rendered in about 20 ms; a sidecar normally
has a few dozen series.
"""

from __future__ import annotations

from collections.abc import Callable

from meshctl import __version__
from meshctl.metrics.exposition import MAX_LABEL_VALUE_LEN, clean_label_value, header, label_set, sample
from meshctl.metrics.process import ProcessStats, read_process_stats
from meshctl.metrics.routes import OVERFLOW, RouteStats, SeriesKey, render_authorities, render_routes

__all__ = ["OVERFLOW", "ProxyMetrics", "RouteStats"]

DIRECTIONS = ("inbound", "outbound")
PEERS = ("src", "dst")
OVERFLOW_LABELS = ("authority", "rt_route", "series", "status_code", "reason")
POLICY_FAMILIES = {
    "retry_budget_exhausted_total": "Retries not made because the destination's retry budget was spent.",
    "endpoint_ejections_total": "Endpoints ejected for failing (failures in a row or a low success rate).",
    "faults_injected_total": "Requests aborted by a FaultInjection.",
    "delays_injected_total": "Requests delayed by a FaultInjection.",
    "authz_denied_total": "Requests refused by access policy (TrafficTarget), by the policies that select the server.",
}


class _Tcp:
    __slots__ = ("opened", "closed")

    def __init__(self) -> None:
        self.opened = 0
        self.closed = 0


class ProxyMetrics:
    """All metrics of one proxy process. Single-threaded: call it from the event-loop thread only."""

    def __init__(
        self,
        *,
        version: str = __version__,
        process_stats: Callable[[], ProcessStats] = read_process_stats,
        max_authorities: int = 250,
        max_routes_per_authority: int = 100,
        max_series: int = 500,
        max_response_classes: int = 64,
        max_error_reasons: int = 64,
    ) -> None:
        self._version = clean_label_value(version)
        self._process_stats = process_stats
        self._max_authorities = max_authorities
        self._max_routes = max_routes_per_authority
        self._max_series = max_series
        self._max_classes = max_response_classes
        self._max_reasons = max_error_reasons
        # Raw label tuple -> series: the hot-path cache. Several raw tuples may share one series.
        self._routes: dict[SeriesKey, RouteStats] = {}
        # Cleaned label tuple -> series: what render() shows, one entry per distinct label set.
        self._series: dict[SeriesKey, RouteStats] = {}
        self._authorities: dict[str, set[str]] = {direction: set() for direction in DIRECTIONS}
        self._route_names: dict[tuple[str, str], set[str]] = {}
        self._tcp: dict[tuple[str, str, bool], _Tcp] = {}
        self._errors: dict[str, int] = {}
        # (family, direction, authority, policy) -> count: what policies did to requests
        self._policy: dict[tuple[str, str, str, str], int] = {}
        self._overflow: dict[str, int] = dict.fromkeys(OVERFLOW_LABELS, 0)

    # -- recording -------------------------------------------------------------------------------

    def route(
        self, direction: str, authority: str, route: str, tls: bool, dst_namespace: str, dst_service: str
    ) -> RouteStats:
        """The series of one request's labels; call once per request, then the RouteStats methods."""
        stats = self._routes.get((direction, authority, route, tls, dst_namespace, dst_service))
        if stats is None:
            stats = self._new_route((direction, authority, route, tls, dst_namespace, dst_service))
        return stats

    def kept_route(
        self, direction: str, authority: str, route: str, tls: bool, dst_namespace: str, dst_service: str
    ) -> RouteStats | None:
        """The series route() returns for these labels if it keeps it; None for one that is looked up
        anew each time (folded into overflow, which route() reports on every request, or too long)."""
        return self._routes.get((direction, authority, route, tls, dst_namespace, dst_service))

    def tcp_opened(self, direction: str, peer: str, tls: bool) -> None:
        """A connection accepted from a client (peer="src") or opened to an endpoint (peer="dst")."""
        tcp = self._tcp.get((direction, peer, tls))
        if tcp is None:
            tcp = self._tcp_series(direction, peer, tls)
        tcp.opened += 1

    def tcp_closed(self, direction: str, peer: str, tls: bool) -> None:
        tcp = self._tcp.get((direction, peer, tls))
        if tcp is None:
            tcp = self._tcp_series(direction, peer, tls)
        tcp.closed += 1

    def proxy_error(self, reason: str) -> None:
        """A response the proxy synthesised; `reason` is the short mesh-proxy-error text."""
        errors = self._errors
        count = errors.get(reason)
        if count is None:
            reason = clean_label_value(reason)
            if reason not in errors and len(errors) >= self._max_reasons:
                self._overflowed("reason")
                reason = OVERFLOW
            count = errors.get(reason, 0)
        errors[reason] = count + 1

    def policy_event(self, family: str, authority: str, direction: str = "outbound", policy: str = "") -> None:
        """Something a policy did to a request of `authority`; `family` is one of POLICY_FAMILIES and
        `policy` names the resource that decided, when the family is counted by policy."""
        counts = self._policy
        key = (family, direction, authority, policy)
        count = counts.get(key)
        if count is None:
            if family not in POLICY_FAMILIES or direction not in DIRECTIONS:
                raise ValueError(f"unknown policy family {family!r} or direction {direction!r}")
            if len(counts) >= self._max_authorities * len(POLICY_FAMILIES):
                self._overflowed("authority")
                key = (family, direction, OVERFLOW, OVERFLOW if policy else "")
            count = counts.get(key, 0)
        counts[key] = count + 1

    # -- series creation (off the hot path: once per new label tuple) ----------------------------

    def _new_route(self, raw: SeriesKey) -> RouteStats:
        direction, authority, route, tls, namespace, service = raw
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, not {direction!r}")
        authority = clean_label_value(authority)
        route = clean_label_value(route)
        folded = False
        authorities = self._authorities[direction]
        if authority not in authorities and len(authorities) >= self._max_authorities:
            self._overflowed("authority")
            authority, folded = OVERFLOW, True
        routes = self._route_names.get((direction, authority), set())
        if route not in routes and len(routes) >= self._max_routes:
            self._overflowed("rt_route")
            route, folded = OVERFLOW, True
        key = (
            direction,
            authority,
            route,
            bool(tls),
            clean_label_value(namespace),
            clean_label_value(service),
        )
        stats = self._series.get(key)
        if stats is None:
            if len(self._series) >= self._max_series:
                self._overflowed("series")
                key, folded = (direction, OVERFLOW, OVERFLOW, tls, "", ""), True
                stats = self._series.get(key)
            if stats is None:
                stats = self._series[key] = RouteStats(key, self._max_classes, self._overflowed)
                if key[1] != OVERFLOW:
                    authorities.add(key[1])
                self._route_names.setdefault((direction, key[1]), set()).add(key[2])
        # Folded tuples are not cached, so each request they carry is counted as an overflow. Long
        # raw values are not cached either: the cache must not hold a client's kilobytes.
        if not folded and len(self._routes) < 2 * self._max_series and _short(raw):
            self._routes[raw] = stats
        return stats

    def _tcp_series(self, direction: str, peer: str, tls: bool) -> _Tcp:
        if direction not in DIRECTIONS or peer not in PEERS:
            raise ValueError(f"bad tcp labels direction={direction!r} peer={peer!r}")
        return self._tcp.setdefault((direction, peer, bool(tls)), _Tcp())

    def _overflowed(self, label: str) -> None:
        self._overflow[label] += 1

    # -- exposition ------------------------------------------------------------------------------

    def render(self) -> bytes:
        """The Prometheus text exposition (format 0.0.4) of every series, in a stable order."""
        out: list[str] = []
        series = [self._series[key] for key in sorted(self._series)]
        render_authorities(out, series)
        render_routes(out, series)
        self._render_tcp(out)
        self._render_errors(out)
        self._render_process(out)
        out.append("")
        return "\n".join(out).encode("utf-8")

    def _render_tcp(self, out: list[str]) -> None:
        keys = sorted(self._tcp)
        labels = {
            k: label_set((("direction", k[0]), ("peer", k[1]), ("tls", "true" if k[2] else "false")))
            for k in keys
        }
        header(out, "tcp_open_total", "counter", "Connections opened.")
        for key in keys:
            sample(out, "tcp_open_total", labels[key], self._tcp[key].opened)
        header(out, "tcp_close_total", "counter", "Connections closed.")
        for key in keys:
            sample(out, "tcp_close_total", labels[key], self._tcp[key].closed)
        header(out, "tcp_open_connections", "gauge", "Connections currently open.")
        for key in keys:
            tcp = self._tcp[key]
            sample(out, "tcp_open_connections", labels[key], tcp.opened - tcp.closed)

    def _render_errors(self, out: list[str]) -> None:
        header(out, "proxy_errors_total", "counter", "Responses synthesised by the proxy, by reason.")
        for reason in sorted(self._errors):
            sample(out, "proxy_errors_total", label_set((("reason", reason),)), self._errors[reason])
        family = ""
        for key in sorted(self._policy):  # a family shows once a policy has acted: unconfigured costs nothing
            if key[0] != family:
                family = key[0]
                header(out, family, "counter", POLICY_FAMILIES[family])
            pairs = [("direction", key[1]), ("authority", clean_label_value(key[2]))]
            if key[3]:
                pairs.append(("policy", clean_label_value(key[3])))
            sample(out, family, label_set(tuple(pairs)), self._policy[key])
        header(out, "proxy_metrics_overflow_total", "counter", _OVERFLOW_HELP)
        for label in sorted(self._overflow):
            sample(out, "proxy_metrics_overflow_total", label_set((("label", label),)), self._overflow[label])

    def _render_process(self, out: list[str]) -> None:
        header(out, "proxy_build_info", "gauge", "Proxy build information; always 1.")
        sample(out, "proxy_build_info", label_set((("version", self._version),)), 1)
        stats = self._process_stats()
        header(out, "process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch.")
        sample(out, "process_start_time_seconds", "", stats.start_time_seconds)
        header(out, "process_cpu_seconds_total", "counter", "User and system CPU time spent, in seconds.")
        sample(out, "process_cpu_seconds_total", "", stats.cpu_seconds)
        if stats.resident_memory_bytes is not None:
            header(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.")
            sample(out, "process_resident_memory_bytes", "", stats.resident_memory_bytes)


_OVERFLOW_HELP = "Metric updates whose label value was folded into [OVERFLOW] because a cap was reached."


def _short(key: SeriesKey) -> bool:
    return all(len(value) <= MAX_LABEL_VALUE_LEN for value in key if isinstance(value, str))
