"""HTTP route series: the hot-path counters and their exposition.

A RouteStats is one (direction, authority, rt_route, tls, dst_namespace, dst_service) series. The
proxy gets it from ProxyMetrics.route() once per request and then calls on_request()/on_response(),
which touch plain int/float attributes and one bisect: nothing is formatted and nothing is locked
(everything runs on the proxy's event-loop thread). Label text is built once, when the series is
created.

Only per-route series are recorded; the per-authority families (`request_total`, `response_total`,
`response_latency_seconds`) are their sums, computed at render time so each request is counted once.
"""

from __future__ import annotations

from bisect import bisect_left as _bisect
from collections.abc import Callable, KeysView
from itertools import accumulate

from meshctl.metrics.exposition import format_value, header, label_set, sample
from meshctl.metrics.histogram import BOUNDS_MS, LE_LABELS, Latency

OVERFLOW = "[OVERFLOW]"

# Histogram family names. linkerd2-proxy's `_ms` names are kept so its queries and dashboards work
# unchanged, although promtool's linter prefers base units.
RESPONSE_LATENCY = "response_latency_seconds"
ROUTE_RESPONSE_LATENCY = "route_response_latency_seconds"

_HELP = {
    "request_total": "HTTP requests received, by authority.",
    "response_total": "HTTP responses sent, by authority, status and classification.",
    RESPONSE_LATENCY: "Time to the response headers in milliseconds, by authority.",
    "route_request_total": "HTTP requests received, by route.",
    "route_response_total": "HTTP responses sent, by route, status and classification.",
    ROUTE_RESPONSE_LATENCY: "Time to the response headers in milliseconds, by route.",
    "route_actual_request_total": "Attempts sent to endpoints (retries included), by route.",
    "route_actual_response_total": "Responses to each attempt, by route, status and classification.",
}

_OVERFLOW_STATUS = -1  # status_code of folded response classes, rendered as [OVERFLOW]
_GRPC_UNKNOWN = 2  # gRPC: codes a peer does not know are treated as UNKNOWN

# direction, authority, rt_route, tls, dst_namespace, dst_service
SeriesKey = tuple[str, str, str, bool, str, str]
# status_code, grpc_status, failure
ResponseKey = tuple[int, int | None, bool]


class _Count:
    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


class RouteStats:
    """The counters of one (direction, authority, route, tls, dst_namespace, dst_service) series."""

    __slots__ = ("key", "labels", "requests", "actual_requests", "responses", "actual_responses",
                 "latency", "_max_classes", "_on_overflow", "_finals")  # fmt: skip

    def __init__(self, key: SeriesKey, max_classes: int, on_overflow: Callable[[str], None]) -> None:
        self.key = key
        direction, authority, route, tls, namespace, service = key
        self.labels = label_set(
            (("direction", direction), ("authority", authority), ("rt_route", route),
             ("tls", _bool(tls)), ("dst_namespace", namespace), ("dst_service", service))
        )  # fmt: skip
        self.requests = 0
        self.actual_requests = 0
        self.responses: dict[ResponseKey, _Count] = {}
        self.actual_responses: dict[ResponseKey, _Count] = {}
        # One histogram per series, not one per status code as in linkerd2-proxy: latency quantiles
        # are queried `by (le)`, and a status label would multiply the largest family's size.
        self.latency = Latency()
        self._max_classes = max_classes
        self._on_overflow = on_overflow
        # Response class -> (its series in responses, in actual_responses), as on_final_response keys them.
        self._finals: dict[int | ResponseKey, tuple[_Count, _Count]] = {}

    def on_request(self) -> None:
        self.requests += 1

    def on_new_request(self) -> None:
        """A request and its first attempt: on_request() and on_actual_request() in one call."""
        self.requests += 1
        self.actual_requests += 1

    def on_response(
        self, status_code: int, grpc_status: int | None, latency_ms: float, failure: bool
    ) -> None:
        """A response as the client saw it (after retries); latency is time to first byte, in ms."""
        series = self.responses.get((status_code, grpc_status, failure))
        if series is None:
            series = self._series_of(self.responses, status_code, grpc_status, failure)
        series.count += 1
        latency = self.latency
        latency.buckets[_bisect(BOUNDS_MS, latency_ms)] += 1
        latency.sum += latency_ms

    def on_final_response(self, status_code: int, grpc_status: int | None, latency_ms: float, failure: bool) -> None:
        """The response the client got, which also answers the last attempt: on_response() and
        on_actual_response() in one call, with one lookup for both series."""
        # An HTTP response's class is an int (no tuple built per request): its status, negated for a failure.
        key = (-status_code if failure else status_code) if grpc_status is None else (status_code, grpc_status,
                                                                                        failure)  # fmt: skip
        pair = self._finals.get(key)
        if pair is None:
            pair = self._final_pair(key, status_code, grpc_status, failure)
        pair[0].count += 1
        pair[1].count += 1
        latency = self.latency
        latency.buckets[_bisect(BOUNDS_MS, latency_ms)] += 1
        latency.sum += latency_ms

    def _final_pair(self, key: int | ResponseKey, status_code: int, grpc_status: int | None,
                    failure: bool) -> tuple[_Count, _Count]:  # fmt: skip
        """The two series of a final response class; kept for the next one unless folded into overflow,
        which is reported on every response (as on_response() does)."""
        pair = (self._series_of(self.responses, status_code, grpc_status, failure),
                self._series_of(self.actual_responses, status_code, grpc_status, failure))  # fmt: skip
        folded = (_OVERFLOW_STATUS, None, failure)
        if self.responses.get(folded) is not pair[0] and self.actual_responses.get(folded) is not pair[1]:
            self._finals[key] = pair
        return pair

    def on_actual_request(self) -> None:
        """One attempt sent to an endpoint (the first try or a retry)."""
        self.actual_requests += 1

    def on_actual_response(
        self, status_code: int, grpc_status: int | None, latency_ms: float, failure: bool
    ) -> None:
        """The response to one attempt. Attempts have no latency histogram, as in linkerd2-proxy."""
        series = self.actual_responses.get((status_code, grpc_status, failure))
        if series is None:
            series = self._series_of(self.actual_responses, status_code, grpc_status, failure)
        series.count += 1

    def _series_of(
        self, table: dict[ResponseKey, _Count], status_code: int, grpc_status: int | None, failure: bool
    ) -> _Count:
        key = self._class_key(table.keys(), status_code, grpc_status, failure)
        series = table.get(key)
        if series is None:
            series = table[key] = _Count()
        return series

    def _class_key(
        self, known: KeysView[ResponseKey], status_code: int, grpc_status: int | None, failure: bool
    ) -> ResponseKey:
        """Where a response class not seen yet is counted: gRPC codes normalised, folded past the cap."""
        if grpc_status is not None and not 0 <= grpc_status <= 16:
            grpc_status = _GRPC_UNKNOWN
        key = (status_code, grpc_status, failure)
        if key not in known and len(known) >= self._max_classes:
            self._on_overflow("status_code")
            key = (_OVERFLOW_STATUS, None, failure)
        return key


# -- exposition ------------------------------------------------------------------------------------

AuthorityKey = tuple[str, str, bool, str, str]  # direction, authority, tls, dst_namespace, dst_service


class _Authority:
    """The sum of the route series of one authority, built at render time."""

    __slots__ = ("labels", "requests", "responses", "latency")

    def __init__(self, key: AuthorityKey) -> None:
        direction, authority, tls, namespace, service = key
        self.labels = label_set(
            (("direction", direction), ("authority", authority), ("tls", _bool(tls)),
             ("dst_namespace", namespace), ("dst_service", service))
        )  # fmt: skip
        self.requests = 0
        self.responses: dict[ResponseKey, int] = {}
        self.latency = Latency()


def render_authorities(out: list[str], series: list[RouteStats]) -> None:
    totals: dict[AuthorityKey, _Authority] = {}
    for stats in series:
        direction, authority, _, tls, namespace, service = stats.key
        key = (direction, authority, tls, namespace, service)
        total = totals.get(key)
        if total is None:
            total = totals[key] = _Authority(key)
        total.requests += stats.requests
        for response, counted in stats.responses.items():
            total.responses[response] = total.responses.get(response, 0) + counted.count
        total.latency.add(stats.latency)
    authorities = [totals[key] for key in sorted(totals)]
    header(out, "request_total", "counter", _HELP["request_total"])
    for total in authorities:
        sample(out, "request_total", total.labels, total.requests)
    header(out, "response_total", "counter", _HELP["response_total"])
    for total in authorities:
        for response in sorted(total.responses, key=_class_order):
            labels = f"{total.labels},{_class_labels(response)}"
            sample(out, "response_total", labels, total.responses[response])
    header(out, RESPONSE_LATENCY, "histogram", _HELP[RESPONSE_LATENCY])
    for total in authorities:
        _histogram(out, RESPONSE_LATENCY, total.labels, total.latency)


def render_routes(out: list[str], series: list[RouteStats]) -> None:
    header(out, "route_request_total", "counter", _HELP["route_request_total"])
    for stats in series:
        sample(out, "route_request_total", stats.labels, stats.requests)
    header(out, "route_response_total", "counter", _HELP["route_response_total"])
    for stats in series:
        for response in sorted(stats.responses, key=_class_order):
            labels = f"{stats.labels},{_class_labels(response)}"
            sample(out, "route_response_total", labels, stats.responses[response].count)
    header(out, ROUTE_RESPONSE_LATENCY, "histogram", _HELP[ROUTE_RESPONSE_LATENCY])
    for stats in series:
        _histogram(out, ROUTE_RESPONSE_LATENCY, stats.labels, stats.latency)
    header(out, "route_actual_request_total", "counter", _HELP["route_actual_request_total"])
    for stats in series:
        sample(out, "route_actual_request_total", stats.labels, stats.actual_requests)
    header(out, "route_actual_response_total", "counter", _HELP["route_actual_response_total"])
    for stats in series:
        for response in sorted(stats.actual_responses, key=_class_order):
            labels = f"{stats.labels},{_class_labels(response)}"
            sample(out, "route_actual_response_total", labels, stats.actual_responses[response].count)


def _histogram(out: list[str], name: str, labels: str, latency: Latency) -> None:
    cumulative = list(accumulate(latency.buckets))
    total = cumulative[-1]
    if not total:
        return  # no response yet: an all-zero histogram says nothing and costs 28 lines
    bucket = f'{name}_bucket{{{labels},le="'
    out.extend(f'{bucket}{le}"}} {count}' for le, count in zip(LE_LABELS, cumulative, strict=True))
    out.append(f"{name}_sum{{{labels}}} {format_value(latency.sum / 1000)}")
    out.append(f"{name}_count{{{labels}}} {total}")


def _status_label(status: int) -> str:
    return f'status_code="{OVERFLOW if status == _OVERFLOW_STATUS else status}"'


def _class_labels(key: ResponseKey) -> str:
    status, grpc_status, failure = key
    grpc = "" if grpc_status is None else f'grpc_status="{grpc_status}",'
    return f'{_status_label(status)},{grpc}classification="{"failure" if failure else "success"}"'


def _class_order(key: ResponseKey) -> tuple[int, int, bool]:
    return (key[0], -1 if key[1] is None else key[1], key[2])


def _bool(value: bool) -> str:
    return "true" if value else "false"
